//! lvmetad-bench: load generator and benchmark for lvmetad (a program, never a timed test).
//!
//! ```text
//! lvmetad-bench [--socket PATH] bench [PVS VGS]...   populate, then time vg_lookup, pv_list,
//!                                                    vg_list, pv_lookup at 1 and 8 clients
//! lvmetad-bench --socket PATH populate PVS VGS        fill the cache like `pvscan --cache`
//! lvmetad-bench --socket PATH check PVS VGS           every vg_lookup / pv_lookup is right
//! lvmetad-bench --socket PATH dumps CLIENTS SECS      concurrent dump clients
//! lvmetad-bench --socket PATH mixed CLIENTS SECS PVS VGS   mixed reads and idempotent writes
//! lvmetad-bench --socket PATH pv_lists CLIENTS SECS   concurrent pv_list clients; the daemon's
//!                                                    RSS and peak RSS (VmHWM) after
//! lvmetad-bench disks PVS VGS                        (root) daemon CPU per request with disk
//!                                                    verification on and off, real loop PVs
//! lvmetad-bench scan N...                            (root) the full scan into lvmetad on N
//!                                                    loop PVs: lvmetad-scan --cache against
//!                                                    lvm pvs and (LVM202=path) lvm 2.02's
//!                                                    pvscan --cache, with the split
//! ```
//! Without `--socket` it starts the `lvmetad` binary found next to itself (or `$LVMETAD`) in a
//! temp dir.
//! Each VG gets PVS/VGS PVs and 2 LVs; each PV has one mda, like `pvcreate` defaults.
#![forbid(unsafe_code)]

mod disks;
mod scan;

use common::config::{parse, DupMode};
use common::daemon::Client;
use std::path::{Path, PathBuf};
use std::process::{exit, Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "filter:0";

fn uuid(kind: char, n: usize) -> String {
    // 32 characters in lvm's 6-4-4-4-4-4-6 layout.
    let raw = format!("{kind}{n:0>31}");
    let b = raw.as_bytes();
    let s = |a: usize, z: usize| String::from_utf8_lossy(&b[a..z]).into_owned();
    format!(
        "{}-{}-{}-{}-{}-{}-{}",
        s(0, 6),
        s(6, 10),
        s(10, 14),
        s(14, 18),
        s(18, 22),
        s(22, 26),
        s(26, 32)
    )
}

fn envelope(request: &str) -> String {
    format!("request=\"{request}\"\ntoken=\"{TOKEN}\"\nupdate_timeout=10\npid=1\ncmd=\"bench\"\n")
}

fn pvmeta(pv: usize) -> String {
    pvmeta_on(pv, pv as u64 + 4096)
}

/// The pvmeta of PV `pv` at device number `devno`.
fn pvmeta_on(pv: usize, devno: u64) -> String {
    format!(
        "pvmeta {{\n\tdevice={}\n\tdev_size=67108864\n\tformat=\"lvm2\"\n\tlabel_sector=1\n\
         \tid=\"{}\"\n\text_version=2\n\text_flags=1\n\tmda0 {{\n\t\tignore=0\n\t\tstart=4096\n\
         \t\tsize=1044480\n\t\tfree_sectors=1016\n\t}}\n\tda0 {{\n\t\toffset=1048576\n\t\tsize=0\n\t}}\n}}\n",
        devno,
        uuid('P', pv)
    )
}

fn metadata(vg: usize, per_vg: usize) -> String {
    let mut m = format!(
        "metadata {{\n\tid=\"{}\"\n\tseqno=3\n\tformat=\"lvm2\"\n\tstatus=[\"RESIZEABLE\",\"READ\",\"WRITE\"]\n\
         \tflags=[]\n\textent_size=8192\n\tmax_lv=0\n\tmax_pv=0\n\tmetadata_copies=0\n\tphysical_volumes {{\n",
        uuid('V', vg)
    );
    for i in 0..per_vg {
        m.push_str(&format!(
            "\t\tpv{i} {{\n\t\t\tid=\"{}\"\n\t\t\tdevice=\"/dev/loop{}\"\n\t\t\tstatus=[\"ALLOCATABLE\"]\n\
             \t\t\tflags=[]\n\t\t\tdev_size=131072\n\t\t\tpe_start=2048\n\t\t\tpe_count=15\n\t\t}}\n",
            uuid('P', vg * per_vg + i),
            vg * per_vg + i
        ));
    }
    m.push_str("\t}\n\tlogical_volumes {\n");
    for lv in 0..2 {
        m.push_str(&format!(
            "\t\tlv{lv} {{\n\t\t\tid=\"{}\"\n\t\t\tstatus=[\"READ\",\"WRITE\",\"VISIBLE\"]\n\t\t\tflags=[]\n\
             \t\t\tcreation_time=1795320913\n\t\t\tcreation_host=\"bench\"\n\t\t\tsegment_count=1\n\
             \t\t\tsegment1 {{\n\t\t\t\tstart_extent=0\n\t\t\t\textent_count=4\n\t\t\t\ttype=\"striped\"\n\
             \t\t\t\tstripe_count=1\n\t\t\t\tstripes=[\"pv0\",{}]\n\t\t\t}}\n\t\t}}\n",
            uuid('L', vg * 2 + lv),
            lv * 4
        ));
    }
    m.push_str("\t}\n}\n");
    m
}

fn pv_found(pv: usize, per_vg: usize) -> String {
    let vg = pv / per_vg;
    format!(
        "{}{}vgname=\"vg{vg}\"\n{}",
        envelope("pv_found"),
        pvmeta(pv),
        metadata(vg, per_vg)
    )
}

fn connect(socket: &Path) -> Client {
    match Client::connect(socket, "lvmetad", Some(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lvmetad-bench: {e}");
            exit(1);
        }
    }
}

fn ask(c: &mut Client, payload: &str) -> String {
    match c.request_raw(payload.as_bytes()) {
        Ok(r) => String::from_utf8_lossy(&r).into_owned(),
        Err(e) => {
            eprintln!("lvmetad-bench: request failed: {e}");
            exit(1);
        }
    }
}

fn expect_ok(what: &str, reply: &str) {
    if !(reply.starts_with("response = \"OK\"") || reply.starts_with("response=\"OK\"")) {
        eprintln!("lvmetad-bench: {what}: {reply}");
        exit(1);
    }
}

fn populate(socket: &Path, pvs: usize, vgs: usize) -> Duration {
    let per_vg = (pvs / vgs.max(1)).max(1);
    let mut c = connect(socket);
    let t0 = Instant::now();
    let begin = "request=\"token_update\"\ntoken=\"update in progress\"\nupdate_timeout=10\npid=1\ncmd=\"bench\"\n";
    expect_ok("token_update", &ask(&mut c, begin));
    let clear = "request=\"pv_clear_all\"\ntoken=\"update in progress\"\npid=1\ncmd=\"bench\"\n";
    expect_ok("pv_clear_all", &ask(&mut c, clear));
    for pv in 0..pvs {
        let req = pv_found(pv, per_vg).replace(
            &format!("token=\"{TOKEN}\""),
            "token=\"update in progress\"",
        );
        expect_ok("pv_found", &ask(&mut c, &req));
    }
    let end = format!(
        "request=\"token_update\"\ntoken=\"{TOKEN}\"\nupdate_timeout=10\npid=1\ncmd=\"bench\"\n"
    );
    expect_ok("token_update", &ask(&mut c, &end));
    t0.elapsed()
}

fn daemon_pid(socket: &Path) -> Option<u32> {
    let mut c = connect(socket);
    let r = ask(
        &mut c,
        "request=\"get_global_info\"\ntoken=\"skip\"\npid=1\ncmd=\"bench\"\n",
    );
    parse(r.as_bytes(), DupMode::KeepAll)
        .ok()?
        .find_int("daemon_pid")
        .map(|p| p as u32)
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// A `kB` field of /proc/PID/status (0 when unknown).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Check every VG and PV answers as populated; returns the number of problems.
fn check(socket: &Path, pvs: usize, vgs: usize) -> usize {
    let per_vg = (pvs / vgs.max(1)).max(1);
    let mut c = connect(socket);
    let mut bad = 0;
    for vg in 0..vgs {
        let r = ask(
            &mut c,
            &format!("{}name=\"vg{vg}\"\n", envelope("vg_lookup")),
        );
        let ok = parse(r.as_bytes(), DupMode::KeepAll).is_ok_and(|t| {
            t.find_str("response") == Some("OK")
                && t.find_str("metadata/id") == Some(uuid('V', vg).as_str())
                && t.find_int("metadata/seqno") == Some(3)
                && (0..per_vg).all(|i| {
                    t.find_int(&format!("metadata/physical_volumes/pv{i}/device"))
                        == Some((vg * per_vg + i + 4096) as i64)
                })
        }) && !r.contains("MISSING")
            && !r.contains("outdated_pvs");
        if !ok {
            bad += 1;
            if bad < 3 {
                eprintln!("vg{vg} wrong:\n{r}");
            }
        }
    }
    for pv in (0..pvs).step_by(7) {
        let r = ask(
            &mut c,
            &format!("{}uuid=\"{}\"\n", envelope("pv_lookup"), uuid('P', pv)),
        );
        if !r.contains(&format!("vgname=\"vg{}\"", pv / per_vg)) {
            bad += 1;
        }
    }
    bad
}

/// Run `clients` threads sending requests from `make` for `secs`; returns (count, latencies ns).
fn load(
    socket: &Path,
    clients: usize,
    dur: Duration,
    make: Arc<dyn Fn(usize, u64) -> String + Send + Sync>,
    verify: bool,
) -> (u64, Vec<u64>, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..clients)
        .map(|id| {
            let socket = socket.to_owned();
            let stop = stop.clone();
            let errors = errors.clone();
            let make = make.clone();
            std::thread::spawn(move || {
                let mut c = connect(&socket);
                let mut lat = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let req = make(id, i);
                    let t = Instant::now();
                    let r = ask(&mut c, &req);
                    lat.push(t.elapsed().as_nanos() as u64);
                    if verify
                        && !(r.starts_with("response=\"OK\"")
                            || r.starts_with("response = \"OK\"")
                            || r.starts_with("# VG METADATA"))
                    {
                        errors.fetch_add(1, Ordering::Relaxed);
                        eprintln!("error reply to {}: {r}", req.lines().next().unwrap_or(""));
                    }
                    i += 1;
                }
                lat
            })
        })
        .collect();
    std::thread::sleep(dur);
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().unwrap_or_default());
    }
    all.sort_unstable();
    (all.len() as u64, all, errors.load(Ordering::Relaxed))
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1e6
}

fn mixed_request(pvs: usize, vgs: usize) -> Arc<dyn Fn(usize, u64) -> String + Send + Sync> {
    let per_vg = (pvs / vgs.max(1)).max(1);
    Arc::new(move |id, i| {
        let n = (id as u64 * 7919 + i * 104729) as usize;
        match i % 8 {
            0 | 1 => format!("{}name=\"vg{}\"\n", envelope("vg_lookup"), n % vgs),
            2 => format!("{}uuid=\"{}\"\n", envelope("pv_lookup"), uuid('P', n % pvs)),
            3 => envelope("vg_list"),
            4 => envelope(match n % 5 {
                0 => "pv_list",
                _ => "vg_list",
            }),
            5 => "request=\"get_global_info\"\ntoken=\"skip\"\npid=1\ncmd=\"bench\"\n".to_owned(),
            // idempotent writes: the same PV again, an older version hint, a clean update
            6 => pv_found(n % pvs, per_vg),
            _ => {
                let vg = n % vgs;
                format!(
                    "{}uuid=\"{}\"\nversion=2\n",
                    envelope("set_vg_info"),
                    uuid('V', vg)
                )
            }
        }
    })
}

struct Owned {
    pub(crate) child: Child,
    dir: PathBuf,
}

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_own() -> (Owned, PathBuf) {
    start_own_with(&[])
}

/// Start our own daemon with extra options.
fn start_own_with(opts: &[&str]) -> (Owned, PathBuf) {
    let exe = std::env::current_exe().unwrap_or_default();
    // LVMETAD=path runs another lvmetad (the C one of lvm2 2.02.187, say) in its place.
    let bin = std::env::var_os("LVMETAD")
        .map(PathBuf::from)
        .unwrap_or_else(|| exe.with_file_name("lvmetad"));
    let dir = std::env::temp_dir().join(format!("lvmetad-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let socket = dir.join("lvmetad.socket");
    let child = Command::new(&bin)
        .args(["-f", "-s"])
        .arg(&socket)
        .arg("-p")
        .arg(dir.join("pid"))
        .args(opts)
        .spawn()
        .unwrap_or_else(|e| {
            eprintln!("cannot start {}: {e}", bin.display());
            exit(1)
        });
    let t0 = Instant::now();
    while !socket.exists() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    (Owned { child, dir }, socket)
}

fn bench(socket: &Path, pvs: usize, vgs: usize) {
    let pid = daemon_pid(socket).unwrap_or(0);
    let took = populate(socket, pvs, vgs);
    println!(
        "## {pvs} PVs in {vgs} VGs: populated in {:.2} s ({:.0} pv_found/s), RSS {} KiB",
        took.as_secs_f64(),
        pvs as f64 / took.as_secs_f64(),
        rss_kib(pid)
    );
    let problems = check(socket, pvs, vgs);
    if problems > 0 {
        eprintln!("{problems} wrong replies after populate");
        exit(1);
    }
    let dur = Duration::from_millis(1500);
    println!("| request | clients | req/s | p50 ms | p99 ms | reply bytes |");
    println!("|---|---|---|---|---|---|");
    for (name, extra) in [
        ("vg_lookup", true),
        ("pv_list", false),
        ("vg_list", false),
        ("pv_lookup", true),
    ] {
        let sample = {
            let mut c = connect(socket);
            let req = match name {
                "vg_lookup" => format!("{}name=\"vg0\"\n", envelope(name)),
                "pv_lookup" => format!("{}uuid=\"{}\"\n", envelope(name), uuid('P', 0)),
                _ => envelope(name),
            };
            ask(&mut c, &req).len()
        };
        for clients in [1, 8] {
            let make: Arc<dyn Fn(usize, u64) -> String + Send + Sync> = match (name, extra) {
                ("vg_lookup", _) => Arc::new(move |id, i| {
                    format!(
                        "{}name=\"vg{}\"\n",
                        envelope("vg_lookup"),
                        (id * 31 + i as usize) % vgs
                    )
                }),
                ("pv_lookup", _) => Arc::new(move |id, i| {
                    format!(
                        "{}uuid=\"{}\"\n",
                        envelope("pv_lookup"),
                        uuid('P', (id * 31 + i as usize) % pvs)
                    )
                }),
                _ => Arc::new(move |_, _| envelope(name)),
            };
            let (n, lat, _) = load(socket, clients, dur, make, false);
            println!(
                "| {name} | {clients} | {:.0} | {:.3} | {:.3} | {sample} |",
                n as f64 / dur.as_secs_f64(),
                pct(&lat, 0.5),
                pct(&lat, 0.99)
            );
        }
    }
    let rss_before = rss_kib(pid);
    let (_, _, _) = load(socket, 8, dur, Arc::new(|_, _| envelope("pv_list")), false);
    println!(
        "RSS populated {rss_before} KiB; after 8 concurrent pv_list clients {} KiB\n",
        rss_kib(pid)
    );
}

fn num(args: &[String], i: usize, what: &str) -> usize {
    args.get(i).and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        eprintln!("lvmetad-bench: missing or bad {what}");
        exit(2)
    })
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut socket = None;
    if args.first().map(String::as_str) == Some("--socket") && args.len() > 1 {
        socket = Some(PathBuf::from(args[1].clone()));
        args.drain(..2);
    }
    if args.first().map(String::as_str) == Some("disks") {
        // Starts its own daemons (verification on, then off).
        disks::run(num(&args, 1, "PVS"), num(&args, 2, "VGS"));
        return;
    }
    if args.first().map(String::as_str) == Some("scan") {
        let sizes: Vec<usize> = args[1..].iter().filter_map(|s| s.parse().ok()).collect();
        scan::run(if sizes.is_empty() {
            &[100, 1000]
        } else {
            &sizes
        });
        return;
    }
    let mut _own = None;
    let socket = socket.unwrap_or_else(|| {
        let (o, s) = start_own();
        _own = Some(o);
        s
    });
    match args.first().map(String::as_str).unwrap_or("bench") {
        "bench" => {
            let sizes: Vec<usize> = args.iter().skip(1).filter_map(|s| s.parse().ok()).collect();
            let sizes = if sizes.len() >= 2 {
                sizes
            } else {
                vec![1000, 100, 10000, 1000]
            };
            for pair in sizes.chunks(2) {
                if let [pvs, vgs] = pair {
                    bench(&socket, *pvs, *vgs);
                }
            }
        }
        "populate" => {
            let took = populate(&socket, num(&args, 1, "PVS"), num(&args, 2, "VGS"));
            println!("populated in {:.2} s", took.as_secs_f64());
        }
        "check" => {
            let bad = check(&socket, num(&args, 1, "PVS"), num(&args, 2, "VGS"));
            if bad > 0 {
                eprintln!("{bad} wrong replies");
                exit(1);
            }
            println!("all lookups correct");
        }
        "dumps" => {
            let (clients, secs) = (num(&args, 1, "CLIENTS"), num(&args, 2, "SECS"));
            let dump = Arc::new(|_: usize, _: u64| envelope("dump"));
            let (n, _, err) = load(
                &socket,
                clients,
                Duration::from_secs(secs as u64),
                dump,
                true,
            );
            println!("{n} dumps, {err} errors");
            if err > 0 {
                exit(1);
            }
        }
        "pv_lists" => {
            let (clients, secs) = (num(&args, 1, "CLIENTS"), num(&args, 2, "SECS"));
            let pid = daemon_pid(&socket).unwrap_or(0);
            let list = Arc::new(|_: usize, _: u64| envelope("pv_list"));
            let (n, lat, err) = load(
                &socket,
                clients,
                Duration::from_secs(secs as u64),
                list,
                true,
            );
            println!(
                "{n} pv_lists, {err} errors, p50 {:.3} ms; RSS {} KiB, peak {} KiB",
                pct(&lat, 0.5),
                rss_kib(pid),
                status_kib(pid, "VmHWM:")
            );
            if err > 0 {
                exit(1);
            }
        }
        "mixed" => {
            let (clients, secs) = (num(&args, 1, "CLIENTS"), num(&args, 2, "SECS"));
            let (pvs, vgs) = (num(&args, 3, "PVS"), num(&args, 4, "VGS"));
            let (n, lat, err) = load(
                &socket,
                clients,
                Duration::from_secs(secs as u64),
                mixed_request(pvs, vgs),
                true,
            );
            println!(
                "{n} requests, {err} errors, p50 {:.3} ms, p99 {:.3} ms",
                pct(&lat, 0.5),
                pct(&lat, 0.99)
            );
            if err > 0 {
                exit(1);
            }
        }
        other => {
            eprintln!("lvmetad-bench: unknown mode {other}");
            exit(2);
        }
    }
}
