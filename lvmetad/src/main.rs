//! lvmetad: the command line (`lvmetad::options`) and the common server; nothing else.
#![forbid(unsafe_code)]

use std::sync::Arc;

fn main() {
    // before any thread starts (glibc only; see its doc for musl)
    common::daemon::tune_allocator();
    let args: Vec<String> = std::env::args().collect();
    let o = lvmetad::options::parse(&args).or_exit();
    let daemon = if o.verify {
        lvmetad::Lvmetad::verifying()
    } else {
        lvmetad::Lvmetad::new()
    };
    if let Err(e) = common::daemon::run(o.config, Arc::new(daemon)) {
        eprintln!("lvmetad: {e}");
        std::process::exit(e.exit_code());
    }
}
