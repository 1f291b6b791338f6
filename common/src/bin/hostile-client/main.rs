//! hostile-client: a hostile client for the reliability tests (tests/shell/rel-*.sh).
//!
//! ```text
//! hostile-client badinput lvmetad|lvmpolld SOCKET
//!     every bad input of the list below, one connection each; prints a tally, exits 1 on a
//!     violation
//! hostile-client slow SOCKET PROTOCOL N SECS
//!     N clients trickle a request one byte a second for SECS while a normal client times
//!     `hello` round trips
//! ```
//!
//! Bad inputs: framing (truncated, no terminator then disconnect, a 100 MB request, a partial
//! terminator), bytes (invalid UTF-8, NUL, deep nesting, random bytes, garbage, empty), unknown
//! requests, and every field of every request of the daemon mutated to every wrong type (string
//! for int and back, section, array, float), to i64::MAX / i64::MIN / -1 / an overflowing number,
//! to an empty or 1 MB string, or removed.
//!
//! Rules checked after each input: the reply is an error (`response` not `OK`) or the connection
//! is closed, or the reply is `OK` (or lvmpolld's `finished` / `in_progress`: the daemon accepted
//! the request as valid, its lookups are lenient as in C); a second client, connected throughout, is still served; the daemon's `dump` is unchanged
//! after every refused input. After an accepted input that changed the state, lvmetad's state is
//! restored (and checked to equal the baseline), lvmpolld's is re-read once its polls settle.
#![forbid(unsafe_code)]

use common::config::{parse, DupMode};
use common::daemon::framing::frame;
use common::daemon::Client;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::exit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod inputs;

use inputs::{malformed, mutations, populate_requests, valid_requests, Daemon};

/// What came back for one input.
#[derive(Debug)]
enum Outcome {
    /// A reply whose `response` is not `OK` (or that does not parse as a tree: lvmetad's dump).
    Refused(String),
    Accepted,
    Closed,
}

struct Tally {
    inputs: usize,
    refused: usize,
    accepted: usize,
    closed: usize,
    failures: Vec<String>,
}

fn connect(sock: &Path) -> UnixStream {
    let s = UnixStream::connect(sock).unwrap_or_else(|e| {
        eprintln!("hostile-client: connect {}: {e}", sock.display());
        exit(2)
    });
    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(20)));
    s
}

/// Read one reply (up to the terminator) or until EOF. None = closed without a reply.
fn read_reply(s: &mut UnixStream) -> Result<Option<Vec<u8>>, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return Ok(if buf.is_empty() { None } else { Some(buf) }),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.ends_with(b"\n##\n") {
                    buf.truncate(buf.len() - 4);
                    return Ok(Some(buf));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
            Err(e) => return Err(format!("no reply: {e}")),
        }
    }
}

fn classify(reply: Option<Vec<u8>>) -> Outcome {
    let Some(r) = reply else {
        return Outcome::Closed;
    };
    match parse(&r, DupMode::KeepAll) {
        Ok(t) => match t.find_str("response") {
            // lvmpolld's progress_info answers: a finished poll is handed out (and dropped).
            Some("OK" | "finished" | "in_progress") => Outcome::Accepted,
            Some(other) => {
                Outcome::Refused(format!("{other}: {}", t.find_str("reason").unwrap_or("")))
            }
            None => Outcome::Refused(String::from_utf8_lossy(&r[..r.len().min(60)]).into()),
        },
        // lvmetad's dump is raw text, not a tree.
        Err(_) => Outcome::Accepted,
    }
}

/// Send one framed payload on a fresh connection.
fn send_framed(sock: &Path, payload: &[u8]) -> Result<Outcome, String> {
    let mut s = connect(sock);
    if let Err(e) = s.write_all(&frame(payload)) {
        if !matches!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ) {
            return Err(format!("write: {e}"));
        }
    }
    read_reply(&mut s).map(classify)
}

/// Where lvmetad's dump leaves the cache and starts its verification section.
const VERIFICATION_HEADING: &[u8] = b"\n# VERIFICATION";

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

struct Checker {
    d: Daemon,
    sock: PathBuf,
    /// The second client, connected throughout.
    other: Client,
    baseline: Vec<u8>,
    tally: Tally,
}

impl Checker {
    fn dump(&mut self) -> Vec<u8> {
        let req: &[u8] = match self.d {
            Daemon::Lvmetad => b"request=\"dump\"\ntoken=\"skip\"\n",
            Daemon::Lvmpolld => b"request=\"dump\"\n",
        };
        let mut text = self.other.request_raw(req).unwrap_or_else(|e| {
            eprintln!("hostile-client: the other client is no longer served: {e}");
            exit(1)
        });
        // lvmetad's verification section (times, counters) is not cache state: compare the
        // cache part only.
        if let Some(at) = find(&text, VERIFICATION_HEADING) {
            text.truncate(at);
        }
        text
    }

    fn restore(&mut self) {
        match self.d {
            Daemon::Lvmetad => {
                for r in populate_requests() {
                    let reply = self.other.request_raw(r.as_bytes()).unwrap_or_else(|e| {
                        eprintln!("hostile-client: restore: {e}");
                        exit(1)
                    });
                    if !matches!(classify(Some(reply)), Outcome::Accepted) {
                        eprintln!("hostile-client: restore request refused");
                        exit(1);
                    }
                }
            }
            Daemon::Lvmpolld => {
                // Let accepted polls finish and be collected, then take the new state.
                let t0 = Instant::now();
                let mut last = self.dump();
                loop {
                    std::thread::sleep(Duration::from_millis(20));
                    let now = self.dump();
                    let running = String::from_utf8_lossy(&now).contains("polling_finished=0");
                    if (now == last && !running) || t0.elapsed() > Duration::from_secs(10) {
                        break;
                    }
                    last = now;
                }
            }
        }
    }

    /// Record one input's outcome and check the rules.
    fn after(&mut self, what: &str, outcome: Result<Outcome, String>) {
        self.tally.inputs += 1;
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                self.tally.failures.push(format!("{what}: {e}"));
                return;
            }
        };
        let now = self.dump();
        match outcome {
            Outcome::Accepted => {
                self.tally.accepted += 1;
                if now != self.baseline {
                    self.restore();
                    let restored = self.dump();
                    if self.d == Daemon::Lvmetad
                        && sorted_lines(&restored) != sorted_lines(&self.baseline)
                    {
                        self.tally
                            .failures
                            .push(format!("{what}: state not restorable"));
                    }
                    self.baseline = restored;
                }
            }
            o => {
                if matches!(o, Outcome::Closed) {
                    self.tally.closed += 1;
                } else {
                    self.tally.refused += 1;
                }
                if now != self.baseline {
                    self.tally
                        .failures
                        .push(format!("{what}: refused ({o:?}) but the dump changed"));
                    self.restore();
                    self.baseline = self.dump();
                }
            }
        }
    }
}

fn sorted_lines(b: &[u8]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
    v.sort();
    v
}

fn badinput(d: Daemon, sock: PathBuf) -> i32 {
    let (proto, ver) = match d {
        Daemon::Lvmetad => ("lvmetad", 1),
        Daemon::Lvmpolld => ("lvmpolld", 1),
    };
    let other = Client::connect(&sock, proto, Some(ver)).unwrap_or_else(|e| {
        eprintln!("hostile-client: {e}");
        exit(2)
    });
    let mut c = Checker {
        d,
        sock: sock.clone(),
        other,
        baseline: Vec::new(),
        tally: Tally {
            inputs: 0,
            refused: 0,
            accepted: 0,
            closed: 0,
            failures: Vec::new(),
        },
    };
    if d == Daemon::Lvmetad {
        c.restore();
    }
    c.baseline = c.dump();
    let t0 = Instant::now();

    // Framing: truncated, no terminator then disconnect, a partial terminator, held open while
    // the other client is served.
    let valid = valid_requests(d).remove(0);
    for cut in [1, valid.len() / 2, valid.len()] {
        let mut s = connect(&sock);
        let _ = s.write_all(&valid.as_bytes()[..cut]);
        let _ = c.dump(); // served while this one is incomplete
        let _ = s.shutdown(std::net::Shutdown::Write);
        let o = read_reply(&mut s).map(classify);
        c.after(&format!("truncated at {cut}"), o);
    }
    for tail in [&b"\n#"[..], b"\n##", b"\n\n##"] {
        let mut s = connect(&sock);
        let _ = s.write_all(valid.as_bytes());
        let _ = s.write_all(tail);
        drop(s); // disconnect without terminator
        c.after("partial terminator then disconnect", Ok(Outcome::Closed));
    }

    // A 100 MB request (over the 64 MiB cap), written while the other client is served.
    {
        let sock2 = sock.clone();
        let writer = std::thread::spawn(move || {
            let mut s = connect(&sock2);
            let mut r = s.try_clone().expect("clone socket");
            let reader = std::thread::spawn(move || read_reply(&mut r));
            let chunk = vec![b'x'; 1 << 20];
            let _ = s.write_all(b"request=\"dump\"\nx=\"");
            for _ in 0..100 {
                if s.write_all(&chunk).is_err() {
                    break;
                }
            }
            let _ = s.write_all(b"\"\n\n##\n");
            reader.join().expect("reader thread")
        });
        let mut served = 0;
        while !writer.is_finished() {
            let _ = c.dump();
            served += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        let o = writer.join().expect("writer thread").map(classify);
        match &o {
            Ok(Outcome::Refused(why)) if why.contains("too large") => {}
            Ok(Outcome::Closed) => {}
            other => c.tally.failures.push(format!("100 MB request: {other:?}")),
        }
        println!("100 MB request: {o:?}; the other client was served {served} times meanwhile");
        c.after("100 MB request", o);
    }

    let mut list: Vec<(String, Vec<u8>)> = malformed(d)
        .into_iter()
        .enumerate()
        .map(|(i, b)| (format!("malformed #{i}"), b))
        .collect();
    for (i, v) in valid_requests(d).iter().enumerate() {
        // lvmpolld keeps every accepted poll in its dump, so its long strings stay shorter.
        let big = if d == Daemon::Lvmetad { 1 << 20 } else { 4096 };
        for (j, m) in mutations(v, big).into_iter().enumerate() {
            list.push((format!("request #{i} mutation #{j}"), m));
        }
    }
    // Pipelined: a bad request and a valid one in one write.
    list.push((
        "pipelined".into(),
        [&b"garbage {"[..], b"\n##\n", b"request=\"hello\"\n"].concat(),
    ));
    for (what, payload) in list {
        let t = Instant::now();
        let o = send_framed(&sock, &payload);
        c.after(&what, o);
        if t.elapsed() > Duration::from_secs(1) {
            println!("slow input ({:.1} s): {what}", t.elapsed().as_secs_f64());
        }
    }

    let t = &c.tally;
    println!(
        "{} inputs in {:.1} s: {} refused with an error reply, {} closed, {} accepted as valid; \
         the other client was served after every one; {} violations",
        t.inputs,
        t0.elapsed().as_secs_f64(),
        t.refused,
        t.closed,
        t.accepted,
        t.failures.len()
    );
    for f in t.failures.iter().take(20) {
        println!("VIOLATION: {f}");
    }
    let _ = &c.sock;
    i32::from(!t.failures.is_empty())
}

/// N slow clients trickle a request one byte a second for SECS seconds while a normal client
/// times hello round trips. Prints the latencies; exit 1 if one exceeds 500 ms.
fn slow(sock: PathBuf, proto: &str, n: usize, secs: u64) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    let mut slow = Vec::new();
    for _ in 0..n {
        let sock = sock.clone();
        let stop = stop.clone();
        slow.push(std::thread::spawn(move || {
            let mut s = connect(&sock);
            let msg = b"request=\"hello\"\n";
            let mut sent = 0usize;
            while !stop.load(Ordering::Relaxed) {
                if s.write_all(&msg[sent % msg.len()..sent % msg.len() + 1])
                    .is_err()
                {
                    return false;
                }
                sent += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
            true
        }));
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut c = match Client::connect(&sock, proto, None) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hostile-client: {e}");
            return 1;
        }
    };
    let t0 = Instant::now();
    let mut lat = Vec::new();
    while t0.elapsed() < Duration::from_secs(secs) {
        let t = Instant::now();
        if let Err(e) = c.request_raw(b"request=\"hello\"\n") {
            eprintln!("hostile-client: normal client failed: {e}");
            return 1;
        }
        lat.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let alive = slow
        .into_iter()
        .map(|h| h.join().unwrap_or(false))
        .filter(|&ok| ok)
        .count();
    lat.sort();
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    let max = lat.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    println!(
        "{n} slow clients (1 byte/s, {alive} still connected at the end) for {secs} s: {} requests \
         of a normal client, median {:.2} ms, p99 {:.2} ms, max {max:.2} ms",
        lat.len(),
        p(0.5),
        p(0.99)
    );
    i32::from(max > 500.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let code = match a.get(1..) {
        Some(["badinput", "lvmetad", s]) => badinput(Daemon::Lvmetad, s.into()),
        Some(["badinput", "lvmpolld", s]) => badinput(Daemon::Lvmpolld, s.into()),
        Some(["slow", s, proto, n, secs]) => match (n.parse(), secs.parse()) {
            (Ok(n), Ok(secs)) => slow(s.into(), proto, n, secs),
            _ => 2,
        },
        _ => {
            eprintln!(
                "usage: hostile-client badinput lvmetad|lvmpolld SOCKET\n       hostile-client slow SOCKET PROTOCOL N SECS"
            );
            2
        }
    };
    exit(code)
}
