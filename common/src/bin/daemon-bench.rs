//! Round-trip benchmark of a libdaemon server: `hello` requests, which every libdaemon server
//! (ours and lvm2's C one) answers in its generic code, so two daemons compare like for like.
//!
//! `daemon-bench SOCKET [REQUESTS] [CLIENTS]`: each of CLIENTS connections (default 1 and 8, one
//! after the other) sends REQUESTS (default 20000) hellos in turn; prints requests per second.
#![forbid(unsafe_code)]

use common::daemon::Client;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn run(socket: &Path, requests: usize, clients: usize) -> Result<f64, String> {
    let t0 = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let socket = socket.to_path_buf();
            std::thread::spawn(move || -> Result<(), String> {
                let mut c = Client::connect_raw(&socket).map_err(|e| e.to_string())?;
                for _ in 0..requests {
                    let r = c
                        .request_raw(b"request = \"hello\"\n")
                        .map_err(|e| e.to_string())?;
                    if !r.starts_with(b"response = \"OK\"") {
                        return Err(format!("bad reply {:?}", String::from_utf8_lossy(&r)));
                    }
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join()
            .map_err(|_| "client thread panicked".to_owned())??;
    }
    Ok((requests * clients) as f64 / t0.elapsed().as_secs_f64())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(socket) = args.first().map(PathBuf::from) else {
        eprintln!("usage: daemon-bench SOCKET [REQUESTS] [CLIENTS]");
        std::process::exit(2);
    };
    let requests = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let clients: Vec<usize> = match args.get(2).and_then(|s| s.parse().ok()) {
        Some(n) => vec![n],
        None => vec![1, 8],
    };
    for n in clients {
        match run(&socket, requests, n) {
            Ok(rate) => println!("{n} client(s) x {requests} hello: {rate:.0} requests/s"),
            Err(e) => {
                eprintln!("daemon-bench: {e}");
                std::process::exit(1);
            }
        }
    }
}
