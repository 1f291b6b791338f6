//! lvmpolld: command-line options only; everything else is in the library and `common::daemon`.
#![forbid(unsafe_code)]

use common::daemon::cli::{self, DaemonSpec};
use common::daemon::log::LogType;
use common::daemon::{self, Client};
use lvmpolld::{Polld, PROTOCOL, PROTOCOL_VERSION};
use std::path::{Path, PathBuf};
use std::process::exit;
use std::sync::Arc;

const SOCKET_ENV: &str = "LVM_LVMPOLLD_SOCKET";
const PIDFILE_ENV: &str = "LVM_LVMPOLLD_PIDFILE";

fn usage(prog: &str) -> String {
    format!(
        "Usage:\n\
         {prog} [-V] [-h] [-f] [-l {{all|wire|debug}}] [-s path] [-B path] [-p path] [-t secs]\n\
         {prog} --dump [-s path]\n\
         \x20  -V|--version     Show version info\n\
         \x20  -h|--help        Show this help information\n\
         \x20  -f|--foreground  Don't fork, run in the foreground\n\
         \x20  --dump           Dump full lvmpolld state\n\
         \x20  -l|--log         Logging message level (-l {{all|wire|debug}})\n\
         \x20  -p|--pidfile     Set path to the pidfile\n\
         \x20  -s|--socket      Set path to the communication socket\n\
         \x20  -B|--binary      Path to lvm2 binary\n\
         \x20  -t|--timeout     Time to wait in seconds before shutdown on idle (missing or 0 = infinite)\n\
         \x20  --root-only      Refuse clients that are not root\n"
    )
}

fn spec() -> DaemonSpec {
    DaemonSpec {
        name: "lvmpolld",
        protocol: PROTOCOL,
        protocol_version: PROTOCOL_VERSION,
        socket_env: SOCKET_ENV,
        default_socket: common::paths::default_socket("lvmpolld"),
        pidfile_env: PIDFILE_ENV,
        default_pidfile: common::paths::default_pidfile("lvmpolld"),
    }
}

/// `--dump`: print a running daemon's dump, each line prefixed with two spaces.
fn client_dump(socket: &Path) -> i32 {
    let mut c = match Client::connect(socket, PROTOCOL, Some(PROTOCOL_VERSION)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Failed to establish connection with lvmpolld: {e}");
            return 1;
        }
    };
    match c.request_raw(b"request=\"dump\"\n") {
        Ok(reply) => {
            for line in String::from_utf8_lossy(&reply).split('\n') {
                println!("  {line}");
            }
            0
        }
        Err(e) => {
            eprintln!("Failed to send a request or receive response: {e}");
            1
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let prog = args.first().map(String::as_str).unwrap_or("lvmpolld");
    let mut opts = getopts::Options::new();
    cli::add_common_options(&mut opts);
    opts.optopt("B", "binary", "path to the lvm2 binary", "PATH");
    opts.optflag("", "dump", "dump the state of a running lvmpolld");
    let m = match opts.parse(&args[1..]) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{prog}: {e}");
            eprint!("{}", usage(prog));
            exit(1);
        }
    };
    if m.opt_present("h") {
        print!("{}", usage(prog));
        exit(0);
    }
    if m.opt_present("V") {
        println!("lvmpolld version: {}", env!("CARGO_PKG_VERSION"));
        exit(0);
    }
    let server_opt = ["B", "f", "l", "p", "t"].iter().any(|o| m.opt_present(o));
    if m.opt_present("dump") {
        if server_opt {
            eprintln!("Invalid combination of client and server parameters.\n");
            print!("{}", usage(prog));
            exit(1);
        }
        let socket = m
            .opt_str("s")
            .or_else(|| std::env::var(SOCKET_ENV).ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| common::paths::default_socket("lvmpolld"));
        exit(client_dump(Path::new(&socket)));
    }

    let mut config = match cli::server_config(&spec(), &m) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Invalid value of timeout parameter. ({e})");
            exit(1);
        }
    };
    // Warnings (lvpoll's stderr among them) are always logged, as in C.
    config.log.stderr_mask |= 1 << (LogType::Warn as u32);

    let binary = PathBuf::from(
        m.opt_str("B")
            .unwrap_or_else(|| common::paths::LVM_BINARY.to_owned()),
    );
    if nix::unistd::access(&binary, nix::unistd::AccessFlags::X_OK).is_err() {
        eprintln!(
            "E: LVMPOLLD: Execute access rights denied on {}",
            binary.display()
        );
        exit(1);
    }

    let handler = Arc::new(Polld::with_child_watcher(binary));
    if let Err(e) = daemon::run(config, handler) {
        eprintln!("lvmpolld: {e}");
        exit(e.exit_code());
    }
}
