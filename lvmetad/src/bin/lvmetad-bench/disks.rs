//! `lvmetad-bench disks PVS VGS` (root): what disk verification costs the daemon. PVS sparse
//! image files get a real label, mda header and committed VG text (the same text the bench sends
//! in `pv_found`), each on its own loop device; a daemon with verification on, then one with
//! `--no-verify`, is populated with their real device numbers, and the daemon's CPU time
//! (its CPU clock, `clock_getcpuclockid`: nanosecond run time of all its threads) is measured over a fixed number of requests from one client.
//! The loop devices and files are removed at the end, also on failure.

#![forbid(unsafe_code)]

use crate::{ask, connect, envelope, expect_ok, metadata, pvmeta_on, start_own_with, uuid, TOKEN};
use common::scan::crc::{calc_crc, INITIAL_CRC};
use common::scan::label::{encode_label_sector, DiskLocn, PvHeader};
use common::scan::mda::{encode_mda_header, RawLocn};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{exit, Command};
use std::time::Instant;

/// Builds the i-th request of a row.
type MakeRequest<'a> = Box<dyn Fn(usize) -> String + 'a>;

/// Our loop devices and their backing files; detached and removed on drop.
struct Loops {
    dir: PathBuf,
    devs: Vec<String>,
}

impl Drop for Loops {
    fn drop(&mut self) {
        for d in &self.devs {
            let _ = Command::new("losetup").args(["-d", d]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn die(what: &str) -> ! {
    eprintln!("lvmetad-bench disks: {what}");
    exit(1)
}

/// The first bytes of a PV holding `text` (already NUL-terminated) in its only mda.
fn pv_head(pv: usize, text: &[u8]) -> Vec<u8> {
    let mda = DiskLocn {
        offset: 4096,
        size: 1044480,
    };
    let header = PvHeader {
        pvid: uuid('P', pv).replace('-', ""),
        device_size: 2 << 20,
        data_areas: vec![DiskLocn {
            offset: 1048576,
            size: 0,
        }],
        metadata_areas: vec![mda],
        ext_version: 2,
        ext_flags: 1,
        bootloader_areas: vec![],
    };
    let mut head = vec![0u8; 4608 + text.len()];
    head[512..1024].copy_from_slice(&encode_label_sector(1, &header));
    let slot = RawLocn {
        offset: 512,
        size: text.len() as u64,
        checksum: calc_crc(INITIAL_CRC, text),
        flags: 0,
    };
    head[4096..4608].copy_from_slice(&encode_mda_header(4096, mda.size, slot));
    head[4608..].copy_from_slice(text);
    head
}

fn attach(file: &Path) -> String {
    for _ in 0..5 {
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(file)
            .output();
        if let Ok(o) = out {
            if o.status.success() {
                return String::from_utf8_lossy(&o.stdout).trim().to_owned();
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    die(&format!("losetup -f --show {} failed", file.display()))
}

/// CPU time of process `pid` in microseconds, all its threads including those that exited
/// (`clock_getcpuclockid`: the scheduler's run time, not tick-sampled utime/stime).
fn cpu_us(pid: u32) -> u64 {
    match common::daemon::process_cpu_time(pid) {
        Some(t) => t.as_micros() as u64,
        None => die("cannot read the daemon's CPU clock"),
    }
}

/// Run `n` requests from `make` on one connection; (daemon CPU µs, wall µs) per request and the
/// number of replies carrying an invalid marker.
fn measure(socket: &Path, pid: u32, n: usize, make: impl Fn(usize) -> String) -> (f64, f64, usize) {
    let mut c = connect(socket);
    let (cpu0, t0) = (cpu_us(pid), Instant::now());
    let mut marked = 0;
    for i in 0..n {
        let r = ask(&mut c, &make(i));
        if r.contains("\nvg_invalid") || r.contains("\nglobal_invalid") {
            marked += 1;
        }
    }
    let wall = t0.elapsed().as_micros() as f64 / n as f64;
    ((cpu_us(pid) - cpu0) as f64 / n as f64, wall, marked)
}

/// See the module doc.
pub fn run(pvs: usize, vgs: usize) {
    let per_vg = (pvs / vgs.max(1)).max(1);
    let dir = std::env::temp_dir().join(format!("lvmetad-bench-disks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| die(&format!("{}: {e}", dir.display())));
    let mut loops = Loops {
        dir: dir.clone(),
        devs: Vec::new(),
    };
    let t0 = Instant::now();
    let mut devnos = Vec::with_capacity(pvs);
    for pv in 0..pvs {
        let vg = pv / per_vg;
        let mut text = metadata(vg, per_vg)
            .replacen("metadata {", &format!("vg{vg} {{"), 1)
            .into_bytes();
        text.push(0);
        let path = dir.join(format!("pv{pv}.img"));
        let file = std::fs::File::create(&path).unwrap_or_else(|e| die(&e.to_string()));
        file.set_len(2 << 20)
            .unwrap_or_else(|e| die(&e.to_string()));
        file.write_all_at(&pv_head(pv, &text), 0)
            .unwrap_or_else(|e| die(&e.to_string()));
        let dev = attach(&path);
        let rdev = std::fs::metadata(&dev).map_or(0, |m| m.rdev());
        loops.devs.push(dev);
        devnos.push(rdev);
    }
    println!(
        "## {pvs} loop-device PVs in {vgs} VGs (set up in {:.1} s)",
        t0.elapsed().as_secs_f64()
    );
    println!("| request | verification | requests | daemon CPU µs/request | wall µs/request | replies marked invalid |");
    println!("|---|---|---|---|---|---|");
    for opts in [&[][..], &["--no-verify"][..]] {
        let mode = if opts.is_empty() { "on" } else { "off" };
        let (own, socket) = start_own_with(opts);
        let pid = own.child.id();
        let mut c = connect(&socket);
        let begin = "request=\"token_update\"\ntoken=\"update in progress\"\nupdate_timeout=10\npid=1\ncmd=\"bench\"\n";
        expect_ok("token_update", &ask(&mut c, begin));
        let t = Instant::now();
        for (pv, devno) in devnos.iter().enumerate() {
            let req = format!(
                "{}{}vgname=\"vg{}\"\n{}",
                envelope("pv_found").replace(TOKEN, "update in progress"),
                pvmeta_on(pv, *devno),
                pv / per_vg,
                metadata(pv / per_vg, per_vg)
            );
            expect_ok("pv_found", &ask(&mut c, &req));
        }
        let populated = t.elapsed();
        let end = envelope("token_update");
        expect_ok("token_update", &ask(&mut c, &end));
        println!(
            "| populate (pv_found) | {mode} | {pvs} | | {:.0} | |",
            populated.as_micros() as f64 / pvs as f64
        );
        // First lookups read and confirm each VG's text; then only headers are read.
        let lookup = |i: usize| format!("{}name=\"vg{}\"\n", envelope("vg_lookup"), i % vgs);
        let _ = measure(&socket, pid, vgs, lookup);
        let rows: [(&str, usize, MakeRequest); 4] = [
            ("vg_lookup", 5000, Box::new(lookup)),
            (
                "pv_lookup",
                2000,
                Box::new(|i| format!("{}uuid=\"{}\"\n", envelope("pv_lookup"), uuid('P', i % pvs))),
            ),
            ("vg_list", 20, Box::new(|_| envelope("vg_list"))),
            ("pv_list", 20, Box::new(|_| envelope("pv_list"))),
        ];
        for (name, n, make) in rows {
            let (cpu, wall, marked) = measure(&socket, pid, n, make);
            println!("| {name} | {mode} | {n} | {cpu:.1} | {wall:.1} | {marked} |");
            if marked > 0 {
                die(&format!(
                    "{marked} {name} replies marked invalid on unchanged disks"
                ));
            }
        }
        drop(own);
    }
}
