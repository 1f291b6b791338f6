//! The `lvm lvpoll` command line and environment lvmpolld runs for an operation (docs/protocol.md
//! §6.5).

use crate::request::PollInit;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Exit status the C daemon's child uses when `dup2` fails (`LVMPD_RET_DUP_FAILED`).
pub const RET_DUP_FAILED: i32 = 100;
/// Exit status the C daemon's child uses when `execve` fails (`LVMPD_RET_EXC_FAILED`).
pub const RET_EXEC_FAILED: i32 = 101;

/// A command ready to run: `argv[0]` is the lvm binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvpollCommand {
    pub argv: Vec<OsString>,
    /// The complete environment of the child, in order.
    pub env: Vec<(OsString, OsString)>,
}

/// `lvm lvpoll --interval I [--abort] [--handlemissingpvs] --polloperation OP vg/lv -An`.
pub fn argv(binary: &Path, p: &PollInit) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![binary.as_os_str().to_owned(), "lvpoll".into()];
    v.push("--interval".into());
    v.push(p.interval.clone().into());
    if p.abort {
        v.push("--abort".into());
    }
    if p.handle_missing_pvs {
        v.push("--handlemissingpvs".into());
    }
    v.push("--polloperation".into());
    v.push(p.kind.name().into());
    v.push(format!("{}/{}", p.vgname, p.lvname).into());
    v.push("-An".into());
    v
}

/// The daemon's environment without `LVM_SYSTEM_DIR`, plus `LVM_SYSTEM_DIR=<sysdir>` when the
/// request named one.
pub fn env<I>(daemon_env: I, sysdir: Option<&str>) -> Vec<(OsString, OsString)>
where
    I: IntoIterator<Item = (OsString, OsString)>,
{
    let mut v: Vec<(OsString, OsString)> = daemon_env
        .into_iter()
        .filter(|(k, _)| k.as_os_str() != OsStr::new("LVM_SYSTEM_DIR"))
        .collect();
    if let Some(s) = sysdir {
        v.push(("LVM_SYSTEM_DIR".into(), s.into()));
    }
    v
}

impl LvpollCommand {
    /// The command for `p`, inheriting this process's environment.
    pub fn new(binary: &Path, p: &PollInit) -> LvpollCommand {
        LvpollCommand {
            argv: argv(binary, p),
            env: env(std::env::vars_os(), p.sysdir.as_deref()),
        }
    }

    /// The command line as one string, for logs.
    pub fn display(&self) -> String {
        let parts: Vec<String> = self
            .argv
            .iter()
            .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned())
            .collect();
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::PollType;

    fn p(abort: bool, missing: bool, sysdir: Option<&str>) -> PollInit {
        PollInit {
            kind: PollType::Pvmove,
            lvid: "X".into(),
            vgname: "vg0".into(),
            lvname: "pvmove0".into(),
            interval: "15".into(),
            sysdir: sysdir.map(Into::into),
            abort,
            handle_missing_pvs: missing,
            timeout: 60,
        }
    }

    fn strs(v: &[OsString]) -> Vec<&str> {
        v.iter().map(|s| s.to_str().unwrap()).collect()
    }

    #[test]
    fn argv_is_exactly_c() {
        assert_eq!(
            strs(&argv(Path::new("/sbin/lvm"), &p(false, false, None))),
            [
                "/sbin/lvm",
                "lvpoll",
                "--interval",
                "15",
                "--polloperation",
                "pvmove",
                "vg0/pvmove0",
                "-An"
            ]
        );
        assert_eq!(
            strs(&argv(Path::new("/x/lvm"), &p(true, true, None)))[2..7],
            [
                "--interval",
                "15",
                "--abort",
                "--handlemissingpvs",
                "--polloperation"
            ]
        );
    }

    #[test]
    fn env_replaces_system_dir() {
        let daemon = vec![
            ("PATH".into(), "/bin".into()),
            ("LVM_SYSTEM_DIR".into(), "/old".into()),
            ("LVM_SYSTEM_DIR_X".into(), "keep".into()),
        ];
        let e = env(daemon.clone(), Some("/new"));
        assert_eq!(
            e,
            vec![
                ("PATH".into(), "/bin".into()),
                ("LVM_SYSTEM_DIR_X".into(), "keep".into()),
                ("LVM_SYSTEM_DIR".into(), "/new".into()),
            ]
        );
        assert_eq!(env(daemon, None).len(), 2);
    }
}
