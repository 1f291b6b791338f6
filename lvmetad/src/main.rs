//! lvmetad: parse the command line as lvm2 2.02.187 does and run the common server.
#![forbid(unsafe_code)]

use common::daemon::cli::{add_common_options, server_config, DaemonSpec};
use common::paths;
use std::sync::Arc;

/// The lvm2 release whose protocol we speak (`-V`).
const LVM_VERSION: &str = "2.02.187(2) (2020-03-24)";

fn usage(prog: &str) -> String {
    format!(
        "Usage:\n\
         {prog} [-V] [-h] [-f] [-l level[,level ...]] [-s path] [-t secs]\n\n\
         \x20  -V       Show version of lvmetad\n\
         \x20  -h       Show this help information\n\
         \x20  -f       Don't fork, run in the foreground\n\
         \x20  -l       Logging message levels (all,fatal,error,warn,info,wire,debug)\n\
         \x20  -p       Set path to the pidfile\n\
         \x20  -s       Set path to the socket to listen on\n\
         \x20  -t       Time to wait in seconds before shutdown on idle (missing or 0 = infinite)\n\
         \x20  --root-only  Refuse clients that are not root\n\
         \x20  --no-verify  Serve the cache without checking it against the disks (C's behaviour)\n\n"
    )
}

fn main() {
    // before any thread starts (glibc only; see its doc for musl)
    common::daemon::tune_allocator();
    let args: Vec<String> = std::env::args().collect();
    let prog = args.first().map_or("lvmetad", String::as_str).to_owned();
    let mut opts = getopts::Options::new();
    add_common_options(&mut opts);
    opts.optflag("?", "", "show this help on stderr");
    opts.optflag(
        "",
        "no-verify",
        "serve the cache without checking it against the disks",
    );
    let m = match opts.parse(&args[1..]) {
        Ok(m) => m,
        Err(e) => {
            // C's getopt prints its complaint, then usage on stderr, and exits 0.
            eprintln!("{prog}: {e}");
            eprint!("{}", usage(&prog));
            std::process::exit(0);
        }
    };
    if m.opt_present("h") {
        print!("{}", usage(&prog));
        std::process::exit(0);
    }
    if m.opt_present("?") {
        eprint!("{}", usage(&prog));
        std::process::exit(0);
    }
    if m.opt_present("V") {
        println!("lvmetad version: {LVM_VERSION}");
        std::process::exit(1);
    }
    let spec = DaemonSpec {
        name: "lvmetad",
        protocol: lvmetad::PROTOCOL,
        protocol_version: lvmetad::PROTOCOL_VERSION,
        socket_env: "LVM_LVMETAD_SOCKET",
        default_socket: paths::default_socket("lvmetad"),
        pidfile_env: "LVM_LVMETAD_PIDFILE",
        default_pidfile: paths::default_pidfile("lvmetad"),
    };
    let config = match server_config(&spec, &m) {
        Ok(c) => c,
        Err(_) => {
            eprintln!("Invalid value of timeout parameter.");
            std::process::exit(1);
        }
    };
    let daemon = if m.opt_present("no-verify") {
        lvmetad::Lvmetad::new()
    } else {
        lvmetad::Lvmetad::verifying()
    };
    if let Err(e) = common::daemon::run(config, Arc::new(daemon)) {
        eprintln!("lvmetad: {e}");
        std::process::exit(e.exit_code());
    }
}
