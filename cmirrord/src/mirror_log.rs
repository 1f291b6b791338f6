//! One mirror log's state and its functions (docs/protocol.md §7.5, §7.7, §7.8, §7.12): CTR
//! argument parsing, core and disk logs, mark / clear / flush, resync work hand-out, suspend /
//! resume, `is_remote_recovering`, sync count, and the status texts exactly as C prints them.
//!
//! No I/O here except through [`DiskLog`], so everything is unit-tested with an in-memory disk.
//! Errors are typed ([`Errno`]); `resume`, whose answer goes to the kernel as it is, returns
//! the negative value `dm_ulog_request.error` carries (`crate::errno::wire`).
#![forbid(unsafe_code)]

use crate::bitmap::Bitmap;
use crate::errno::{wire, Errno};
use common::log_info;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};

/// "MiRr", the dm-log disk header magic.
pub const MIRROR_MAGIC: u32 = 0x4D69_5272;
pub const MIRROR_DISK_VERSION: u32 = 2;
/// Clean bits start at sector 2.
pub const DISK_BITS_OFFSET: usize = 1024;
const HISTORY: usize = 50;

/// Test hook (`CMIRRORD_TRACE=1`): every resync history line is also logged as it happens, so a
/// test can follow the whole hand-out, not only the last [`HISTORY`] lines of a SIGUSR1 dump.
static TRACE: AtomicBool = AtomicBool::new(false);

pub fn set_trace(on: bool) {
    TRACE.store(on, Ordering::Relaxed);
}

/// The log device of a `clustered-disk` log.
pub trait DiskLog: Send {
    /// Read `buf.len()` bytes from offset 0.
    fn read_all(&mut self, buf: &mut [u8]) -> std::io::Result<()>;
    /// Write `buf` at offset 0 and make it durable.
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()>;
    /// Device number `(major, minor)` for the status texts.
    fn devno(&self) -> std::io::Result<(u32, u32)>;
}

/// `sync` / `nosync` / neither in the CTR arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    Default,
    NoSync,
    ForceSync,
}

/// Parsed CTR payload `"<dev_len> clustered-<core|disk> [<dev>] <region_size> [opts]"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtrArgs {
    pub device_len: u64,
    /// `Some(path or MAJ:MIN)` for `clustered-disk`.
    pub disk: Option<String>,
    pub region_size: u64,
    pub sync: SyncMode,
    pub block_on_error: bool,
    pub region_count: u64,
}

/// strtoll(s, &end, 0) with `*end == 0` required; 0 counts as invalid as in C.
fn parse_c_number(s: &str) -> Option<u64> {
    let s = s.trim_start();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()?
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()?
    } else {
        s.parse::<u64>().ok()?
    };
    if v == 0 || neg {
        return None;
    }
    Some(v)
}

/// Parse the CTR payload (NUL-terminated text). Errors are -EINVAL with a reason for the log.
pub fn parse_ctr(data: &[u8]) -> Result<CtrArgs, String> {
    if data.is_empty() {
        return Err("Received constructor request with no data".into());
    }
    let text = match data.iter().position(|&b| b == 0) {
        Some(n) => &data[..n],
        None => data,
    };
    let text = std::str::from_utf8(text).map_err(|_| "constructor data is not text".to_owned())?;
    let mut tok = text.split(' ');
    let dev_len_s = tok.next().unwrap_or("");
    let argv: Vec<&str> = tok.collect();
    if argv.is_empty() {
        return Err(format!("Received constructor request with bad data {text}"));
    }
    let kind = argv[0];
    if kind != "clustered-disk" && kind != "clustered-core" {
        return Err(format!("Unsupported userspace log type, \"{kind}\""));
    }
    let device_len = parse_c_number(dev_len_s)
        .ok_or_else(|| format!("Invalid device size argument: {dev_len_s}"))?;
    let args = &argv[1..];
    if args.is_empty() {
        return Err(format!("Too few arguments to {kind} log type"));
    }
    // As C: the first argument names a disk when it is not a plain number.
    let disk_log = parse_c_number(args[0]).is_none();
    if disk_log && args[0].is_empty() {
        return Err("empty log device argument".into());
    }
    let (lo, hi) = if disk_log { (2, 4) } else { (1, 3) };
    if args.len() < lo || args.len() > hi {
        return Err(format!(
            "Too {} arguments to clustered-{} log type",
            if args.len() < lo { "few" } else { "many" },
            if disk_log { "disk" } else { "core" }
        ));
    }
    let rs = args[usize::from(disk_log)];
    let region_size = parse_c_number(rs).ok_or_else(|| {
        format!(
            "Invalid region_size argument to clustered-{} log type",
            if disk_log { "disk" } else { "core" }
        )
    })?;
    let mut sync = SyncMode::Default;
    let mut block_on_error = false;
    for a in args {
        match *a {
            "sync" => sync = SyncMode::ForceSync,
            "nosync" => sync = SyncMode::NoSync,
            "block_on_error" => block_on_error = true,
            _ => {}
        }
    }
    if region_size > u32::MAX as u64 {
        return Err("region_size does not fit 32 bits".into());
    }
    let region_count = device_len.div_ceil(region_size);
    if region_count > u32::MAX as u64 {
        return Err("too many regions".into());
    }
    Ok(CtrArgs {
        device_len,
        disk: disk_log.then(|| args[0].to_owned()),
        region_size,
        sync,
        block_on_error,
        region_count,
    })
}

/// `LOG_RESUMED` / `LOG_SUSPENDED` (0 before the first resume).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogState {
    New,
    Resumed,
    Suspended,
}

/// Reply of GET_RESYNC_WORK: `Some(region)` = recover it.
pub type ResyncWork = Option<u64>;

pub struct MirrorLog {
    pub region_size: u64,
    pub region_count: u64,
    pub sync: SyncMode,
    pub block_on_error: bool,
    pub clean_bits: Bitmap,
    pub sync_bits: Bitmap,
    pub sync_count: u64,
    /// Region being recovered and by whom (`None` = C's -1).
    pub recovering: Option<(u64, u32)>,
    pub sync_search: u64,
    pub in_sync: bool,
    pub touched: bool,
    pub recovery_halted: bool,
    pub state: LogState,
    /// What a checkpoint loaded: +1 sync bits, +2 clean bits; 1000 after a resume.
    pub resume_override: u32,
    /// region -> nodes that have it marked.
    pub marks: BTreeMap<u64, Vec<u32>>,
    /// IS_REMOTE_RECOVERING asked for these first (newest first, as C's list).
    priority: VecDeque<u64>,
    disk: Option<Box<dyn DiskLog>>,
    pub log_dev_failed: bool,
    history: VecDeque<String>,
}

impl MirrorLog {
    pub fn new(args: &CtrArgs, disk: Option<Box<dyn DiskLog>>) -> MirrorLog {
        let mut sync_bits = Bitmap::new(args.region_count);
        if args.sync == SyncMode::NoSync {
            sync_bits.set_all();
        }
        MirrorLog {
            region_size: args.region_size,
            region_count: args.region_count,
            sync: args.sync,
            block_on_error: args.block_on_error,
            clean_bits: Bitmap::new(args.region_count),
            sync_count: if args.sync == SyncMode::NoSync {
                args.region_count
            } else {
                0
            },
            sync_bits,
            recovering: None,
            sync_search: 0,
            in_sync: false,
            touched: false,
            recovery_halted: false,
            state: LogState::New,
            resume_override: 0,
            marks: BTreeMap::new(),
            priority: VecDeque::new(),
            disk,
            log_dev_failed: false,
            history: VecDeque::new(),
        }
    }

    pub fn is_disk(&self) -> bool {
        self.disk.is_some()
    }

    fn note(&mut self, s: String) {
        if TRACE.load(Ordering::Relaxed) {
            log_info!("history: {s}");
        }
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(s);
    }

    pub fn history(&self) -> impl Iterator<Item = &String> {
        self.history.iter()
    }

    fn check(&self, region: u64) -> Result<(), Errno> {
        if region >= self.region_count {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    /// Size of the disk image: header sector(s) plus the clean bits, rounded up to 4 KiB.
    pub fn disk_image_len(&self) -> usize {
        (DISK_BITS_OFFSET + self.region_count.div_ceil(8) as usize).next_multiple_of(4096)
    }

    fn write_disk(&mut self) -> Result<(), Errno> {
        let len = self.disk_image_len();
        let Some(disk) = self.disk.as_mut() else {
            return Ok(());
        };
        let mut buf = vec![0u8; len];
        buf[0..4].copy_from_slice(&MIRROR_MAGIC.to_le_bytes());
        buf[4..8].copy_from_slice(&MIRROR_DISK_VERSION.to_le_bytes());
        buf[8..16].copy_from_slice(&self.region_count.to_le_bytes());
        let bits = self.clean_bits.to_disk_bytes();
        buf[DISK_BITS_OFFSET..DISK_BITS_OFFSET + bits.len()].copy_from_slice(&bits);
        if disk.write_all(&buf).is_err() {
            self.log_dev_failed = true;
            return Err(Errno::EIO);
        }
        Ok(())
    }

    /// Read the disk log: `Ok(nr_regions)`, -EINVAL for a bad magic, -EIO for a failed read.
    fn read_disk(&mut self) -> Result<u64, Errno> {
        let len = self.disk_image_len();
        let Some(disk) = self.disk.as_mut() else {
            return Err(Errno::EINVAL);
        };
        let mut buf = vec![0u8; len];
        disk.read_all(&mut buf).map_err(|_| Errno::EIO)?;
        let magic = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if magic != MIRROR_MAGIC {
            return Err(Errno::EINVAL);
        }
        let mut nr = [0u8; 8];
        nr.copy_from_slice(&buf[8..16]);
        self.clean_bits.load_disk_bytes(&buf[DISK_BITS_OFFSET..]);
        Ok(u64::from_le_bytes(nr))
    }

    pub fn presuspend(&mut self) {
        self.recovery_halted = true;
    }

    /// The log part of POSTSUSPEND (the node leaves its CPG group around it).
    pub fn postsuspend(&mut self) {
        self.state = LogState::Suspended;
        self.recovering = None;
    }

    /// Our own leave completed: the next resume starts over (`resume_override = 0`).
    pub fn left_cluster(&mut self) {
        self.resume_override = 0;
    }

    /// RESUME as processed when it comes back through the cluster. Returns the error for the
    /// kernel (0 or negative errno).
    pub fn resume(&mut self) -> i32 {
        self.in_sync = false;
        let mut error = 0;
        match self.resume_override {
            1000 => {
                self.note("Additional resume issued before suspend".into());
                return 0;
            }
            0 => {
                self.resume_override = 1000;
                let mut disk_nr = 0;
                if self.disk.is_some() {
                    if !self.log_dev_failed {
                        match self.read_disk() {
                            Ok(n) => disk_nr = n,
                            Err(Errno::EINVAL) => {}
                            Err(e) => error = wire(e),
                        }
                    }
                    if error != 0 {
                        disk_nr = 0;
                    }
                }
                let nosync = self.sync == SyncMode::NoSync;
                for i in disk_nr.min(self.region_count)..self.region_count {
                    let _ = self.clean_bits.set(i, nosync);
                }
                self.clean_bits.clear_tail();
                self.sync_bits.copy_from(&self.clean_bits);
                if self.disk.is_some() {
                    // A failed read still re-initialises the disk, as C does.
                    error = self.write_disk().err().map_or(0, wire);
                }
                self.touched = false;
            }
            3 => self.resume_override = 1000,
            1 => return wire(Errno::EINVAL), // partial load: just sync bits
            2 => return wire(Errno::EINVAL), // partial load: just clean bits
            _ => return wire(Errno::EINVAL),
        }
        self.sync_bits.clear_tail();
        self.clean_bits.clear_tail();
        self.sync_count = self.sync_bits.count_ones();
        let s = format!("Initial sync_count = {}", self.sync_count);
        self.note(s);
        self.sync_search = 0;
        self.state = LogState::Resumed;
        self.recovery_halted = false;
        error
    }

    pub fn is_clean(&self, region: u64) -> Result<bool, Errno> {
        self.check(region)?;
        Ok(self.clean_bits.get(region).unwrap_or(false))
    }

    pub fn in_sync_query(&self, region: u64) -> Result<bool, Errno> {
        self.check(region)?;
        Ok(self.sync_bits.get(region).unwrap_or(false) || self.in_sync)
    }

    /// FLUSH: the server writes the disk log if anything changed; everybody clears `touched`.
    pub fn flush(&mut self, server: bool) -> Result<(), Errno> {
        if !self.touched {
            return Ok(());
        }
        let r = if server { self.write_disk() } else { Ok(()) };
        self.touched = false;
        r
    }

    pub fn mark(&mut self, regions: &[u64], who: u32) -> Result<(), Errno> {
        for &r in regions {
            self.check(r)?;
        }
        for &r in regions {
            let nodes = self.marks.entry(r).or_default();
            if nodes.contains(&who) {
                continue;
            }
            if nodes.is_empty() {
                let _ = self.clean_bits.set(r, false);
                self.touched = true;
            }
            nodes.push(who);
        }
        Ok(())
    }

    pub fn clear(&mut self, regions: &[u64], who: u32) -> Result<(), Errno> {
        for &r in regions {
            self.check(r)?;
        }
        for &r in regions {
            let others = match self.marks.get_mut(&r) {
                Some(nodes) => {
                    nodes.retain(|&n| n != who);
                    let o = !nodes.is_empty();
                    if !o {
                        self.marks.remove(&r);
                    }
                    o
                }
                None => false,
            };
            if !others && self.sync_bits.get(r).unwrap_or(false) {
                let _ = self.clean_bits.set(r, true);
                self.touched = true;
            }
        }
        Ok(())
    }

    pub fn get_resync_work(&mut self, who: u32) -> ResyncWork {
        // Unlike C, a re-request is answered before the "all handed out" check, so the node
        // recovering the last region gets it back instead of "no work".
        if let Some((r, recoverer)) = self.recovering {
            if recoverer == who {
                self.note(format!("GET - nodeid = {who}:: Re-requesting work ({r})"));
                return Some(r);
            }
            self.note(format!(
                "GET - nodeid = {who}:: Someone already recovering ({r})"
            ));
            return None;
        }
        if self.sync_search >= self.region_count {
            return None;
        }
        while let Some(r) = self.priority.pop_front() {
            if !self.sync_bits.get(r).unwrap_or(true) {
                self.note(format!(
                    "GET - nodeid = {who}:: Assigning priority resync work ({r})"
                ));
                self.recovering = Some((r, who));
                return Some(r);
            }
        }
        match self.sync_bits.next_zero(self.sync_search) {
            None => {
                self.note(format!("GET - nodeid = {who}:: Resync work complete."));
                self.sync_search = self.region_count + 1;
                None
            }
            Some(r) => {
                self.sync_search = r + 1;
                self.note(format!(
                    "GET - nodeid = {who}:: Assigning resync work ({r})"
                ));
                self.recovering = Some((r, who));
                Some(r)
            }
        }
    }

    /// Node `who` left the cluster: the region it was recovering goes back to the pool. (C keeps
    /// the dead node's claim, and every other node gets "no work" until the next resume.)
    pub fn forget_recoverer(&mut self, who: u32) {
        if let Some((r, recoverer)) = self.recovering {
            if recoverer == who {
                self.note(format!("Node {who} left while recovering region {r}"));
                self.recovering = None;
                self.sync_search = self.sync_search.min(r);
            }
        }
    }

    pub fn set_region_sync(&mut self, region: u64, in_sync: bool, who: u32) -> Result<(), Errno> {
        self.check(region)?;
        self.recovering = None;
        let was = self.sync_bits.get(region).unwrap_or(false);
        if in_sync && !was {
            let _ = self.sync_bits.set(region, true);
            self.touched = true;
            self.sync_count += 1;
            self.note(format!("SET - nodeid = {who}:: Setting region ({region})"));
        } else if !in_sync && was {
            let _ = self.sync_bits.set(region, false);
            self.touched = true;
            self.sync_count -= 1;
            self.note(format!(
                "SET - nodeid = {who}:: Unsetting region ({region})"
            ));
        }
        let real = self.sync_bits.count_ones();
        if self.sync_count != real {
            self.note(format!(
                "SET - sync_count({}) != bitmap count({real})",
                self.sync_count
            ));
            self.sync_count = real;
        }
        if self.sync_count == self.region_count {
            self.in_sync = true;
        }
        Ok(())
    }

    pub fn get_sync_count(&mut self) -> u64 {
        let real = self.sync_bits.count_ones();
        if self.sync_count != real {
            self.sync_count = real;
        }
        self.sync_count
    }

    /// `{is_recovering, in_sync_hint}`.
    pub fn is_remote_recovering(&mut self, region: u64) -> Result<(bool, u64), Errno> {
        self.check(region)?;
        let (rec, hint) = if self.recovery_halted {
            (false, self.region_count)
        } else {
            (
                !self.sync_bits.get(region).unwrap_or(true),
                self.sync_search.saturating_sub(1),
            )
        };
        let current = self.recovering.map(|(r, _)| r);
        if rec && current != Some(region) && !self.priority.contains(&region) {
            self.priority.push_front(region);
        }
        Ok((rec, hint))
    }

    fn sync_word(&self) -> &'static str {
        match self.sync {
            SyncMode::Default => "",
            SyncMode::NoSync => "nosync ",
            SyncMode::ForceSync => "sync ",
        }
    }

    /// STATUS_INFO text (no NUL).
    pub fn status_info(&self) -> Result<String, Errno> {
        match &self.disk {
            None => Ok("1 clustered-core".into()),
            Some(d) => {
                let (ma, mi) = d
                    .devno()
                    .map_err(|e| crate::errno::from_io(&e, Errno::EIO))?;
                Ok(format!(
                    "3 clustered-disk {ma}:{mi} {}",
                    if self.log_dev_failed { 'D' } else { 'A' }
                ))
            }
        }
    }

    /// STATUS_TABLE text (no NUL; ends with a space as C prints it).
    pub fn status_table(&self) -> Result<String, Errno> {
        let boe = if self.block_on_error {
            "block_on_error"
        } else {
            ""
        };
        match &self.disk {
            None => Ok(format!(
                "clustered-core {} {}{} ",
                self.region_size,
                self.sync_word(),
                boe
            )),
            Some(d) => {
                let (ma, mi) = d
                    .devno()
                    .map_err(|e| crate::errno::from_io(&e, Errno::EIO))?;
                Ok(format!(
                    "clustered-disk {ma}:{mi} {} {}{} ",
                    self.region_size,
                    self.sync_word(),
                    boe
                ))
            }
        }
    }

    /// Load sync and clean bits and the recovering region from a checkpoint.
    pub fn load_checkpoint(
        &mut self,
        sync: &[u8],
        clean: &[u8],
        recovering: Option<(u64, u32)>,
    ) -> Result<(), Errno> {
        self.sync_bits.load_image(sync).map_err(|_| Errno::EINVAL)?;
        self.resume_override += 1;
        self.clean_bits
            .load_image(clean)
            .map_err(|_| Errno::EINVAL)?;
        self.resume_override += 2;
        self.recovering = recovering;
        Ok(())
    }

    /// Debug dump lines (SIGUSR1), as C's `log_debug` prints one log.
    pub fn dump(&self, uuid: &str, official: bool) -> Vec<String> {
        let mut out = vec![uuid.to_owned()];
        if official {
            let (rr, rc) = self.recovering.unwrap_or((u64::MAX, u32::MAX));
            out.push(format!("  recoverer        : {rc}"));
            out.push(format!("  recovering_region: {rr}"));
            out.push(format!(
                "  recovery_halted  : {}",
                if self.recovery_halted { "YES" } else { "NO" }
            ));
        }
        out.push("sync_bits:".into());
        out.extend(self.sync_bits.dump_lines());
        out.push("clean_bits:".into());
        out.extend(self.clean_bits.dump_lines());
        if official {
            let short = crate::short_uuid(uuid);
            out.push(format!("Validating {short}::"));
            out.push(format!("  lc->region_count = {}", self.region_count));
            out.push(format!("  lc->sync_count = {}", self.sync_count));
            let nz = self.sync_bits.next_zero(0).unwrap_or(u64::MAX);
            out.push(format!("  next zero bit  = {nz}"));
            out.push("Resync request history:".into());
            for (i, h) in self.history.iter().enumerate() {
                out.push(format!("{i}) {h}"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
