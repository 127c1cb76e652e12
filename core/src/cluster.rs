//! An in-process cluster with no I/O: several [`Node`]s whose outputs are routed straight back
//! into each other's inputs, a simulated clock, a simulated disk per member, and switches for
//! partitions and crashes. It is the core's own fast harness — for its tests, property tests
//! and benchmarks — while `keel-sim` runs the real shells under madsim.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::api::auth::Caller;
use crate::api::error::{Error, Result};
use crate::api::request::{Member, Request, Response};
use crate::config::NodeConfig;
use crate::node::{Node, Persist, Recovery, RequestId, SnapshotRecord};
use crate::state::engine::MemEngine;
use crate::state::watch::{WatchCreate, WatchId, WatchResponse};

/// What a member's disk holds: exactly what it was told to persist, by the rules of [`Persist`]
/// ([`Recovery::write`]), and the applied state's engine, which each sync of the log covers too
/// (one journal).
#[derive(Clone, Debug, Default)]
pub struct Disk {
    /// Writes (in a `LocalCluster`) that changed only the commit index and needed no fsync.
    pub lazy_writes: u64,
    /// The stored log: snapshot, hard state, entries.
    pub stored: Recovery,
    /// The member's applied state (a handle: the node writes through another).
    pub engine: MemEngine,
}

impl Disk {
    /// Carry out one `Persist` (as a real store does, then fsyncs).
    pub fn write(&mut self, p: Persist) {
        self.engine.sync();
        self.stored.write(p);
    }

    /// Keep a snapshot the member took and drop the entries it no longer needs.
    pub fn keep_snapshot(&mut self, snapshot: &SnapshotRecord, compact_to: u64) {
        // The entries go only once the state that holds them is durable.
        self.engine.sync();
        self.stored.keep_snapshot(snapshot.clone(), compact_to);
    }

    /// What a restarting member reads back.
    pub fn recovery(&self) -> Recovery {
        self.stored.clone()
    }
}

/// N members wired together in memory. Message delivery is FIFO and deterministic.
pub struct LocalCluster {
    nodes: BTreeMap<u64, Node>,
    configs: BTreeMap<u64, NodeConfig>,
    disks: BTreeMap<u64, Disk>,
    /// Messages sent but not yet delivered: (from, to, bytes).
    wire: VecDeque<(u64, u64, Vec<u8>)>,
    /// Directed links that drop everything: (from, to).
    cut: BTreeSet<(u64, u64)>,
    /// Directed links whose messages are kept back until released: (from, to) -> messages.
    held: BTreeMap<(u64, u64), Vec<Vec<u8>>>,
    /// Members whose disk does not sync: their writes wait here, unacknowledged.
    stalled: BTreeMap<u64, Vec<Persist>>,
    responses: BTreeMap<(u64, RequestId), Result<Response>>,
    watch_responses: BTreeMap<u64, Vec<WatchResponse>>,
    now_ms: u64,
    next_request: RequestId,
    /// Messages delivered so far (for benchmarks and sanity checks).
    pub delivered: u64,
}

impl LocalCluster {
    /// `n` founding members with ids 1..=n and etcd's default timing, seeded by `seed`.
    pub fn new(n: u64, seed: u64) -> Self {
        Self::with_config(n, seed, |_| {})
    }

    /// Like [`LocalCluster::new`], with each member's config adjusted by `adjust`.
    pub fn with_config(n: u64, seed: u64, adjust: impl Fn(&mut NodeConfig)) -> Self {
        let members: Vec<Member> = (1..=n)
            .map(|id| Member {
                id,
                name: format!("m{id}"),
                peer_urls: vec![format!("http://m{id}:2380")],
                ..Default::default()
            })
            .collect();
        let mut cluster = LocalCluster {
            nodes: BTreeMap::new(),
            configs: BTreeMap::new(),
            disks: BTreeMap::new(),
            wire: VecDeque::new(),
            cut: BTreeSet::new(),
            held: BTreeMap::new(),
            stalled: BTreeMap::new(),
            responses: BTreeMap::new(),
            watch_responses: BTreeMap::new(),
            now_ms: 0,
            next_request: 0,
            delivered: 0,
        };
        for id in 1..=n {
            let mut config = NodeConfig::new(id, members.clone());
            config.cluster_id = 0x6b65656c;
            config.seed = seed.wrapping_mul(1000).wrapping_add(id);
            adjust(&mut config);
            let disk = Disk::default();
            let node = Node::new(config.clone(), Box::new(disk.engine.clone())).expect("valid config");
            cluster.configs.insert(id, config);
            cluster.disks.insert(id, disk);
            cluster.nodes.insert(id, node);
        }
        cluster.settle();
        cluster
    }

    /// Start a member that joins the running cluster (after a MemberAdd for `id`).
    pub fn join(&mut self, id: u64, adjust: impl Fn(&mut NodeConfig)) {
        let mut config = NodeConfig::new(id, vec![]);
        config.cluster_id = 0x6b65656c;
        adjust(&mut config);
        let disk = Disk::default();
        let node = Node::new(config.clone(), Box::new(disk.engine.clone())).expect("valid config");
        self.configs.insert(id, config);
        self.disks.insert(id, disk);
        self.nodes.insert(id, node);
    }

    /// The simulated time in ms.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// A running member.
    pub fn node(&self, id: u64) -> &Node {
        &self.nodes[&id]
    }

    /// A running member, mutably (to feed it inputs directly).
    pub fn node_mut(&mut self, id: u64) -> &mut Node {
        self.nodes.get_mut(&id).expect("member is running")
    }

    /// Ids of running members.
    pub fn running(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// The leader with the highest term among running members, if any.
    pub fn leader(&self) -> Option<u64> {
        self.nodes.values().filter(|n| n.is_leader()).max_by_key(|n| n.term()).map(|n| n.id())
    }

    /// Advance the clock by one tick on every running member, then deliver until quiet.
    pub fn tick(&mut self) {
        let step = self.configs.values().next().map_or(100, |c| c.tick_ms);
        self.now_ms += step;
        let now = self.now_ms;
        for node in self.nodes.values_mut() {
            node.tick(now);
            if node.compaction_pending() {
                node.sweep_compaction();
            }
        }
        self.settle();
    }

    /// Tick until `done` holds (true) or `max_ticks` pass (false).
    pub fn tick_until(&mut self, max_ticks: u64, mut done: impl FnMut(&LocalCluster) -> bool) -> bool {
        for _ in 0..max_ticks {
            if done(self) {
                return true;
            }
            self.tick();
        }
        done(self)
    }

    /// Tick until some member leads; panics if none does within 100 ticks (a test failure).
    pub fn wait_for_leader(&mut self) -> u64 {
        assert!(self.tick_until(100, |c| c.leader().is_some()), "no leader elected");
        self.leader().unwrap_or_default()
    }

    /// Collect every member's output and deliver messages until nothing moves.
    pub fn settle(&mut self) {
        loop {
            let mut moved = false;
            let ids: Vec<u64> = self.nodes.keys().copied().collect();
            for id in ids {
                moved |= self.drain(id);
            }
            while let Some((from, to, bytes)) = self.wire.pop_front() {
                moved = true;
                if self.cut.contains(&(from, to)) {
                    continue;
                }
                if let Some(kept) = self.held.get_mut(&(from, to)) {
                    kept.push(bytes);
                    continue;
                }
                if let Some(node) = self.nodes.get_mut(&to) {
                    self.delivered += 1;
                    let _ = node.step(&bytes);
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Handle one member's `Ready`: persist (fsync is instant here), acknowledge, route.
    fn drain(&mut self, id: u64) -> bool {
        let Some(node) = self.nodes.get_mut(&id) else { return false };
        let ready = node.ready();
        if ready.is_empty() {
            return false;
        }
        let disk = self.disks.entry(id).or_default();
        if let Some(p) = ready.persist {
            if let Some(waiting) = self.stalled.get_mut(&id) {
                waiting.push(p);
            } else {
                assert!(
                    p.must_sync || (p.entries.is_empty() && p.snapshot.is_none()),
                    "entries or a snapshot were marked as needing no fsync"
                );
                disk.lazy_writes += u64::from(!p.must_sync);
                let number = p.number;
                disk.write(p);
                node.persisted(number);
            }
        }
        if let Some(s) = &ready.snapshot {
            disk.keep_snapshot(&s.snapshot, s.compact_to);
        }
        if let Some(job) = ready.snapshot_job {
            node.snapshot_built(job.index(), job.build());
        }
        for (rid, job) in ready.backups {
            node.backup_built(rid, job.index(), job.build());
        }
        for m in ready.messages {
            self.wire.push_back((id, m.to, m.to_bytes()));
        }
        for (rid, resp) in ready.responses {
            self.responses.insert((id, rid), resp);
        }
        self.watch_responses.entry(id).or_default().extend(ready.watch_responses);
        true
    }

    /// Send a request to member `node`; its answer is collected by [`LocalCluster::response`].
    pub fn request(&mut self, node: u64, request: Request) -> RequestId {
        let id = self.submit(node, request);
        self.settle();
        id
    }

    /// Hand a request to member `node` without running the cluster, so many can be in flight
    /// at once (call [`LocalCluster::settle`] to make progress).
    pub fn submit(&mut self, node: u64, request: Request) -> RequestId {
        self.submit_as(node, Caller::Anonymous, request)
    }

    /// [`LocalCluster::submit`] on behalf of `caller` (a token holder, say).
    pub fn submit_as(&mut self, node: u64, caller: Caller, request: Request) -> RequestId {
        self.next_request += 1;
        let id = self.next_request;
        self.node_mut(node).request_as(id, caller, request);
        id
    }

    /// Every answer member `node` has given and nobody has collected yet.
    pub fn take_responses(&mut self, node: u64) -> Vec<(RequestId, Result<Response>)> {
        let mine: Vec<_> = self.responses.keys().filter(|(n, _)| *n == node).copied().collect();
        mine.into_iter().filter_map(|k| self.responses.remove(&k).map(|r| (k.1, r))).collect()
    }

    /// The answer to a request, once there is one.
    pub fn response(&mut self, node: u64, id: RequestId) -> Option<Result<Response>> {
        self.responses.remove(&(node, id))
    }

    /// Send a request and tick until it is answered (or its deadline passes).
    pub fn call(&mut self, node: u64, request: Request) -> Result<Response> {
        self.call_as(node, Caller::Anonymous, request)
    }

    /// [`LocalCluster::call`] on behalf of `caller`.
    pub fn call_as(&mut self, node: u64, caller: Caller, request: Request) -> Result<Response> {
        let id = self.submit_as(node, caller, request);
        self.settle();
        for _ in 0..1000 {
            if let Some(resp) = self.response(node, id) {
                return resp;
            }
            self.tick();
        }
        Err(Error::Timeout)
    }

    /// Start a watch on member `node`.
    pub fn watch(&mut self, node: u64, create: WatchCreate) -> WatchId {
        let id = self.node_mut(node).watch(create);
        self.settle();
        id
    }

    /// Start a watch on member `node` for `caller` (see [`Node::watch_as`]).
    pub fn watch_as(&mut self, node: u64, caller: &Caller, create: WatchCreate) -> Result<WatchId> {
        let id = self.node_mut(node).watch_as(caller, create)?;
        self.settle();
        Ok(id)
    }

    /// Watch responses member `node` produced since the last call.
    pub fn take_watch_responses(&mut self, node: u64) -> Vec<WatchResponse> {
        self.watch_responses.remove(&node).unwrap_or_default()
    }

    /// Cut the network into groups: members in different groups cannot talk.
    pub fn partition(&mut self, groups: &[&[u64]]) {
        self.cut.clear();
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                if i != j {
                    for x in a.iter() {
                        for y in b.iter() {
                            self.cut.insert((*x, *y));
                        }
                    }
                }
            }
        }
    }

    /// Drop messages from `from` to `to` only (a one-way partition).
    pub fn cut_link(&mut self, from: u64, to: u64) {
        self.cut.insert((from, to));
    }

    /// Restore every link (held messages stay held until released).
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Keep messages from `from` to `to` back (delayed, not lost) until `release_link`.
    pub fn hold_link(&mut self, from: u64, to: u64) {
        self.held.entry((from, to)).or_default();
    }

    /// Deliver what `hold_link` kept back, in order, and stop holding.
    pub fn release_link(&mut self, from: u64, to: u64) {
        for bytes in self.held.remove(&(from, to)).unwrap_or_default() {
            self.wire.push_back((from, to, bytes));
        }
        self.settle();
    }

    /// Member `id`'s disk stops syncing: its writes wait, unacknowledged (a slow fsync).
    pub fn stall_disk(&mut self, id: u64) {
        self.stalled.entry(id).or_default();
    }

    /// Member `id`'s disk syncs everything that waited, and syncs normally again.
    pub fn resume_disk(&mut self, id: u64) {
        let waiting = self.stalled.remove(&id).unwrap_or_default();
        let disk = self.disks.entry(id).or_default();
        let last = waiting.last().map(|p| p.number);
        for p in waiting {
            disk.write(p);
        }
        if let (Some(number), Some(node)) = (last, self.nodes.get_mut(&id)) {
            node.persisted(number);
        }
        self.settle();
    }

    /// Stop a member; its disk keeps what was synced (a stalled disk's writes are lost).
    pub fn crash(&mut self, id: u64) {
        self.nodes.remove(&id);
        if let Some(disk) = self.disks.get(&id) {
            disk.engine.crash();
        }
        self.stalled.remove(&id);
        self.wire.retain(|(from, to, _)| *from != id && *to != id);
    }

    /// Restart a crashed member from its disk.
    pub fn restart(&mut self, id: u64) {
        // A new run of the member draws new random numbers, as a real restart does.
        let Some(config) = self.configs.get_mut(&id) else { return };
        config.seed = config.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let config = config.clone();
        let recovery = self.disks.get(&id).map(Disk::recovery).unwrap_or_default();
        let engine = self.disks.get(&id).map(|d| d.engine.clone()).unwrap_or_default();
        let node = Node::recover(config, recovery, Box::new(engine)).expect("recoverable disk");
        self.nodes.insert(id, node);
        self.settle();
    }

    /// A member's disk.
    pub fn disk(&self, id: u64) -> &Disk {
        &self.disks[&id]
    }
}
