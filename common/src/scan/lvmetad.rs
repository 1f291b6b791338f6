//! The lvmetad client side of `pvscan --cache` (docs/protocol.md §4): the request envelope and
//! the two scans: full repopulation (§4.4; while reading, [`super::stream`], or from a complete
//! scan, [`super::feed`]) and named devices (§4.5), with duplicate-PV detection that disables
//! lvmetad (reason DUPLICATES) and a clean full scan that re-enables it. What `pv_found`
//! carries is [`super::pv_found`]'s. [`Lvmetad`] wraps a `common::daemon::Client`.

use super::device::{scan_devices, Device, ScanOptions};
use super::feed::{feed_parallel, FeedSession, MAX_FEEDS};
use super::label::dashed_uuid;
use super::pv::ScannedPv;
pub use super::pv_found::{
    find_duplicates, preferred_duplicate, pv_found_text, pvmeta_node, seqno_warning,
};
use super::stream::feed_while_scanning;
use super::vg_once::VgOnce;
use crate::config::{Node, Tree};
use crate::daemon::{Client, ClientError};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The token lvm2 sets while a repopulation runs.
pub const UPDATE_IN_PROGRESS: &str = "update in progress";
/// `global/lvmetad_update_wait_time` default, seconds.
pub const DEFAULT_WAIT: u64 = 10;
/// The disable reason sent when duplicate PVs are seen.
pub const REASON_DUPLICATES: &str = "DUPLICATES";

#[derive(Debug)]
pub enum FeedError {
    Client(ClientError),
    /// lvmetad answered with something other than OK.
    Refused {
        request: String,
        response: String,
        reason: String,
    },
    /// Another command kept the update token for longer than the wait time.
    UpdateBusy(u64),
    /// Another command took over our update.
    UpdateRaced,
}

impl fmt::Display for FeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedError::Client(e) => write!(f, "lvmetad: {e}"),
            FeedError::Refused {
                request,
                response,
                reason,
            } => {
                write!(f, "lvmetad refused {request}: {response}: {reason}")
            }
            FeedError::UpdateBusy(s) => {
                write!(
                    f,
                    "another command is updating lvmetad; gave up after {s} s"
                )
            }
            FeedError::UpdateRaced => write!(f, "another command took over the lvmetad update"),
        }
    }
}

impl std::error::Error for FeedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FeedError::Client(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ClientError> for FeedError {
    fn from(e: ClientError) -> Self {
        FeedError::Client(e)
    }
}

/// The interesting part of `get_global_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalInfo {
    pub token: String,
    pub global_disable: bool,
    pub global_invalid: bool,
    pub disable_reason: String,
    pub daemon_pid: i64,
}

/// An open lvmetad session.
pub struct Lvmetad {
    client: Client,
    socket: PathBuf,
    /// The filter token this client uses.
    pub filter_token: String,
    token: String,
    pid: i64,
    cmd: String,
    /// Seconds; sent as `update_timeout` and used as the retry budget.
    pub wait: u64,
    /// Connections a full repopulation sends `pv_found` over (1: one after the other on this
    /// one; more: see [`super::feed`]).
    pub feeds: usize,
    /// `pv_found` requests a connection may have unanswered: [`PIPELINE`] when the daemon says
    /// it answers pipelined requests (ours), 1 otherwise (lvm2's C lvmetad). Learnt by
    /// [`probe_pipelining`](Self::probe_pipelining) before a full repopulation.
    window: usize,
    /// A feeding session (several connections): what it sent of each VG, to send each VG's
    /// metadata once ([`super::vg_once`]); `None` (one connection, lvm2's way): every PV
    /// carries its VG's.
    once: Option<VgOnce>,
    /// Whether each `pv_found` in flight carried VG metadata, oldest first.
    carried: VecDeque<bool>,
}

/// Requests in flight on one connection when lvmetad pipelines: enough to keep it busy while
/// the scanner reads, and their replies (about 100 bytes each) never fill the socket buffer,
/// so lvmetad never blocks writing a reply while we write requests.
pub const PIPELINE: usize = 32;

/// Sending `pv_found` through [`super::feed`] and [`super::stream`].
impl FeedSession for Lvmetad {
    type Error = FeedError;

    fn post(&mut self, dev: &Device, pv: &ScannedPv) -> Result<(), FeedError> {
        let metadata = match &mut self.once {
            Some(once) => once.post(pv),
            None => true,
        };
        self.send_pv_found(dev, pv, metadata)?;
        self.carried.push_back(metadata);
        Ok(())
    }

    fn answer(&mut self, pv: &ScannedPv) -> Result<Option<String>, FeedError> {
        let r = self.client.reply()?;
        Self::expect_ok("pv_found", &r)?;
        if !self.carried.pop_front().unwrap_or(true) {
            // Without metadata lvmetad reports no seqno_before: nothing to warn about.
            return Ok(None);
        }
        if let Some(once) = &mut self.once {
            once.answered(pv, r.find_int("seqno_after"));
        }
        Ok(seqno_warning(pv, &r))
    }

    fn window(&self) -> usize {
        self.window
    }

    fn must_wait(&self, pv: &ScannedPv) -> bool {
        self.once.as_ref().is_some_and(|o| o.must_wait(pv))
    }
}

/// What a scan did, for the caller to report.
#[derive(Debug, Default)]
pub struct FeedSummary {
    pub pv_found: usize,
    pub pv_gone: usize,
    /// pvid -> device paths, when duplicates were seen.
    pub duplicates: BTreeMap<String, Vec<String>>,
    /// Warnings (`pv_found` refusals, inconsistent seqnos).
    pub warnings: Vec<String>,
    /// Whether lvmetad ended up disabled.
    pub disabled: Option<String>,
}

impl Lvmetad {
    pub fn connect(socket: &Path, filter_token: String) -> Result<Lvmetad, FeedError> {
        let client = Client::connect(socket, "lvmetad", Some(1))?;
        Ok(Lvmetad {
            client,
            socket: socket.to_owned(),
            token: filter_token.clone(),
            filter_token,
            pid: i64::from(std::process::id()),
            cmd: "lvmetad-scan".into(),
            wait: DEFAULT_WAIT,
            feeds: MAX_FEEDS,
            window: 1,
            once: None,
            carried: VecDeque::new(),
        })
    }

    /// Ask lvmetad whether it answers pipelined requests; later sessions of this updater
    /// ([`another_session`](Self::another_session)) post that many `pv_found` ahead.
    pub fn probe_pipelining(&mut self) -> Result<(), FeedError> {
        self.window = if self.client.pipelining()? {
            PIPELINE
        } else {
            1
        };
        Ok(())
    }

    /// One more connection of this updater: same socket, pid, command and current token, so
    /// that lvmetad takes its requests as part of our update.
    pub fn another_session(&self) -> Result<Lvmetad, FeedError> {
        let mut s = Lvmetad::connect(&self.socket, self.filter_token.clone())?;
        s.token = self.token.clone();
        s.pid = self.pid;
        s.cmd = self.cmd.clone();
        s.wait = self.wait;
        s.feeds = 1;
        s.window = self.window;
        // C's lvmetad 2.02.187 too: scan-root-feed.sh, run by hand with it in place of ours,
        // finds the same cache.
        s.once = Some(VgOnce::default());
        Ok(s)
    }

    /// Send `name` with the envelope of §4.2 (`token` overridable, e.g. "skip").
    pub fn request(
        &mut self,
        name: &str,
        token: Option<&str>,
        body: Vec<Node>,
    ) -> Result<Tree, FeedError> {
        let req = self.envelope(name, token, body);
        Ok(self.client.request(&req)?)
    }

    /// The request `name` in the envelope of §4.2, then `body`.
    fn envelope(&self, name: &str, token: Option<&str>, body: Vec<Node>) -> Tree {
        let mut req = Tree::new()
            .with("request", name)
            .with("token", token.unwrap_or(&self.token).to_owned())
            .with("update_timeout", self.wait as i64)
            .with("pid", self.pid)
            .with("cmd", self.cmd.clone());
        req.nodes.extend(body);
        req
    }

    fn expect_ok(name: &str, reply: &Tree) -> Result<(), FeedError> {
        match reply.find_str("response") {
            Some("OK") => Ok(()),
            other => Err(FeedError::Refused {
                request: name.into(),
                response: other.unwrap_or("(none)").into(),
                reason: reply.find_str("reason").unwrap_or("").into(),
            }),
        }
    }

    pub fn global_info(&mut self) -> Result<GlobalInfo, FeedError> {
        let r = self.request("get_global_info", Some("skip"), vec![])?;
        Self::expect_ok("get_global_info", &r)?;
        Ok(GlobalInfo {
            token: r.find_str_allow_empty("token").unwrap_or("none").into(),
            global_disable: r.find_int("global_disable").unwrap_or(0) == 1,
            global_invalid: r.find_int("global_invalid").unwrap_or(0) == 1,
            disable_reason: r
                .find_str_allow_empty("disable_reason")
                .unwrap_or("")
                .into(),
            daemon_pid: r.find_int("daemon_pid").unwrap_or(0),
        })
    }

    /// `set_global_info global_disable=1 disable_reason=...` or `global_disable=0`.
    pub fn set_disabled(&mut self, reason: Option<&str>) -> Result<(), FeedError> {
        let body = match reason {
            Some(r) => vec![
                Node::value("global_disable", 1),
                Node::value("disable_reason", r),
            ],
            None => vec![Node::value("global_disable", 0)],
        };
        let r = self.request("set_global_info", Some("skip"), body)?;
        Self::expect_ok("set_global_info", &r)
    }

    /// Install "update in progress" (retrying while another update holds it).
    pub fn begin_update(&mut self) -> Result<(), FeedError> {
        let deadline = Instant::now() + Duration::from_secs(self.wait);
        self.token = UPDATE_IN_PROGRESS.into();
        loop {
            let r = self.request("token_update", None, vec![])?;
            match r.find_str("response") {
                Some("OK") => {
                    let prev = r.find_str_allow_empty("prev_token").unwrap_or("");
                    let owner = r.find_int("update_pid").unwrap_or(0);
                    if prev == UPDATE_IN_PROGRESS && owner != self.pid {
                        return Err(FeedError::UpdateRaced);
                    }
                    return Ok(());
                }
                Some("token_updating") if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(
                        1000 + u64::from(std::process::id() % 1000),
                    ));
                }
                Some("token_updating") => return Err(FeedError::UpdateBusy(self.wait)),
                _ => return Self::expect_ok("token_update", &r),
            }
        }
    }

    /// Install our filter token, ending the update.
    pub fn end_update(&mut self) -> Result<(), FeedError> {
        self.token = self.filter_token.clone();
        let r = self.request("token_update", None, vec![])?;
        Self::expect_ok("token_update", &r)
    }

    pub fn pv_clear_all(&mut self) -> Result<(), FeedError> {
        let r = self.request("pv_clear_all", None, vec![])?;
        Self::expect_ok("pv_clear_all", &r)
    }

    /// Send `pv_found`; a `failed` reply (e.g. "Ignore duplicate PV") comes back as `Refused`.
    pub fn pv_found(&mut self, dev: &Device, pv: &ScannedPv) -> Result<Tree, FeedError> {
        self.send_pv_found(dev, pv, true)?;
        let r = self.client.reply()?;
        Self::expect_ok("pv_found", &r)?;
        Ok(r)
    }

    fn send_pv_found(
        &mut self,
        dev: &Device,
        pv: &ScannedPv,
        metadata: bool,
    ) -> Result<(), FeedError> {
        let req = self.envelope("pv_found", None, vec![]);
        let text = pv_found_text(&req.nodes, dev, pv, metadata);
        Ok(self.client.send_raw(text.as_bytes())?)
    }

    pub fn pv_gone(&mut self, devno: u64) -> Result<(), FeedError> {
        let r = self.request("pv_gone", None, vec![Node::value("device", devno as i64)])?;
        match r.find_str("response") {
            // "device not in cache" is not a failure for a scanner.
            Some("OK") | Some("unknown") => Ok(()),
            // token_mismatch and the rest come back as Refused.
            _ => Self::expect_ok("pv_gone", &r),
        }
    }

    /// Full repopulation (§4.4) from already scanned devices: update token, clear, one
    /// `pv_found` per PVID, final token, then disable on duplicates or re-enable if clean.
    /// Call [`begin_update`](Self::begin_update) before scanning, as lvm2 does: a device
    /// scanner then waits for the update and reads its device after the full scan did.
    pub fn repopulate(&mut self, scans: &[(Device, ScannedPv)]) -> Result<FeedSummary, FeedError> {
        let mut sum = FeedSummary::default();
        let dups = find_duplicates(scans);
        let skip: Vec<usize> = dups
            .values()
            .flat_map(|idx| {
                let keep = preferred_duplicate(scans, idx);
                idx.iter().copied().filter(move |&i| i != keep)
            })
            .collect();
        // A caller that began the update before scanning (so that device events arriving
        // meanwhile wait for it, see `update_devices`) has the token already.
        if self.token != UPDATE_IN_PROGRESS {
            self.begin_update()?;
        }
        self.pv_clear_all()?;
        let sent: Vec<usize> = (0..scans.len()).filter(|i| !skip.contains(i)).collect();
        if self.feeds > 1 {
            let me: &Lvmetad = self;
            let fed = feed_parallel(&|| me.another_session(), scans, &sent, self.feeds)?;
            sum.pv_found = fed.pv_found;
            sum.warnings
                .extend(fed.warnings.into_iter().map(|(_, w)| w));
        } else {
            for i in sent {
                let (dev, pv) = &scans[i];
                let r = self.pv_found(dev, pv)?;
                sum.pv_found += 1;
                sum.warnings.extend(seqno_warning(pv, &r));
            }
        }
        self.conclude(scans, &dups, sum)
    }

    /// Full repopulation that reads the devices and sends each PV as it is read (see
    /// [`super::stream`]), with the scan's own warnings added to `warnings`. With one
    /// connection (`feeds` 1) it reads everything first and then feeds, as lvm2 does; when
    /// the PVs cannot be fed as they come (duplicates, groups split across connections) it
    /// feeds the complete scan again from a cleared cache, as [`repopulate`](Self::repopulate).
    pub fn repopulate_scanning(
        &mut self,
        devs: &[Device],
        opts: ScanOptions,
        warnings: &mut Vec<String>,
    ) -> Result<(FeedSummary, Vec<(Device, ScannedPv)>), FeedError> {
        if self.feeds <= 1 {
            let scans = scan_found_pvs(devs, opts, warnings);
            return Ok((self.repopulate(&scans)?, scans));
        }
        if self.token != UPDATE_IN_PROGRESS {
            self.begin_update()?;
        }
        self.pv_clear_all()?;
        self.probe_pipelining()?;
        let me: &Lvmetad = self;
        let st = feed_while_scanning(&|| me.another_session(), devs, opts, self.feeds)?;
        warnings.extend(st.scan_warnings);
        if st.redo.is_some() {
            return Ok((self.repopulate(&st.scans)?, st.scans));
        }
        let sum = FeedSummary {
            pv_found: st.fed.pv_found,
            warnings: st.fed.warnings.into_iter().map(|(_, w)| w).collect(),
            ..FeedSummary::default()
        };
        Ok((self.conclude(&st.scans, &BTreeMap::new(), sum)?, st.scans))
    }

    /// The end of a full repopulation: the final token, then disable on duplicates (`dups`:
    /// pvid -> scan indices) or re-enable after a clean scan.
    fn conclude(
        &mut self,
        scans: &[(Device, ScannedPv)],
        dups: &BTreeMap<String, Vec<usize>>,
        mut sum: FeedSummary,
    ) -> Result<FeedSummary, FeedError> {
        self.end_update()?;
        for (pvid, idx) in dups {
            let paths = idx
                .iter()
                .map(|&i| scans[i].0.path.display().to_string())
                .collect();
            sum.duplicates.insert(dashed_uuid(pvid), paths);
        }
        if !dups.is_empty() {
            self.set_disabled(Some(REASON_DUPLICATES))?;
        } else if self.global_info()?.global_disable {
            self.set_disabled(None)?;
        }
        let gi = self.global_info()?;
        sum.disabled = gi.global_disable.then_some(gi.disable_reason);
        Ok(sum)
    }

    /// `pvscan --cache DEV...` (§4.5) over devices that passed the filter (`gone` are those that
    /// did not, or that are absent: they get `pv_gone`). Each device is read only once lvmetad's
    /// token says no full update runs, so what it is sent is never older than what a full
    /// update sent:
    ///
    /// - token "update in progress": wait (polling `get_global_info`) until the update ends,
    ///   for up to `wait` seconds plus a margin (lvmetad itself drops an update older than
    ///   its timeout, and the token then reads "none");
    /// - token "none" or another filter's: a full repopulation over `all()` plus the named
    ///   devices (image files are in no device list), as lvm2 rescans everything: a cache
    ///   filled from the named devices alone would carry a token that claims it complete;
    /// - a `token_mismatch` answer to our `pv_found` / `pv_gone` (a full update began after
    ///   our check): wait for it to end, then read the devices again and resend.
    pub fn update_devices(
        &mut self,
        devs: &[Device],
        gone: &[u64],
        opts: ScanOptions,
        all: &dyn Fn() -> Vec<Device>,
    ) -> Result<FeedSummary, FeedError> {
        let deadline = Instant::now() + Duration::from_secs(self.wait + UPDATE_WAIT_MARGIN);
        loop {
            let info = self.global_info()?;
            if info.token == UPDATE_IN_PROGRESS {
                if Instant::now() >= deadline {
                    return Err(FeedError::UpdateBusy(self.wait + UPDATE_WAIT_MARGIN));
                }
                std::thread::sleep(poll_interval());
                continue;
            }
            if info.token != self.filter_token {
                // The token first, then the device list and the reads (see `repopulate`).
                self.begin_update()?;
                let mut every = all();
                for d in devs {
                    if !every.iter().any(|e| e.devno == d.devno) {
                        every.push(d.clone());
                    }
                }
                let mut warnings = Vec::new();
                let scans = scan_found_pvs(&every, opts, &mut warnings);
                let mut sum = self.repopulate(&scans)?;
                sum.warnings.splice(0..0, warnings);
                return Ok(sum);
            }
            let mut sum = FeedSummary::default();
            if info.global_disable {
                sum.disabled = Some(info.disable_reason);
                return Ok(sum);
            }
            match self.send_devices(devs, gone, opts, &mut sum) {
                Err(e) if is_token_mismatch(&e) && Instant::now() < deadline => continue,
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            let gi = self.global_info()?;
            sum.disabled = gi.global_disable.then_some(gi.disable_reason);
            return Ok(sum);
        }
    }

    /// One pass of [`update_devices`](Self::update_devices): read the devices now and send
    /// what they hold.
    fn send_devices(
        &mut self,
        devs: &[Device],
        gone: &[u64],
        opts: ScanOptions,
        sum: &mut FeedSummary,
    ) -> Result<(), FeedError> {
        for &devno in gone {
            self.pv_gone(devno)?;
            sum.pv_gone += 1;
        }
        for (dev, r) in devs.iter().zip(scan_devices(devs, opts)) {
            match r {
                Ok(pv) => match self.pv_found(dev, &pv) {
                    Ok(reply) => {
                        sum.pv_found += 1;
                        sum.warnings.extend(seqno_warning(&pv, &reply));
                    }
                    Err(e) if is_token_mismatch(&e) => return Err(e),
                    Err(FeedError::Refused { reason, .. }) => sum.warnings.push(format!(
                        "{}: lvmetad refused the PV: {reason}",
                        dev.path.display()
                    )),
                    Err(e) => return Err(e),
                },
                Err(_) => {
                    self.pv_gone(dev.devno)?;
                    sum.pv_gone += 1;
                }
            }
        }
        Ok(())
    }
}

/// Seconds a per-device update waits beyond `wait` for a running full update: enough for
/// lvmetad to expire an update whose owner died (its timeout is the same `wait`).
const UPDATE_WAIT_MARGIN: u64 = 2;

/// Between two looks at a running full update: 50..150 ms, spread by pid so that a storm of
/// waiting scanners does not poll in step (lvm2 sleeps 1..2 s; a `get_global_info` is cheap).
fn poll_interval() -> Duration {
    Duration::from_millis(50 + u64::from(std::process::id() % 100))
}

/// lvmetad answered `token_mismatch`: its token changed since we looked.
fn is_token_mismatch(e: &FeedError) -> bool {
    matches!(e, FeedError::Refused { response, .. } if response == "token_mismatch")
}

/// Scan devices, keeping the PVs and collecting non-"no label" errors as warnings.
pub fn scan_found_pvs(
    devs: &[Device],
    opts: ScanOptions,
    warnings: &mut Vec<String>,
) -> Vec<(Device, ScannedPv)> {
    let mut out = Vec::new();
    for (dev, r) in devs.iter().zip(scan_devices(devs, opts)) {
        match r {
            Ok(pv) => {
                for p in &pv.problems {
                    warnings.push(format!("{}: {p}", dev.path.display()));
                }
                out.push((dev.clone(), pv));
            }
            Err(e) if e.is_no_label() => {}
            Err(e) => warnings.push(e.to_string()),
        }
    }
    out
}
