//! lvmetad-scan: read LVM2 PVs from disk and either print them (like `pvs`/`vgs`/`lvs`) or fill
//! lvmetad with them as `pvscan --cache` does. `--show` prints what lvmetad caches instead.
//!
//! All the work is in `common::scan`; this file only reads options and prints.

use common::scan::device::{
    default_workers, device_from_path, discover_block_devices, makedev, Device, DeviceError,
    ScanOptions,
};
use common::scan::filter::GlobalFilter;
use common::scan::lvmetad::{scan_found_pvs, FeedSummary, Lvmetad};
use common::scan::report::{vg_from_lookup, Inventory};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str =
    "Usage: lvmetad-scan [--cache] [-s SOCKET] [--config LVMCONF] [--json] [-j N] [DEV...]
       lvmetad-scan --show [-s SOCKET] [--json] [DEV...]

Scan PVs (block devices under /dev, or the given block devices and image files).
  --cache        fill lvmetad (full repopulation without DEV, those devices only with DEV)
  --show         print what lvmetad caches (PVs, VGs, LVs) instead of scanning;
                 DEVs given then only name the devices lvmetad knows by number
  -s SOCKET      lvmetad socket (default: $LVM_LVMETAD_SOCKET or the built-in path)
  --config FILE  lvm.conf to read devices/global_filter from
  --json         print JSON instead of tables
  -j N           scan with at most N threads (default: 4 per CPU, at most 16)
  --buffered     read through the page cache (default: O_DIRECT as lvm2 reads, buffered
                 only for files that cannot do O_DIRECT); --direct is accepted, a no-op
  -h, --help     this text";

/// `ECMD_FAILED` of lvm2.
const FAILED: u8 = 5;

struct Options {
    cache: bool,
    show: bool,
    json: bool,
    socket: PathBuf,
    config: Option<PathBuf>,
    scan: ScanOptions,
    devices: Vec<String>,
}

fn options() -> Result<Option<Options>, String> {
    let mut o = getopts::Options::new();
    o.optflag("", "cache", "");
    o.optflag("", "show", "");
    o.optflag("", "json", "");
    o.optopt("s", "socket", "", "SOCKET");
    o.optopt("", "config", "", "FILE");
    o.optopt("j", "jobs", "", "N");
    o.optflag("", "direct", "");
    o.optflag("", "buffered", "");
    o.optflag("h", "help", "");
    let m = o
        .parse(std::env::args().skip(1))
        .map_err(|e| e.to_string())?;
    if m.opt_present("h") {
        println!("{USAGE}");
        return Ok(None);
    }
    let socket = m
        .opt_str("s")
        .or_else(|| std::env::var("LVM_LVMETAD_SOCKET").ok())
        .unwrap_or_else(|| common::paths::default_socket("lvmetad"));
    let workers = match m.opt_str("j") {
        Some(n) => n.parse().map_err(|_| format!("-j {n}: not a number"))?,
        None => default_workers(),
    };
    Ok(Some(Options {
        cache: m.opt_present("cache"),
        show: m.opt_present("show"),
        json: m.opt_present("json"),
        socket: socket.into(),
        config: m.opt_str("config").map(PathBuf::from),
        scan: ScanOptions {
            workers,
            // O_DIRECT is the default; --direct stays accepted for old command lines.
            direct: !m.opt_present("buffered"),
        },
        devices: m.free,
    }))
}

/// `MAJ:MIN` argument that names no existing path.
fn parse_devno(arg: &str) -> Option<u64> {
    if Path::new(arg).exists() {
        return None;
    }
    let (ma, mi) = arg.split_once(':')?;
    Some(makedev(ma.parse().ok()?, mi.parse().ok()?))
}

/// The devices to scan, and the device numbers to report gone (filtered out or vanished).
fn select_devices(o: &Options, filter: &GlobalFilter) -> Result<(Vec<Device>, Vec<u64>), String> {
    if o.devices.is_empty() {
        let all = discover_block_devices();
        return Ok((
            all.into_iter()
                .filter(|d| filter.accepts(&d.aliases))
                .collect(),
            vec![],
        ));
    }
    let (mut keep, mut gone) = (Vec::new(), Vec::new());
    for arg in &o.devices {
        if let Some(devno) = parse_devno(arg) {
            gone.push(devno);
            continue;
        }
        let dev = device_from_path(Path::new(arg)).map_err(|e| e.to_string())?;
        if filter.accepts(&dev.aliases) {
            keep.push(dev);
        } else {
            eprintln!("  {arg}: excluded by the global filter");
            gone.push(dev.devno);
        }
    }
    Ok((keep, gone))
}

fn show(o: &Options) -> Result<(), String> {
    let mut l = Lvmetad::connect(&o.socket, String::new()).map_err(|e| e.to_string())?;
    let pv_list = l
        .request("pv_list", Some("skip"), vec![])
        .map_err(|e| e.to_string())?;
    let vg_list = l
        .request("vg_list", Some("skip"), vec![])
        .map_err(|e| e.to_string())?;
    let mut vgs = Vec::new();
    for vg in vg_list
        .find("volume_groups")
        .map(|n| n.children())
        .unwrap_or(&[])
    {
        let body = vec![common::config::Node::value("uuid", vg.key.clone())];
        let reply = l
            .request("vg_lookup", Some("skip"), body)
            .map_err(|e| e.to_string())?;
        match vg_from_lookup(&reply) {
            Some(v) => vgs.push(v),
            None => eprintln!("  VG {}: lvmetad returned no usable metadata", vg.key),
        }
    }
    vgs.sort_by(|a, b| a.name.cmp(&b.name));
    // Paths given with --show only name the devices lvmetad knows by number.
    let names = o
        .devices
        .iter()
        .filter_map(|p| device_from_path(Path::new(p)).ok())
        .map(|d| (d.devno, d.path.display().to_string()))
        .collect();
    let inv = Inventory::from_lvmetad(&pv_list, vgs, &names);
    print_inventory(o, &inv);
    let gi = l.global_info().map_err(|e| e.to_string())?;
    if !o.json {
        println!(
            "\nlvmetad pid {}: token \"{}\", {}",
            gi.daemon_pid,
            gi.token,
            if gi.global_disable {
                format!("DISABLED ({})", gi.disable_reason)
            } else {
                "enabled".into()
            }
        );
    }
    Ok(())
}

fn print_inventory(o: &Options, inv: &Inventory) {
    if o.json {
        print!("{}", inv.to_json());
    } else {
        print!("{}", inv.to_table());
    }
}

fn report_feed(sum: &FeedSummary) -> bool {
    for w in &sum.warnings {
        eprintln!("  {w}");
    }
    for (pvid, paths) in &sum.duplicates {
        eprintln!(
            "  WARNING: PV {pvid} found on several devices: {}",
            paths.join(", ")
        );
    }
    if let Some(reason) = &sum.disabled {
        let why = if reason.contains("DUPLICATES") {
            "duplicate PVs were found".to_owned()
        } else {
            format!("it is disabled ({reason})")
        };
        eprintln!("  WARNING: Not using lvmetad because {why}.");
    }
    eprintln!(
        "  lvmetad-scan: {} PV(s) sent to lvmetad, {} gone",
        sum.pv_found, sum.pv_gone
    );
    sum.warnings.iter().all(|w| !w.contains("refused"))
}

fn run(o: &Options) -> Result<bool, String> {
    if o.show {
        return show(o).map(|_| true);
    }
    let filter = match &o.config {
        Some(p) => GlobalFilter::from_file(p).map_err(|e| e.to_string())?,
        None => GlobalFilter::none(),
    };
    let (devs, gone) = select_devices(o, &filter)?;
    if o.cache {
        let mut l = Lvmetad::connect(&o.socket, filter.token()).map_err(|e| e.to_string())?;
        let sum = if o.devices.is_empty() {
            let mut warnings = Vec::new();
            let scans = scan_found_pvs(&devs, o.scan, &mut warnings);
            let mut sum = l.repopulate(&scans).map_err(|e| e.to_string())?;
            sum.warnings.splice(0..0, warnings);
            sum
        } else {
            l.update_devices(&devs, &gone, o.scan)
                .map_err(|e| e.to_string())?
        };
        return Ok(report_feed(&sum));
    }
    let mut warnings = Vec::new();
    let scans = scan_found_pvs(&devs, o.scan, &mut warnings);
    for w in &warnings {
        eprintln!("  {w}");
    }
    // A device named on the command line that is not a PV is worth saying.
    if !o.devices.is_empty() {
        for d in &devs {
            if !scans.iter().any(|(s, _)| s.path == d.path) {
                eprintln!(
                    "  {}: {}",
                    d.path.display(),
                    DeviceError::Label(d.path.clone(), common::scan::label::LabelError::NotFound)
                );
            }
        }
    }
    print_inventory(o, &Inventory::from_scan(&scans));
    Ok(true)
}

fn main() -> ExitCode {
    let o = match options() {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lvmetad-scan: {e}\n{USAGE}");
            return ExitCode::from(3);
        }
    };
    match run(&o) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(FAILED),
        Err(e) => {
            eprintln!("lvmetad-scan: {e}");
            ExitCode::from(FAILED)
        }
    }
}
