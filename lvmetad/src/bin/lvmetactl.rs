//! lvmetactl: lvm2's debug client for lvmetad (docs/protocol.md §3.14). Every request goes out in
//! the printf writer with `token = "skip"`, `pid` and `cmd = "lvmetactl"`, like the C tool.
#![forbid(unsafe_code)]

use common::config::{parse, write_simple, DupMode, SimpleField};
use common::daemon::Client;
use std::path::PathBuf;
use std::process::exit;

const USAGE: &[&str] = &[
    "lvmetactl dump",
    "lvmetactl pv_list",
    "lvmetactl vg_list",
    "lvmetactl get_global_info",
    "lvmetactl vg_lookup_name <name>",
    "lvmetactl vg_lookup_uuid <uuid>",
    "lvmetactl pv_lookup_uuid <uuid>",
    "lvmetactl set_global_invalid 0|1",
    "lvmetactl set_global_disable 0|1",
    "lvmetactl set_vg_version <uuid> <name> <version>",
    "lvmetactl vg_lock_type <uuid>",
];

/// `println!` through `common::tool_output::emit`: a closed pipe ends lvmetactl with status 0.
macro_rules! say {
    ($($arg:tt)*) => {
        common::tool_output::emit("lvmetactl", &format!("{}\n", format_args!($($arg)*)))
    };
}

fn socket() -> PathBuf {
    std::env::var_os("LVM_LVMETAD_SOCKET")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(common::paths::default_socket("lvmetad")))
}

/// C's `atoi`: optional sign and leading digits, 0 otherwise.
fn atoi(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n: i64 = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |acc, d| {
            acc.wrapping_mul(10).wrapping_add(i64::from(d - b'0'))
        });
    let n = n as i32 as i64;
    if neg {
        -n
    } else {
        n
    }
}

/// Send `request` with `fields` and the lvmetactl envelope; return the raw reply text.
fn send(client: &mut Client, request: &str, fields: Vec<(&str, SimpleField)>) -> String {
    let mut all = vec![("request", SimpleField::Str(request.to_owned()))];
    all.extend(fields);
    all.push(("token", SimpleField::Str("skip".into())));
    all.push(("pid", SimpleField::Int(i64::from(std::process::id()))));
    all.push(("cmd", SimpleField::Str("lvmetactl".into())));
    match client.request_raw(write_simple(&all).as_bytes()) {
        Ok(reply) => String::from_utf8_lossy(&reply).into_owned(),
        Err(e) => {
            eprintln!("lvmetactl: {e}");
            exit(1);
        }
    }
}

/// `print_reply`: the response, status and reason fields on one line.
fn print_reply(reply: &str) {
    let tree = parse(reply.as_bytes(), DupMode::KeepAll).unwrap_or_default();
    let f = |k: &str| tree.find_str(k).unwrap_or("").to_owned();
    say!(
        "response \"{}\" status \"{}\" reason \"{}\"",
        f("response"),
        f("status"),
        f("reason")
    );
}

fn need(args: &[String], n: usize, usage: &str) {
    if args.len() < n {
        say!("{usage}");
        exit(255);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        for line in USAGE {
            say!("{line}");
        }
        exit(255);
    }
    // -h/--help: the usage, exit 0, without connecting (C has no help option and would connect).
    if matches!(args[1].as_str(), "-h" | "--help") {
        for line in USAGE {
            say!("{line}");
        }
        exit(0);
    }
    let path = socket();
    let mut client =
        match Client::connect(&path, lvmetad::PROTOCOL, Some(lvmetad::PROTOCOL_VERSION)) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("lvmetactl: {e}");
                exit(1);
            }
        };
    let s = |v: &str| SimpleField::Str(v.to_owned());
    match args[1].as_str() {
        cmd @ ("dump" | "pv_list" | "vg_list" | "get_global_info") => {
            say!("{}", send(&mut client, cmd, vec![]));
        }
        "set_global_invalid" => {
            need(&args, 3, "set_global_invalid 0|1");
            let v = atoi(&args[2]);
            print_reply(&send(
                &mut client,
                "set_global_info",
                vec![("global_invalid", SimpleField::Int(v))],
            ));
        }
        "set_global_disable" => {
            need(&args, 3, "set_global_disable 0|1");
            let v = atoi(&args[2]);
            print_reply(&send(
                &mut client,
                "set_global_info",
                vec![
                    ("global_disable", SimpleField::Int(v)),
                    ("disable_reason", s("DIRECT")),
                ],
            ));
        }
        "set_vg_version" => {
            need(&args, 5, "set_vg_version <uuid> <name> <ver>");
            let uuid = Some(args[2].as_str()).filter(|u| *u != "-");
            let name = Some(args[3].as_str()).filter(|n| *n != "-");
            let ver = SimpleField::Int(atoi(&args[4]));
            let mut fields = Vec::new();
            match (uuid, name) {
                (None, None) => {
                    say!("name or uuid required");
                    exit(255);
                }
                (u, n) => {
                    if let Some(u) = u {
                        fields.push(("uuid", s(u)));
                    }
                    if let Some(n) = n {
                        fields.push(("name", s(n)));
                    }
                }
            }
            fields.push(("version", ver));
            print_reply(&send(&mut client, "set_vg_info", fields));
        }
        "vg_lookup_name" => {
            need(&args, 3, "vg_lookup_name <name>");
            say!(
                "{}",
                send(&mut client, "vg_lookup", vec![("name", s(&args[2]))])
            );
        }
        "vg_lookup_uuid" => {
            need(&args, 3, "vg_lookup_uuid <uuid>");
            say!(
                "{}",
                send(&mut client, "vg_lookup", vec![("uuid", s(&args[2]))])
            );
        }
        "vg_lock_type" => {
            need(&args, 3, "vg_lock_type <uuid>");
            let reply = send(&mut client, "vg_lookup", vec![("uuid", s(&args[2]))]);
            let tree = parse(reply.as_bytes(), DupMode::KeepAll).unwrap_or_default();
            match tree.find("metadata") {
                None => say!("no metadata"),
                Some(m) => match m.find_str("lock_type") {
                    None => say!("no lock_type"),
                    Some(t) => say!("lock_type {t}"),
                },
            }
        }
        "pv_lookup_uuid" => {
            need(&args, 3, "pv_lookup_uuid <uuid>");
            say!(
                "{}",
                send(&mut client, "pv_lookup", vec![("uuid", s(&args[2]))])
            );
        }
        _ => say!("unknown command"),
    }
}
