//! The driver: one task that owns the member's [`Node`], feeds it every input (clock ticks,
//! peer messages, client requests) and carries out its outputs — send messages, make writes
//! durable (one fsync for everything ready at once: group commit) and only then acknowledge
//! them, answer clients, deliver watch events. Written against tokio's API only (time, mpsc,
//! oneshot) so the simulator can run it under madsim.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use keel_core::api::auth::Caller;
use keel_core::api::error::{Error, Result};
use keel_core::api::request::{MemberChange, Request, Response};
use keel_core::node::{Node, Ready, RequestId};
use keel_core::state::machine::SnapshotJob;
use keel_core::state::watch::{WatchCreate, WatchId, WatchResponse};
use keel_net::backend::{Backend, MemberStatus, WatchStream};
use keel_net::metrics::Metrics;
use keel_net::peer::{Frame, Inbound, PeerTransport};
use parking_lot::Mutex;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::chaos::MessageChaos;
use crate::clock::Clock;
use crate::storage::{Storage, StorageError};

/// Watch responses buffered per watcher. A client that falls further behind is held back on
/// the member and caught up from history once it has read half of them, so a slow watcher
/// neither grows the member's memory nor loses events.
pub const WATCH_BUFFER: usize = 4096;
/// The pause between two batches of a compaction's deletions (etcd's, 10 ms).
const COMPACTION_PAUSE: Duration = Duration::from_millis(10);
/// After a batch of a compaction's deletions, the member waits this many times the batch's own
/// time before the next one.
const SWEEP_SHARE_INVERSE: u32 = 4;

/// Inputs queued by the driver's handles.
enum Input {
    Request { caller: Caller, request: Request, reply: oneshot::Sender<Result<Response>> },
    Watch { caller: Caller, create: WatchCreate, reply: oneshot::Sender<Result<WatchStream>> },
}

/// Who waits for a request's answer.
enum Waiter {
    Client(oneshot::Sender<Result<Response>>),
    /// A follower forwarded it; the answer goes back over the peer transport.
    Peer {
        from: u64,
        id: u64,
    },
    /// The member's own publication of its name and client URLs.
    Publish,
}

/// Identity of the member, for status and publication.
#[derive(Clone, Debug)]
pub struct Identity {
    pub name: String,
    pub client_urls: Vec<String>,
}

/// Everything around the node that the driver talks to.
pub struct Wiring {
    /// The peer transport, and the receiving end of what it delivers.
    pub transport: PeerTransport,
    pub peers: mpsc::Receiver<Inbound>,
    pub identity: Identity,
    pub metrics: Metrics,
    /// How often the node's clock ticks (etcd's heartbeat interval).
    pub tick: Duration,
    /// How long a client waits for any answer before "request timed out".
    pub request_timeout: Duration,
    /// The clock the node's ticks read (lease expiry depends on it).
    pub clock: Clock,
    /// Responses a watcher's stream holds before its client counts as behind
    /// ([`WATCH_BUFFER`] in production).
    pub watch_buffer: usize,
}

/// The member's driver. Build with [`Driver::new`], then `run` it in a task.
pub struct Driver<S: Storage> {
    node: Node,
    storage: S,
    transport: PeerTransport,
    identity: Identity,
    metrics: Metrics,
    tick: Duration,
    clock: Clock,
    inputs: mpsc::Receiver<Input>,
    peers: mpsc::Receiver<Inbound>,
    status: Arc<Mutex<MemberStatus>>,
    next_request: RequestId,
    waiting: HashMap<RequestId, Waiter>,
    /// Requests forwarded to the leader, by forward id.
    forwarded: HashMap<u64, oneshot::Sender<Result<Response>>>,
    watchers: BTreeMap<WatchId, mpsc::Sender<WatchResponse>>,
    /// Watchers whose clients fell behind, waiting for room in their streams.
    behind: BTreeSet<WatchId>,
    /// The size of each watcher's stream.
    watch_buffer: usize,
    published: bool,
    publishing: bool,
    known_members: Vec<(u64, Vec<String>)>,
    /// The members that had published their client URLs when entries were last applied.
    known_started: Vec<u64>,
    /// The applied index `after_round` last saw.
    seen_applied: u64,
    last_leader: u64,
    /// A peer said this member was removed (it cannot learn so from the log; see `Frame::Removed`).
    told_removed: bool,
    /// Duplicated and reordered peer messages, in simulation builds only.
    chaos: MessageChaos,
    /// Snapshots for followers, built on a blocking thread, come back here (index, bytes).
    built_snapshots: (BuiltSender, mpsc::UnboundedReceiver<BuiltSnapshot>),
}

/// Who a snapshot built off the driver is for: a follower, or a client's backup request.
#[derive(Clone, Copy, Debug)]
enum SnapshotFor {
    Follower,
    Backup(RequestId),
}

/// A snapshot built off the driver: who it is for, its index and its bytes (or why there are none).
type BuiltSnapshot = (SnapshotFor, u64, Result<Vec<u8>>);
type BuiltSender = mpsc::UnboundedSender<BuiltSnapshot>;

/// A cloneable way in to the driver: what the API handlers call.
#[derive(Clone)]
pub struct Handle {
    inputs: mpsc::Sender<Input>,
    status: Arc<Mutex<MemberStatus>>,
    timeout: Duration,
}

impl<S: Storage> Driver<S> {
    /// A driver for `node`, persisting to `storage`, wired to the rest of the member by
    /// `wiring`. Returns it with the handle clients use.
    pub fn new(node: Node, storage: S, wiring: Wiring) -> (Self, Handle) {
        let Wiring { transport, peers, identity, metrics, tick, request_timeout, clock, watch_buffer } = wiring;
        let (tx, inputs) = mpsc::channel(16 * 1024);
        let status =
            Arc::new(Mutex::new(MemberStatus { id: node.id(), name: identity.name.clone(), ..Default::default() }));
        let handle = Handle { inputs: tx, status: status.clone(), timeout: request_timeout };
        let driver = Driver {
            node,
            storage,
            transport,
            identity,
            metrics,
            tick,
            clock,
            inputs,
            peers,
            status,
            next_request: 0,
            waiting: HashMap::new(),
            forwarded: HashMap::new(),
            watchers: BTreeMap::new(),
            behind: BTreeSet::new(),
            watch_buffer: watch_buffer.max(1),
            published: false,
            publishing: false,
            known_members: Vec::new(),
            known_started: Vec::new(),
            seen_applied: u64::MAX,
            last_leader: 0,
            told_removed: false,
            chaos: MessageChaos::default(),
            built_snapshots: mpsc::unbounded_channel(),
        };
        (driver, handle)
    }

    /// Run until the member is removed from the cluster, every handle is gone, or storage
    /// fails (then nothing more may be acknowledged: the error ends the member).
    pub async fn run(mut self) -> std::result::Result<(), StorageError> {
        let mut ticker = tokio::time::interval(self.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A compaction's discarded history goes in batches with this pause between them (as
        // etcd's), so requests keep flowing while a large history is deleted.
        let mut sweeper = tokio::time::interval(COMPACTION_PAUSE);
        sweeper.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sweep_due = Instant::now();
        self.process().await?;
        loop {
            // `biased`: tokio's unbiased choice draws from a process-wide counter, which would make
            // simulation runs depend on what ran before them. Fairness comes from draining both
            // queues below whichever woke us.
            tokio::select! {
                biased;
                _ = ticker.tick() => {
                    self.node.tick(self.clock.now_ms());
                    self.sweep_abandoned();
                    let db_size = self.storage.size_bytes();
                    self.metrics.db_size.set(db_size as f64);
                    self.status.lock().db_size = db_size;
                }
                _ = sweeper.tick(), if self.node.compaction_pending() => {
                    if Instant::now() >= sweep_due {
                        let started = Instant::now();
                        self.node.sweep_compaction();
                        warn_if_slow("compacting the history took too long", "compaction batch", started);
                        // The deletion takes at most a fifth of the member's time: the next batch
                        // waits four times as long as this one took (and at least the pause).
                        sweep_due = Instant::now() + started.elapsed() * SWEEP_SHARE_INVERSE;
                    }
                }
                Some(inbound) = self.peers.recv() => self.on_peer(inbound),
                Some((purpose, index, data)) = self.built_snapshots.1.recv() => match purpose {
                    SnapshotFor::Follower => self.node.snapshot_built(index, data),
                    SnapshotFor::Backup(id) => self.node.backup_built(id, index, data),
                },
                input = self.inputs.recv() => {
                    let Some(input) = input else { return Ok(()) };
                    self.on_input(input);
                }
            }
            self.take_queued();
            self.process().await?;
            if self.node.is_removed() || self.told_removed {
                tracing::warn!("this member was removed from the cluster; stopping");
                return Ok(());
            }
        }
    }

    /// Take what peers and clients already queued (up to a bound each): one Raft round and one
    /// fsync for all of it.
    fn take_queued(&mut self) {
        for _ in 0..4096 {
            match self.peers.try_recv() {
                Ok(inbound) => self.on_peer(inbound),
                Err(_) => break,
            }
        }
        for _ in 0..4096 {
            match self.inputs.try_recv() {
                Ok(input) => self.on_input(input),
                Err(_) => break,
            }
        }
    }

    fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        self.next_request
    }

    fn on_input(&mut self, input: Input) {
        match input {
            Input::Request { caller, request, reply } => self.submit(caller, request, Waiter::Client(reply)),
            Input::Watch { caller, create, reply } => {
                let (tx, rx) = mpsc::channel(self.watch_buffer);
                let started = self.node.watch_as(&caller, create).map(|id| {
                    self.watchers.insert(id, tx);
                    WatchStream { id, events: rx }
                });
                let _ = reply.send(started);
            }
        }
    }

    /// Hand a request to the node, or to the leader when only the leader can answer it.
    fn submit(&mut self, caller: Caller, request: Request, waiter: Waiter) {
        let leader = self.node.leader_id();
        if request.needs_leader() && leader != self.node.id() {
            match (leader, waiter) {
                (0, waiter) => self.answer(waiter, Err(Error::NoLeader)),
                (leader, Waiter::Client(reply)) => {
                    let id = self.request_id();
                    if self.transport.send_frame(leader, Frame::ForwardAs { id, caller, request }) {
                        self.forwarded.insert(id, reply);
                    } else {
                        let _ = reply.send(Err(Error::NoLeader));
                    }
                }
                // A forwarded request reached a member that is no longer leader.
                (_, waiter) => self.answer(waiter, Err(Error::NotLeader)),
            }
            return;
        }
        let id = self.request_id();
        self.waiting.insert(id, waiter);
        self.node.request_as(id, caller, request);
    }

    fn on_peer(&mut self, inbound: Inbound) {
        match inbound {
            Inbound::Raft { from, bytes } => {
                let node = &mut self.node;
                self.chaos.deliver(from, bytes, |from, bytes| {
                    if let Err(e) = node.step(bytes) {
                        tracing::debug!("message from {from:x} rejected: {e}");
                    }
                });
            }
            Inbound::Forward { from, id, caller, request } => self.submit(caller, request, Waiter::Peer { from, id }),
            Inbound::ForwardReply { id, result } => {
                if let Some(reply) = self.forwarded.remove(&id) {
                    let _ = reply.send(result);
                }
            }
            Inbound::Unreachable { peer } => self.node.report_unreachable(peer),
            Inbound::SnapshotSent { peer, ok } => self.node.report_snapshot(peer, ok),
            Inbound::Removed { from } => {
                // Only a current member's word counts, and only about a member it has dropped.
                if self.node.view().is_member(from) {
                    tracing::warn!("member {from:x} reports that this member was removed from the cluster");
                    self.told_removed = true;
                }
            }
        }
    }

    fn answer(&mut self, waiter: Waiter, result: Result<Response>) {
        if result.is_err() {
            self.metrics.proposals_failed.inc();
        }
        match waiter {
            Waiter::Client(reply) => {
                let _ = reply.send(result);
            }
            Waiter::Peer { from, id } => {
                self.transport.send_frame(from, Frame::ForwardReply { id, result });
            }
            Waiter::Publish => {
                self.publishing = false;
                self.published = result.is_ok();
            }
        }
    }

    /// Carry out everything the node has for us, until it has nothing more.
    async fn process(&mut self) -> std::result::Result<(), StorageError> {
        loop {
            let started = Instant::now();
            let ready = self.node.ready();
            warn_if_slow("apply request took too long", "ready", started);
            // The state cannot follow the log any more (a refused write, an unreadable entry):
            // the member stops rather than answer from it.
            if let Some(failure) = self.node.failure() {
                return Err(StorageError::Io(format!("the member stops: {failure}")));
            }
            if ready.is_empty() {
                break;
            }
            self.carry_out(ready).await?;
        }
        self.after_round();
        Ok(())
    }

    async fn carry_out(&mut self, ready: Ready) -> std::result::Result<(), StorageError> {
        for m in ready.messages {
            self.transport.send_raft(m);
        }
        // The log writes first: a snapshot stored ahead of the hard state that committed its
        // entries would otherwise be possible after a crash between the two.
        if let Some(persist) = ready.persist {
            let started = Instant::now();
            self.storage.write(&persist)?;
            warn_if_slow("writing the log took too long", "write", started);
            // Planted bug (simulation only): acknowledging what was never made durable.
            if persist.must_sync && !keel_core::bugs::enabled(keel_core::bugs::Bug::AckBeforeFsync) {
                let started = Instant::now();
                // A slow disk (simulated): the driver waits, as it would on a blocking fsync.
                let latency = self.storage.sync_latency();
                if !latency.is_zero() {
                    tokio::time::sleep(latency).await;
                }
                self.storage.sync()?;
                self.metrics.fsync_duration.observe(started.elapsed().as_secs_f64());
            }
            self.node.persisted(persist.number);
        }
        if let Some(snapshot) = &ready.snapshot {
            let started = Instant::now();
            self.storage.keep_snapshot(snapshot)?;
            warn_if_slow("compacting the log took too long", "keep_snapshot", started);
        }
        if let Some(job) = ready.snapshot_job {
            build_snapshot(SnapshotFor::Follower, job, self.built_snapshots.0.clone());
        }
        for (id, job) in ready.backups {
            build_snapshot(SnapshotFor::Backup(id), job, self.built_snapshots.0.clone());
        }
        for (id, result) in ready.responses {
            if let Some(waiter) = self.waiting.remove(&id) {
                self.answer(waiter, result);
            }
        }
        for resp in ready.watch_responses {
            self.deliver_watch_response(resp);
        }
        Ok(())
    }

    /// Bookkeeping after a round: status, metrics, peer addresses, publication.
    fn after_round(&mut self) {
        self.resume_watchers();
        let leader = self.node.leader_id();
        if leader != self.last_leader {
            if leader != 0 {
                self.metrics.leader_changes.inc();
            }
            self.last_leader = leader;
        }
        // Membership and alarms change only by applying entries.
        let applied = self.node.applied_index();
        if applied != self.seen_applied {
            self.seen_applied = applied;
            self.on_applied();
        }
        let view = self.node.view();
        {
            let mut status = self.status.lock();
            status.leader = leader;
            status.term = self.node.term();
            status.commit_index = self.node.commit_index();
            status.applied_index = applied;
            status.expired_keys = self.node.expired_keys();
            status.revision = view.revision();
            status.db_size_in_use = view.size_in_use();
        }
        self.metrics.has_leader.set(i64::from(leader != 0));
        self.metrics.raft_term.set(self.node.term() as i64);
        self.metrics.commit_index.set(self.node.commit_index() as i64);
        self.metrics.applied_index.set(applied as i64);
        self.metrics.proposals_pending.set(self.waiting.len() as i64);
        self.metrics.watchers.set(self.node.watch_count() as i64);
        if !self.published && !self.publishing && leader != 0 && view.is_member(self.node.id()) {
            self.publishing = true;
            let publish = MemberChange::Publish {
                id: self.node.id(),
                name: self.identity.name.clone(),
                client_urls: self.identity.client_urls.clone(),
            };
            self.submit(Caller::Member, Request::MemberChange(publish), Waiter::Publish);
        }
    }

    /// After entries were applied: the members' addresses and who has started, for the peer
    /// transport (links, farewells, answers to joiners and founders), and the status's members
    /// and alarms.
    fn on_applied(&mut self) {
        let view = self.node.view();
        let all = view.members();
        let started: Vec<u64> = all.iter().filter(|m| !m.client_urls.is_empty()).map(|m| m.id).collect();
        let members: Vec<(u64, Vec<String>)> = all.iter().map(|m| (m.id, m.peer_urls.clone())).collect();
        {
            let mut status = self.status.lock();
            status.members = all;
            status.alarms = view.alarms();
        }
        if started != self.known_started || members != self.known_members {
            self.transport.set_directory(&members, &started, self.node.applied_index());
            self.known_started = started;
        }
        if members != self.known_members {
            for (id, urls) in &members {
                if let Some(url) = urls.first() {
                    self.transport.set_peer(*id, url);
                }
            }
            for (id, _) in &self.known_members {
                if *id != self.node.id() && !members.iter().any(|(m, _)| m == id) {
                    self.transport.farewell(*id);
                }
            }
            self.known_members = members;
        }
    }

    /// Hand one watch response to its stream. A client that reads too slowly to take it is
    /// behind: the node holds its events back and replays them when the stream has room again
    /// (`resume_watchers`); a client that went away is canceled.
    fn deliver_watch_response(&mut self, resp: WatchResponse) {
        let id = resp.watch_id;
        // A watcher behind gets what it misses by replay, never out of order.
        if self.behind.contains(&id) {
            return;
        }
        let Some(tx) = self.watchers.get(&id) else { return };
        let from = resp.events.first().map_or(0, |e| e.kv.mod_revision);
        match tx.try_send(resp) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::debug!("watcher {id} fell behind at revision {from}; it will be caught up from history");
                self.behind.insert(id);
                self.node.watch_fell_behind(id, from);
            }
            Err(TrySendError::Closed(_)) => {
                self.watchers.remove(&id);
                self.node.cancel_watch(id);
            }
        }
    }

    /// Catch up the watchers that fell behind once their streams have room for half a buffer.
    fn resume_watchers(&mut self) {
        let room = (self.watch_buffer / 2).max(1);
        let ready: Vec<WatchId> = self
            .behind
            .iter()
            .copied()
            .filter(|id| self.watchers.get(id).is_none_or(|tx| tx.capacity() >= room))
            .collect();
        for id in ready {
            self.behind.remove(&id);
            if self.watchers.contains_key(&id) {
                self.node.resume_watch(id);
            }
        }
    }

    /// Drop forwarded requests and watchers whose clients went away.
    fn sweep_abandoned(&mut self) {
        self.forwarded.retain(|_, reply| !reply.is_closed());
        let gone: Vec<WatchId> = self.watchers.iter().filter(|(_, tx)| tx.is_closed()).map(|(id, _)| *id).collect();
        for id in gone {
            self.watchers.remove(&id);
            self.behind.remove(&id);
            self.node.cancel_watch(id);
        }
    }
}

impl Handle {
    /// Record the cluster id once known (it is stamped into API headers).
    pub fn set_cluster_id(&self, cluster_id: u64) {
        self.status.lock().cluster_id = cluster_id;
    }
}

impl Backend for Handle {
    async fn call_as(&self, caller: Caller, request: Request) -> Result<Response> {
        let (reply, rx) = oneshot::channel();
        self.inputs.send(Input::Request { caller, request, reply }).await.map_err(|_| Error::Stopped)?;
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::Stopped),
            Err(_) => Err(Error::Timeout),
        }
    }

    async fn watch_as(&self, caller: Caller, create: WatchCreate) -> Result<WatchStream> {
        let (reply, rx) = oneshot::channel();
        self.inputs.send(Input::Watch { caller, create, reply }).await.map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    fn status(&self) -> MemberStatus {
        self.status.lock().clone()
    }
}

/// Serialize a snapshot on a blocking thread (it reads the whole key space from a frozen view,
/// which takes time in proportion to the data) and send the result to the driver.
fn build_snapshot(purpose: SnapshotFor, job: SnapshotJob, done: BuiltSender) {
    let index = job.index();
    // madsim runs the closure as one of its deterministic tasks (it marks this deprecated: a
    // simulation has no blocking threads); tokio on its blocking pool.
    #[allow(deprecated)]
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let data = job.build();
        if let Ok(bytes) = &data {
            let whom = match purpose {
                SnapshotFor::Follower => "a follower",
                SnapshotFor::Backup(_) => "a backup",
            };
            tracing::info!(index, "built a snapshot of {} bytes for {whom} in {:?}", bytes.len(), started.elapsed());
        }
        // The driver is gone when the member stopped; nobody needs the snapshot then.
        let _ = done.send((purpose, index, data));
    });
}

/// etcd warns when applying takes more than 100 ms; Keel warns the same way about each step of
/// a round that stalls every request behind it.
fn warn_if_slow(message: &str, step: &str, started: Instant) {
    let took = started.elapsed();
    if took > Duration::from_millis(100) {
        tracing::warn!(took = ?took, expected_duration = "100ms", step, "{message}");
    }
}
