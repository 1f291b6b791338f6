//! cmirrord-bench: request throughput through one log and checkpoint time.
//!
//!   cmirrord-bench sim [SECONDS]            in-process engines on the simulated CPG bus
//!   cmirrord-bench cluster SECONDS SOCK...  real daemons (CMIRRORD_KERNEL_SOCKET), one kernel-side
//!                                           client thread per socket; cmirrord/bench-cluster.sh
//!                                           starts a 1- or 3-node corosync cluster for this
//!
//! One "cycle" is what the kernel does around a write to a clean region: MARK_REGION, FLUSH,
//! CLEAR_REGION, FLUSH. Requests/s counts all four. The checkpoint figure is the time for a node
//! to join a 1 TiB mirror with 512 KiB regions (2 Mi regions, 2 x 256 KiB bitmaps) until its
//! RESUME is answered.
#![forbid(unsafe_code)]

use cmirrord::engine::KernelOut;
use cmirrord::kclient::KernelClient;
use cmirrord::sim::SimCluster;
use cmirrord::ulog::{payload, RequestType as T, UlogRequest};
use std::time::{Duration, Instant};

const BIG_CTR: &str = "2147483648 clustered-core 1024 nosync";

fn sim_start(c: &mut SimCluster, node: u32, uuid: &str, ctr: &str, seq: &mut u32) {
    for (t, d) in [
        (T::Ctr, format!("{ctr}\0").into_bytes()),
        (T::Resume, vec![]),
    ] {
        *seq += 1;
        let out = c.request(node, UlogRequest::new(t, uuid, 1, *seq, d));
        assert!(
            matches!(&out[..], [KernelOut::Reply(r)] if r.error == 0),
            "{t:?} failed: {out:?}"
        );
    }
}

fn sim_throughput(nodes: u32, secs: f64) -> f64 {
    let mut c = SimCluster::new(1 << 20);
    let uuid = "LVM-bench0000000000000000000000000000000000000000000000000000001";
    let mut seq = 0;
    for n in 1..=nodes {
        c.add_node(n);
        sim_start(
            &mut c,
            n,
            uuid,
            "1048576 clustered-core 1024 nosync",
            &mut seq,
        );
    }
    let start = Instant::now();
    let mut reqs = 0u64;
    let mut i = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        // Every node runs one cycle per round, interleaved through the bus.
        for n in 1..=nodes {
            let r = (i + n as u64) % 1024;
            for (t, d) in [
                (T::MarkRegion, payload::list(&[r])),
                (T::Flush, vec![]),
                (T::ClearRegion, payload::list(&[r])),
                (T::Flush, vec![]),
            ] {
                seq += 1;
                c.submit(n, UlogRequest::new(t, uuid, 1, seq, d));
                c.run();
                reqs += 1;
            }
        }
        i += 1;
    }
    for k in c.kernel.values_mut() {
        k.clear();
    }
    reqs as f64 / start.elapsed().as_secs_f64()
}

fn sim_checkpoint(max_message: usize) -> (Duration, u64) {
    let mut c = SimCluster::new(max_message);
    let uuid = "LVM-bench0000000000000000000000000000000000000000000000000000002";
    let mut seq = 0;
    c.add_node(1);
    c.add_node(2);
    sim_start(&mut c, 1, uuid, BIG_CTR, &mut seq);
    let before = c.traffic().0;
    let t = Instant::now();
    sim_start(&mut c, 2, uuid, BIG_CTR, &mut seq);
    (t.elapsed(), c.traffic().0 - before)
}

fn cluster(secs: f64, socks: &[String]) -> Result<(), String> {
    let uuid = format!("LVM-benchcluster{:0>48}", std::process::id());
    let mut clients = vec![];
    for (i, s) in socks.iter().enumerate() {
        let mut c = KernelClient::connect(std::path::Path::new(s))?;
        let l = i as u64 + 1;
        c.command(&format!(
            "ctr {uuid} {l} 1048576 clustered-core 1024 nosync"
        ))?;
        c.command(&format!("resume {uuid} {l}"))?;
        clients.push((c, l));
    }
    let start = Instant::now();
    let threads: Vec<_> = clients
        .into_iter()
        .map(|(mut c, l)| {
            let uuid = uuid.clone();
            std::thread::spawn(move || -> Result<u64, String> {
                let mut n = 0u64;
                while start.elapsed().as_secs_f64() < secs {
                    c.command(&format!("cycle {uuid} {l} 10 {}", l * 100))?;
                    n += 40;
                }
                for cmd in ["presuspend", "postsuspend", "dtr"] {
                    c.command(&format!("{cmd} {uuid} {l}"))?;
                }
                Ok(n)
            })
        })
        .collect();
    let mut total = 0;
    for t in threads {
        total += t
            .join()
            .map_err(|_| "client thread panicked".to_owned())??;
    }
    let el = start.elapsed().as_secs_f64();
    println!(
        "cluster, {} node(s): {:.0} requests/s through one log ({:.0} mark/flush/clear/flush cycles/s)",
        socks.len(),
        total as f64 / el,
        total as f64 / 4.0 / el
    );
    // Checkpoint: the first node holds a 1 TiB log, the last one joins.
    if socks.len() > 1 {
        let big = format!("LVM-benchbig{:0>52}", std::process::id());
        let mut a = KernelClient::connect(std::path::Path::new(&socks[0]))?;
        let mut b = KernelClient::connect(std::path::Path::new(&socks[socks.len() - 1]))?;
        a.command(&format!("ctr {big} 1 {BIG_CTR}"))?;
        a.command(&format!("resume {big} 1"))?;
        b.command(&format!("ctr {big} 2 {BIG_CTR}"))?;
        let t = Instant::now();
        b.command(&format!("resume {big} 2"))?;
        let el = t.elapsed();
        let n = b.command(&format!("sync_count {big} 2"))?;
        println!("cluster checkpoint, 1 TiB / 512 KiB regions: join answered in {:.1} ms (sync_count {n})", el.as_secs_f64() * 1e3);
        for (c, l) in [(&mut a, 1), (&mut b, 2)] {
            for cmd in ["presuspend", "postsuspend", "dtr"] {
                c.command(&format!("{cmd} {big} {l}"))?;
            }
        }
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("sim") => {
            let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1.0);
            for n in [1, 3] {
                let r = sim_throughput(n, secs);
                println!(
                    "sim, {n} node(s): {r:.0} requests/s through one log ({:.0} cycles/s)",
                    r / 4.0
                );
            }
            for m in [1 << 20, 64 << 10] {
                let (t, msgs) = sim_checkpoint(m);
                println!(
                    "sim checkpoint, 1 TiB / 512 KiB regions, {} KiB messages: {:.1} ms, {msgs} messages",
                    m >> 10,
                    t.as_secs_f64() * 1e3
                );
            }
        }
        Some("cluster") if args.len() >= 3 => {
            let secs: f64 = args[1].parse().unwrap_or(2.0);
            if let Err(e) = cluster(secs, &args[2..]) {
                eprintln!("cmirrord-bench: {e}");
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!(
                "usage: cmirrord-bench sim [SECONDS] | cmirrord-bench cluster SECONDS SOCK..."
            );
            std::process::exit(2);
        }
    }
}
