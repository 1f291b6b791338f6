//! Replays the C lvmetad 2.02.187 captures in tests/data/lvmetad/ against our daemon binary:
//! every request is sent byte for byte, in capture order, and our reply must equal C's, apart
//! from `daemon_pid` and `update_begin` and the order of entries in lists and dumps (C's hash
//! order). The captures skip some requests of the recorded session; `replay-fill.txt` supplies
//! the missing state-changing requests (rebuilt from what later captures show), marked as such.
#![forbid(unsafe_code)]

use common::daemon::Client;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/lvmetad")
}

/// (conn, msg) → (request frame payload, reply payload), from every capture file.
fn load_pairs() -> BTreeMap<(u32, u32), (Vec<u8>, Vec<u8>)> {
    type Half = (Option<Vec<u8>>, Option<Vec<u8>>);
    let mut half: BTreeMap<(u32, u32), Half> = BTreeMap::new();
    for entry in std::fs::read_dir(data_dir()).expect("data dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".txt") || name.starts_with("replay") {
            continue;
        }
        let data = std::fs::read(&path).expect("read capture");
        let mut pos = 0;
        while let Some(off) = find(&data[pos..], b"=== conn ") {
            let start = pos + off;
            let eol = start + find(&data[start..], b"\n").expect("header end");
            let header = String::from_utf8_lossy(&data[start..eol]).to_string();
            let words: Vec<&str> = header.split_whitespace().collect();
            let conn: u32 = words[2].parse().unwrap();
            let msg: u32 = words[4].parse().unwrap();
            let to_daemon = words[5] == "client";
            let n: usize = words[words.len() - 3].parse().unwrap();
            let body = data[eol + 1..eol + 1 + n].to_vec();
            assert!(body.ends_with(b"\n##\n"), "{name}: {header}");
            let payload = body[..n - 4].to_vec();
            let e = half.entry((conn, msg)).or_default();
            if to_daemon {
                e.0 = Some(payload);
            } else {
                e.1 = Some(payload);
            }
            pos = eol + 1 + n;
        }
    }
    half.into_iter()
        .map(|(k, (q, a))| (k, (q.expect("request"), a.expect("reply"))))
        .collect()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Blank out what legitimately differs: pids and times.
fn normalize(text: &str) -> String {
    // Our dump ends with the disk verification's section (not in C's dump; lvmetad/README.md);
    // the replayed device numbers are not this machine's PVs, so it only says "unverifiable".
    let text = match text.find("\n# VERIFICATION (not in lvmetad 2.02.187)\n") {
        Some(at) => {
            let tail = &text[at..];
            assert!(
                !tail.contains("result=\"stale\"") && !tail.contains("result=\"structural\""),
                "replayed fake devices were judged: {tail}"
            );
            &text[..at]
        }
        None => text,
    };
    let mut out: Vec<String> = Vec::new();
    for line in text.split('\n') {
        let l = if line.starts_with("daemon_pid = ") {
            "daemon_pid = <pid>".to_owned()
        } else if line.starts_with("update_begin = ") && line != "update_begin = 0" {
            "update_begin = <time>".to_owned()
        } else {
            line.to_owned()
        };
        out.push(l);
    }
    out.join("\n")
}

/// Canonical form for comparing: top-level blocks of lists and dumps are sorted, since their
/// order is C's hash order.
fn canonical(text: &str) -> String {
    let norm = normalize(text);
    let lines: Vec<&str> = norm.split('\n').collect();
    // Group lines into blocks: a block starts at a line with indentation depth 1 (inside a list
    // section) or a top-level `key {` in a dump, and runs until its closing brace.
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let list_parent = line == "physical_volumes {"
            || line == "volume_groups {"
            || line.ends_with(" {") && !line.starts_with('\t') && is_pairs_section(line);
        out.push(line.to_owned());
        i += 1;
        if list_parent {
            let mut blocks: Vec<String> = Vec::new();
            while i < lines.len() && lines[i] != "}" {
                let mut block = vec![lines[i]];
                if lines[i].ends_with('{') {
                    let close = format!("{}}}", leading(lines[i]));
                    i += 1;
                    while i < lines.len() && lines[i] != close {
                        block.push(lines[i]);
                        i += 1;
                    }
                    if i < lines.len() {
                        block.push(lines[i]);
                    }
                }
                i += 1;
                blocks.push(block.join("\n"));
            }
            blocks.sort();
            out.extend(blocks);
        }
    }
    // dump: sort the top-level trees between the section comments
    let joined = out.join("\n");
    if joined.starts_with("# VG METADATA") {
        return joined
            .split("\n# ")
            .map(|part| {
                // keep the section title and blank lines, sort the trees
                let mut head = String::new();
                let mut trees: Vec<String> = Vec::new();
                let mut cur: Option<String> = None;
                for l in part.split('\n') {
                    match cur.as_mut() {
                        Some(t) => {
                            t.push_str(l);
                            t.push('\n');
                            if l == "}" {
                                trees.extend(cur.take());
                            }
                        }
                        None if l.ends_with(" {") => cur = Some(format!("{l}\n")),
                        None => {
                            head.push_str(l);
                            head.push('\n');
                        }
                    }
                }
                trees.sort();
                trees.extend(cur);
                format!("{head}{}", trees.concat())
            })
            .collect::<Vec<_>>()
            .join("\n# ");
    }
    joined
}

fn is_pairs_section(line: &str) -> bool {
    matches!(
        line,
        "vgid_to_vgname {"
            | "vgname_to_vgid {"
            | "pvid_to_vgid {"
            | "device_to_pvid {"
            | "vgid_to_info {"
    )
}

fn leading(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_daemon() -> (Daemon, PathBuf) {
    let dir = std::env::temp_dir().join(format!("lvmetad-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("lvmetad.socket");
    let child = Command::new(env!("CARGO_BIN_EXE_lvmetad"))
        .arg("-f")
        .arg("-s")
        .arg(&socket)
        .arg("-p")
        .arg(dir.join("lvmetad.pid"))
        .spawn()
        .expect("start lvmetad");
    let t0 = Instant::now();
    while !socket.exists() {
        assert!(t0.elapsed() < Duration::from_secs(10), "no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Daemon { child, dir }, socket)
}

/// The fill-in requests: `@ CONN MSG` starts one that is sent just before pair (CONN, MSG);
/// its text runs to the next `@` line.
fn load_fill() -> BTreeMap<(u32, u32), Vec<String>> {
    let text = std::fs::read_to_string(data_dir().join("replay-fill.txt")).unwrap_or_default();
    let mut fill: BTreeMap<(u32, u32), Vec<String>> = BTreeMap::new();
    let mut cur: Option<((u32, u32), String)> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("@ ") {
            if let Some((k, body)) = cur.take() {
                fill.entry(k).or_default().push(body);
            }
            let mut w = rest.split_whitespace().map(|x| x.parse::<u32>().unwrap());
            cur = Some(((w.next().unwrap(), w.next().unwrap()), String::new()));
        } else if line.starts_with('#') && cur.is_none() {
            continue;
        } else if let Some((_, body)) = cur.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((k, body)) = cur.take() {
        fill.entry(k).or_default().push(body);
    }
    fill
}

#[test]
fn replay_c_captures() {
    let pairs = load_pairs();
    assert!(pairs.len() >= 50, "captures missing: {}", pairs.len());
    let fill = load_fill();
    let (_daemon, socket) = start_daemon();
    let mut failures = Vec::new();
    for ((conn, msg), (request, expected)) in &pairs {
        for extra in fill.get(&(*conn, *msg)).into_iter().flatten() {
            let mut c = Client::connect_raw(&socket).expect("connect");
            let reply = c.request_raw(extra.trim_end().as_bytes()).expect("fill");
            let reply = String::from_utf8_lossy(&reply);
            assert!(
                reply.starts_with("response = \"OK\"") || reply.starts_with("response=\"OK\""),
                "fill-in before {conn}/{msg} refused: {reply}"
            );
        }
        let mut c = Client::connect_raw(&socket).expect("connect");
        let got = c.request_raw(request).expect("request");
        let got = String::from_utf8_lossy(&got).to_string();
        let want = String::from_utf8_lossy(expected).to_string();
        if canonical(&got) != canonical(&want) {
            failures.push(format!(
                "conn {conn} msg {msg}\n--- C:\n{want}\n--- ours:\n{got}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} replies differ:\n{}",
        failures.len(),
        pairs.len(),
        failures.join("\n")
    );
}
