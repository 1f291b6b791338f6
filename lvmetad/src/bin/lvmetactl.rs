//! lvmetactl: lvm2's debug client for lvmetad (docs/protocol.md §3.14). Every request goes out in
//! the printf writer with `token = "skip"`, `pid` and `cmd = "lvmetactl"`, like the C tool. The
//! command line is read by `lvmetad::ctl_options`; this file connects, sends and prints.
#![forbid(unsafe_code)]

use common::config::{parse, write_simple, DupMode, SimpleField};
use common::daemon::Client;
use lvmetad::ctl_options::{self, Command};
use std::process::exit;

/// `println!` through `common::tool_output::emit`: a closed pipe ends lvmetactl with status 0.
macro_rules! say {
    ($($arg:tt)*) => {
        common::tool_output::emit("lvmetactl", &format!("{}\n", format_args!($($arg)*)))
    };
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let o = ctl_options::parse(&args).or_exit_with(|s| common::tool_output::emit("lvmetactl", s));
    let mut client = match Client::connect(
        &o.socket,
        lvmetad::PROTOCOL,
        Some(lvmetad::PROTOCOL_VERSION),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lvmetactl: {e}");
            exit(1);
        }
    };
    match o.command {
        Ok(command) => run(&mut client, command),
        Err(refusal) => {
            say!("{refusal}");
            exit(refusal.exit_code());
        }
    }
}

/// Send the command's request and print its reply as C does.
fn run(client: &mut Client, command: Command) {
    let s = |v: &str| SimpleField::Str(v.to_owned());
    match command {
        Command::Plain(request) => say!("{}", send(client, request, vec![])),
        Command::SetGlobalInvalid(v) => print_reply(&send(
            client,
            "set_global_info",
            vec![("global_invalid", SimpleField::Int(v))],
        )),
        Command::SetGlobalDisable(v) => print_reply(&send(
            client,
            "set_global_info",
            vec![
                ("global_disable", SimpleField::Int(v)),
                ("disable_reason", s("DIRECT")),
            ],
        )),
        Command::SetVgVersion {
            uuid,
            name,
            version,
        } => {
            let mut fields = Vec::new();
            if let Some(u) = &uuid {
                fields.push(("uuid", s(u)));
            }
            if let Some(n) = &name {
                fields.push(("name", s(n)));
            }
            fields.push(("version", SimpleField::Int(version)));
            print_reply(&send(client, "set_vg_info", fields));
        }
        Command::VgLookupName(name) => {
            say!("{}", send(client, "vg_lookup", vec![("name", s(&name))]));
        }
        Command::VgLookupUuid(uuid) => {
            say!("{}", send(client, "vg_lookup", vec![("uuid", s(&uuid))]));
        }
        Command::VgLockType(uuid) => {
            let reply = send(client, "vg_lookup", vec![("uuid", s(&uuid))]);
            let tree = parse(reply.as_bytes(), DupMode::KeepAll).unwrap_or_default();
            match tree.find("metadata") {
                None => say!("no metadata"),
                Some(m) => match m.find_str("lock_type") {
                    None => say!("no lock_type"),
                    Some(t) => say!("lock_type {t}"),
                },
            }
        }
        Command::PvLookupUuid(uuid) => {
            say!("{}", send(client, "pv_lookup", vec![("uuid", s(&uuid))]));
        }
    }
}
