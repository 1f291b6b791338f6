//! lvmetad-scan: read LVM2 PVs from disk and either print them (like `pvs`/`vgs`/`lvs`) or fill
//! lvmetad with them as `pvscan --cache` does. `--show` prints what lvmetad caches instead.
//!
//! All the work is in `common::scan` and the command line is read by `lvmetad::scan_options`;
//! this file only acts on the options and prints. Everything for stdout goes through [`emit`]
//! (`common::tool_output`): a reader that went away (`| head`, `| true`) ends the program quietly
//! with status 0 instead of a panic on EPIPE.
#![forbid(unsafe_code)]

use common::scan::device::{device_from_path, discover_block_devices, Device, DeviceError};
use common::scan::devno::{self, DeviceLocks, Presence};
use common::scan::filter::GlobalFilter;
use common::scan::lvmetad::{scan_found_pvs, FeedSummary, Lvmetad};
use common::scan::report::{vg_from_lookup, Inventory};
use lvmetad::scan_options::{self, Options};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `ECMD_FAILED` of lvm2.
const FAILED: u8 = 5;

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
    let args: Vec<String> = std::env::args().collect();
    let o =
        scan_options::parse(&args).or_exit_with(|s| common::tool_output::emit("lvmetad-scan", s));
    match run(&o) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(FAILED),
        Err(e) => {
            eprintln!("lvmetad-scan: {e}");
            ExitCode::from(FAILED)
        }
    }
}
