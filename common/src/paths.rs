//! Default paths, baked in at build time by `./configure` (through environment variables that the
//! generated Makefile passes to cargo) and otherwise lvm2's Linux defaults (docs/protocol.md §9.1).
#![forbid(unsafe_code)]

macro_rules! configured {
    ($var:literal, $default:literal) => {
        match option_env!($var) {
            Some(v) => v,
            None => $default,
        }
    };
}

/// Directory of the daemons' sockets (`DEFAULT_RUN_DIR`).
pub const RUN_DIR: &str = configured!("LVM_CONFIGURE_RUN_DIR", "/run/lvm");
/// Directory of the daemons' pidfiles (`DEFAULT_PID_DIR`).
pub const PID_DIR: &str = configured!("LVM_CONFIGURE_PID_DIR", "/run");
/// The lvm binary lvmpolld runs (`LVM_PATH`).
pub const LVM_BINARY: &str = configured!("LVM_CONFIGURE_LVM_BINARY", "/sbin/lvm");
/// lvm.conf's directory (`DEFAULT_SYS_DIR`).
pub const SYSTEM_DIR: &str = configured!("LVM_CONFIGURE_SYSTEM_DIR", "/etc/lvm");

/// `<RUN_DIR>/<daemon>.socket`
pub fn default_socket(daemon: &str) -> String {
    format!("{RUN_DIR}/{daemon}.socket")
}

/// `<PID_DIR>/<daemon>.pid`
pub fn default_pidfile(daemon: &str) -> String {
    format!("{PID_DIR}/{daemon}.pid")
}

#[cfg(test)]
mod tests {
    #[test]
    fn defaults_follow_lvm2_layout() {
        assert!(super::default_socket("lvmetad").ends_with("/lvmetad.socket"));
        assert!(super::default_pidfile("lvmpolld").ends_with("/lvmpolld.pid"));
    }
}
