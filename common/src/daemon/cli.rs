//! Command-line options every daemon shares: `-f -s -p -l -t -h -V`, with the socket and pidfile
//! defaults taken from the environment as lvm2 does.
//!
//! SKELETON: signatures are fixed; the implementation is being written.

use super::server::ServerConfig;

/// What one daemon needs to describe its shared options.
#[derive(Debug, Clone)]
pub struct DaemonSpec {
    pub name: &'static str,
    pub protocol: &'static str,
    pub protocol_version: i64,
    /// Env var naming the socket (`LVM_LVMETAD_SOCKET`) and the built-in default.
    pub socket_env: &'static str,
    pub default_socket: String,
    /// Env var naming the pidfile (`LVM_LVMETAD_PIDFILE`) and the built-in default.
    pub pidfile_env: &'static str,
    pub default_pidfile: String,
}

/// Add the shared options to a getopts parser (daemons add their own before parsing).
pub fn add_common_options(opts: &mut getopts::Options) {
    opts.optflag("f", "foreground", "don't fork, log to stderr");
    opts.optflag("h", "help", "show this help");
    opts.optflag("V", "version", "show the version");
    opts.optopt(
        "l",
        "log",
        "log types to stderr: all,wire,debug,info,warn",
        "LIST",
    );
    opts.optopt("s", "socket", "socket path", "PATH");
    opts.optopt("p", "pidfile", "pidfile path", "PATH");
    opts.optopt("t", "timeout", "exit after SECS idle (0 = never)", "SECS");
}

/// Build a [`ServerConfig`] from parsed shared options. Errors are usage errors (bad `-t`).
pub fn server_config(spec: &DaemonSpec, m: &getopts::Matches) -> Result<ServerConfig, String> {
    let _ = (spec, m);
    todo!("server_config")
}
