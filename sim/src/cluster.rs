//! A Keel cluster inside madsim: each member is a simulated host running the real member
//! assembly (`keel_server::member::start`) on a [`SimDisk`], reachable over madsim's network.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use keel_core::api::request::{HashResponse, MemberAddRequest, MemberChange, Request, Response};
use keel_net::backend::{Backend, MemberStatus};
use keel_server::clock::Clock;
use keel_server::config::{Flags, ServerConfig};
use keel_server::driver::Handle;
use keel_server::member;
use madsim::net::NetSim;
use madsim::runtime::{Handle as SimHandle, NodeHandle};
use parking_lot::Mutex;

use crate::storage::SimDisk;

/// Every member's `--initial-cluster-token`.
const TOKEN: &str = "keel-sim";

/// Client port on every member host.
pub const CLIENT_PORT: u16 = 2379;
/// Peer port on every member host.
pub const PEER_PORT: u16 = 2380;

/// Timing every member runs with (milliseconds).
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub heartbeat_ms: u64,
    pub election_ms: u64,
    pub snapshot_count: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing { heartbeat_ms: 100, election_ms: 1000, snapshot_count: 100 }
    }
}

/// What the sim keeps of a member across its incarnations.
struct Slot {
    node: NodeHandle,
    /// The flags its next incarnation starts with (a member added back gets a joiner's).
    config: Arc<Mutex<ServerConfig>>,
    disk: SimDisk,
    /// The running incarnation's clock and in-process handle (gone while down).
    clock: Arc<Mutex<Option<Clock>>>,
    handle: Arc<Mutex<Option<Handle>>>,
    /// Set when the incarnation's driver stopped by itself (failed disk, removal).
    stopped: Arc<AtomicBool>,
    up: bool,
    paused: bool,
    /// What the member is in the cluster's configuration.
    role: Role,
    member_id: u64,
    /// Counts crashes and restarts: a crash and restart between two looks at the member
    /// must still read as a new incarnation.
    incarnation: u64,
}

/// A member's place in the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Voter,
    Learner,
    /// Removed: its host is down until it is added back.
    Removed,
}

/// The simulated cluster.
pub struct SimCluster {
    slots: Vec<Slot>,
    timing: Timing,
}

/// The simulated host address of member `i` (0-based).
pub fn member_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1))
}

/// Where clients reach member `i`.
pub fn client_addr(i: usize) -> SocketAddr {
    SocketAddr::new(member_ip(i), CLIENT_PORT)
}

/// The configuration of member `i` in a cluster of `members` (which includes `i`); `joining`
/// for a member added to a running cluster.
#[expect(clippy::expect_used, reason = "the flags are the simulator's own: an error is a bug in this function")]
fn flags_for(i: usize, members: &[usize], joining: bool, timing: Timing) -> ServerConfig {
    let name = format!("m{}", i + 1);
    let ip = member_ip(i);
    let cluster: Vec<String> =
        members.iter().map(|j| format!("m{}=http://{}:{PEER_PORT}", j + 1, member_ip(*j))).collect();
    let args = vec![
        "keel".to_string(),
        format!("--name={name}"),
        format!("--data-dir=/sim/{name}"),
        format!("--listen-client-urls=http://{ip}:{CLIENT_PORT}"),
        format!("--advertise-client-urls=http://{ip}:{CLIENT_PORT}"),
        format!("--listen-peer-urls=http://{ip}:{PEER_PORT}"),
        format!("--initial-advertise-peer-urls=http://{ip}:{PEER_PORT}"),
        format!("--initial-cluster={}", cluster.join(",")),
        format!("--initial-cluster-token={TOKEN}"),
        format!("--heartbeat-interval={}", timing.heartbeat_ms),
        format!("--election-timeout={}", timing.election_ms),
        format!("--snapshot-count={}", timing.snapshot_count),
        "--experimental-snapshot-catchup-entries=50".to_string(),
        format!("--initial-cluster-state={}", if joining { "existing" } else { "new" }),
    ];
    let flags = Flags::try_parse_from(args).expect("the simulator's member flags are valid");
    ServerConfig::from_flags(&flags).expect("the simulator's member flags are valid")
}

impl SimCluster {
    /// Start `n` founding members, each on its own simulated host.
    pub fn start(n: usize, timing: Timing) -> SimCluster {
        let founders: Vec<usize> = (0..n).collect();
        let slots = founders
            .iter()
            .map(|&i| {
                let config = flags_for(i, &founders, false, timing);
                let id = config.member_id;
                host(i, config, id, Role::Voter)
            })
            .collect();
        SimCluster { slots, timing }
    }

    /// Indexes of the members in the configuration (voters and learners).
    pub fn members(&self) -> Vec<usize> {
        (0..self.hosts()).filter(|i| self.slots[*i].role != Role::Removed).collect()
    }

    /// Member `i`'s role.
    pub fn role(&self, i: usize) -> Role {
        self.slots[i].role
    }

    /// A running member's handle, to make a membership change through.
    fn any_handle(&self) -> Option<Handle> {
        self.members().into_iter().filter(|i| !self.slots[*i].paused).find_map(|i| self.slots[i].handle.lock().clone())
    }

    async fn change(&self, change: MemberChange) -> bool {
        let Some(handle) = self.any_handle() else { return false };
        matches!(handle.call(Request::MemberChange(change)).await, Ok(Response::Member(_)))
    }

    /// Add member `i`'s host as a learner, as `member add --learner` would (its id is the one
    /// the API would give); returns the id once the cluster accepted it.
    async fn add_as_learner(&self, i: usize) -> Option<u64> {
        let handle = self.any_handle()?;
        let peer_urls = vec![format!("http://{}:{PEER_PORT}", member_ip(i))];
        let id = keel_net::ids::added_member_id(&peer_urls, TOKEN, handle.status().applied_index);
        self.change(MemberChange::Add(MemberAddRequest { id, peer_urls, is_learner: true })).await.then_some(id)
    }

    /// Add a learner on a new host (etcd's `member add --learner`, then start it with
    /// `--initial-cluster-state existing`). Returns its index once the cluster accepted it.
    pub async fn add_learner(&mut self) -> Option<usize> {
        let i = self.hosts();
        let mut members = self.members();
        members.push(i);
        let config = flags_for(i, &members, true, self.timing);
        let id = self.add_as_learner(i).await?;
        self.slots.push(host(i, config, id, Role::Learner));
        Some(i)
    }

    /// Add removed member `i` back as a learner at its old address, with an empty disk (as an
    /// operator would: `member add --learner`, wipe the data directory, start it with
    /// `--initial-cluster-state existing`). It gets a new id, which it learns from the cluster.
    pub async fn add_back(&mut self, i: usize) -> bool {
        if self.slots[i].role != Role::Removed {
            return false;
        }
        let mut members = self.members();
        members.push(i);
        let Some(id) = self.add_as_learner(i).await else { return false };
        let slot = &mut self.slots[i];
        slot.disk.wipe();
        *slot.config.lock() = flags_for(i, &members, true, self.timing);
        slot.member_id = id;
        slot.role = Role::Learner;
        self.restart(i);
        true
    }

    /// Promote learner `i` to voter.
    pub async fn promote(&mut self, i: usize) -> bool {
        let Some(id) = self.member_id(i) else { return false };
        let promoted = self.change(MemberChange::Promote { id }).await;
        if promoted {
            self.slots[i].role = Role::Voter;
        }
        promoted
    }

    /// Remove member `i` from the configuration; its host goes away for good.
    pub async fn remove(&mut self, i: usize) -> bool {
        let Some(id) = self.member_id(i) else { return false };
        let removed = self.change(MemberChange::Remove { id }).await;
        if removed {
            self.crash(i);
            self.slots[i].role = Role::Removed;
        }
        removed
    }

    /// Bring roles up to date with the leader's member list (a change whose answer was lost may
    /// still have happened); members it no longer lists are gone for good.
    pub async fn reconcile(&mut self) {
        let Some(leader) = self.leader() else { return };
        let Some(handle) = self.slots[leader].handle.lock().clone() else { return };
        let Ok(Response::Member(list)) = handle.call(Request::MemberList).await else { return };
        for i in self.members() {
            match list.members.iter().find(|m| m.id == self.slots[i].member_id) {
                Some(m) => self.slots[i].role = if m.is_learner { Role::Learner } else { Role::Voter },
                None => {
                    self.crash(i);
                    self.slots[i].role = Role::Removed;
                }
            }
        }
    }

    /// Member `i`'s id: changes when it is added back after its removal (a new member on the
    /// old host).
    pub fn id(&self, i: usize) -> u64 {
        self.slots[i].member_id
    }

    fn member_id(&self, i: usize) -> Option<u64> {
        (self.slots[i].role != Role::Removed).then(|| self.slots[i].member_id)
    }

    /// How many member hosts the run has made (founders and added ones, removed ones too).
    pub fn hosts(&self) -> usize {
        self.slots.len()
    }

    /// madsim's id of member `i`'s host (for network faults).
    pub fn node_id(&self, i: usize) -> madsim::task::NodeId {
        self.slots[i].node.id()
    }

    /// Whether member `i` runs (not crashed, its driver not stopped).
    pub fn is_up(&self, i: usize) -> bool {
        self.slots[i].up && !self.slots[i].stopped.load(Ordering::SeqCst)
    }

    /// Crash member `i`: its host dies and its disk loses everything not yet synced.
    pub fn crash(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        SimHandle::current().kill(slot.node.id());
        slot.disk.crash();
        *slot.handle.lock() = None;
        *slot.clock.lock() = None;
        slot.up = false;
        slot.paused = false;
        slot.incarnation += 1;
    }

    /// Start member `i` again from what its disk kept (nothing to do if it runs).
    pub fn restart(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        if slot.up || slot.role == Role::Removed {
            return;
        }
        slot.stopped.store(false, Ordering::SeqCst);
        SimHandle::current().restart(slot.node.id());
        slot.up = true;
        slot.paused = false;
        slot.incarnation += 1;
    }

    /// Which incarnation of member `i` runs (or last ran): changes with every crash and restart.
    pub fn incarnation(&self, i: usize) -> u64 {
        self.slots[i].incarnation
    }

    /// Stop scheduling member `i`'s tasks (a GC pause, a stuck disk, SIGSTOP).
    pub fn pause(&mut self, i: usize) {
        if self.slots[i].up && !self.slots[i].paused {
            SimHandle::current().pause(self.slots[i].node.id());
            self.slots[i].paused = true;
        }
    }

    /// Let a paused member run again.
    pub fn resume(&mut self, i: usize) {
        if self.slots[i].paused {
            SimHandle::current().resume(self.slots[i].node.id());
            self.slots[i].paused = false;
        }
    }

    /// Member `i`'s disk.
    pub fn disk(&self, i: usize) -> &SimDisk {
        &self.slots[i].disk
    }

    /// Member `i`'s running clock, if it runs.
    pub fn clock(&self, i: usize) -> Option<Clock> {
        self.slots[i].clock.lock().clone()
    }

    /// Member `i`'s status, if it runs and is not paused.
    pub fn status(&self, i: usize) -> Option<MemberStatus> {
        if self.slots[i].paused {
            return None;
        }
        self.slots[i].handle.lock().as_ref().map(|h| h.status())
    }

    /// The member the running members agree leads, if any.
    pub fn leader(&self) -> Option<usize> {
        let id = self.members().into_iter().filter_map(|i| self.status(i)).map(|s| s.leader).find(|l| *l != 0)?;
        self.members().into_iter().find(|i| self.status(*i).is_some_and(|s| s.id == id))
    }

    /// Ask member `i` for its state hash (answered locally).
    pub async fn hash(&self, i: usize) -> Option<HashResponse> {
        let handle = self.slots[i].handle.lock().clone()?;
        match handle.call(Request::Hash).await {
            Ok(Response::Hash(h)) => Some(h),
            _ => None,
        }
    }

    /// Ask member `i` to make member `target` leader.
    pub async fn move_leader(&self, i: usize, target: usize) {
        let handle = self.slots[i].handle.lock().clone();
        let (Some(handle), Some(target)) = (handle, self.status(target)) else { return };
        let _ = handle.call(Request::MoveLeader { target: target.id }).await;
    }

    /// Cut the network between the two groups in both directions (members in neither group
    /// keep every link: a bridge).
    pub fn partition(&self, a: &[usize], b: &[usize]) {
        let net = NetSim::current();
        for &x in a {
            for &y in b {
                net.clog_link(self.node_id(x), self.node_id(y));
                net.clog_link(self.node_id(y), self.node_id(x));
            }
        }
    }

    /// Drop everything from `from` to `to`, one way only.
    pub fn cut_one_way(&self, from: usize, to: usize) {
        NetSim::current().clog_link(self.node_id(from), self.node_id(to));
    }

    /// Restore every link between members.
    pub fn heal(&self) {
        let net = NetSim::current();
        for x in 0..self.hosts() {
            for y in 0..self.hosts() {
                if x != y {
                    net.unclog_link(self.node_id(x), self.node_id(y));
                }
            }
        }
    }
}

/// A new simulated host for member `i` (id `member_id`), running it from now on.
fn host(i: usize, config: ServerConfig, member_id: u64, role: Role) -> Slot {
    let disk = SimDisk::new();
    let clock = Arc::new(Mutex::new(None));
    let handle = Arc::new(Mutex::new(None));
    let stopped = Arc::new(AtomicBool::new(false));
    let name = config.name.clone();
    let config = Arc::new(Mutex::new(config));
    let (f, d, c, h, s) = (config.clone(), disk.clone(), clock.clone(), handle.clone(), stopped.clone());
    let node = SimHandle::current()
        .create_node()
        .name(name)
        .ip(member_ip(i))
        .init(move || incarnation(f.lock().clone(), d.clone(), c.clone(), h.clone(), s.clone()))
        .build();
    Slot { node, config, disk, clock, handle, stopped, up: true, paused: false, role, member_id, incarnation: 0 }
}

/// One run of a member's process: start it on its disk and run its driver until it stops.
async fn incarnation(
    config: ServerConfig,
    disk: SimDisk,
    clock_slot: Arc<Mutex<Option<Clock>>>,
    handle_slot: Arc<Mutex<Option<Handle>>>,
    stopped: Arc<AtomicBool>,
) {
    let seed: u64 = madsim::rand::random();
    let clock = Clock::new();
    *clock_slot.lock() = Some(clock.clone());
    match member::start(&config, disk, seed, clock).await {
        Ok(started) => {
            *handle_slot.lock() = Some(started.handle.clone());
            if let Err(e) = started.driver.run().await {
                tracing::warn!("{}: {e}", config.name);
            }
        }
        Err(e) => tracing::warn!("{} did not start: {e}", config.name),
    }
    // The process would exit here; its host stays silent until the sim restarts it.
    *handle_slot.lock() = None;
    stopped.store(true, Ordering::SeqCst);
    std::future::pending::<()>().await;
}

/// How long members get to elect a first leader before a run's workload starts.
pub const SETTLE: Duration = Duration::from_secs(3);
