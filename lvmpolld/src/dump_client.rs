//! `lvmpolld --dump`: ask a running lvmpolld for its state and print it, each line prefixed
//! with two spaces, as C's client does.
#![forbid(unsafe_code)]

use crate::{PROTOCOL, PROTOCOL_VERSION};
use common::daemon::Client;
use std::path::Path;

/// Print the dump of the daemon on `socket`; the process exit code (0, or 1 with the reason
/// on stderr).
pub fn print_dump(socket: &Path) -> i32 {
    let mut c = match Client::connect(socket, PROTOCOL, Some(PROTOCOL_VERSION)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Failed to establish connection with lvmpolld: {e}");
            return 1;
        }
    };
    match c.request_raw(b"request=\"dump\"\n") {
        Ok(reply) => {
            let mut text = String::new();
            for line in String::from_utf8_lossy(&reply).split('\n') {
                text.push_str("  ");
                text.push_str(line);
                text.push('\n');
            }
            common::tool_output::emit("lvmpolld", &text);
            0
        }
        Err(e) => {
            eprintln!("Failed to send a request or receive response: {e}");
            1
        }
    }
}
