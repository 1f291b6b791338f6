//! The inputs hostile-client sends: the valid requests of each daemon (and the ones that fill
//! lvmetad first), every mutation of their fields, and malformed framing and bytes.
#![forbid(unsafe_code)]

use common::config::{parse, write_tree, Body, DupMode, Node, Scalar, Value};

pub(crate) const SKIP: &str = "token=\"skip\"\npid=4242\ncmd=\"hostile\"\nupdate_timeout=10\n";

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Daemon {
    Lvmetad,
    Lvmpolld,
}

pub(crate) fn pvid(n: usize) -> String {
    format!("HOSTIL-{n:04}-0000-0000-0000-0000-000000")
}
pub(crate) fn vgid(n: usize) -> String {
    format!("HOSTVG-{n:04}-0000-0000-0000-0000-000000")
}

pub(crate) fn pvmeta(pv: usize) -> String {
    format!(
        "pvmeta {{\n\tdevice={}\n\tdev_size=67108864\n\tformat=\"lvm2\"\n\tlabel_sector=1\n\tid=\"{}\"\n\
         \text_version=2\n\text_flags=1\n\tmda0 {{\n\t\tignore=0\n\t\tstart=4096\n\t\tsize=1044480\n\
         \t\tfree_sectors=1016\n\t}}\n\tda0 {{\n\t\toffset=1048576\n\t\tsize=0\n\t}}\n}}\n",
        2048 + pv,
        pvid(pv)
    )
}

pub(crate) fn metadata(vg: usize) -> String {
    let pvs: String = (0..2)
        .map(|i| {
            let pv = vg * 2 + i;
            format!(
                "\t\tpv{i} {{\n\t\t\tid=\"{}\"\n\t\t\tdevice=\"/dev/loop{pv}\"\n\t\t\tstatus=[\"ALLOCATABLE\"]\n\
                 \t\t\tflags=[]\n\t\t\tdev_size=131072\n\t\t\tpe_start=2048\n\t\t\tpe_count=15\n\t\t}}\n",
                pvid(pv)
            )
        })
        .collect();
    format!(
        "metadata {{\n\tid=\"{}\"\n\tseqno=2\n\tformat=\"lvm2\"\n\tstatus=[\"RESIZEABLE\",\"READ\",\"WRITE\"]\n\
         \tflags=[]\n\textent_size=8192\n\tmax_lv=0\n\tmax_pv=0\n\tmetadata_copies=0\n\
         \tphysical_volumes {{\n{pvs}\t}}\n}}\n",
        vgid(vg)
    )
}

/// The population lvmetad holds during the test: 2 VGs of 2 PVs each, and 1 orphan PV.
pub(crate) fn populate_requests() -> Vec<String> {
    let mut v = vec![format!("request=\"pv_clear_all\"\n{SKIP}")];
    for vg in 0..2 {
        for i in 0..2 {
            v.push(format!(
                "request=\"pv_found\"\n{SKIP}{}vgname=\"hvg{vg}\"\n{}",
                pvmeta(vg * 2 + i),
                metadata(vg)
            ));
        }
    }
    v.push(format!("request=\"pv_found\"\n{SKIP}{}", pvmeta(4)));
    v.push(format!(
        "request=\"set_global_info\"\n{SKIP}global_invalid=0\nglobal_disable=0\n"
    ));
    v
}

/// One valid request of each kind (the baselines the field mutations start from).
pub(crate) fn valid_requests(d: Daemon) -> Vec<String> {
    match d {
        Daemon::Lvmetad => {
            let r = |s: &str| format!("request=\"{s}\"\n{SKIP}");
            vec![
                r("get_global_info"),
                format!(
                    "{}global_invalid=0\nglobal_disable=0\ndisable_reason=\"DIRECT\"\n",
                    r("set_global_info")
                ),
                r("token_update"),
                r("pv_clear_all"),
                format!(
                    "{}{}vgname=\"hvg0\"\n{}",
                    r("pv_found"),
                    pvmeta(0),
                    metadata(0)
                ),
                format!("{}uuid=\"{}\"\n", r("pv_gone"), pvid(4)),
                format!("{}device=2049\n", r("pv_gone")),
                format!("{}uuid=\"{}\"\n", r("pv_lookup"), pvid(1)),
                format!("{}device=2050\n", r("pv_lookup")),
                r("pv_list"),
                r("vg_list"),
                format!("{}uuid=\"{}\"\nname=\"hvg1\"\n", r("vg_lookup"), vgid(1)),
                format!("{}vgname=\"hvg1\"\n{}", r("vg_update"), metadata(1)),
                format!("{}uuid=\"{}\"\n", r("vg_remove"), vgid(0)),
                format!("{}vgid=\"{}\"\n", r("vg_clear_outdated_pvs"), vgid(1)),
                format!(
                    "{}uuid=\"{}\"\nname=\"hvg0\"\nversion=7\n",
                    r("set_vg_info"),
                    vgid(0)
                ),
                r("dump"),
            ]
        }
        Daemon::Lvmpolld => {
            let poll = |kind: &str| {
                format!(
                    "request=\"{kind}\"\nlvid=\"HOSTILELVID0000000000000000000000\"\nvgname=\"hvg\"\n\
                     lvname=\"lv-0-0\"\ninterval=\"1\"\nabort=0\nhandle_missing_pvs=0\nsysdir=\"/etc/lvm\"\n"
                )
            };
            vec![
                poll("pvmove"),
                poll("convert"),
                poll("merge"),
                poll("merge_thin"),
                "request=\"progress_info\"\nlvid=\"HOSTILELVID0000000000000000000000\"\nsysdir=\"/etc/lvm\"\nabort=0\n".into(),
                "request=\"dump\"\n".into(),
            ]
        }
    }
}

/// Every path (as child indices) of every node in a tree.
pub(crate) fn node_paths(nodes: &[Node], prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    for (i, n) in nodes.iter().enumerate() {
        prefix.push(i);
        out.push(prefix.clone());
        if let Body::Section(kids) = &n.body {
            node_paths(kids, prefix, out);
        }
        prefix.pop();
    }
}

pub(crate) fn node_at<'a>(nodes: &'a mut Vec<Node>, path: &[usize]) -> &'a mut Vec<Node> {
    let mut cur = nodes;
    for &i in &path[..path.len() - 1] {
        cur = match &mut cur[i].body {
            Body::Section(k) => k,
            Body::Value(_) => unreachable!("paths only descend into sections"),
        };
    }
    cur
}

/// The wrong-typed and extreme replacements for one node.
pub(crate) fn replacements(n: &Node, big: &str) -> Vec<Option<Body>> {
    let v = |s: Scalar| Some(Body::Value(Value::Scalar(s)));
    let int = |i: i64| v(Scalar::Int(i));
    let mut r = vec![
        None, // removed
        Some(Body::Section(vec![Node {
            key: "x".into(),
            body: Body::Value(Value::Scalar(Scalar::Int(1))),
        }])),
        Some(Body::Section(vec![])),
        Some(Body::Value(Value::Array(vec![
            Scalar::Int(1),
            Scalar::Str("a".into()),
        ]))),
        Some(Body::Value(Value::Array(vec![]))),
        v(Scalar::Float(1.5)),
    ];
    match &n.body {
        Body::Value(Value::Scalar(Scalar::Int(_))) => {
            r.extend([
                v(Scalar::Str("12".into())),
                v(Scalar::Str("not a number".into())),
                int(i64::MAX),
                int(i64::MIN),
                int(-1),
                int(0),
                int(i64::from(u32::MAX) + 1),
            ]);
        }
        Body::Value(Value::Scalar(Scalar::Str(_))) => {
            r.extend([
                int(1),
                int(-1),
                int(i64::MAX),
                v(Scalar::Str(String::new())),
                v(Scalar::Str(big.to_owned())),
                v(Scalar::Str("\"quoted\" \\ \n\t #x".into())),
            ]);
        }
        _ => r.extend([int(0), int(i64::MIN), v(Scalar::Str("section".into()))]),
    }
    r
}

/// Every field of a valid request mutated to every replacement.
pub(crate) fn mutations(valid: &str, big_len: usize) -> Vec<Vec<u8>> {
    let tree = parse(valid.as_bytes(), DupMode::KeepAll).expect("valid baseline request");
    let big = "B".repeat(big_len);
    let mut paths = Vec::new();
    node_paths(&tree.nodes, &mut Vec::new(), &mut paths);
    let mut out = Vec::new();
    for p in paths {
        let mut probe = tree.nodes.clone();
        let original = node_at(&mut probe, &p)[p[p.len() - 1]].clone();
        for rep in replacements(&original, &big) {
            let mut nodes = tree.nodes.clone();
            let parent = node_at(&mut nodes, &p);
            let i = p[p.len() - 1];
            match rep {
                None => {
                    parent.remove(i);
                }
                Some(body) => parent[i].body = body,
            }
            out.push(write_tree(&nodes).into_bytes());
        }
    }
    // Plus an overflowing literal for every int field (the parser refuses it).
    for line in valid.lines() {
        if let Some((k, v)) = line.split_once('=') {
            if v.parse::<i64>().is_ok() {
                let bad = valid.replace(line, &format!("{k}=99999999999999999999999"));
                out.push(bad.into_bytes());
            }
        }
    }
    out
}

/// Inputs that are not well-formed requests at all (sent framed unless noted by the caller).
pub(crate) fn malformed(d: Daemon) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"this is { garbage".to_vec(),
        b"request=\"pv_list\"\ntoken=\"skip\"\n}}}}".to_vec(),
        b"request=\"\xff\xfe\"\ntoken=\"skip\"\n".to_vec(),
        b"request=\"pv_list\"\ntoken=\"sk\xc3\x28ip\"\n".to_vec(),
        b"\xffrequest=\"dump\"\n".to_vec(),
        b"request=\"pv_list\0\"\ntoken=\"skip\"\n".to_vec(),
        b"request=\"pv_list\"\0token=\"skip\"\n".to_vec(),
        b"\0\0\0\0".to_vec(),
        b"request=\"dump\nunterminated string".to_vec(),
        b"request=[\"dump\",\"pv_list\"]\ntoken=\"skip\"\n".to_vec(),
        b"request { x=1 }\ntoken=\"skip\"\n".to_vec(),
        b"request=5\ntoken=\"skip\"\n".to_vec(),
        b"= = = [ [ [ ,,,".to_vec(),
        b"a/b/c/d/e/f/g/h=1\n".to_vec(),
        format!("{}=1\n", "k/".repeat(200)).into_bytes(),
        format!("{}1{}", "a{".repeat(100_000), "}".repeat(100_000)).into_bytes(),
        format!(
            "request=\"pv_list\"\ntoken=\"skip\"\n{}",
            "[".repeat(100_000)
        )
        .into_bytes(),
        format!("x={}\n", "1".repeat(10_000)).into_bytes(),
        format!("x=[{}1]\n", "1,".repeat(200_000)).into_bytes(),
    ];
    for name in [
        "NONE",
        "",
        "hello2",
        "HELLO",
        "dump ",
        "pv_list\n",
        "../../etc/passwd",
        "%s%s%s%n",
        "request",
    ] {
        v.push(format!("request=\"{name}\"\n{SKIP}").into_bytes());
    }
    v.push(format!("request=\"{}\"\n{SKIP}", "u".repeat(1 << 20)).into_bytes());
    if d == Daemon::Lvmpolld {
        for iv in [
            "-1",
            "4294967296",
            "99999999999999999999",
            " +7x",
            "",
            "0x10",
        ] {
            v.push(
                format!(
                    "request=\"pvmove\"\nlvid=\"HOSTILELVID0000000000000000000000\"\nvgname=\"hvg\"\n\
                     lvname=\"lv-0-0\"\ninterval=\"{iv}\"\n"
                )
                .into_bytes(),
            );
        }
    }
    // Random bytes from a fixed-seed generator (xorshift).
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in [1usize, 7, 64, 513, 4096, 65_537] {
        let bytes = (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 24) as u8
            })
            .collect();
        v.push(bytes);
    }
    v
}
