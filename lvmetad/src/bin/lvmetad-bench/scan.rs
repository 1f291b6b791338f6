//! `lvmetad-bench scan N...` (root): the full scan that fills lvmetad (`pvscan --cache`), side
//! by side on the same disks.
//!
//! For each N: N loop devices on sparse 8 MiB files, made into PVs of N/8 VGs with one LV each
//! by the installed lvm (2.03, activation off, no devices file). Then the median wall time of
//! each command, the commands taking turns round by round (this machine's speed drifts):
//! - warm, into one lvmetad that already holds the PVs (a rescan; 7 rounds):
//!   `lvmetad-scan --cache --feeds 1` (everything read, then pv_found one after the other, as
//!   lvm2 does), `lvmetad-scan --cache` (pv_found sent as the devices are read, over several
//!   connections), `lvm pvs` (2.03 reads every PV itself; it has no lvmetad) and, with
//!   `LVM202=/path/to/lvm` (lvm 2.02.187 built in a scratch directory), its `pvscan --cache`;
//! - cold, each scanner's first scan into a fresh lvmetad (3 rounds): `lvmetad-scan --cache`
//!   and 2.02's `pvscan --cache`.
//!
//! `LVMETAD=/path/to/lvmetad` feeds another lvmetad (C's, built with 2.02.187) instead of ours.
//!
//! And the split, measured in this process through the scanner library: listing the devices,
//! reading and parsing them (O_DIRECT), feeding lvmetad from the complete scan over one and
//! over several connections, and reading while feeding; and the floor pieces: one O_DIRECT
//! open + 4 KiB read, one lvmetad round trip. Every device sees the filter
//! `a|^/dev/loop[0-9]+$|`: the bench refuses to run when other loop devices hold PVs.
#![forbid(unsafe_code)]

use crate::start_own;
use common::scan::device::{discover_block_devices, open_device, Device, ScanOptions};
use common::scan::feed::MAX_FEEDS;
use common::scan::filter::GlobalFilter;
use common::scan::io::BlockSource;
use common::scan::lvmetad::{scan_found_pvs, Lvmetad};
use common::scan::ScannedPv;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PER_VG: usize = 8;
const ROUNDS: usize = 3;
/// Rounds of the warm whole-command runs (the machine's speed drifts; more rounds steady them).
const WARM_ROUNDS: usize = 7;
/// Rounds of first scans into a fresh lvmetad (each starts a daemon).
const COLD_ROUNDS: usize = 5;
const FILTER: &str = r#"[ "a|^/dev/loop[0-9]+$|", "r|.*|" ]"#;

/// Errors end one size's run with a message; the disks and the daemon are released first.
type Res<T> = Result<T, String>;
/// A named command, built anew for each run.
type Cmd<'a> = (&'a str, Box<dyn Fn() -> Command + 'a>);
/// A named timed run.
type Run<'a> = (&'a str, Box<dyn Fn() -> Res<Duration> + 'a>);

fn ctx<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> Res<T> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// Our loop devices; detached, and the directory removed, on drop.
struct Disks {
    dir: PathBuf,
    devs: Vec<String>,
}

impl Drop for Disks {
    fn drop(&mut self) {
        for chunk in self.devs.chunks(256) {
            let _ = Command::new("losetup").arg("-d").args(chunk).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn lvm_config(filter: &str) -> String {
    format!(
        "global{{activation=0}} devices{{use_devicesfile=0 obtain_device_list_from_udev=0 \
         global_filter={filter}}}"
    )
}

/// `lvm ARGS` quietly; false when it failed.
fn lvm(args: &[&str]) -> bool {
    Command::new("lvm")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// N loop PVs in N/8 VGs (`benchscanK`), one LV each.
fn make_disks(n: usize) -> Res<Disks> {
    let dir = std::env::temp_dir().join(format!("lvmetad-bench-scan-{}", std::process::id()));
    ctx(std::fs::create_dir_all(&dir), &dir.display().to_string())?;
    let mut disks = Disks {
        dir: dir.clone(),
        devs: Vec::new(),
    };
    for i in 0..n {
        let f = dir.join(format!("pv{i}.img"));
        ctx(
            std::fs::File::create(&f).and_then(|file| file.set_len(8 << 20)),
            &f.display().to_string(),
        )?;
        let out = ctx(
            Command::new("losetup")
                .args(["-f", "--show"])
                .arg(&f)
                .output(),
            "losetup",
        )?;
        if !out.status.success() {
            return Err(format!("losetup -f --show {} failed", f.display()));
        }
        disks
            .devs
            .push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    let groups: Vec<(usize, &[String])> = disks.devs.chunks(PER_VG).enumerate().collect();
    // Two lvm commands at a time, each limited to its VG's devices.
    let made: Vec<Res<()>> = std::thread::scope(|s| {
        let workers: Vec<_> = groups
            .chunks(groups.len().div_ceil(2).max(1))
            .map(|half| {
                s.spawn(move || -> Res<()> {
                    for (k, devs) in half {
                        let filter = devs
                            .iter()
                            .fold(String::from("["), |f, d| f + &format!("\"a|^{d}$|\", "))
                            + "\"r|.*|\"]";
                        let conf = lvm_config(&filter);
                        let vg = format!("benchscan{k}");
                        let mut args = vec!["vgcreate", "-q", "--config", &conf, &vg];
                        args.extend(devs.iter().map(String::as_str));
                        let lv = [
                            "lvcreate", "-q", "--config", &conf, "-Zn", "-an", "-l1", "-n", "lv0",
                            &vg,
                        ];
                        if !lvm(&args) || !lvm(&lv) {
                            return Err(format!("lvm could not make {vg} on {}", devs.join(" ")));
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err("an lvm worker panicked".into()))
            })
            .collect()
    });
    made.into_iter().collect::<Res<Vec<()>>>()?;
    Ok(disks)
}

/// Wall time of one run of `cmd`; fails on a failed run.
fn time_one(what: &str, mut c: Command) -> Res<Duration> {
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let t0 = Instant::now();
    let ok = c.status().map(|s| s.success()).unwrap_or(false);
    let took = t0.elapsed();
    if ok {
        Ok(took)
    } else {
        Err(format!("{what} failed"))
    }
}

/// One run of the command `cmd` makes for a fresh lvmetad's socket, which must then hold `n` PVs.
fn fresh_run(name: &str, n: usize, cmd: impl Fn(&Path) -> Command) -> Res<Duration> {
    let (_daemon, socket) = start_own();
    let t = time_one(name, cmd(&socket))?;
    if cached_pvs(&socket)? != n {
        return Err(format!("lvmetad does not hold every PV after {name}"));
    }
    Ok(t)
}

/// The median time of each command over `rounds` rounds, each round running every command once
/// in turn.
fn interleaved(rounds: usize, cmds: &[Cmd<'_>]) -> Res<Vec<Duration>> {
    let timed: Vec<Run<'_>> = cmds
        .iter()
        .map(|(name, cmd)| {
            let run: Box<dyn Fn() -> Res<Duration> + '_> = Box::new(move || time_one(name, cmd()));
            (*name, run)
        })
        .collect();
    interleaved_with(rounds, &timed)
}

/// [`interleaved`] over timed runs.
fn interleaved_with(rounds: usize, runs: &[Run<'_>]) -> Res<Vec<Duration>> {
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); runs.len()];
    for _ in 0..rounds {
        for ((_, run), t) in runs.iter().zip(times.iter_mut()) {
            t.push(run()?);
        }
    }
    Ok(times
        .into_iter()
        .map(|mut t| {
            t.sort();
            t[t.len() / 2]
        })
        .collect())
}

fn median(mut f: impl FnMut() -> Res<Duration>) -> Res<Duration> {
    let mut t = (0..ROUNDS).map(|_| f()).collect::<Res<Vec<Duration>>>()?;
    t.sort();
    Ok(t[ROUNDS / 2])
}

fn ms(d: Duration) -> String {
    format!("{:8.1} ms", d.as_secs_f64() * 1e3)
}

/// How many PVs lvmetad knows.
fn cached_pvs(socket: &Path) -> Res<usize> {
    let mut l = ctx(Lvmetad::connect(socket, String::new()), "lvmetad")?;
    let r = ctx(l.request("pv_list", Some("skip"), vec![]), "pv_list")?;
    Ok(r.find("physical_volumes").map_or(0, |n| n.children().len()))
}

/// A full repopulation from already read devices over `feeds` connections.
fn feed(socket: &Path, token: &str, scans: &[(Device, ScannedPv)], feeds: usize) -> Res<Duration> {
    let t0 = Instant::now();
    let mut l = ctx(Lvmetad::connect(socket, token.to_owned()), "lvmetad")?;
    l.feeds = feeds;
    ctx(l.repopulate(scans), "feed")?;
    Ok(t0.elapsed())
}

fn one(n: usize, lvm202: Option<&str>) -> Res<()> {
    let bin = std::env::current_exe()
        .unwrap_or_default()
        .with_file_name("lvmetad-scan");
    let t0 = Instant::now();
    let disks = make_disks(n)?;
    let conf = disks.dir.join("lvm.conf");
    let text = format!("devices {{\n\tglobal_filter = {FILTER}\n}}\n");
    ctx(std::fs::write(&conf, text), "lvm.conf")?;
    let filter = ctx(GlobalFilter::from_file(&conf), "lvm.conf")?;
    println!(
        "== {n} PVs in {} VGs (made in {:.0} s)",
        n.div_ceil(PER_VG),
        t0.elapsed().as_secs_f64()
    );
    let (_daemon, socket) = start_own();

    // The split, in this process.
    let list = || -> Vec<Device> {
        discover_block_devices()
            .into_iter()
            .filter(|d| filter.accepts(&d.aliases))
            .collect()
    };
    let t_list = median(|| {
        let t = Instant::now();
        let _ = list();
        Ok(t.elapsed())
    })?;
    let devs = list();
    let opts = ScanOptions::default();
    let mut scans = Vec::new();
    let t_read = median(|| {
        let t = Instant::now();
        scans = scan_found_pvs(&devs, opts, &mut Vec::new());
        Ok(t.elapsed())
    })?;
    if scans.len() != n {
        return Err(format!(
            "{} PVs on loop devices, {n} expected: other loop devices hold PVs",
            scans.len()
        ));
    }
    let token = filter.token();
    let t_seq = median(|| feed(&socket, &token, &scans, 1))?;
    let t_par = median(|| feed(&socket, &token, &scans, MAX_FEEDS))?;
    let t_stream = median(|| {
        let t0 = Instant::now();
        let mut l = ctx(Lvmetad::connect(&socket, token.clone()), "lvmetad")?;
        ctx(l.repopulate_scanning(&devs, opts, &mut Vec::new()), "feed")?;
        Ok(t0.elapsed())
    })?;

    // The floor pieces: one O_DIRECT open and 4 KiB read (one thread), one round trip.
    let t0 = Instant::now();
    let mut buf = vec![0u8; 4096];
    for (d, _) in &scans {
        let src = ctx(open_device(d, true), "open")?;
        ctx(
            src.read_exact_at(&mut buf, 0),
            &d.path.display().to_string(),
        )?;
    }
    let per_read = t0.elapsed() / n as u32;
    let mut l = ctx(Lvmetad::connect(&socket, String::new()), "lvmetad")?;
    let t0 = Instant::now();
    for _ in 0..1000 {
        ctx(l.global_info(), "get_global_info")?;
    }
    let per_trip = t0.elapsed() / 1000;

    // Whole commands, round by round so that every command sees the same drift of this
    // machine's speed: warm (one lvmetad that already holds the PVs, as on a rescan), then each
    // scanner's first scan into a fresh lvmetad (cold: it reads every PV's label to bind it).
    let ours = |feeds: usize, socket: &Path| {
        let mut c = Command::new(&bin);
        c.args(["--cache", "--config"])
            .arg(&conf)
            .arg("-s")
            .arg(socket)
            .args(["--feeds", &feeds.to_string()]);
        c
    };
    let lvm_conf = lvm_config(FILTER);
    let conf202 = format!(
        "global{{use_lvmetad=1}} devices{{obtain_device_list_from_udev=0 global_filter={FILTER}}}"
    );
    let old = |socket: &Path| {
        let mut c = Command::new(lvm202.unwrap_or("false"));
        c.args(["pvscan", "--cache", "--config", &conf202])
            .env("LVM_LVMETAD_SOCKET", socket);
        c
    };
    let mut runs: Vec<Cmd<'_>> = vec![
        (
            "lvmetad-scan --cache --feeds 1",
            Box::new(|| ours(1, &socket)),
        ),
        (
            "lvmetad-scan --cache",
            Box::new(|| ours(MAX_FEEDS, &socket)),
        ),
        (
            "lvm 2.03 pvs",
            Box::new(|| {
                let mut c = Command::new("lvm");
                c.args(["pvs", "--config", &lvm_conf]);
                c
            }),
        ),
    ];
    if lvm202.is_some() {
        runs.push(("lvm 2.02 pvscan --cache", Box::new(|| old(&socket))));
    }
    let warm = interleaved(WARM_ROUNDS, &runs)?;
    if cached_pvs(&socket)? != n {
        return Err("lvmetad does not hold every PV after the warm runs".into());
    }
    drop(_daemon);
    let mut cold_runs: Vec<Run<'_>> = vec![(
        "lvmetad-scan --cache",
        Box::new(|| fresh_run("lvmetad-scan --cache", n, |s| ours(MAX_FEEDS, s))),
    )];
    if lvm202.is_some() {
        cold_runs.push((
            "lvm 2.02 pvscan --cache",
            Box::new(|| fresh_run("lvm 2.02 pvscan --cache", n, old)),
        ));
    }
    let cold = interleaved_with(COLD_ROUNDS, &cold_runs)?;

    println!("  split (in process, medians of {ROUNDS}):");
    println!("    list devices                  {}", ms(t_list));
    println!("    read + parse, O_DIRECT        {}", ms(t_read));
    println!("    feed, 1 connection            {}", ms(t_seq));
    println!(
        "    feed, {} connections           {}",
        MAX_FEEDS,
        ms(t_par)
    );
    println!(
        "    read + feed as read, {} conn.  {}",
        MAX_FEEDS,
        ms(t_stream)
    );
    println!(
        "    floor pieces: O_DIRECT open+read {:.1} us, round trip {:.1} us",
        per_read.as_secs_f64() * 1e6,
        per_trip.as_secs_f64() * 1e6
    );
    let par = warm[1];
    println!(
        "  whole commands, warm (lvmetad holds the PVs; medians of {WARM_ROUNDS}, interleaved):"
    );
    for ((name, _), t) in runs.iter().zip(&warm) {
        let ratio = t.as_secs_f64() / par.as_secs_f64();
        println!("    {name:<31}{}  (x{ratio:.1})", ms(*t));
    }
    if lvm202.is_none() {
        println!("    lvm 2.02 pvscan --cache        not run (set LVM202=/path/to/lvm)");
    }
    println!("  first scan into a fresh lvmetad (medians of {COLD_ROUNDS}, interleaved):");
    for ((name, _), t) in cold_runs.iter().zip(&cold) {
        let ratio = t.as_secs_f64() / cold[0].as_secs_f64();
        println!("    {name:<31}{}  (x{ratio:.1})", ms(*t));
    }
    Ok(())
}

/// See the module doc.
pub fn run(sizes: &[usize]) {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("lvmetad-bench scan: needs root (loop devices)");
        std::process::exit(1);
    }
    let lvm202 = std::env::var("LVM202").ok();
    for &n in sizes {
        if let Err(e) = one(n, lvm202.as_deref()) {
            eprintln!("lvmetad-bench scan: {n} PVs: {e}");
            std::process::exit(1);
        }
    }
}
