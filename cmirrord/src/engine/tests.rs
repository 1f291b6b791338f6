//! Engine tests on the simulated CPG: one node, three nodes, joins and leaves mid-resync,
//! checkpoints larger than one message, luid handling.

use super::*;
use crate::sim::SimCluster;
use crate::ulog::RequestType as T;

const U: &str = "LVM-testlog0000000000000000000000000001";

struct K {
    seq: u32,
}

impl K {
    fn rq(&mut self, t: T, luid: u64, data: Vec<u8>) -> UlogRequest {
        self.seq += 1;
        UlogRequest::new(t, U, luid, self.seq, data)
    }
}

fn reply(out: Vec<KernelOut>) -> UlogRequest {
    let replies: Vec<UlogRequest> = out
        .into_iter()
        .filter_map(|o| match o {
            KernelOut::Reply(r) => Some(r),
            KernelOut::Ack { .. } => None,
        })
        .collect();
    assert_eq!(replies.len(), 1, "{replies:?}");
    replies.into_iter().next().unwrap()
}

fn ok(c: &mut SimCluster, node: u32, req: UlogRequest) -> Vec<u8> {
    let seq = req.seq;
    let r = reply(c.request(node, req));
    assert_eq!(r.seq, seq);
    assert_eq!(r.error, 0, "request failed: {r:?}");
    r.data
}

fn word(d: &[u8]) -> u64 {
    payload::words(d)[0]
}

/// CTR + RESUME of a core log on `node`.
fn start(c: &mut SimCluster, k: &mut K, node: u32, luid: u64, ctr: &str) {
    ok(c, node, k.rq(T::Ctr, luid, format!("{ctr}\0").into_bytes()));
    ok(c, node, k.rq(T::Resume, luid, vec![]));
}

/// Three nodes with the same 50-region core log resumed on each.
fn three_nodes_resumed() -> (SimCluster, K) {
    let mut c = SimCluster::new(65536);
    for n in 1..=3 {
        c.add_node(n);
    }
    let mut k = K { seq: 0 };
    for n in 1..=3 {
        start(&mut c, &mut k, n, 1, "51200 clustered-core 1024");
    }
    (c, k)
}

fn state(c: &SimCluster, node: u32) -> (Vec<u8>, Vec<u8>, u64) {
    let e = &c.nodes[&node]
        .logs()
        .iter()
        .find(|e| e.official)
        .expect("official log");
    (
        e.log.sync_bits.to_image(),
        e.log.clean_bits.to_image(),
        e.log.sync_count,
    )
}

/// Resync regions until no more work: returns how many were recovered by `node`.
fn resync(c: &mut SimCluster, k: &mut K, node: u32, limit: usize) -> usize {
    let mut n = 0;
    while n < limit {
        let w = payload::words(&ok(c, node, k.rq(T::GetResyncWork, 1, vec![])));
        if w[0] == 0 {
            break;
        }
        ok(c, node, k.rq(T::SetRegionSync, 1, payload::pair(w[1], 1)));
        n += 1;
    }
    n
}

#[test]
fn single_node_full_cycle() {
    let mut c = SimCluster::new(65536);
    c.add_node(1);
    let mut k = K { seq: 0 };
    start(&mut c, &mut k, 1, 1, "8192 clustered-core 1024");
    assert_eq!(c.group(1).unwrap().state, GroupState::Valid);
    assert_eq!(
        word(&ok(&mut c, 1, k.rq(T::GetRegionSize, 1, vec![]))),
        1024
    );
    assert_eq!(word(&ok(&mut c, 1, k.rq(T::GetSyncCount, 1, vec![]))), 0);
    assert_eq!(
        ok(&mut c, 1, k.rq(T::StatusInfo, 1, vec![])),
        b"1 clustered-core"
    );
    assert_eq!(
        ok(&mut c, 1, k.rq(T::StatusTable, 1, vec![])),
        b"clustered-core 1024  "
    );
    assert_eq!(resync(&mut c, &mut k, 1, 100), 8);
    assert_eq!(word(&ok(&mut c, 1, k.rq(T::GetSyncCount, 1, vec![]))), 8);
    ok(&mut c, 1, k.rq(T::MarkRegion, 1, payload::list(&[2, 3])));
    assert_eq!(
        word(&ok(&mut c, 1, k.rq(T::IsClean, 1, payload::one(2)))),
        0
    );
    // CLEAR_REGION is acked at once.
    let out = c.request(1, k.rq(T::ClearRegion, 1, payload::list(&[2])));
    assert!(matches!(out[..], [KernelOut::Ack { error: 0, .. }]));
    ok(&mut c, 1, k.rq(T::Flush, 1, vec![]));
    assert_eq!(
        word(&ok(&mut c, 1, k.rq(T::IsClean, 1, payload::one(2)))),
        1
    );
    assert_eq!(
        word(&ok(&mut c, 1, k.rq(T::IsClean, 1, payload::one(3)))),
        0
    );
    assert_eq!(word(&ok(&mut c, 1, k.rq(T::InSync, 1, payload::one(7)))), 1);
    let r = reply(c.request(1, k.rq(T::InSync, 1, payload::one(8))));
    assert_eq!(r.error, -libc::EINVAL);
    // Suspend: leaves the group, the log goes back to pending; then destroy.
    ok(&mut c, 1, k.rq(T::Presuspend, 1, vec![]));
    ok(&mut c, 1, k.rq(T::Postsuspend, 1, vec![]));
    assert!(c.nodes[&1].group(U).is_none());
    assert!(!c.nodes[&1].logs()[0].official);
    ok(&mut c, 1, k.rq(T::Dtr, 1, vec![]));
    assert!(!c.nodes[&1].has_logs());
    // Unknown log / unknown types.
    assert_eq!(
        reply(c.request(1, k.rq(T::GetRegionSize, 1, vec![]))).error,
        -libc::EINVAL
    );
    assert_eq!(
        reply(c.request(1, k.rq(T::Flush, 1, vec![]))).error,
        -libc::ENOENT
    );
    let mut bad = k.rq(T::Flush, 1, vec![]);
    bad.request_type = 40;
    assert!(c.request(1, bad).is_empty(), "invalid types get no reply");
    let mut zero = k.rq(T::Flush, 1, vec![]);
    zero.request_type = 0;
    assert!(
        matches!(c.request(1, zero)[..], [KernelOut::Ack { error, .. }] if error == libc::EAGAIN as u32)
    );
}

impl SimCluster {
    fn group(&self, node: u32) -> Option<&Group> {
        self.nodes[&node].group(U)
    }
}

#[test]
fn three_nodes_apply_every_request_and_lowest_serves() {
    let mut c = SimCluster::new(65536);
    for n in [3, 1, 2] {
        c.add_node(n);
    }
    let mut k = K { seq: 100 };
    for n in [2, 3, 1] {
        start(&mut c, &mut k, n, 1, "65536 clustered-core 1024");
    }
    for n in 1..=3 {
        assert_eq!(c.group(n).unwrap().state, GroupState::Valid, "node {n}");
        assert_eq!(c.group(n).unwrap().lowest, Some(1));
    }
    // Marks from two nodes: the region only becomes clean when both cleared.
    let mut k2 = K { seq: 500 };
    let mut k3 = K { seq: 900 };
    assert_eq!(resync(&mut c, &mut k2, 2, 1000), 64);
    ok(&mut c, 2, k2.rq(T::MarkRegion, 1, payload::list(&[5])));
    ok(&mut c, 3, k3.rq(T::MarkRegion, 1, payload::list(&[5])));
    c.request(2, k2.rq(T::ClearRegion, 1, payload::list(&[5])));
    assert_eq!(
        word(&ok(&mut c, 1, k.rq(T::IsClean, 1, payload::one(5)))),
        0
    );
    c.request(3, k3.rq(T::ClearRegion, 1, payload::list(&[5])));
    assert_eq!(
        word(&ok(&mut c, 2, k2.rq(T::IsClean, 1, payload::one(5)))),
        1
    );
    assert_eq!(state(&c, 1), state(&c, 2));
    assert_eq!(state(&c, 1), state(&c, 3));
    assert_eq!(state(&c, 1).2, 64);
    // Every node counts every delivered request; the SIGUSR1 dump shows the count.
    let d = c.nodes[&1].delivered;
    assert!(d > 64, "{d} requests delivered");
    for n in 2..=3 {
        assert_eq!(c.nodes[&n].delivered, d, "node {n}");
    }
    let line = format!("Cluster requests delivered: {d}");
    assert!(c.nodes[&3].dump().contains(&line));
}

#[test]
fn interleaved_resync_from_all_nodes_hands_out_each_region_once() {
    let mut c = SimCluster::new(65536);
    for n in 1..=3 {
        c.add_node(n);
    }
    let mut ks: Vec<K> = (0..3).map(|i| K { seq: i * 1000 }).collect();
    for n in 1..=3u32 {
        start(
            &mut c,
            &mut ks[n as usize - 1],
            n,
            7,
            "30720 clustered-core 1024",
        );
    }
    let mut got = vec![];
    for _round in 0..40 {
        for n in 1..=3u32 {
            let r = ks[n as usize - 1].rq(T::GetResyncWork, 7, vec![]);
            c.submit(n, r);
        }
        c.run();
        for n in 1..=3u32 {
            for o in std::mem::take(c.kernel.get_mut(&n).unwrap()) {
                if let KernelOut::Reply(r) = o {
                    let w = payload::words(&r.data);
                    if r.rtype() == Some(T::GetResyncWork) && w[0] == 1 {
                        got.push(w[1]);
                        let s = ks[n as usize - 1].rq(T::SetRegionSync, 7, payload::pair(w[1], 1));
                        c.submit(n, s);
                    }
                }
            }
        }
        c.run();
        for n in 1..=3u32 {
            c.kernel.get_mut(&n).unwrap().clear();
        }
    }
    got.sort();
    assert_eq!(got, (0..30).collect::<Vec<_>>());
    assert_eq!(state(&c, 1), state(&c, 3));
    assert_eq!(state(&c, 2).2, 30);
}

#[test]
fn node_joining_mid_resync_gets_the_checkpoint() {
    let mut c = SimCluster::new(65536);
    for n in 1..=3 {
        c.add_node(n);
    }
    let mut k = K { seq: 0 };
    start(&mut c, &mut k, 1, 1, "102400 clustered-core 1024");
    start(&mut c, &mut k, 2, 1, "102400 clustered-core 1024");
    assert_eq!(resync(&mut c, &mut k, 2, 40), 40);
    ok(&mut c, 1, k.rq(T::MarkRegion, 1, payload::list(&[3])));
    // Region 40 is out for recovery by node 2 when node 3 joins.
    assert_eq!(
        payload::words(&ok(&mut c, 2, k.rq(T::GetResyncWork, 1, vec![]))),
        vec![1, 40]
    );
    start(&mut c, &mut k, 3, 1, "102400 clustered-core 1024");
    assert_eq!(c.group(3).unwrap().state, GroupState::Valid);
    assert_eq!(state(&c, 3), state(&c, 1));
    assert_eq!(state(&c, 3).2, 40);
    let l3 = &c.nodes[&3].logs()[0].log;
    assert_eq!(l3.recovering, Some((40, 2)));
    assert_eq!(
        l3.marks.get(&3),
        Some(&vec![1]),
        "marks travel with the checkpoint"
    );
    // The joiner now takes part: node 2 finishes its region, node 3 does the rest.
    ok(&mut c, 2, k.rq(T::SetRegionSync, 1, payload::pair(40, 1)));
    assert_eq!(resync(&mut c, &mut k, 3, 1000), 59);
    for n in 1..=3 {
        assert_eq!(state(&c, n).2, 100, "node {n}");
    }
    assert_eq!(state(&c, 1), state(&c, 3));
    // Node 1 clears its mark: clean everywhere.
    c.request(1, k.rq(T::ClearRegion, 1, payload::list(&[3])));
    assert_eq!(
        word(&ok(&mut c, 3, k.rq(T::IsClean, 1, payload::one(3)))),
        1
    );
}

#[test]
fn server_leaving_mid_resync_leaves_the_others_consistent() {
    let (mut c, mut k) = three_nodes_resumed();
    assert_eq!(resync(&mut c, &mut k, 3, 10), 10);
    // Node 3 asks for work while node 1 (the server) suspends: the request lands after the
    // server's POSTSUSPEND and is answered by the new server, node 2.
    let post = k.rq(T::Postsuspend, 1, vec![]);
    c.submit(1, post);
    let get = k.rq(T::GetResyncWork, 1, vec![]);
    let get_seq = get.seq;
    c.submit(3, get);
    c.run();
    let r = reply(std::mem::take(c.kernel.get_mut(&3).unwrap()));
    assert_eq!((r.seq, r.error), (get_seq, 0));
    assert_eq!(payload::words(&r.data)[0], 1);
    assert_eq!(c.group(3).unwrap().lowest, Some(2));
    assert_eq!(
        reply(std::mem::take(c.kernel.get_mut(&1).unwrap())).rtype(),
        Some(T::Postsuspend)
    );
    ok(
        &mut c,
        3,
        k.rq(
            T::SetRegionSync,
            1,
            payload::pair(payload::words(&r.data)[1], 1),
        ),
    );
    assert_eq!(resync(&mut c, &mut k, 2, 1000), 39);
    assert_eq!(state(&c, 2), state(&c, 3));
    assert_eq!(state(&c, 3).2, 50);
    // Node 1 comes back: checkpoint from the others.
    ok(&mut c, 1, k.rq(T::Resume, 1, vec![]));
    assert_eq!(state(&c, 1), state(&c, 2));
}

#[test]
fn crashed_server_requests_are_resent() {
    let (mut c, mut k) = three_nodes_resumed();
    let get = k.rq(T::GetResyncWork, 1, vec![]);
    c.submit(2, get);
    c.crash(1);
    // Deliver the request to everyone (node 1 is gone, so nobody answers), then the leave.
    c.run();
    let r = reply(std::mem::take(c.kernel.get_mut(&2).unwrap()));
    assert_eq!(r.error, 0);
    assert_eq!(payload::words(&r.data), vec![1, 0]);
    assert_eq!(state(&c, 2), state(&c, 3));
}

#[test]
fn checkpoint_bigger_than_a_message_is_sent_in_pieces() {
    // 1 TiB with 512 KiB regions: 2 Mi regions, 256 KiB per bitmap.
    let mut c = SimCluster::new(64 * 1024);
    for n in 1..=2 {
        c.add_node(n);
    }
    let mut k = K { seq: 0 };
    let ctr = "2147483648 clustered-core 1024 nosync";
    start(&mut c, &mut k, 1, 1, ctr);
    ok(
        &mut c,
        1,
        k.rq(T::SetRegionSync, 1, payload::pair(1_000_000, 0)),
    );
    start(&mut c, &mut k, 2, 1, ctr);
    assert_eq!(c.group(2).unwrap().state, GroupState::Valid);
    let g1 = c.group(1).unwrap();
    assert_eq!(g1.checkpoints_sent, 1);
    assert!(
        g1.checkpoint_pieces_sent >= 8,
        "{} pieces",
        g1.checkpoint_pieces_sent
    );
    assert!(c.traffic().2 <= 64 * 1024);
    assert_eq!(state(&c, 2), state(&c, 1));
    assert_eq!(state(&c, 2).2, 2 * 1024 * 1024 - 1);
}

#[test]
fn luid_tells_apart_two_instances_of_one_uuid() {
    let mut c = SimCluster::new(65536);
    c.add_node(1);
    let mut k = K { seq: 0 };
    start(&mut c, &mut k, 1, 0xAAAA, "4096 clustered-core 1024");
    assert_eq!(resync(&mut c, &mut k, 1, 100), 4);
    // A reload loads a second instance (same uuid, new luid) into the inactive table.
    ok(
        &mut c,
        1,
        k.rq(T::Ctr, 0xBBBB, b"8192 clustered-core 1024\0".to_vec()),
    );
    assert_eq!(
        word(&ok(&mut c, 1, k.rq(T::GetSyncCount, 0xBBBB, vec![]))),
        0
    );
    assert_eq!(
        word(&ok(&mut c, 1, k.rq(T::GetSyncCount, 0xAAAA, vec![]))),
        4
    );
    // Creating the same (uuid, luid) twice fails.
    assert_eq!(
        reply(c.request(
            1,
            k.rq(T::Ctr, 0xBBBB, b"8192 clustered-core 1024\0".to_vec())
        ))
        .error,
        -libc::EINVAL
    );
    ok(&mut c, 1, k.rq(T::Presuspend, 0xAAAA, vec![]));
    ok(&mut c, 1, k.rq(T::Postsuspend, 0xAAAA, vec![]));
    ok(&mut c, 1, k.rq(T::Resume, 0xBBBB, vec![]));
    ok(&mut c, 1, k.rq(T::Dtr, 0xAAAA, vec![]));
    let logs = c.nodes[&1].logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(
        (logs[0].luid, logs[0].official, logs[0].log.region_count),
        (0xBBBB, true, 8)
    );
}

#[test]
fn disk_log_server_writes_and_new_cluster_reads_it() {
    let mut c = SimCluster::new(65536);
    c.add_node(1);
    c.add_node(2);
    let mut k = K { seq: 0 };
    let ctr = "8192 clustered-disk 253:7 1024";
    start(&mut c, &mut k, 1, 1, ctr);
    let ctr_reply = {
        k.seq += 1;
        let r = UlogRequest::new(T::Ctr, U, 1, k.seq, format!("{ctr}\0").into_bytes());
        ok(&mut c, 2, r)
    };
    assert_eq!(ctr_reply, b"253:7\0", "v2 CTR returns the log device");
    ok(&mut c, 2, k.rq(T::Resume, 1, vec![]));
    assert_eq!(resync(&mut c, &mut k, 2, 100), 8);
    // The kernel clears each recovered region; the server writes the clean bits on flush.
    c.request(
        2,
        k.rq(
            T::ClearRegion,
            1,
            payload::list(&(0..8).collect::<Vec<_>>()),
        ),
    );
    ok(&mut c, 2, k.rq(T::Flush, 1, vec![]));
    let disk = c.disk("253:7");
    assert_eq!(disk.image()[1024], 0xFF);
    assert_eq!(
        ok(&mut c, 2, k.rq(T::StatusInfo, 1, vec![])),
        b"3 clustered-disk 253:7 A"
    );
}

#[test]
fn joiner_before_first_resume_gets_a_deferred_checkpoint_without_double_apply() {
    let mut c = SimCluster::new(65536);
    c.add_node(1);
    c.add_node(2);
    let mut k = K { seq: 0 };
    let ctr = "8192 clustered-core 1024 nosync";
    ok(&mut c, 1, k.rq(T::Ctr, 1, format!("{ctr}\0").into_bytes()));
    ok(&mut c, 2, k.rq(T::Ctr, 1, format!("{ctr}\0").into_bytes()));
    // Node 1 joins and multicasts its RESUME; node 2's join overtakes that RESUME.
    c.submit(1, k.rq(T::Resume, 1, vec![]));
    c.run_steps(1);
    c.submit(2, k.rq(T::Resume, 1, vec![]));
    assert_eq!(c.pending(), 3); // [RESUME(1), join(2), RESUME(2)]
    c.promote(1);
    c.run();
    for n in 1..=2 {
        let out = std::mem::take(c.kernel.get_mut(&n).unwrap());
        assert_eq!(reply(out).error, 0, "node {n} resume");
    }
    assert_eq!(c.group(2).unwrap().state, GroupState::Valid);
    // The checkpoint was taken after node 1's master resume (clean bits all set by nosync),
    // not before it.
    assert_eq!(state(&c, 2), state(&c, 1));
    assert!(c.nodes[&2].logs()[0].log.is_clean(7).unwrap());
    assert_eq!(c.group(1).unwrap().checkpoints_sent, 1);
}

#[test]
fn version_1_ctr_returns_no_device_name() {
    let mut c = SimCluster::new(65536);
    c.add_node(1);
    let mut r = UlogRequest::new(
        T::Ctr,
        U,
        5,
        1,
        b"8192 clustered-disk 253:7 1024\0".to_vec(),
    );
    r.version = 1;
    assert_eq!(ok(&mut c, 1, r), b"");
    let r = UlogRequest::new(
        T::Ctr,
        U,
        6,
        2,
        b"8192 clustered-disk 253:7 1024\0".to_vec(),
    );
    assert_eq!(ok(&mut c, 1, r), b"253:7\0");
}

#[test]
fn a_member_leaving_mid_resync_wakes_the_survivors_mirrors() {
    let (mut c, mut k) = three_nodes_resumed();
    for n in 1..=3 {
        assert!(c.nodes.get_mut(&n).unwrap().take_wakes().is_empty());
    }
    // Node 3 is the one recovering; node 1 is told someone else is.
    assert_eq!(resync(&mut c, &mut k, 3, 10), 10);
    let w = payload::words(&ok(&mut c, 3, k.rq(T::GetResyncWork, 1, vec![])));
    assert_eq!(w[0], 1);
    let w = payload::words(&ok(&mut c, 1, k.rq(T::GetResyncWork, 1, vec![])));
    assert_eq!(w[0], 0, "node 1 must be told to wait");
    c.crash(3);
    c.run();
    for n in 1..=2 {
        assert_eq!(
            c.nodes.get_mut(&n).unwrap().take_wakes(),
            vec![U.to_owned()]
        );
    }
    // Woken, node 1 gets the dead node's region and finishes.
    assert_eq!(resync(&mut c, &mut k, 1, 1000), 40);
    assert_eq!(state(&c, 1).2, 50);
    // A leave once everything is in sync wakes nobody.
    c.crash(2);
    c.run();
    assert!(c.nodes.get_mut(&1).unwrap().take_wakes().is_empty());
}
