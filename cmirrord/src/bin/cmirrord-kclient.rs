//! cmirrord-kclient: plays the kernel's dm-log-userspace against a cmirrord started with
//! `CMIRRORD_KERNEL_SOCKET=SOCK`. Each argument (or stdin line when there are none) is one
//! command; one output line per command. Exit 1 at the first command that cannot complete.
//!
//!   cmirrord-kclient SOCK "ctr UUID LUID 8192 clustered-core 1024" "resume UUID LUID" \
//!       "mark UUID LUID 3 4" "clear UUID LUID 3" "flush UUID LUID" "sync_count UUID LUID"
//!
//! Commands: ctr dtr presuspend postsuspend resume flush mark clear set_sync region_size
//! sync_count is_clean in_sync work remote status_info status_table resync N, cycle N R, sleepMS.
#![forbid(unsafe_code)]

use cmirrord::kclient::KernelClient;
use std::io::BufRead;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args[0] == "-h" || args[0] == "--help" {
        eprintln!("usage: cmirrord-kclient SOCKET [COMMAND...]   (commands from stdin if none)");
        std::process::exit(2);
    }
    let mut c = match KernelClient::connect(std::path::Path::new(&args[0])) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cmirrord-kclient: {e}");
            std::process::exit(1);
        }
    };
    let lines: Box<dyn Iterator<Item = String>> = if args.len() > 1 {
        Box::new(args.into_iter().skip(1))
    } else {
        Box::new(
            std::io::stdin()
                .lock()
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
                .into_iter(),
        )
    };
    for l in lines {
        if l.trim().is_empty() || l.starts_with('#') {
            continue;
        }
        match c.command(&l) {
            Ok(out) => println!("{out}"),
            Err(e) => {
                eprintln!("cmirrord-kclient: {l}: {e}");
                std::process::exit(1);
            }
        }
    }
}
