//! lvmpolld: the command line (`lvmpolld::options`), then the daemon or the `--dump` client.
#![forbid(unsafe_code)]

use lvmpolld::options::{self, Options};
use lvmpolld::Polld;
use std::process::exit;
use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match options::parse(&args).or_exit() {
        Options::Dump { socket } => exit(lvmpolld::dump_client::print_dump(&socket)),
        Options::Serve { config, binary } => {
            let handler = Arc::new(Polld::with_child_watcher(binary));
            if let Err(e) = common::daemon::run(config, handler) {
                eprintln!("lvmpolld: {e}");
                exit(e.exit_code());
            }
        }
    }
}
