//! lvmetactl's command line, read as lvm2's lvmetactl reads it (docs/protocol.md §3.14): the
//! socket from `LVM_LVMETAD_SOCKET` or the built-in path, one command and its arguments.
//!
//! C connects to lvmetad before it looks at a command's arguments, so a command it refuses (an
//! argument missing, `set_vg_version` without a name or uuid, an unknown command) is parsed into
//! a [`Refusal`] that `main` answers after connecting, with C's text and exit code. Only no
//! command (usage, exit 255) and `-h`/`--help` (usage, exit 0; C has no help option) exit before.
#![forbid(unsafe_code)]

use common::daemon::cli::Invocation;
use std::fmt;
use std::path::PathBuf;

const USAGE: &[&str] = &[
    "lvmetactl dump",
    "lvmetactl pv_list",
    "lvmetactl vg_list",
    "lvmetactl get_global_info",
    "lvmetactl vg_lookup_name <name>",
    "lvmetactl vg_lookup_uuid <uuid>",
    "lvmetactl pv_lookup_uuid <uuid>",
    "lvmetactl set_global_invalid 0|1",
    "lvmetactl set_global_disable 0|1",
    "lvmetactl set_vg_version <uuid> <name> <version>",
    "lvmetactl vg_lock_type <uuid>",
];

/// What lvmetactl runs with.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    /// `LVM_LVMETAD_SOCKET` when set and not empty, else the built-in path.
    pub socket: PathBuf,
    /// The command, or C's refusal of it (printed once connected).
    pub command: Result<Command, Refusal>,
}

/// A command lvmetactl sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `dump`, `pv_list`, `vg_list`, `get_global_info`: the request as is, its reply printed.
    Plain(&'static str),
    /// `set_global_invalid 0|1` (C's `atoi` of the argument).
    SetGlobalInvalid(i64),
    /// `set_global_disable 0|1`, sent with `disable_reason = "DIRECT"`.
    SetGlobalDisable(i64),
    /// `set_vg_version <uuid> <name> <version>`: a `-` leaves the uuid or the name out.
    SetVgVersion {
        uuid: Option<String>,
        name: Option<String>,
        version: i64,
    },
    /// `vg_lookup_name <name>`.
    VgLookupName(String),
    /// `vg_lookup_uuid <uuid>`.
    VgLookupUuid(String),
    /// `pv_lookup_uuid <uuid>`.
    PvLookupUuid(String),
    /// `vg_lock_type <uuid>`: the `lock_type` of the VG's metadata.
    VgLockType(String),
}

/// A command C refuses after connecting: [`fmt::Display`] is the line it prints on stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Too few arguments: the command's usage line, exit 255.
    MissingArguments(&'static str),
    /// `set_vg_version - - N`, exit 255.
    NameOrUuidRequired,
    /// Not a command, exit 0.
    Unknown,
}

impl Refusal {
    /// C's exit status after printing it.
    pub fn exit_code(&self) -> i32 {
        match self {
            Refusal::MissingArguments(_) | Refusal::NameOrUuidRequired => 255,
            Refusal::Unknown => 0,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::MissingArguments(usage) => f.write_str(usage),
            Refusal::NameOrUuidRequired => f.write_str("name or uuid required"),
            Refusal::Unknown => f.write_str("unknown command"),
        }
    }
}

/// The usage: one line per command.
fn usage() -> String {
    USAGE.iter().map(|l| format!("{l}\n")).collect()
}

/// Parse `args` (the program name first); the socket from the environment.
pub fn parse(args: &[String]) -> Invocation<Options> {
    let socket = std::env::var_os("LVM_LVMETAD_SOCKET")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(common::paths::default_socket("lvmetad")));
    parse_with_socket(args, socket)
}

/// [`parse`] with the socket given.
fn parse_with_socket(args: &[String], socket: PathBuf) -> Invocation<Options> {
    let Some(name) = args.get(1) else {
        return Invocation::print(usage(), 255);
    };
    if matches!(name.as_str(), "-h" | "--help") {
        return Invocation::print(usage(), 0);
    }
    Invocation::Run(Options {
        socket,
        command: command(name, &args[2..]),
    })
}

/// One command and its arguments (extra arguments are ignored, as in C).
fn command(name: &str, args: &[String]) -> Result<Command, Refusal> {
    let need = |n: usize, usage: &'static str| {
        if args.len() < n {
            Err(Refusal::MissingArguments(usage))
        } else {
            Ok(())
        }
    };
    let arg = |i: usize| args[i].clone();
    Ok(match name {
        "dump" => Command::Plain("dump"),
        "pv_list" => Command::Plain("pv_list"),
        "vg_list" => Command::Plain("vg_list"),
        "get_global_info" => Command::Plain("get_global_info"),
        "set_global_invalid" => {
            need(1, "set_global_invalid 0|1")?;
            Command::SetGlobalInvalid(atoi(&args[0]))
        }
        "set_global_disable" => {
            need(1, "set_global_disable 0|1")?;
            Command::SetGlobalDisable(atoi(&args[0]))
        }
        "set_vg_version" => {
            need(3, "set_vg_version <uuid> <name> <ver>")?;
            let uuid = Some(arg(0)).filter(|u| u != "-");
            let name = Some(arg(1)).filter(|n| n != "-");
            if uuid.is_none() && name.is_none() {
                return Err(Refusal::NameOrUuidRequired);
            }
            Command::SetVgVersion {
                uuid,
                name,
                version: atoi(&args[2]),
            }
        }
        "vg_lookup_name" => {
            need(1, "vg_lookup_name <name>")?;
            Command::VgLookupName(arg(0))
        }
        "vg_lookup_uuid" => {
            need(1, "vg_lookup_uuid <uuid>")?;
            Command::VgLookupUuid(arg(0))
        }
        "vg_lock_type" => {
            need(1, "vg_lock_type <uuid>")?;
            Command::VgLockType(arg(0))
        }
        "pv_lookup_uuid" => {
            need(1, "pv_lookup_uuid <uuid>")?;
            Command::PvLookupUuid(arg(0))
        }
        _ => return Err(Refusal::Unknown),
    })
}

/// C's `atoi`: optional leading blanks and sign, then leading digits, 0 otherwise; the value
/// wraps as C's `int` does.
pub fn atoi(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n: i64 = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |acc, d| {
            acc.wrapping_mul(10).wrapping_add(i64::from(d - b'0'))
        });
    let n = n as i32 as i64;
    if neg {
        -n
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::test_support::argv;

    fn parse_args(args: &[&str]) -> Invocation<Options> {
        parse_with_socket(&argv("lvmetactl", args), PathBuf::from("/tmp/l.socket"))
    }

    /// The command (or refusal) of a command line that runs.
    fn command_of(args: &[&str]) -> Result<Command, Refusal> {
        match parse_args(args) {
            Invocation::Run(o) => {
                assert_eq!(o.socket, PathBuf::from("/tmp/l.socket"));
                o.command
            }
            Invocation::Exit { .. } => panic!("{args:?} exits before connecting"),
        }
    }

    #[test]
    fn no_command_and_help_print_the_usage() {
        let (out, err, code) = parse_args(&[])
            .exit()
            .map(|(o, e, c)| (o.to_owned(), e.to_owned(), c))
            .expect("exits");
        assert!(out.starts_with("lvmetactl dump\nlvmetactl pv_list\n") && err.is_empty());
        assert!(out.ends_with("lvmetactl vg_lock_type <uuid>\n") && out.lines().count() == 11);
        assert_eq!(code, 255);
        for help in ["-h", "--help"] {
            assert_eq!(parse_args(&[help]).exit(), Some((out.as_str(), "", 0)));
        }
    }

    #[test]
    fn commands_and_their_arguments() {
        let s = String::from;
        for name in ["dump", "pv_list", "vg_list", "get_global_info"] {
            assert_eq!(command_of(&[name]), Ok(Command::Plain(name)));
        }
        assert_eq!(
            command_of(&["set_global_invalid", "1"]),
            Ok(Command::SetGlobalInvalid(1))
        );
        assert_eq!(
            command_of(&["set_global_disable", "0", "extra"]),
            Ok(Command::SetGlobalDisable(0))
        );
        assert_eq!(
            command_of(&["set_vg_version", "U", "-", "7"]),
            Ok(Command::SetVgVersion {
                uuid: Some(s("U")),
                name: None,
                version: 7
            })
        );
        assert_eq!(
            command_of(&["set_vg_version", "-", "vg0", "x"]),
            Ok(Command::SetVgVersion {
                uuid: None,
                name: Some(s("vg0")),
                version: 0
            })
        );
        assert_eq!(
            command_of(&["vg_lookup_name", "vg0"]),
            Ok(Command::VgLookupName(s("vg0")))
        );
        assert_eq!(
            command_of(&["vg_lookup_uuid", "U"]),
            Ok(Command::VgLookupUuid(s("U")))
        );
        assert_eq!(
            command_of(&["pv_lookup_uuid", "P"]),
            Ok(Command::PvLookupUuid(s("P")))
        );
        assert_eq!(
            command_of(&["vg_lock_type", "U"]),
            Ok(Command::VgLockType(s("U")))
        );
    }

    #[test]
    fn refusals_print_c_texts_with_c_exit_codes() {
        let cases: &[(&[&str], &str, i32)] = &[
            (&["set_global_invalid"], "set_global_invalid 0|1", 255),
            (&["set_global_disable"], "set_global_disable 0|1", 255),
            (
                &["set_vg_version", "U", "vg0"],
                "set_vg_version <uuid> <name> <ver>",
                255,
            ),
            (
                &["set_vg_version", "-", "-", "3"],
                "name or uuid required",
                255,
            ),
            (&["vg_lookup_name"], "vg_lookup_name <name>", 255),
            (&["vg_lookup_uuid"], "vg_lookup_uuid <uuid>", 255),
            (&["pv_lookup_uuid"], "pv_lookup_uuid <uuid>", 255),
            (&["vg_lock_type"], "vg_lock_type <uuid>", 255),
            (&["frobnicate", "x"], "unknown command", 0),
            (&["-x"], "unknown command", 0),
        ];
        for (args, text, code) in cases {
            let r = command_of(args).expect_err("refused");
            assert_eq!(
                (r.to_string().as_str(), r.exit_code()),
                (*text, *code),
                "{args:?}"
            );
        }
    }

    #[test]
    fn atoi_reads_as_c_does() {
        for (s, n) in [
            ("1", 1),
            ("  -12x", -12),
            ("+7", 7),
            ("x1", 0),
            ("", 0),
            ("-", 0),
            ("4294967297", 1),
        ] {
            assert_eq!(atoi(s), n, "{s:?}");
        }
    }
}
