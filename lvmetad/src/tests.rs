//! Behaviour of the request handlers, driven with in-memory requests.

use crate::Lvmetad;
use common::config::{parse, DupMode, Tree};
use common::daemon::{Request, Response};

fn req(text: &str) -> Request {
    Request {
        tree: Some(parse(text.as_bytes(), DupMode::KeepAll).expect("request parses")),
        peer: None,
    }
}

/// Send a request with token "skip" and return the reply as text and parsed tree.
fn ask(d: &Lvmetad, text: &str) -> (String, Tree) {
    let full = format!("{text}\ntoken=\"skip\"\npid=1\ncmd=\"test\"\n");
    let reply = d.handle(&req(&full)).to_payload();
    let tree = parse(reply.as_bytes(), DupMode::KeepAll).expect("reply parses");
    (reply, tree)
}

fn response(t: &Tree) -> &str {
    t.find_str("response").unwrap_or("")
}

fn pvmeta(pvid: &str, dev: u64) -> String {
    format!(
        "pvmeta {{\ndevice={dev}\ndev_size=1000\nformat=\"lvm2\"\nlabel_sector=1\nid=\"{pvid}\"\n\
         mda0 {{\nignore=0\nstart=4096\nsize=1024\nfree_sectors=0\n}}\n}}"
    )
}

fn metadata(vgid: &str, seqno: i64, pvids: &[&str]) -> String {
    let pvs: String = pvids
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!("pv{i} {{\nid=\"{p}\"\ndevice=\"/dev/x\"\nstatus=[\"ALLOCATABLE\"]\n}}\n")
        })
        .collect();
    format!("metadata {{\nid=\"{vgid}\"\nseqno={seqno}\nformat=\"lvm2\"\nphysical_volumes {{\n{pvs}}}\n}}")
}

fn found(d: &Lvmetad, pvid: &str, dev: u64, vg: Option<(&str, &str, i64, &[&str])>) -> Tree {
    let mut text = format!("request=\"pv_found\"\n{}", pvmeta(pvid, dev));
    if let Some((name, vgid, seqno, pvs)) = vg {
        text.push_str(&format!(
            "\nvgname=\"{name}\"\n{}",
            metadata(vgid, seqno, pvs)
        ));
    }
    ask(d, &text).1
}

#[test]
fn pv_found_reports_status_and_changes() {
    let d = Lvmetad::new();
    let t = found(&d, "PV1", 2049, Some(("vg0", "VG1", 3, &["PV1", "PV2"])));
    assert_eq!(response(&t), "OK");
    assert_eq!(t.find_str("status"), Some("partial"));
    assert_eq!(t.find_int("changed"), Some(1));
    assert_eq!(t.find_int("seqno_before"), Some(3));
    assert_eq!(t.find_int("seqno_after"), Some(3));
    let t = found(&d, "PV2", 2050, Some(("vg0", "VG1", 3, &["PV1", "PV2"])));
    assert_eq!(t.find_str("status"), Some("complete"));
    // the same PV again: nothing changed
    let t = found(&d, "PV2", 2050, None);
    assert_eq!(t.find_int("changed"), Some(0));
    assert_eq!(t.find_str("vgname"), Some("vg0"));
    // an orphan
    let t = found(&d, "PV3", 2051, None);
    assert_eq!(t.find_str("status"), Some("orphan"));
    assert_eq!(t.find_str("vgid"), Some("#orphan"));
}

#[test]
fn pv_found_without_cached_vg_says_null_like_c() {
    let d = Lvmetad::new();
    let (text, _) = ask(
        &d,
        &format!(
            "request=\"pv_found\"\n{}\nvgname=\"vg0\"\n{}",
            pvmeta("P", 1),
            metadata("VVV", 0, &["P"])
        ),
    );
    assert_eq!(
        text,
        "response = \"OK\"\nstatus = \"(null)\"\nchanged = 1\nvgid = \"VVV\"\nvgname = \"vg0\"\n\
         seqno_before = 0\nseqno_after = -1\n"
    );
}

#[test]
fn duplicate_pv_disables_the_daemon() {
    let d = Lvmetad::new();
    found(&d, "PV1", 2049, None);
    let t = found(&d, "PV1", 2065, None);
    assert_eq!(response(&t), "failed");
    assert_eq!(t.find_str("reason"), Some("Ignore duplicate PV"));
    let (_, g) = ask(&d, "request=\"get_global_info\"");
    assert_eq!(g.find_int("global_disable"), Some(1));
    assert_eq!(g.find_str("disable_reason"), Some("DUPLICATES,"));
    // the original stays
    let (_, p) = ask(&d, "request=\"pv_lookup\"\nuuid=\"PV1\"");
    assert_eq!(p.find_int("physical_volume/device"), Some(2049));
    // re-enable clears every reason
    ask(&d, "request=\"set_global_info\"\nglobal_disable=0");
    let (_, g) = ask(&d, "request=\"get_global_info\"");
    assert_eq!(g.find_int("global_disable"), Some(0));
    assert_eq!(g.find_str("disable_reason"), Some("none"));
}

#[test]
fn bad_vg_update_is_refused_and_state_stays() {
    let d = Lvmetad::new();
    found(&d, "PV1", 1, Some(("vg0", "VG1", 2, &["PV1"])));
    let (before, _) = ask(&d, "request=\"dump\"");
    for bad in [
        format!("request=\"vg_update\"\n{}", metadata("VG1", 3, &["PV1"])),
        "request=\"vg_update\"\nvgname=\"vg0\"\nmetadata {\nseqno=3\n}".to_owned(),
        "request=\"vg_update\"\nvgname=\"vg0\"\nmetadata {\nid=\"VG1\"\n}".to_owned(),
        format!(
            "request=\"vg_update\"\nvgname=\"vg0\"\n{}",
            metadata("VG1", 0, &["PV1"])
        ),
        // VG1 is cached under vg0; a second name for it while the name map says otherwise
        format!(
            "request=\"vg_update\"\nvgname=\"vgX\"\n{}",
            metadata("VG2", -5, &["PV1"])
        ),
    ] {
        let (_, t) = ask(&d, &bad);
        assert_eq!(response(&t), "failed", "{bad}");
        assert!(t.find_str("reason").is_some());
    }
    let (after, _) = ask(&d, "request=\"dump\"");
    assert_eq!(before, after);
}

#[test]
fn vg_update_rename_and_remove() {
    let d = Lvmetad::new();
    found(&d, "PV1", 1, Some(("vg0", "VG1", 2, &["PV1"])));
    let (_, t) = ask(
        &d,
        &format!(
            "request=\"vg_update\"\nvgname=\"vg1\"\n{}",
            metadata("VG1", 3, &["PV1"])
        ),
    );
    assert_eq!(response(&t), "OK");
    let (_, t) = ask(&d, "request=\"vg_lookup\"\nname=\"vg0\"");
    assert_eq!(response(&t), "unknown");
    let (_, t) = ask(&d, "request=\"vg_lookup\"\nname=\"vg1\"");
    assert_eq!(t.find_int("metadata/seqno"), Some(3));
    let (_, t) = ask(&d, "request=\"vg_lookup\"\nname=\"vg1\"\nuuid=\"nope\"");
    assert_eq!(t.find_str("reason"), Some("VG mapping incomplete"));
    ask(&d, "request=\"vg_remove\"\nuuid=\"VG1\"");
    let (_, t) = ask(&d, "request=\"vg_list\"");
    assert!(t.find("volume_groups").unwrap().children().is_empty());
    let (_, t) = ask(&d, "request=\"pv_lookup\"\nuuid=\"PV1\"");
    assert_eq!(
        t.find_str("physical_volume/vgid"),
        None,
        "orphans have no vgid"
    );
}

#[test]
fn two_vgs_with_one_name_are_multiple() {
    let d = Lvmetad::new();
    found(&d, "PV1", 1, Some(("vg", "A", 1, &["PV1"])));
    found(&d, "PV2", 2, Some(("vg", "B", 1, &["PV2"])));
    let (_, t) = ask(&d, "request=\"vg_lookup\"\nname=\"vg\"");
    assert_eq!(response(&t), "multiple");
    let (_, t) = ask(&d, "request=\"vg_lookup\"\nuuid=\"B\"");
    assert_eq!(t.find_str("name"), Some("vg"));
}

#[test]
fn vg_invalid_until_the_new_seqno_arrives() {
    let d = Lvmetad::new();
    found(&d, "PV1", 1, Some(("vg0", "VG1", 2, &["PV1"])));
    ask(&d, "request=\"set_vg_info\"\nuuid=\"VG1\"\nversion=2");
    let (text, _) = ask(&d, "request=\"vg_lookup\"\nuuid=\"VG1\"");
    assert!(!text.contains("vg_invalid"), "same seqno is not newer");
    ask(&d, "request=\"set_vg_info\"\nname=\"vg0\"\nversion=4");
    let (text, _) = ask(&d, "request=\"vg_lookup\"\nuuid=\"VG1\"");
    assert!(text.ends_with("}\nvg_invalid {\n}\n\n\n"), "{text}");
    ask(
        &d,
        &format!(
            "request=\"vg_update\"\nvgname=\"vg0\"\n{}",
            metadata("VG1", 3, &["PV1"])
        ),
    );
    let (text, _) = ask(&d, "request=\"vg_lookup\"\nuuid=\"VG1\"");
    assert!(text.contains("vg_invalid"), "3 < 4: still invalid");
    ask(
        &d,
        &format!(
            "request=\"vg_update\"\nvgname=\"vg0\"\n{}",
            metadata("VG1", 4, &["PV1"])
        ),
    );
    let (text, _) = ask(&d, "request=\"vg_lookup\"\nuuid=\"VG1\"");
    assert!(!text.contains("vg_invalid"));
}

#[test]
fn global_invalid_marks_lookups_and_lists() {
    let d = Lvmetad::new();
    found(&d, "PV1", 1, Some(("vg0", "VG1", 2, &["PV1"])));
    ask(&d, "request=\"set_global_info\"\nglobal_invalid=1");
    for q in [
        "request=\"vg_list\"",
        "request=\"pv_list\"",
        "request=\"pv_lookup\"\nuuid=\"PV1\"",
        "request=\"vg_lookup\"\nuuid=\"VG1\"",
    ] {
        let (text, _) = ask(&d, q);
        assert!(
            text.ends_with("}\nglobal_invalid {\n}\n\n\n"),
            "{q}: {text}"
        );
    }
    ask(&d, "request=\"set_global_info\"\nglobal_invalid=0");
    let (text, _) = ask(&d, "request=\"vg_list\"");
    assert!(!text.contains("global_invalid"));
}

#[test]
fn lookup_merges_pvmeta_and_flags_missing_pvs() {
    let d = Lvmetad::new();
    found(&d, "PV1", 7, Some(("vg0", "VG1", 2, &["PV1", "PV2"])));
    let (text, t) = ask(&d, "request=\"vg_lookup\"\nuuid=\"VG1\"");
    assert!(text.starts_with("response=\"OK\"\nname=\"vg0\"\nmetadata {\n"));
    assert_eq!(t.find_int("metadata/physical_volumes/pv0/device"), Some(7));
    let st = t.find("metadata/physical_volumes/pv1/status").unwrap();
    let items: Vec<_> = st.get_value().unwrap().items().to_vec();
    assert_eq!(items.len(), 2, "MISSING prepended: {text}");
    // the memo follows pvmeta changes: PV2 appears, PV1 moves
    found(&d, "PV2", 8, None);
    let (text, t) = ask(&d, "request=\"vg_lookup\"\nuuid=\"VG1\"");
    assert!(!text.contains("MISSING"), "{text}");
    assert_eq!(t.find_int("metadata/physical_volumes/pv1/device"), Some(8));
    ask(&d, "request=\"pv_gone\"\ndevice=8");
    let (text, _) = ask(&d, "request=\"vg_lookup\"\nuuid=\"VG1\"");
    assert!(text.contains("MISSING"));
    // the last PV gone drops the VG
    ask(&d, "request=\"pv_gone\"\nuuid=\"PV1\"");
    let (_, t) = ask(&d, "request=\"vg_lookup\"\nuuid=\"VG1\"");
    assert_eq!(response(&t), "unknown");
}

#[test]
fn outdated_pvs_show_until_cleared() {
    let d = Lvmetad::new();
    found(&d, "PV1", 1, Some(("vg0", "VG1", 5, &["PV1", "PV2"])));
    let t = found(&d, "PV2", 2, Some(("vg0", "VG1", 4, &["PV1", "PV2"])));
    assert_eq!(t.find_int("seqno_before"), Some(5));
    let (_, t) = ask(&d, "request=\"vg_lookup\"\nuuid=\"VG1\"");
    assert_eq!(
        t.find("metadata").unwrap().children()[0].key,
        "outdated_pvs"
    );
    assert!(t.find("metadata/outdated_pvs/PV2").is_some());
    let (dump, _) = ask(&d, "request=\"dump\"");
    assert!(
        dump.contains("VG1 {\n\tpv_list=[\"PV2\"]\n\tvgid=\"VG1\"\n}\n"),
        "{dump}"
    );
    ask(&d, "request=\"vg_clear_outdated_pvs\"\nvgid=\"VG1\"");
    let (_, t) = ask(&d, "request=\"vg_lookup\"\nuuid=\"VG1\"");
    assert!(t.find("metadata/outdated_pvs").is_none());
}

#[test]
fn token_mismatch_and_garbage() {
    let d = Lvmetad::new();
    let r = d.handle(&req("request=\"vg_list\"\ntoken=\"filter:0\"\npid=3"));
    let text = r.to_payload();
    assert_eq!(
        text,
        "response = \"token_mismatch\"\nexpected = \"\"\nreceived = \"filter:0\"\nupdate_pid = 0\n\
         reason = \"another command has populated the cache\"\n"
    );
    let garbage = Request {
        tree: None,
        peer: None,
    };
    let r = d.handle(&garbage).to_payload();
    assert_eq!(
        r,
        "response = \"failed\"\nreason = \"request could not be parsed\"\n"
    );
    let r = d
        .handle(&req("request=\"nope\"\ntoken=\"skip\""))
        .to_payload();
    assert_eq!(
        r,
        "response = \"failed\"\nreason = \"request not implemented\"\n"
    );
    // dump is never token-checked
    let r = d.handle(&req("request=\"dump\"\ntoken=\"wrong\""));
    assert!(matches!(r, Response::Raw(ref s) if s.starts_with("# VG METADATA")));
}

#[test]
fn pv_clear_all_keeps_token_and_flags() {
    let d = Lvmetad::new();
    d.handle(&req(
        "request=\"token_update\"\ntoken=\"update in progress\"\npid=9\nupdate_timeout=5",
    ));
    d.handle(&req(
        "request=\"token_update\"\ntoken=\"filter:1\"\npid=9\nupdate_timeout=5",
    ));
    found(&d, "PV1", 1, Some(("vg0", "VG1", 2, &["PV1"])));
    ask(&d, "request=\"set_vg_info\"\nuuid=\"VG1\"\nversion=0");
    ask(&d, "request=\"set_global_info\"\nglobal_invalid=1");
    ask(&d, "request=\"pv_clear_all\"");
    let (dump, _) = ask(&d, "request=\"dump\"");
    assert!(!dump.contains("VG1") && !dump.contains("PV1"), "{dump}");
    let (_, g) = ask(&d, "request=\"get_global_info\"");
    assert_eq!(g.find_str("token"), Some("filter:1"));
    assert_eq!(g.find_int("global_invalid"), Some(1));
}

#[test]
fn concurrent_dumps_leave_lookups_intact() {
    let d = std::sync::Arc::new(Lvmetad::new());
    for i in 0..20 {
        let pv = format!("PV{i}");
        let vg = format!("VG{i}");
        found(&d, &pv, i + 1, Some((&format!("vg{i}"), &vg, 1, &[&pv])));
    }
    let (want, _) = ask(&d, "request=\"vg_lookup\"\nuuid=\"VG3\"");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let d = d.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    ask(&d, "request=\"dump\"");
                    ask(&d, "request=\"vg_lookup\"\nname=\"vg3\"");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (got, _) = ask(&d, "request=\"vg_lookup\"\nuuid=\"VG3\"");
    assert_eq!(want, got);
}

#[test]
fn unverifiable_pvs_get_c_replies_and_are_listed_in_dump() {
    // Major 4095 is what image files get: never a block device, so nothing can be verified.
    let dev = common::scan::device::makedev(4095, 77);
    let d = Lvmetad::verifying();
    found(&d, "PV1", dev, Some(("vg0", "VG1", 3, &["PV1"])));
    for q in [
        "request=\"vg_lookup\"\nname=\"vg0\"",
        "request=\"pv_lookup\"\nuuid=\"PV1\"",
        "request=\"pv_list\"",
        "request=\"vg_list\"",
    ] {
        let (text, t) = ask(&d, q);
        assert_eq!(response(&t), "OK", "{text}");
        assert!(
            t.find("vg_invalid").is_none() && t.find("global_invalid").is_none(),
            "{q}: {text}"
        );
    }
    let (dump, _) = ask(&d, "request=\"dump\"");
    let section = &dump[dump.find("# VERIFICATION").expect("verification section")..];
    assert!(section.contains("result=\"unverifiable\""), "{section}");
    assert!(section.contains("no block device 4095:77"), "{section}");
    assert!(section.contains("list_passes=2"), "{section}");
    // Without verification the dump is C's.
    let plain = Lvmetad::new();
    found(&plain, "PV1", dev, Some(("vg0", "VG1", 3, &["PV1"])));
    assert!(!ask(&plain, "request=\"dump\"").0.contains("# VERIFICATION"));
}
