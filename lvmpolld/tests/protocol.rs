//! Protocol test against the real binary: raw bytes in, raw bytes out, compared with the bytes
//! lvm2's C lvmpolld sent in the captured transcripts (docs/protocol.md §6, §10).
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Daemon {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM: the daemon stops and reaps its own children before it exits.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(name: &str) -> Daemon {
    let dir = std::env::temp_dir().join(format!("lvmpolld-{name}.{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("s");
    let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/lvmpolld/fake-lvm");
    let child = Command::new(env!("CARGO_BIN_EXE_lvmpolld"))
        .arg("-f")
        .arg("-s")
        .arg(&socket)
        .arg("-p")
        .arg(dir.join("p"))
        .arg("-B")
        .arg(&fake)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !socket.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "daemon did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Daemon { child, dir, socket }
}

/// Send one framed request and return the raw reply including its terminator.
fn raw(s: &mut UnixStream, payload: &str) -> String {
    s.write_all(payload.as_bytes()).unwrap();
    s.write_all(b"\n##\n").unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.ends_with(b"\n##\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "daemon closed the connection");
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(out).unwrap()
}

const L1: &str = "FAKEVGxxxxxxxxxxxxxxxxxxxxxxxxxxLV000000000000000000000000000001";

#[test]
fn replies_are_byte_identical_to_the_c_transcripts() {
    let d = start("replies");
    let mut s = UnixStream::connect(&d.socket).unwrap();
    let cases: &[(&str, &str)] = &[
        (
            "request = \"hello\"\n",
            "response = \"OK\"\nprotocol = \"lvmpolld\"\nversion = 1\n\n##\n",
        ),
        (
            "request = \"dump\"\n",
            "# Registered polling operations\n\npoll {\n}\n\n# Registered abort operations\n\nabort {\n}\n##\n",
        ),
        (
            "request = \"progress_info\"\nlvid = \"FAKEVGxxxxxxxxxxxxxxxxxxxxxxxxxxLV000000000000000000000000000001\"\n",
            "response = \"not_found\"\n\n##\n",
        ),
        (
            "request = \"frobnicate\"\n",
            "response = \"invalid\"\nreason = \"request not implemented\"\n\n##\n",
        ),
        (
            "request = \"progress_info\"\n",
            "response = \"failed\"\nreason = \"request requires lvid set\"\n\n##\n",
        ),
        (
            "request = \"pvmove\"\nlvid = \"x\"\nvgname = \"vg\"\nlvname = \"lv7\"\ninterval = 1\n",
            "response = \"invalid\"\nreason = \"request requires interval set\"\n\n##\n",
        ),
        (
            "request = \"pvmove\"\nlvid = \"x\"\nvgname = \"vg\"\nlvname = \"lv7\"\ninterval = \"-1\"\n",
            "response = \"invalid\"\nreason = \"request requires interval set\"\n\n##\n",
        ),
        (
            "request = \"pvmove\"\nvgname = \"vg\"\nlvname = \"lv\"\ninterval = \"1\"\n",
            "response = \"failed\"\nreason = \"request requires lvid set\"\n\n##\n",
        ),
        (
            "request = \"pvmove\"\nlvid = \"x\"\nlvname = \"lv\"\ninterval = \"1\"\n",
            "response = \"failed\"\nreason = \"request requires vgname set\"\n\n##\n",
        ),
        (
            "request = \"pvmove\"\nlvid = \"x\"\nvgname = \"vg\"\ninterval = \"1\"\n",
            "response = \"failed\"\nreason = \"request requires lvname set\"\n\n##\n",
        ),
        (
            "request = \"convert\"\nlvid = \"L6\"\nvgname = \"vg\"\nlvname = \"lv6\"\ninterval = \"1\"\nabort = 1\n",
            "response = \"invalid\"\nreason = \"abort only supported with PVMOVE polling operation\"\n\n##\n",
        ),
        (
            "this is { garbage\n",
            "response = \"invalid\"\nreason = \"request not implemented\"\n\n##\n",
        ),
    ];
    for (req, want) in cases {
        assert_eq!(raw(&mut s, req), *want, "request {req:?}");
    }
}

#[test]
fn a_poll_runs_is_joined_and_its_result_is_handed_out_once() {
    let d = start("poll");
    let mut s = UnixStream::connect(&d.socket).unwrap();
    let init = format!(
        "request = \"merge_thin\"\nlvid = \"{L1}\"\nvgname = \"vg\"\nlvname = \"lvfail-1500-5\"\ninterval = \"1\"\n"
    );
    assert_eq!(raw(&mut s, &init), "response = \"OK\"\n\n##\n");
    assert_eq!(raw(&mut s, &init), "response = \"OK\"\n\n##\n");
    let other = init.replace("merge_thin", "merge");
    assert_eq!(
        raw(&mut s, &other),
        "response = \"invalid\"\nreason = \"Different operation on LV already in progress\"\n\n##\n"
    );
    let progress = format!("request = \"progress_info\"\nlvid = \"{L1}\"\n");
    assert_eq!(raw(&mut s, &progress), "response = \"in_progress\"\n\n##\n");
    let dump = raw(&mut s, "request = \"dump\"\n");
    assert!(dump.contains("\t\ttype=\"merge_thin\"\n\t\tlvname=\"vg/lvfail-1500-5\"\n"));
    assert!(dump.contains("\t\tinit_requests_count=2\n"));
    let t = Instant::now();
    while !raw(&mut s, "request = \"dump\"\n").contains("polling_finished=1") {
        assert!(t.elapsed() < Duration::from_secs(20), "poll did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        raw(&mut s, &progress),
        "response = \"finished\"\nreason = \"retcode\"\nvalue = 5\n\n##\n"
    );
    assert_eq!(raw(&mut s, &progress), "response = \"not_found\"\n\n##\n");
}
