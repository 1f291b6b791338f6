//! A tiny client on `common::daemon::Client`, for shell tests (also against C daemons).
//!
//! `testc SOCKET PROTOCOL [VERSION]` connects with the `hello` check and prints `hello OK`.
//! `testc --raw SOCKET [PAYLOAD]` sends PAYLOAD (default: stdin) as one message and prints the
//! reply payload.
//! Errors go to stderr with exit code 1.
#![forbid(unsafe_code)]

use common::daemon::Client;
use std::io::{Read, Write};
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["--raw", socket, rest @ ..] if rest.len() <= 1 => {
            let payload = match rest.first() {
                Some(p) => p.as_bytes().to_vec(),
                None => {
                    let mut v = Vec::new();
                    let _ = std::io::stdin().read_to_end(&mut v);
                    v
                }
            };
            Client::connect_raw(Path::new(socket))
                .and_then(|mut c| c.request_raw(&payload))
                .map(|reply| {
                    let _ = std::io::stdout().write_all(&reply);
                })
        }
        [socket, protocol, rest @ ..] if rest.len() <= 1 => {
            let version = match rest.first().map(|v| v.parse::<i64>()) {
                None => None,
                Some(Ok(v)) => Some(v),
                Some(Err(_)) => {
                    eprintln!("testc: bad version {:?}", rest[0]);
                    std::process::exit(2);
                }
            };
            Client::connect(Path::new(socket), protocol, version).map(|_| println!("hello OK"))
        }
        _ => {
            eprintln!("usage: testc SOCKET PROTOCOL [VERSION] | testc --raw SOCKET [PAYLOAD]");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("testc: {e}");
        std::process::exit(1);
    }
}
