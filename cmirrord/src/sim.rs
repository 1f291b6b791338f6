//! A simulated CPG: several [`Engine`]s in one process on a bus that delivers messages and
//! membership changes to every member of a group in one total order (virtual synchrony, as
//! corosync gives it). Used by unit tests and the benchmark; the real thing is `cpg`.
#![forbid(unsafe_code)]

use crate::engine::{DiskOpener, Engine, KernelOut, Transport};
use crate::errno::Errno;
use crate::testing::MemDisk;
use crate::ulog::UlogRequest;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::rc::Rc;

enum BusEvent {
    Msg {
        group: String,
        from: u32,
        bytes: Vec<u8>,
    },
    Join {
        group: String,
        node: u32,
    },
    Leave {
        group: String,
        node: u32,
    },
}

#[derive(Default)]
struct Bus {
    queue: VecDeque<BusEvent>,
    members: HashMap<String, BTreeSet<u32>>,
    max_message: usize,
    messages: u64,
    bytes: u64,
    largest: usize,
}

struct SimTransport {
    bus: Rc<RefCell<Bus>>,
    me: u32,
    joined: BTreeSet<String>,
}

impl Transport for SimTransport {
    fn join(&mut self, uuid: &str) -> Result<(), Errno> {
        self.joined.insert(uuid.to_owned());
        self.bus.borrow_mut().queue.push_back(BusEvent::Join {
            group: uuid.to_owned(),
            node: self.me,
        });
        Ok(())
    }
    fn leave(&mut self, uuid: &str) -> Result<(), Errno> {
        self.bus.borrow_mut().queue.push_back(BusEvent::Leave {
            group: uuid.to_owned(),
            node: self.me,
        });
        Ok(())
    }
    fn finalize(&mut self, uuid: &str) {
        self.joined.remove(uuid);
    }
    fn mcast(&mut self, uuid: &str, msg: &[u8]) -> Result<(), Errno> {
        let mut b = self.bus.borrow_mut();
        if msg.len() > b.max_message {
            return Err(Errno::EMSGSIZE);
        }
        b.messages += 1;
        b.bytes += msg.len() as u64;
        b.largest = b.largest.max(msg.len());
        b.queue.push_back(BusEvent::Msg {
            group: uuid.to_owned(),
            from: self.me,
            bytes: msg.to_vec(),
        });
        Ok(())
    }
    fn local_nodeid(&self) -> Option<u32> {
        Some(self.me)
    }
    fn max_message(&self) -> usize {
        self.bus.borrow().max_message
    }
}

/// A cluster of engines (node ids are the keys) sharing one disk per device name.
pub struct SimCluster {
    bus: Rc<RefCell<Bus>>,
    pub nodes: BTreeMap<u32, Engine>,
    /// Kernel replies per node, in order.
    pub kernel: BTreeMap<u32, Vec<KernelOut>>,
    disks: Rc<RefCell<HashMap<String, MemDisk>>>,
}

impl SimCluster {
    /// `max_message`: the largest multicast accepted (CPG's atomic message size).
    pub fn new(max_message: usize) -> SimCluster {
        let bus = Bus {
            max_message,
            ..Default::default()
        };
        SimCluster {
            bus: Rc::new(RefCell::new(bus)),
            nodes: BTreeMap::new(),
            kernel: BTreeMap::new(),
            disks: Rc::new(RefCell::new(HashMap::new())),
        }
    }

    /// Start a daemon on node `id`.
    pub fn add_node(&mut self, id: u32) {
        let t = SimTransport {
            bus: self.bus.clone(),
            me: id,
            joined: BTreeSet::new(),
        };
        let disks = self.disks.clone();
        let opener: DiskOpener = Box::new(move |name| {
            let d = disks
                .borrow_mut()
                .entry(name.to_owned())
                .or_insert_with(|| MemDisk::new(253, 7))
                .clone();
            Ok(Box::new(d))
        });
        self.nodes.insert(id, Engine::new(Box::new(t), opener));
        self.kernel.insert(id, vec![]);
    }

    /// The shared disk behind a device name (created on first use).
    pub fn disk(&self, name: &str) -> MemDisk {
        self.disks
            .borrow_mut()
            .entry(name.to_owned())
            .or_insert_with(|| MemDisk::new(253, 7))
            .clone()
    }

    /// Node `id` crashes: its daemon is gone and every group it was in sees it leave.
    pub fn crash(&mut self, id: u32) {
        self.nodes.remove(&id);
        let mut b = self.bus.borrow_mut();
        let groups: Vec<String> = b
            .members
            .iter()
            .filter(|(_, m)| m.contains(&id))
            .map(|(g, _)| g.clone())
            .collect();
        for g in groups {
            b.queue.push_back(BusEvent::Leave { group: g, node: id });
        }
    }

    /// A kernel request on node `id`; runs the cluster until quiet and returns that node's
    /// kernel replies produced meanwhile.
    pub fn request(&mut self, id: u32, req: UlogRequest) -> Vec<KernelOut> {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.kernel_request(req);
        }
        self.collect();
        self.run();
        std::mem::take(self.kernel.get_mut(&id).expect("node exists"))
    }

    /// Send without running the bus (to interleave requests of several nodes).
    pub fn submit(&mut self, id: u32, req: UlogRequest) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.kernel_request(req);
        }
        self.collect();
    }

    fn collect(&mut self) {
        for (id, n) in self.nodes.iter_mut() {
            self.kernel
                .entry(*id)
                .or_default()
                .extend(n.take_kernel_out());
        }
    }

    /// Deliver until the bus is empty.
    pub fn run(&mut self) {
        loop {
            let ev = self.bus.borrow_mut().queue.pop_front();
            let Some(ev) = ev else { break };
            self.step(ev);
            self.collect();
        }
    }

    /// Deliver at most `n` bus events (to stop in the middle of something).
    pub fn run_steps(&mut self, n: usize) {
        for _ in 0..n {
            let ev = self.bus.borrow_mut().queue.pop_front();
            let Some(ev) = ev else { break };
            self.step(ev);
            self.collect();
        }
    }

    fn step(&mut self, ev: BusEvent) {
        match ev {
            BusEvent::Msg { group, from, bytes } => {
                let members: Vec<u32> = self
                    .bus
                    .borrow()
                    .members
                    .get(&group)
                    .map(|m| m.iter().copied().collect())
                    .unwrap_or_default();
                if !members.contains(&from) {
                    return;
                }
                for m in members {
                    if let Some(n) = self.nodes.get_mut(&m) {
                        n.delivered(&group, from, &bytes);
                    }
                }
            }
            BusEvent::Join { group, node } => {
                let members: Vec<u32> = {
                    let mut b = self.bus.borrow_mut();
                    let m = b.members.entry(group.clone()).or_default();
                    m.insert(node);
                    m.iter().copied().collect()
                };
                for &m in &members {
                    if let Some(n) = self.nodes.get_mut(&m) {
                        n.confchg(&group, &members, &[], &[node]);
                    }
                }
            }
            BusEvent::Leave { group, node } => {
                let members: Vec<u32> = {
                    let mut b = self.bus.borrow_mut();
                    let m = b.members.entry(group.clone()).or_default();
                    if !m.remove(&node) {
                        return;
                    }
                    m.iter().copied().collect()
                };
                for &m in members.iter().chain(std::iter::once(&node)) {
                    if let Some(n) = self.nodes.get_mut(&m) {
                        n.confchg(&group, &members, &[node], &[]);
                    }
                }
            }
        }
    }

    /// Number of undelivered bus events.
    pub fn pending(&self) -> usize {
        self.bus.borrow().queue.len()
    }

    /// Move the undelivered event at `index` to the front of the total order (models another
    /// node's join or message overtaking ours, which CPG allows).
    pub fn promote(&mut self, index: usize) {
        let mut b = self.bus.borrow_mut();
        if let Some(ev) = b.queue.remove(index) {
            b.queue.push_front(ev);
        }
    }

    /// (messages, bytes, largest message) multicast so far.
    pub fn traffic(&self) -> (u64, u64, usize) {
        let b = self.bus.borrow();
        (b.messages, b.bytes, b.largest)
    }
}
