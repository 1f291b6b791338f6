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

use common::config::{parse, write_tree, Body, DupMode, Node, Scalar, Value};
use common::daemon::framing::frame;
use common::daemon::Client;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::exit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SKIP: &str = "token=\"skip\"\npid=4242\ncmd=\"hostile\"\nupdate_timeout=10\n";

#[derive(Clone, Copy, PartialEq)]
enum Daemon {
    Lvmetad,
    Lvmpolld,
}

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

fn pvid(n: usize) -> String {
    format!("HOSTIL-{n:04}-0000-0000-0000-0000-000000")
}
fn vgid(n: usize) -> String {
    format!("HOSTVG-{n:04}-0000-0000-0000-0000-000000")
}

fn pvmeta(pv: usize) -> String {
    format!(
        "pvmeta {{\n\tdevice={}\n\tdev_size=67108864\n\tformat=\"lvm2\"\n\tlabel_sector=1\n\tid=\"{}\"\n\
         \text_version=2\n\text_flags=1\n\tmda0 {{\n\t\tignore=0\n\t\tstart=4096\n\t\tsize=1044480\n\
         \t\tfree_sectors=1016\n\t}}\n\tda0 {{\n\t\toffset=1048576\n\t\tsize=0\n\t}}\n}}\n",
        2048 + pv,
        pvid(pv)
    )
}

fn metadata(vg: usize) -> String {
    let pvs: String = (0..2)
        .map(|i| {
            let pv = vg * 2 + i;
            format!(
                "\t\tpv{i} {{\n\t\t\tid=\"{}\"\n\t\t\tdevice=\"/dev/loop{pv}\"\n\t\t\tstatus=[\"ALLOCATABLE\"]\n\
                 \t\t\tflags=[]\n\t\t\tdev_size=131072\n\t\t\tpe_start=2048\n\t\t\tpe_count=15\n\t\t}}\n",
                pvid(pv)
            )
        })
        .collect();
    format!(
        "metadata {{\n\tid=\"{}\"\n\tseqno=2\n\tformat=\"lvm2\"\n\tstatus=[\"RESIZEABLE\",\"READ\",\"WRITE\"]\n\
         \tflags=[]\n\textent_size=8192\n\tmax_lv=0\n\tmax_pv=0\n\tmetadata_copies=0\n\
         \tphysical_volumes {{\n{pvs}\t}}\n}}\n",
        vgid(vg)
    )
}

/// The population lvmetad holds during the test: 2 VGs of 2 PVs each, and 1 orphan PV.
fn populate_requests() -> Vec<String> {
    let mut v = vec![format!("request=\"pv_clear_all\"\n{SKIP}")];
    for vg in 0..2 {
        for i in 0..2 {
            v.push(format!(
                "request=\"pv_found\"\n{SKIP}{}vgname=\"hvg{vg}\"\n{}",
                pvmeta(vg * 2 + i),
                metadata(vg)
            ));
        }
    }
    v.push(format!("request=\"pv_found\"\n{SKIP}{}", pvmeta(4)));
    v.push(format!(
        "request=\"set_global_info\"\n{SKIP}global_invalid=0\nglobal_disable=0\n"
    ));
    v
}

/// One valid request of each kind (the baselines the field mutations start from).
fn valid_requests(d: Daemon) -> Vec<String> {
    match d {
        Daemon::Lvmetad => {
            let r = |s: &str| format!("request=\"{s}\"\n{SKIP}");
            vec![
                r("get_global_info"),
                format!(
                    "{}global_invalid=0\nglobal_disable=0\ndisable_reason=\"DIRECT\"\n",
                    r("set_global_info")
                ),
                r("token_update"),
                r("pv_clear_all"),
                format!(
                    "{}{}vgname=\"hvg0\"\n{}",
                    r("pv_found"),
                    pvmeta(0),
                    metadata(0)
                ),
                format!("{}uuid=\"{}\"\n", r("pv_gone"), pvid(4)),
                format!("{}device=2049\n", r("pv_gone")),
                format!("{}uuid=\"{}\"\n", r("pv_lookup"), pvid(1)),
                format!("{}device=2050\n", r("pv_lookup")),
                r("pv_list"),
                r("vg_list"),
                format!("{}uuid=\"{}\"\nname=\"hvg1\"\n", r("vg_lookup"), vgid(1)),
                format!("{}vgname=\"hvg1\"\n{}", r("vg_update"), metadata(1)),
                format!("{}uuid=\"{}\"\n", r("vg_remove"), vgid(0)),
                format!("{}vgid=\"{}\"\n", r("vg_clear_outdated_pvs"), vgid(1)),
                format!(
                    "{}uuid=\"{}\"\nname=\"hvg0\"\nversion=7\n",
                    r("set_vg_info"),
                    vgid(0)
                ),
                r("dump"),
            ]
        }
        Daemon::Lvmpolld => {
            let poll = |kind: &str| {
                format!(
                    "request=\"{kind}\"\nlvid=\"HOSTILELVID0000000000000000000000\"\nvgname=\"hvg\"\n\
                     lvname=\"lv-0-0\"\ninterval=\"1\"\nabort=0\nhandle_missing_pvs=0\nsysdir=\"/etc/lvm\"\n"
                )
            };
            vec![
                poll("pvmove"),
                poll("convert"),
                poll("merge"),
                poll("merge_thin"),
                "request=\"progress_info\"\nlvid=\"HOSTILELVID0000000000000000000000\"\nsysdir=\"/etc/lvm\"\nabort=0\n".into(),
                "request=\"dump\"\n".into(),
            ]
        }
    }
}

/// Every path (as child indices) of every node in a tree.
fn node_paths(nodes: &[Node], prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    for (i, n) in nodes.iter().enumerate() {
        prefix.push(i);
        out.push(prefix.clone());
        if let Body::Section(kids) = &n.body {
            node_paths(kids, prefix, out);
        }
        prefix.pop();
    }
}

fn node_at<'a>(nodes: &'a mut Vec<Node>, path: &[usize]) -> &'a mut Vec<Node> {
    let mut cur = nodes;
    for &i in &path[..path.len() - 1] {
        cur = match &mut cur[i].body {
            Body::Section(k) => k,
            Body::Value(_) => unreachable!("paths only descend into sections"),
        };
    }
    cur
}

/// The wrong-typed and extreme replacements for one node.
fn replacements(n: &Node, big: &str) -> Vec<Option<Body>> {
    let v = |s: Scalar| Some(Body::Value(Value::Scalar(s)));
    let int = |i: i64| v(Scalar::Int(i));
    let mut r = vec![
        None, // removed
        Some(Body::Section(vec![Node {
            key: "x".into(),
            body: Body::Value(Value::Scalar(Scalar::Int(1))),
        }])),
        Some(Body::Section(vec![])),
        Some(Body::Value(Value::Array(vec![
            Scalar::Int(1),
            Scalar::Str("a".into()),
        ]))),
        Some(Body::Value(Value::Array(vec![]))),
        v(Scalar::Float(1.5)),
    ];
    match &n.body {
        Body::Value(Value::Scalar(Scalar::Int(_))) => {
            r.extend([
                v(Scalar::Str("12".into())),
                v(Scalar::Str("not a number".into())),
                int(i64::MAX),
                int(i64::MIN),
                int(-1),
                int(0),
                int(i64::from(u32::MAX) + 1),
            ]);
        }
        Body::Value(Value::Scalar(Scalar::Str(_))) => {
            r.extend([
                int(1),
                int(-1),
                int(i64::MAX),
                v(Scalar::Str(String::new())),
                v(Scalar::Str(big.to_owned())),
                v(Scalar::Str("\"quoted\" \\ \n\t #x".into())),
            ]);
        }
        _ => r.extend([int(0), int(i64::MIN), v(Scalar::Str("section".into()))]),
    }
    r
}

/// Every field of a valid request mutated to every replacement.
fn mutations(valid: &str, big_len: usize) -> Vec<Vec<u8>> {
    let tree = parse(valid.as_bytes(), DupMode::KeepAll).expect("valid baseline request");
    let big = "B".repeat(big_len);
    let mut paths = Vec::new();
    node_paths(&tree.nodes, &mut Vec::new(), &mut paths);
    let mut out = Vec::new();
    for p in paths {
        let mut probe = tree.nodes.clone();
        let original = node_at(&mut probe, &p)[p[p.len() - 1]].clone();
        for rep in replacements(&original, &big) {
            let mut nodes = tree.nodes.clone();
            let parent = node_at(&mut nodes, &p);
            let i = p[p.len() - 1];
            match rep {
                None => {
                    parent.remove(i);
                }
                Some(body) => parent[i].body = body,
            }
            out.push(write_tree(&nodes).into_bytes());
        }
    }
    // Plus an overflowing literal for every int field (the parser refuses it).
    for line in valid.lines() {
        if let Some((k, v)) = line.split_once('=') {
            if v.parse::<i64>().is_ok() {
                let bad = valid.replace(line, &format!("{k}=99999999999999999999999"));
                out.push(bad.into_bytes());
            }
        }
    }
    out
}

/// Inputs that are not well-formed requests at all (sent framed unless noted by the caller).
fn malformed(d: Daemon) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"this is { garbage".to_vec(),
        b"request=\"pv_list\"\ntoken=\"skip\"\n}}}}".to_vec(),
        b"request=\"\xff\xfe\"\ntoken=\"skip\"\n".to_vec(),
        b"request=\"pv_list\"\ntoken=\"sk\xc3\x28ip\"\n".to_vec(),
        b"\xffrequest=\"dump\"\n".to_vec(),
        b"request=\"pv_list\0\"\ntoken=\"skip\"\n".to_vec(),
        b"request=\"pv_list\"\0token=\"skip\"\n".to_vec(),
        b"\0\0\0\0".to_vec(),
        b"request=\"dump\nunterminated string".to_vec(),
        b"request=[\"dump\",\"pv_list\"]\ntoken=\"skip\"\n".to_vec(),
        b"request { x=1 }\ntoken=\"skip\"\n".to_vec(),
        b"request=5\ntoken=\"skip\"\n".to_vec(),
        b"= = = [ [ [ ,,,".to_vec(),
        b"a/b/c/d/e/f/g/h=1\n".to_vec(),
        format!("{}=1\n", "k/".repeat(200)).into_bytes(),
        format!("{}1{}", "a{".repeat(100_000), "}".repeat(100_000)).into_bytes(),
        format!(
            "request=\"pv_list\"\ntoken=\"skip\"\n{}",
            "[".repeat(100_000)
        )
        .into_bytes(),
        format!("x={}\n", "1".repeat(10_000)).into_bytes(),
        format!("x=[{}1]\n", "1,".repeat(200_000)).into_bytes(),
    ];
    for name in [
        "NONE",
        "",
        "hello2",
        "HELLO",
        "dump ",
        "pv_list\n",
        "../../etc/passwd",
        "%s%s%s%n",
        "request",
    ] {
        v.push(format!("request=\"{name}\"\n{SKIP}").into_bytes());
    }
    v.push(format!("request=\"{}\"\n{SKIP}", "u".repeat(1 << 20)).into_bytes());
    if d == Daemon::Lvmpolld {
        for iv in [
            "-1",
            "4294967296",
            "99999999999999999999",
            " +7x",
            "",
            "0x10",
        ] {
            v.push(
                format!(
                    "request=\"pvmove\"\nlvid=\"HOSTILELVID0000000000000000000000\"\nvgname=\"hvg\"\n\
                     lvname=\"lv-0-0\"\ninterval=\"{iv}\"\n"
                )
                .into_bytes(),
            );
        }
    }
    // Random bytes from a fixed-seed generator (xorshift).
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in [1usize, 7, 64, 513, 4096, 65_537] {
        let bytes = (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 24) as u8
            })
            .collect();
        v.push(bytes);
    }
    v
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
