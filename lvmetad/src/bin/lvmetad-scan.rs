//! lvmetad-scan: read LVM2 PVs from disk and either print them (like `pvs`/`vgs`/`lvs`) or fill
//! lvmetad with them as `pvscan --cache` does. `--show` prints what lvmetad caches instead.
//!
//! All the work is in `common::scan`; this file only reads options and prints. Everything for
//! stdout goes through [`emit`] (`common::tool_output`): a reader that went away (`| head`, `| true`)
//! ends the program quietly with status 0 instead of a panic on EPIPE.
#![forbid(unsafe_code)]

use common::scan::device::{
    default_workers, device_from_path, discover_block_devices, Device, DeviceError, ScanOptions,
};
use common::scan::devno::{self, DeviceLocks, Presence};
use common::scan::filter::GlobalFilter;
use common::scan::lvmetad::{scan_found_pvs, FeedSummary, Lvmetad};
use common::scan::report::{vg_from_lookup, Inventory};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str =
    "Usage: lvmetad-scan [--cache] [-s SOCKET] [--config LVMCONF] [--json] [-j N] [DEV...]
       lvmetad-scan --cache [-s SOCKET] [--config LVMCONF] --major M --minor m
       lvmetad-scan --show [-s SOCKET] [--json] [DEV...]

Scan PVs (block devices under /dev, or the given block devices and image files).
A DEV may be MAJOR:MINOR: with --cache, a present device is scanned, an absent one
is removed from lvmetad (pv_gone).
  --cache        fill lvmetad (full repopulation without DEV, those devices only with DEV)
  --major M --minor m  one more device by number (as MAJOR:MINOR)
  --show         print what lvmetad caches (PVs, VGs, LVs) instead of scanning;
                 DEVs given then only name the devices lvmetad knows by number
  -s SOCKET      lvmetad socket (default: $LVM_LVMETAD_SOCKET or the built-in path)
  --config FILE  lvm.conf to read devices/global_filter from (default:
                 $LVM_SYSTEM_DIR/lvm.conf or the system one, when it exists)
  --json         print JSON instead of tables
  -j N           scan with at most N threads (default: 4 per CPU, at most 16)
  --feeds N      a full --cache sends pv_found over N connections at once (default 4;
                 1: one after the other, as lvm2 does)
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
    feeds: usize,
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
    o.optopt("", "feeds", "", "N");
    o.optopt("", "major", "", "M");
    o.optopt("", "minor", "", "m");
    o.optflag("", "direct", "");
    o.optflag("", "buffered", "");
    o.optflag("h", "help", "");
    let m = o
        .parse(std::env::args().skip(1))
        .map_err(|e| e.to_string())?;
    if m.opt_present("h") {
        emit(&format!("{USAGE}\n"));
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
    let feeds = match m.opt_str("feeds") {
        Some(n) => match n.parse() {
            Ok(k) if k >= 1 => k,
            _ => return Err(format!("--feeds {n}: want a number of at least 1")),
        },
        None => common::scan::feed::MAX_FEEDS,
    };
    let mut devices = m.free.clone();
    match (m.opt_str("major"), m.opt_str("minor")) {
        (Some(ma), Some(mi)) => {
            let (ma, mi) = devno::parse_major_minor_opts(&ma, &mi).map_err(|e| e.to_string())?;
            devices.push(format!("{ma}:{mi}"));
        }
        (None, None) => {}
        _ => return Err("--major and --minor go together".into()),
    }
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
        feeds,
        devices,
    }))
}

/// lvm.conf as lvm2's tools find it (`$LVM_SYSTEM_DIR/lvm.conf`, else the configured system
/// directory's), when it exists: so that the event hooks, the init script and a scan by hand
/// all use the same global_filter, and so the same token.
fn system_lvm_conf() -> Option<PathBuf> {
    let dir = std::env::var_os("LVM_SYSTEM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(common::paths::SYSTEM_DIR));
    Some(dir.join("lvm.conf")).filter(|p| p.exists())
}

/// Every block device under /dev that passes the filter (what a full scan reads).
fn all_devices(filter: &GlobalFilter) -> Vec<Device> {
    discover_block_devices()
        .into_iter()
        .filter(|d| filter.accepts(&d.aliases))
        .collect()
}

/// The devices to scan, and the device numbers to report gone (filtered out or absent).
/// `MAJOR:MINOR` arguments are resolved now: present devices are scanned through their node.
fn select_devices(o: &Options, filter: &GlobalFilter) -> Result<(Vec<Device>, Vec<u64>), String> {
    if o.devices.is_empty() {
        return Ok((all_devices(filter), vec![]));
    }
    let (mut keep, mut gone) = (Vec::new(), Vec::new());
    for arg in &o.devices {
        let dev = if devno::looks_like_devno(arg) {
            let (ma, mi) = devno::parse_major_minor(arg).map_err(|e| e.to_string())?;
            match devno::resolve(ma, mi).map_err(|e| e.to_string())? {
                Presence::Present(dev) => dev,
                Presence::Absent(n) => {
                    gone.push(n);
                    continue;
                }
            }
        } else {
            device_from_path(Path::new(arg)).map_err(|e| e.to_string())?
        };
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
        emit(&format!(
            "\nlvmetad pid {}: token \"{}\", {}\n",
            gi.daemon_pid,
            gi.token,
            if gi.global_disable {
                format!("DISABLED ({})", gi.disable_reason)
            } else {
                "enabled".into()
            }
        ));
    }
    Ok(())
}

fn print_inventory(o: &Options, inv: &Inventory) {
    emit(&if o.json {
        inv.to_json()
    } else {
        inv.to_table()
    });
}

/// Everything for stdout (see `common::tool_output`).
fn emit(text: &str) {
    common::tool_output::emit("lvmetad-scan", text);
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
    let filter = match o.config.clone().or_else(system_lvm_conf) {
        Some(p) => GlobalFilter::from_file(&p).map_err(|e| e.to_string())?,
        None => GlobalFilter::none(),
    };
    if o.cache && !o.devices.is_empty() {
        return update_devices(o, &filter);
    }
    if o.cache {
        let mut l = Lvmetad::connect(&o.socket, filter.token()).map_err(|e| e.to_string())?;
        l.feeds = o.feeds;
        // "update in progress" before listing and reading the devices: device events from
        // then on wait for this update and are applied after it.
        l.begin_update().map_err(|e| e.to_string())?;
        let devs = all_devices(&filter);
        let mut warnings = Vec::new();
        let (mut sum, _) = l
            .repopulate_scanning(&devs, o.scan, &mut warnings)
            .map_err(|e| e.to_string())?;
        sum.warnings.splice(0..0, warnings);
        return Ok(report_feed(&sum));
    }
    let (devs, _) = select_devices(o, &filter)?;
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

/// `--cache DEV...`: the named devices only, each read and sent under its per-device lock (see
/// `common::scan::devno`) so that concurrent event scans of one device leave its latest state.
fn update_devices(o: &Options, filter: &GlobalFilter) -> Result<bool, String> {
    let mut l = Lvmetad::connect(&o.socket, filter.token()).map_err(|e| e.to_string())?;
    l.feeds = o.feeds;
    // Lock every number the arguments may name, then resolve them: a scanner that waited for
    // the lock sees the device as the last event left it.
    let mut numbers = Vec::new();
    for arg in &o.devices {
        if devno::looks_like_devno(arg) {
            let (ma, mi) = devno::parse_major_minor(arg).map_err(|e| e.to_string())?;
            numbers.push(common::scan::device::makedev(ma, mi));
        } else if let Ok(d) = device_from_path(Path::new(arg)) {
            numbers.push(d.devno);
        }
    }
    let _locks = DeviceLocks::acquire(&o.socket, &numbers);
    let (devs, gone) = select_devices(o, filter)?;
    let sum = l
        .update_devices(&devs, &gone, o.scan, &|| all_devices(filter))
        .map_err(|e| e.to_string())?;
    Ok(report_feed(&sum))
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
