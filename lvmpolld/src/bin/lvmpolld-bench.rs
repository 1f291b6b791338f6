//! Load driver and benchmark for lvmpolld (not a test: it prints figures).
//!
//! `lvmpolld-bench load SOCKET [COUNT] [MS]`: start COUNT polls of distinct LVs on a running
//! daemon (whose `-B` is tests/data/lvmpolld/fake-lvm; each command runs MS ms), query progress
//! of all of them until every one has finished, and check each ended with retcode 0, was handed
//! out once, and that the stores are empty afterwards. Exit status 0 = all good.
//!
//! `lvmpolld-bench compare FAKE_LVM C_LVMPOLLD RUST_LVMPOLLD [COUNT]`: start both daemons side by
//! side with the same fake lvm, COUNT long polls each, then measure in interleaved rounds:
//! progress_info and dump latency, time from poll-init to the command's first progress output,
//! and RSS. Prints a table.
#![forbid(unsafe_code)]
#![allow(clippy::needless_range_loop)] // index loops over parallel per-LV arrays read best

use common::daemon::Client;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const LVID: &str = "BENCHVGxxxxxxxxxxxxxxxxxxxxxxxxxLV";

fn lvid(i: usize) -> String {
    format!("{LVID}{i:030}")
}

fn poll_init(i: usize, ms: u64) -> String {
    format!(
        "request = \"pvmove\"\nlvid = \"{}\"\nvgname = \"vg\"\nlvname = \"lv{i}-{ms}-0\"\ninterval = \"1\"\n",
        lvid(i)
    )
}

fn progress(i: usize) -> String {
    format!("request = \"progress_info\"\nlvid = \"{}\"\n", lvid(i))
}

fn send(c: &mut Client, payload: &str) -> String {
    match c.request_raw(payload.as_bytes()) {
        Ok(r) => String::from_utf8_lossy(&r).into_owned(),
        Err(e) => {
            eprintln!("request failed: {e}");
            std::process::exit(2);
        }
    }
}

fn connect(socket: &Path) -> Client {
    let t = Instant::now();
    loop {
        match Client::connect(socket, "lvmpolld", Some(1)) {
            Ok(c) => return c,
            Err(e) if t.elapsed() > Duration::from_secs(10) => {
                eprintln!("cannot connect to {}: {e}", socket.display());
                std::process::exit(2);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn status_line(reply: &str) -> &str {
    reply.lines().next().unwrap_or("")
}

fn load(args: &[String]) -> i32 {
    let Some(socket) = args.first().map(PathBuf::from) else {
        eprintln!("usage: lvmpolld-bench load SOCKET [COUNT] [MS]");
        return 2;
    };
    let count: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let ms: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3000);
    let mut c = connect(&socket);
    let t0 = Instant::now();
    for i in 0..count {
        let r = send(&mut c, &poll_init(i, ms));
        if status_line(&r) != "response = \"OK\"" {
            eprintln!("poll-init {i}: {r}");
            return 1;
        }
    }
    println!("{count} polls started in {:?}", t0.elapsed());
    let mut done = vec![false; count];
    let (mut queries, mut in_progress) = (0usize, 0usize);
    let mut bad = 0;
    while done.iter().any(|d| !d) {
        if t0.elapsed() > Duration::from_millis(ms) + Duration::from_secs(60) {
            eprintln!("not all polls finished in time");
            return 1;
        }
        for i in 0..count {
            if done[i] {
                continue;
            }
            let r = send(&mut c, &progress(i));
            queries += 1;
            match status_line(&r) {
                "response = \"in_progress\"" => in_progress += 1,
                "response = \"finished\"" => {
                    done[i] = true;
                    if r != "response = \"finished\"\nreason = \"retcode\"\nvalue = 0\n" {
                        eprintln!("poll {i} ended badly: {r:?}");
                        bad += 1;
                    }
                    let again = send(&mut c, &progress(i));
                    if status_line(&again) != "response = \"not_found\"" {
                        eprintln!("poll {i}: result handed out twice: {again:?}");
                        bad += 1;
                    }
                }
                other => {
                    eprintln!("poll {i}: unexpected {other}");
                    return 1;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let dump = send(&mut c, "request = \"dump\"\n");
    if dump.contains("lvid=") {
        eprintln!("entries left after collecting all results:\n{dump}");
        bad += 1;
    }
    println!(
        "all {count} finished in {:?}; {queries} progress_info queries, {in_progress} in_progress",
        t0.elapsed()
    );
    i32::from(bad > 0)
}

struct Daemon {
    name: &'static str,
    child: Child,
    socket: PathBuf,
    calls: PathBuf,
}

impl Daemon {
    fn start(name: &'static str, bin: &str, fake: &str, dir: &Path) -> Daemon {
        let socket = dir.join(format!("{name}.socket"));
        let calls = dir.join(format!("{name}.calls"));
        let child = Command::new(bin)
            .args(["-f", "-s"])
            .arg(&socket)
            .arg("-p")
            .arg(dir.join(format!("{name}.pid")))
            .args(["-B", fake])
            .env("FAKE_LVM_LOG", &calls)
            .env("FAKE_LVM_STEP_MS", "5000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                eprintln!("cannot start {bin}: {e}");
                std::process::exit(2)
            });
        Daemon {
            name,
            child,
            socket,
            calls,
        }
    }

    fn status_kib(&self, key: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    fn stop(mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Start times (ns) the fake lvm wrote, by LV index.
fn first_progress(calls: &Path, count: usize) -> Vec<Option<u128>> {
    let mut out = vec![None; count];
    let Ok(f) = std::fs::File::open(calls) else {
        return out;
    };
    for line in BufReader::new(f).lines().map_while(Result::ok) {
        let start = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("start="))
            .and_then(|v| v.parse::<u128>().ok());
        let idx = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("vg/lv"))
            .and_then(|v| v.split('-').next())
            .and_then(|v| v.parse::<usize>().ok());
        if let (Some(s), Some(i)) = (start, idx) {
            if i < count {
                out[i] = Some(s);
            }
        }
    }
    out
}

#[derive(Default)]
struct Figures {
    init_ms: Vec<f64>,
    first_ms: Vec<f64>,
    progress_us: Vec<f64>,
    dump_us: Vec<f64>,
    dump_bytes: usize,
    rss_kib: u64,
    hwm_kib: u64,
    threads: usize,
}

fn compare(args: &[String]) -> i32 {
    if args.len() < 3 {
        eprintln!("usage: lvmpolld-bench compare FAKE_LVM C_LVMPOLLD RUST_LVMPOLLD [COUNT]");
        return 2;
    }
    let count: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(200);
    let dir = std::env::temp_dir().join(format!("lvmpolld-bench.{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let daemons = [
        Daemon::start("C", &args[1], &args[0], &dir),
        Daemon::start("Rust", &args[2], &args[0], &dir),
    ];
    let mut clients: Vec<Client> = daemons.iter().map(|d| connect(&d.socket)).collect();
    let mut figs: Vec<Figures> = (0..2).map(|_| Figures::default()).collect();
    let mut sent_ns = vec![vec![0u128; count]; 2];
    // Start the polls alternately so both daemons see the same machine load.
    for i in 0..count {
        for k in 0..2 {
            sent_ns[k][i] = now_ns();
            let t = Instant::now();
            let r = send(&mut clients[k], &poll_init(i, 120_000));
            figs[k].init_ms.push(t.elapsed().as_secs_f64() * 1e3);
            if status_line(&r) != "response = \"OK\"" {
                eprintln!("{}: poll-init {i}: {r}", daemons[k].name);
                return 1;
            }
        }
    }
    std::thread::sleep(Duration::from_secs(3));
    for (k, d) in daemons.iter().enumerate() {
        let starts = first_progress(&d.calls, count);
        for (i, s) in starts.iter().enumerate() {
            if let Some(s) = s {
                figs[k]
                    .first_ms
                    .push((*s as f64 - sent_ns[k][i] as f64) / 1e6);
            }
        }
        figs[k].rss_kib = d.status_kib("VmRSS:");
        figs[k].threads = d.threads();
    }
    for round in 0..40 {
        for k in 0..2 {
            for j in 0..100 {
                let i = (round * 100 + j) % count;
                let t = Instant::now();
                let r = send(&mut clients[k], &progress(i));
                figs[k].progress_us.push(t.elapsed().as_secs_f64() * 1e6);
                if status_line(&r) != "response = \"in_progress\"" {
                    eprintln!("{}: progress {i}: {r}", daemons[k].name);
                    return 1;
                }
            }
            for _ in 0..10 {
                let t = Instant::now();
                let r = send(&mut clients[k], "request = \"dump\"\n");
                figs[k].dump_us.push(t.elapsed().as_secs_f64() * 1e6);
                figs[k].dump_bytes = r.len();
            }
        }
    }
    for (k, d) in daemons.iter().enumerate() {
        figs[k].hwm_kib = d.status_kib("VmHWM:");
    }
    drop(clients);
    for d in daemons {
        d.stop();
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!("lvmpolld-bench: {count} running polls per daemon, same fake lvm, interleaved rounds");
    println!("| figure | C lvmpolld | Rust lvmpolld | Rust/C |");
    println!("|---|---|---|---|");
    let row = |name: &str, c: f64, r: f64, unit: &str| {
        let ratio = if c > 0.0 { r / c } else { 0.0 };
        println!("| {name} | {c:.1} {unit} | {r:.1} {unit} | {ratio:.2} |");
    };
    let (c, r) = figs.split_at_mut(1);
    let (c, r) = (&mut c[0], &mut r[0]);
    row(
        "poll-init median",
        pct(&mut c.init_ms, 0.5) * 1e3,
        pct(&mut r.init_ms, 0.5) * 1e3,
        "µs",
    );
    row(
        "poll-init p99",
        pct(&mut c.init_ms, 0.99) * 1e3,
        pct(&mut r.init_ms, 0.99) * 1e3,
        "µs",
    );
    row(
        "request → first progress, median",
        pct(&mut c.first_ms, 0.5),
        pct(&mut r.first_ms, 0.5),
        "ms",
    );
    row(
        "request → first progress, p99",
        pct(&mut c.first_ms, 0.99),
        pct(&mut r.first_ms, 0.99),
        "ms",
    );
    row(
        "progress_info median",
        pct(&mut c.progress_us, 0.5),
        pct(&mut r.progress_us, 0.5),
        "µs",
    );
    row(
        "progress_info p99",
        pct(&mut c.progress_us, 0.99),
        pct(&mut r.progress_us, 0.99),
        "µs",
    );
    row(
        "dump median",
        pct(&mut c.dump_us, 0.5),
        pct(&mut r.dump_us, 0.5),
        "µs",
    );
    row(
        "dump p99",
        pct(&mut c.dump_us, 0.99),
        pct(&mut r.dump_us, 0.99),
        "µs",
    );
    row("dump size", c.dump_bytes as f64, r.dump_bytes as f64, "B");
    row(
        "RSS with polls running",
        c.rss_kib as f64,
        r.rss_kib as f64,
        "KiB",
    );
    row(
        "peak RSS (VmHWM)",
        c.hwm_kib as f64,
        r.hwm_kib as f64,
        "KiB",
    );
    row("threads", c.threads as f64, r.threads as f64, "");
    println!(
        "(first progress: {} of {count} C and {} of {count} Rust commands reported)",
        c.first_ms.len(),
        r.first_ms.len()
    );
    0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("load") => load(&args[1..]),
        Some("compare") => compare(&args[1..]),
        _ => {
            eprintln!(
                "usage: lvmpolld-bench load SOCKET [COUNT] [MS]\n       lvmpolld-bench compare FAKE_LVM C_LVMPOLLD RUST_LVMPOLLD [COUNT]"
            );
            2
        }
    };
    std::process::exit(code);
}
