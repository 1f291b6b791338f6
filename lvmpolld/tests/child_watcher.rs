//! The real launcher against the fake `lvm` script: exit codes, signals, exec failure, stopping,
//! the unresponsive-child timeout, shutdown, and that every child is reaped.
#![forbid(unsafe_code)]

use lvmpolld::command::LvpollCommand;
use lvmpolld::request::{PollInit, PollType};
use lvmpolld::store::{Entry, InitResult, Outcome, Progress, Registry};
use lvmpolld::watcher::ChildWatcher;
use lvmpolld::Launcher;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn fake_lvm() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/lvmpolld/fake-lvm")
}

fn init(lvname: &str, timeout: u32) -> PollInit {
    PollInit {
        kind: PollType::Pvmove,
        lvid: format!("ID-{lvname}"),
        vgname: "vg".into(),
        lvname: lvname.into(),
        interval: "1".into(),
        sysdir: None,
        abort: false,
        handle_missing_pvs: false,
        timeout,
    }
}

fn start(
    reg: &Registry,
    w: &ChildWatcher,
    binary: &Path,
    lvname: &str,
    timeout: u32,
    extra_env: &[(&str, &str)],
) -> Arc<Entry> {
    let p = init(lvname, timeout);
    let InitResult::Created(e) = reg.poll_init(&p) else {
        panic!("not created")
    };
    let mut cmd = LvpollCommand::new(binary, &p);
    cmd.env
        .extend(extra_env.iter().map(|(k, v)| ((*k).into(), (*v).into())));
    w.launch(Arc::clone(&e), cmd);
    e
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(secs), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A process that is our child and a zombie.
fn is_our_zombie(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let after = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let mut f = after.split_whitespace();
    let state = f.next().unwrap_or("");
    let ppid: u32 = f.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    state == "Z" && ppid == std::process::id()
}

#[test]
fn outcomes_are_recorded_and_children_reaped() {
    let reg = Arc::new(Registry::new());
    let w = ChildWatcher::new(Arc::clone(&reg));
    let bin = fake_lvm();
    let ok = start(&reg, &w, &bin, "ok-200-0", 60, &[]);
    let fail = start(&reg, &w, &bin, "fail-200-5", 60, &[]);
    let sig = start(&reg, &w, &bin, "sig-200-sig9", 60, &[]);
    let slow = start(&reg, &w, &bin, "slow-20000-0", 60, &[]);
    let missing = start(&reg, &w, Path::new("/nonexistent/lvm"), "x-1-0", 60, &[]);
    wait_until("exec failure published", 10, || missing.state().finished);
    assert_eq!(
        missing.state().outcome,
        Some(Outcome::Exited(101)),
        "exec failure reads as C's LVMPD_RET_EXC_FAILED"
    );
    wait_until("short children end", 20, || reg.active() == 1);
    assert_eq!(ok.state().outcome, Some(Outcome::Exited(0)));
    assert_eq!(fail.state().outcome, Some(Outcome::Exited(5)));
    assert_eq!(sig.state().outcome, Some(Outcome::Signalled(9)));
    assert!(!slow.state().finished);
    assert_eq!(
        reg.progress(&slow.id, false, &slow.lvid),
        Progress::InProgress
    );
    assert!(reg.request_stop(&slow));
    w.terminate(&slow);
    wait_until("terminated child ends", 10, || reg.active() == 0);
    assert_eq!(slow.state().outcome, Some(Outcome::Signalled(15)));
    for e in [&ok, &fail, &sig, &slow] {
        let pid = e.state().pid;
        assert!(pid > 0);
        assert!(!is_our_zombie(pid), "PID {pid} left as a zombie");
    }
    w.shutdown();
}

#[test]
fn silent_child_is_a_monitoring_error_but_still_reaped() {
    let reg = Arc::new(Registry::new());
    let w = ChildWatcher::new(Arc::clone(&reg));
    // timeout 1 s: three silent seconds make an error; the child itself runs 4.5 s.
    let e = start(
        &reg,
        &w,
        &fake_lvm(),
        "quiet-4500-0",
        1,
        &[("FAKE_LVM_SILENT", "1"), ("FAKE_LVM_STEP_MS", "4500")],
    );
    wait_until("timeout error", 15, || e.state().finished);
    let st = e.state();
    assert!(st.error && st.outcome.is_none(), "{st:?}");
    assert_eq!(reg.progress(&e.id, false, &e.lvid), Progress::Failed);
    let pid = st.pid;
    wait_until("silent child reaped", 15, || {
        !Path::new(&format!("/proc/{pid}")).exists() || !is_our_zombie(pid)
    });
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!is_our_zombie(pid));
    w.shutdown();
}

#[test]
fn shutdown_terminates_and_waits() {
    let reg = Arc::new(Registry::new());
    let w = ChildWatcher::new(Arc::clone(&reg));
    let a = start(&reg, &w, &fake_lvm(), "long-30000-0", 60, &[]);
    let b = start(&reg, &w, &fake_lvm(), "long2-30000-0", 60, &[]);
    wait_until("children started", 10, || {
        a.state().pid > 0 && b.state().pid > 0
    });
    let t = Instant::now();
    w.shutdown();
    assert!(t.elapsed() < Duration::from_secs(8), "shutdown too slow");
    assert_eq!(reg.active(), 0);
    for e in [&a, &b] {
        assert_eq!(e.state().outcome, Some(Outcome::Signalled(15)));
        assert!(!is_our_zombie(e.state().pid));
    }
}

#[test]
fn child_is_reaped_while_its_own_child_holds_the_pipes() {
    let reg = Arc::new(Registry::new());
    let w = ChildWatcher::new(Arc::clone(&reg));
    let p = init("grandchild", 60);
    let InitResult::Created(e) = reg.poll_init(&p) else {
        panic!("not created")
    };
    // The shell exits at once with 3; its background sleep keeps stdout/stderr open for 6 s.
    let cmd = LvpollCommand {
        argv: vec![
            "/bin/sh".into(),
            "-c".into(),
            "sleep 6 & echo started; exit 3".into(),
        ],
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
    };
    let t = Instant::now();
    w.launch(Arc::clone(&e), cmd);
    wait_until("exit published", 5, || e.state().finished);
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "waited for the pipes to close"
    );
    assert_eq!(e.state().outcome, Some(Outcome::Exited(3)));
    assert!(!is_our_zombie(e.state().pid));
    w.shutdown();
}

#[test]
fn endless_output_neither_starves_others_nor_blocks_reaping() {
    let reg = Arc::new(Registry::new());
    let w = ChildWatcher::new(Arc::clone(&reg));
    let sh = |name: &str, script: &str| {
        let p = init(name, 60);
        let InitResult::Created(e) = reg.poll_init(&p) else {
            panic!("not created")
        };
        let cmd = LvpollCommand {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        };
        w.launch(Arc::clone(&e), cmd);
        e
    };
    // exits at once, leaving `yes` writing into its pipe forever (until the pipe is closed)
    let flood = sh("flood", "(yes &); exit 2");
    let quick = sh("quick", "sleep 0.3; exit 6");
    wait_until("both published", 10, || {
        flood.state().finished && quick.state().finished
    });
    assert_eq!(flood.state().outcome, Some(Outcome::Exited(2)));
    assert_eq!(quick.state().outcome, Some(Outcome::Exited(6)));
    w.shutdown();
}
