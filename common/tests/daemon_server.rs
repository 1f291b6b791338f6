//! The libdaemon server and client against a real running daemon: the `testd` test driver
//! (common/src/bin/testd.rs), started in the foreground in a private directory.
#![forbid(unsafe_code)]

use common::config::{Node, Tree};
use common::daemon::{Client, ClientError};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The `testd` driver (common/src/bin/testd.rs), built by cargo for this test.
fn testd_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_testd"))
}

/// A private temp directory removed on drop.
struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "lvmd-daemon-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running foreground testd, killed on drop.
struct Testd {
    child: Option<Child>,
    socket: PathBuf,
    pidfile: PathBuf,
    _dir: TempDir,
}

impl Testd {
    fn start(tag: &str, extra: &[&str]) -> Testd {
        Testd::start_in(TempDir::new(tag), extra)
    }
    fn start_in(dir: TempDir, extra: &[&str]) -> Testd {
        let socket = dir.path("testd.socket");
        let pidfile = dir.path("testd.pid");
        let child = spawn_testd(&socket, &pidfile, extra);
        let mut d = Testd {
            child: Some(child),
            socket,
            pidfile,
            _dir: dir,
        };
        d.wait_ready();
        d
    }
    fn wait_ready(&mut self) {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("testd exited early: {st}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("testd did not start");
    }
    fn client(&self) -> Client {
        Client::connect(&self.socket, "testd", Some(1)).expect("connect")
    }
    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }
    fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }
    /// Wait for exit (at most `limit`), returning the status and how long it took.
    fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let t0 = Instant::now();
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                return (st, t0.elapsed());
            }
            assert!(t0.elapsed() < limit, "daemon still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Testd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Start testd in the foreground; its stderr is captured only when `capture` (an unread pipe
/// could fill up and block a long-running daemon).
fn spawn_testd_with(socket: &Path, pidfile: &Path, extra: &[&str], capture: bool) -> Child {
    Command::new(testd_path())
        .arg("-f")
        .arg("-s")
        .arg(socket)
        .arg("-p")
        .arg(pidfile)
        .args(extra)
        .stdin(Stdio::null())
        .stderr(if capture {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .env("RUST_BACKTRACE", "0")
        .spawn()
        .expect("spawn testd")
}

fn spawn_testd(socket: &Path, pidfile: &Path, extra: &[&str]) -> Child {
    spawn_testd_with(socket, pidfile, extra, false)
}

/// Run testd to completion (it is expected to refuse to start) and return (code, stderr).
fn run_refused(socket: &Path, pidfile: &Path) -> (i32, String) {
    let mut c = spawn_testd_with(socket, pidfile, &[], true);
    let t0 = Instant::now();
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            let mut err = String::new();
            c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            return (st.code().unwrap_or(-1), err);
        }
        if t0.elapsed() > Duration::from_secs(5) {
            let _ = c.kill();
            panic!("second instance did not refuse to start");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn raw_request(s: &mut UnixStream, payload: &str) -> String {
    s.write_all(format!("{payload}\n##\n").as_bytes()).unwrap();
    read_reply(s)
}

/// Read one framed reply byte by byte (so nothing of a following reply is consumed).
fn read_reply(s: &mut UnixStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8];
    while !out.ends_with(b"\n##\n") {
        assert_eq!(
            s.read(&mut b).unwrap(),
            1,
            "EOF before a full reply: {out:?}"
        );
        out.push(b[0]);
    }
    String::from_utf8(out).unwrap()
}

fn echo(client: &mut Client, text: &str) -> Tree {
    let req = Tree::new().with("request", "echo").with("text", text);
    client.request(&req).expect("echo")
}

#[test]
fn hello_is_answered_in_the_printf_writer() {
    let d = Testd::start("hello", &[]);
    let mut s = UnixStream::connect(&d.socket).unwrap();
    assert_eq!(
        raw_request(&mut s, "request = \"hello\""),
        "response = \"OK\"\nprotocol = \"testd\"\nversion = 1\n\n##\n"
    );
    // The tree writer style works too.
    assert!(raw_request(&mut s, "request=\"hello\"").starts_with("response = \"OK\""));
    d.client();
}

#[test]
fn client_reports_wrong_protocol_and_missing_socket() {
    let d = Testd::start("proto", &[]);
    match Client::connect(&d.socket, "lvmetad", Some(1)) {
        Err(e @ ClientError::WrongProtocol { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("\"testd\"") && msg.contains("\"lvmetad\""),
                "{msg}"
            );
        }
        other => panic!("expected WrongProtocol, got {:?}", other.err()),
    }
    assert!(matches!(
        Client::connect(&d.socket, "testd", Some(2)),
        Err(ClientError::WrongProtocol { .. })
    ));
    assert!(Client::connect(&d.socket, "testd", None).is_ok());
    let missing = d.socket.with_file_name("nope.socket");
    let e = Client::connect(&missing, "testd", None).err().unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: connect failed: No such file or directory (os error 2)",
            missing.display()
        )
    );
}

#[test]
fn tree_reply_has_cs_extra_newlines_and_round_trips() {
    let d = Testd::start("echo", &[]);
    let mut s = UnixStream::connect(&d.socket).unwrap();
    let reply = raw_request(&mut s, "request=\"echo\"\nn=5\nsec {\n\tx=\"y\"\n}");
    assert_eq!(
        reply, "response=\"OK\"\nn=5\nsec {\n\tx=\"y\"\n}\n\n\n\n##\n",
        "tree replies end with an extra \\n\\n before the terminator"
    );
    let mut c = d.client();
    let t = Tree::new()
        .with("request", "echo")
        .with("num", 42i64)
        .with_node(Node::section("s", vec![Node::value("k", "v")]));
    let r = c.request(&t).unwrap();
    assert_eq!(r.find_str("response"), Some("OK"));
    assert_eq!(r.find_int("num"), Some(42));
    assert_eq!(r.find_str("s/k"), Some("v"));
}

#[test]
fn unparseable_request_still_reaches_the_handler() {
    let d = Testd::start("garbage", &[]);
    let mut s = UnixStream::connect(&d.socket).unwrap();
    for bad in ["this is { garbage", ""] {
        assert_eq!(
            raw_request(&mut s, bad),
            "response = \"failed\"\nreason = \"request not implemented\"\n\n##\n"
        );
    }
    assert!(raw_request(&mut s, "request = \"hello\"").contains("OK"));
}

#[test]
fn two_requests_in_one_write_get_two_replies() {
    let d = Testd::start("pipeline", &[]);
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(b"request=\"echo\"\ntext=\"first\"\n##\nrequest=\"echo\"\ntext=\"second\"\n##\n")
        .unwrap();
    let one = read_reply(&mut s);
    let two = read_reply(&mut s);
    assert!(one.contains("text=\"first\""), "{one}");
    assert!(two.contains("text=\"second\""), "{two}");
}

#[test]
fn capabilities_say_pipelining_and_sent_requests_are_answered_in_order() {
    let d = Testd::start("capabilities", &[]);
    let mut s = UnixStream::connect(&d.socket).unwrap();
    assert_eq!(
        raw_request(&mut s, "request = \"capabilities\""),
        "response = \"OK\"\npipelining = 1\n\n##\n"
    );
    let mut c = d.client();
    assert!(c.pipelining().expect("capabilities"));
    // Twenty requests written before any reply is read come back one each, in order.
    for i in 0..20 {
        let req = Tree::new()
            .with("request", "echo")
            .with("text", format!("n{i}"));
        c.send_raw(common::config::write_tree(&req.nodes).as_bytes())
            .expect("send");
    }
    for i in 0..20 {
        let r = c.reply().expect("reply");
        assert_eq!(r.find_str("text"), Some(format!("n{i}").as_str()), "{r:?}");
    }
}

#[test]
fn oversized_request_gets_an_error_and_others_are_served() {
    let d = Testd::start("cap", &["--max-message", "65536"]);
    let mut other = d.client();
    assert_eq!(echo(&mut other, "before").find_str("text"), Some("before"));

    let mut big = d.client();
    let payload = format!("request=\"echo\"\ntext=\"{}\"\n", "x".repeat(1 << 20));
    let reply = big.request_raw(payload.as_bytes()).expect("error reply");
    let reply = String::from_utf8(reply).unwrap();
    assert!(reply.starts_with("response = \"failed\"\n"), "{reply}");
    assert!(
        reply.contains("reason = \"request too large (limit 65536 bytes)\""),
        "{reply}"
    );
    // That connection is closed; the other one and new ones are still served.
    assert!(big.request_raw(b"request=\"hello\"").is_err());
    assert_eq!(echo(&mut other, "after").find_str("text"), Some("after"));
    assert_eq!(echo(&mut d.client(), "new").find_str("text"), Some("new"));
    // A request just under the cap is fine.
    let fits = format!("request=\"echo\"\ntext=\"{}\"\n", "y".repeat(60_000));
    let r = d.client().request_raw(fits.as_bytes()).unwrap();
    assert!(String::from_utf8(r).unwrap().starts_with("response=\"OK\""));
}

#[test]
fn panicking_handler_does_not_kill_the_daemon() {
    let d = Testd::start("panic", &[]);
    let mut c = d.client();
    let mut other = d.client();
    for _ in 0..3 {
        let r = c.request(&Tree::new().with("request", "panic")).unwrap();
        assert_eq!(r.find_str("response"), Some("failed"));
        assert!(r.find_str("reason").unwrap().contains("internal error"));
    }
    // Same connection, another connection, a new connection: all served.
    assert_eq!(echo(&mut c, "a").find_str("text"), Some("a"));
    assert_eq!(echo(&mut other, "b").find_str("text"), Some("b"));
    assert_eq!(echo(&mut d.client(), "c").find_str("text"), Some("c"));
}

#[test]
fn sigterm_with_idle_clients_and_a_request_in_flight() {
    let dir = TempDir::new("sigterm");
    let marker = dir.path("marker");
    let mut d2 = Testd::start_in(dir, &["--shutdown-marker", marker.to_str().unwrap()]);
    let idle: Vec<Client> = (0..10).map(|_| d2.client()).collect();
    // One client holds a request in flight across the signal.
    let sock = d2.socket.clone();
    let busy = std::thread::spawn(move || {
        let mut c = Client::connect(&sock, "testd", Some(1)).unwrap();
        c.request(&Tree::new().with("request", "sleep").with("ms", 300i64))
    });
    std::thread::sleep(Duration::from_millis(100));
    d2.signal(nix::sys::signal::Signal::SIGTERM);
    let (status, took) = d2.wait_exit(Duration::from_secs(5));
    eprintln!("SIGTERM with 10 idle clients + 1 in flight: exited in {took:?}");
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let r = busy
        .join()
        .unwrap()
        .expect("request in flight was answered");
    assert_eq!(r.find_int("slept_ms"), Some(300));
    assert!(!d2.socket.exists(), "socket removed");
    assert!(!d2.pidfile.exists(), "pidfile removed");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "shutdown called\n"
    );
    for mut c in idle {
        assert!(
            c.request_raw(b"request=\"hello\"").is_err(),
            "idle client saw EOF"
        );
    }
}

#[test]
fn shutdown_signals_all_stop_the_daemon() {
    use nix::sys::signal::Signal::*;
    for sig in [SIGINT, SIGHUP, SIGQUIT, SIGALRM] {
        let mut d = Testd::start("signals", &["-l", "all"]);
        let _idle = d.client();
        // SIGPIPE is ignored: the daemon must survive it.
        d.signal(SIGPIPE);
        d.client();
        d.signal(sig);
        let (st, took) = d.wait_exit(Duration::from_secs(5));
        assert!(
            st.success() && took < Duration::from_secs(1),
            "{sig}: {st} {took:?}"
        );
        assert!(!d.socket.exists());
    }
}

#[test]
fn second_instance_refuses_to_start() {
    let d = Testd::start("twice", &[]);
    // Same pidfile: the lock is held (exit 13, lvm2's message).
    let (code, err) = run_refused(&d.socket.with_file_name("other.socket"), &d.pidfile);
    assert_eq!(code, 13, "{err}");
    assert!(
        err.contains("Failed to acquire lock on") && err.contains("Already running?"),
        "{err}"
    );
    // Same socket, other pidfile: a live daemon answers on it.
    let (code, err) = run_refused(&d.socket, &d.pidfile.with_file_name("other.pid"));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already in use"), "{err}");
    // The first one is unharmed.
    d.client();
}

#[test]
fn stale_socket_is_reused_unsafe_paths_are_refused() {
    let dir = TempDir::new("stale");
    let socket = dir.path("s");
    let pidfile = dir.path("p");
    // A socket nobody listens on any more.
    drop(UnixListener::bind(&socket).unwrap());
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, err) = run_refused(&socket, &pidfile);
    assert_eq!(code, 1);
    assert!(err.contains("unrecognised permissions"), "{err}");
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o700)).unwrap();
    // Owned by somebody else (only checkable as root): refused.
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&socket, Some(65534), None).unwrap();
        let (code, err) = run_refused(&socket, &pidfile);
        assert_eq!(code, 1);
        assert!(err.contains("unrecognised owner"), "{err}");
        std::os::unix::fs::chown(&socket, Some(0), None).unwrap();
    }
    let mut d = Testd {
        child: Some(spawn_testd(&socket, &pidfile, &[])),
        socket: socket.clone(),
        pidfile: pidfile.clone(),
        _dir: TempDir::new("stale-unused"),
    };
    d.wait_ready();
    d.client();
    let mode = std::fs::symlink_metadata(&socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "socket made under umask 0077");
    drop(d);

    // A regular file is never replaced.
    let file = dir.path("file");
    std::fs::write(&file, "precious").unwrap();
    let (code, err) = run_refused(&file, &dir.path("p2"));
    assert_eq!(code, 1);
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");

    // Nor is a symlink, even to a socket.
    let link = dir.path("link");
    std::os::unix::fs::symlink(&socket, &link).unwrap();
    let (code, err) = run_refused(&link, &dir.path("p3"));
    assert_eq!(code, 1);
    assert!(err.contains("not a socket"), "{err}");

    // A pidfile path that is a symlink is refused.
    std::os::unix::fs::symlink(dir.path("target"), dir.path("pidlink")).unwrap();
    let (code, err) = run_refused(&dir.path("s4"), &dir.path("pidlink"));
    assert_eq!(code, 1);
    assert!(err.contains("symbolic link"), "{err}");
    assert!(!dir.path("target").exists());
}

#[test]
fn idle_timeout_counts_only_without_clients() {
    let mut d = Testd::start("idle", &["-t", "1"]);
    let c = d.client();
    std::thread::sleep(Duration::from_millis(1800));
    assert!(
        d.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "exited while a client was connected"
    );
    drop(c);
    let (st, took) = d.wait_exit(Duration::from_secs(4));
    assert!(st.success());
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(!d.socket.exists());
}

#[test]
fn idle_timeout_waits_while_the_handler_is_busy() {
    let mut d = Testd::start("busy", &["-t", "1"]);
    let busy = |d: &Testd, on: i64| {
        let r = d
            .client()
            .request(&Tree::new().with("request", "busy").with("on", on))
            .unwrap();
        assert_eq!(r.find_str("response"), Some("OK"));
    };
    busy(&d, 1);
    std::thread::sleep(Duration::from_millis(1800));
    assert!(
        d.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "exited while the handler said it was busy"
    );
    busy(&d, 0);
    let (st, took) = d.wait_exit(Duration::from_secs(4));
    assert!(st.success());
    assert!(took >= Duration::from_millis(900), "{took:?}");
}

#[test]
fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let d = Testd::start("conncap", &["--max-connections", "2"]);
    let a = d.client();
    let mut b = d.client();
    // The third connects (listen backlog) but is not served while two are open.
    let mut third = UnixStream::connect(&d.socket).unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    third.write_all(b"request=\"hello\"\n##\n").unwrap();
    let mut buf = [0u8; 64];
    let e = third.read(&mut buf).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    drop(a);
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(read_reply(&mut third).starts_with("response = \"OK\""));
    assert_eq!(echo(&mut b, "still").find_str("text"), Some("still"));
}

#[test]
fn listen_backlog_holds_a_burst_of_clients() {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    // One connection slot, held: every further client waits in the listen backlog.
    let d = Testd::start("backlog", &["--max-connections", "1"]);
    let held = d.client();
    let addr = UnixAddr::new(&d.socket).unwrap();
    let burst: Vec<UnixStream> = (0..100)
        .map(|i| {
            let fd = socket(
                AddressFamily::Unix,
                SockType::Stream,
                SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
                None,
            )
            .unwrap();
            use std::os::fd::AsRawFd;
            // Non-blocking: a full backlog answers EAGAIN instead of waiting (C's backlog is 1).
            connect(fd.as_raw_fd(), &addr).unwrap_or_else(|e| panic!("client {i}: {e}"));
            let s = UnixStream::from(fd);
            s.set_nonblocking(false).unwrap();
            s
        })
        .collect();
    drop(held);
    for mut s in burst {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert!(raw_request(&mut s, "request = \"hello\"").starts_with("response = \"OK\""));
    }
}

#[test]
fn parallel_clients_are_served_concurrently() {
    let d = Testd::start("parallel", &[]);
    let t0 = Instant::now();
    let hs: Vec<_> = (0..8)
        .map(|_| {
            let s = d.socket.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&s, "testd", Some(1)).unwrap();
                c.request(&Tree::new().with("request", "sleep").with("ms", 300i64))
                    .unwrap()
            })
        })
        .collect();
    for h in hs {
        assert_eq!(h.join().unwrap().find_str("response"), Some("OK"));
    }
    assert!(
        t0.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t0.elapsed()
    );
}

/// C binds the socket path and listens a moment later: a client that sees the file in between
/// is refused (lvmpolld's tests met this). Ours publishes the path only once it is listening, and
/// leaves no staging name behind.
#[test]
fn socket_file_accepts_as_soon_as_it_appears() {
    for round in 0..5 {
        let dir = TempDir::new(&format!("appear{round}"));
        let socket = dir.path("testd.socket");
        let mut child = spawn_testd(&socket, &dir.path("testd.pid"), &[]);
        let t0 = Instant::now();
        while !socket.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "socket never appeared"
            );
            std::hint::spin_loop();
        }
        let first = UnixStream::connect(&socket);
        // Start-up is over once hello is answered; only then may the staging name be checked.
        let hello = Client::connect(&socket, "testd", Some(1));
        let _ = child.kill();
        let _ = child.wait();
        assert!(first.is_ok(), "round {round}: refused: {:?}", first.err());
        assert!(hello.is_ok(), "round {round}: hello failed");
        let names: Vec<_> = std::fs::read_dir(&dir.0)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(names.is_empty(), "staging names left: {names:?}");
    }
}
