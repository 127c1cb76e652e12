//! The member: one sans-IO state machine that takes inputs and yields outputs.
//!
//! Inputs are method calls — [`Node::tick`] (time), [`Node::step`] (a peer's message),
//! [`Node::request`] (a client's request), [`Node::watch`], [`Node::persisted`] (storage caught
//! up) — and outputs are collected by [`Node::ready`]. The node never blocks, never reads a clock
//! and draws randomness only from its own seeded generator, so a cluster of nodes driven by the
//! same inputs produces the same outputs, byte for byte.

mod apply;
mod follower_snapshots;
mod leader;
mod output;
mod reads;

use std::collections::BTreeMap;

use protobuf::Message as _;
use raft::eraftpb::{
    ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, Entry, EntryType, Message, MessageType,
};
use raft::{RawNode, ReadOnlyOption, StateRole};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use output::{
    HardState, LocalSnapshot, LogEntry, OutMessage, Persist, Ready, RequestId, SnapshotPayload, SnapshotRecord,
};

use crate::alarm;
use crate::command::{Command, Proposal};
use crate::config::NodeConfig;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::lease::Lessor;
use crate::raft_log::LogStore;
use crate::request::{
    HashResponse, LeaseKeepAliveResponse, LeaseLeasesResponse, MemberChange, MemberResponse, Request, Response,
    ResponseHeader, SnapshotResponse,
};
use crate::state_machine::{StateMachine, StateSnapshot};
use crate::validate;
use crate::watch::{WatchCreate, WatchHub, WatchId};
use reads::ReadBatcher;

/// What a restarting member recovered from its disk.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// The newest snapshot stored, if any.
    pub snapshot: Option<SnapshotRecord>,
    pub hard_state: HardState,
    /// Stored entries, in index order.
    pub entries: Vec<LogEntry>,
}

/// Whether an encoded peer message is a proposal forwarded to the leader (which, unlike every
/// other Raft message, must not arrive twice: it would be appended twice).
pub fn is_proposal(bytes: &[u8]) -> bool {
    Message::parse_from_bytes(bytes).is_ok_and(|m| m.get_msg_type() == MessageType::MsgPropose)
}

/// Whether this member leads, follows, or is looking for a leader — for status and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// One Keel member's engine. See the module documentation for the input/output contract.
pub struct Node {
    config: NodeConfig,
    raw: RawNode<LogStore>,
    sm: StateMachine,
    watches: WatchHub,
    rng: ChaCha8Rng,
    /// The latest time the shell told us, in ms; never goes backwards.
    now_ms: u64,
    /// Requests waiting for their entry to apply (or a leader transfer), by deadline.
    pending: BTreeMap<RequestId, u64>,
    reads: ReadBatcher,
    /// Out-going messages that may leave only once the ready numbered with them is durable.
    held: Vec<(u64, Vec<Message>)>,
    /// Durability bookkeeping for raft-rs's readies (see `release_durable`).
    durability: Durability,
    /// Distinguishes this run of the member from its earlier ones (read contexts, proposals),
    /// so answers meant for a previous incarnation are never taken for this one's.
    incarnation: u64,
    /// A snapshot received from the leader, decoded (and so known good) before raft-rs saw it.
    incoming_snapshot: Option<(u64, StateSnapshot)>,
    /// Keep-alives waiting for a new leader to apply everything committed before it.
    deferred_keepalives: Vec<(RequestId, crate::request::LeaseKeepAliveRequest)>,
    /// Output gathered since the last `ready()`.
    out: Ready,
    /// Role and leader as of the last soft-state change, to notice transitions.
    last_role: StateRole,
    last_leader: u64,
    /// Leases whose revoke the leader has proposed, with when to propose again.
    revoking: BTreeMap<i64, u64>,
    /// Keys deleted by lease expiry since this member started (v2's `expireCount`).
    expired_keys: u64,
    next_checkpoint_ms: u64,
    next_progress_ms: u64,
    /// A leader transfer waiting to complete: request, target, deadline.
    transfer: Option<(RequestId, u64, u64)>,
    last_snapshot_index: u64,
    /// Snapshots for followers being built off the apply path or not yet installed.
    follower_snapshots: follower_snapshots::FollowerSnapshots,
    removed: bool,
}

impl Node {
    /// A member of a new cluster of `config.initial_members`, or (with no initial members) one
    /// that joins an existing cluster and learns everything from the leader.
    ///
    /// Every founding member writes the same bootstrap entries — one configuration change per
    /// founding member, committed at term 1 — so a member that joins later learns the founding
    /// membership from the log like everything else. They are handed out in the first `Persist`.
    ///
    /// `engine` holds the applied state; a new member's is empty. One that holds a state (a
    /// joiner that stored the leader's snapshot but crashed before storing where its log
    /// restarts) resumes from that state, as [`Node::recover`] with an empty log would.
    pub fn new(config: NodeConfig, engine: Box<dyn Engine>) -> Result<Node> {
        let mut members = config.initial_members.clone();
        members.sort_by_key(|m| m.id);
        let mut entries = Vec::new();
        for (i, member) in members.iter().enumerate() {
            let change = MemberChange::Add(crate::request::MemberAddRequest {
                id: member.id,
                peer_urls: member.peer_urls.clone(),
                is_learner: false,
            });
            let proposal = Proposal { origin: 0, incarnation: 0, request_id: 0, command: Command::Member(change) };
            let cc = conf_change(ConfChangeType::AddNode, member.id, proposal.encode());
            let mut entry = Entry::default();
            entry.set_entry_type(EntryType::EntryConfChangeV2);
            entry.index = i as u64 + 1;
            entry.term = 1;
            entry.data = cc.write_to_bytes().unwrap_or_default().into();
            entries.push(entry);
        }
        let bootstrap: Vec<LogEntry> = entries.iter().map(LogEntry::from_raft).collect();
        let mut log = LogStore::bootstrap(members.iter().map(|m| m.id).collect());
        log.append(entries);
        let mut hs = raft::eraftpb::HardState::default();
        if !bootstrap.is_empty() {
            hs.term = 1;
            hs.commit = bootstrap.len() as u64;
        }
        log.set_hard_state(hs.clone());
        let min_ttl = Lessor::min_ttl_seconds(config.election_ticks as u64, config.tick_ms);
        let sm = StateMachine::open(engine, min_ttl)?;
        if sm.is_stored() {
            return Node::resume(config, Recovery::default(), sm);
        }
        let mut node = Node::build(config, log, sm, 0)?;
        if !bootstrap.is_empty() {
            node.out.persist = Some(Persist {
                number: 0,
                must_sync: true,
                snapshot: None,
                entries: bootstrap,
                hard_state: Some(HardState::from_raft(&hs)),
            });
        }
        Ok(node)
    }

    /// A member restarting from what its disk held: the state machine opens the state in
    /// `engine` and the log after its applied index is replayed as Raft commits it again.
    ///
    /// A data directory whose state is only in its snapshot (written before the state lived in
    /// the engine, or made by `keelctl snapshot restore`) has that snapshot moved into the
    /// engine first.
    pub fn recover(config: NodeConfig, recovery: Recovery, engine: Box<dyn Engine>) -> Result<Node> {
        let min_ttl = Lessor::min_ttl_seconds(config.election_ticks as u64, config.tick_ms);
        let sm = StateMachine::open(engine, min_ttl)?;
        Node::resume(config, recovery, sm)
    }

    /// [`Node::recover`] with the state opened.
    fn resume(config: NodeConfig, recovery: Recovery, mut sm: StateMachine) -> Result<Node> {
        let mut snapshot = match &recovery.snapshot {
            Some(s) => s.to_raft()?,
            None => Default::default(),
        };
        if !sm.is_stored() && !snapshot.get_data().is_empty() {
            let mut snap = StateMachine::decode_snapshot(snapshot.get_data())?;
            // The snapshot's label is the index its state holds (a backup's is set so).
            StateMachine::set_snapshot_index(&mut snap, snapshot.get_metadata().index);
            let conf_state = snapshot.get_metadata().get_conf_state().write_to_bytes().unwrap_or_default();
            sm.install(snap, snapshot.get_metadata().term, conf_state);
        }
        snapshot.set_data(Default::default());
        // The configuration is the applied state's: the entries that made it are not replayed.
        if let Some(bytes) = sm.conf_state() {
            let cs = raft::eraftpb::ConfState::parse_from_bytes(bytes)
                .map_err(|e| Error::Internal(format!("corrupt configuration in the state store: {e}")))?;
            snapshot.mut_metadata().set_conf_state(cs);
        }
        let applied = sm.applied_index();
        let mut entries = recovery.entries.iter().map(LogEntry::to_raft).collect::<Result<Vec<_>>>()?;
        let snap_index = snapshot.get_metadata().index;
        let last = entries.last().map_or(snap_index, |e| e.index).max(snap_index);
        if applied > last && sm.applied_term() > 0 {
            // A snapshot from the leader reached the state store, but the crash came before the
            // log restarted after it: the state is committed, so the log restarts after it now.
            let meta = snapshot.mut_metadata();
            meta.index = applied;
            meta.term = sm.applied_term();
            entries.clear();
        } else if applied < snap_index || applied > last {
            return Err(Error::Internal(format!(
                "the state store has applied the log up to index {applied}, but the stored log runs from {snap_index} to {last}: \
                 the data directory is damaged; restore it from a backup, or remove it and add this member to the cluster again"
            )));
        }
        let log =
            LogStore::recover(snapshot, recovery.hard_state.to_raft(), entries, applied).map_err(Error::Internal)?;
        Node::build(config, log, sm, applied)
    }

    fn build(config: NodeConfig, log: LogStore, sm: StateMachine, applied: u64) -> Result<Node> {
        let raft_config = raft::Config {
            id: config.id,
            election_tick: config.election_ticks,
            heartbeat_tick: config.heartbeat_ticks,
            applied,
            max_size_per_msg: config.max_size_per_msg,
            max_inflight_msgs: config.max_inflight_msgs,
            check_quorum: true,
            pre_vote: true,
            read_only_option: ReadOnlyOption::Safe,
            // Proposals queued together reach each follower as one append message.
            batch_append: true,
            ..Default::default()
        };
        raft_config.validate().map_err(|e| Error::Internal(format!("raft config: {e}")))?;
        let raw = RawNode::new(&raft_config, log, &crate::raft_logger::logger(config.id))
            .map_err(|e| Error::Internal(format!("raft: {e}")))?;
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut node = Node {
            raw,
            sm,
            watches: WatchHub::new(),
            rng,
            now_ms: 0,
            pending: BTreeMap::new(),
            reads: ReadBatcher::default(),
            held: Vec::new(),
            durability: Durability::default(),
            incarnation: 0,
            incoming_snapshot: None,
            deferred_keepalives: Vec::new(),
            out: Ready::default(),
            last_role: StateRole::Follower,
            last_leader: 0,
            revoking: BTreeMap::new(),
            expired_keys: 0,
            next_checkpoint_ms: 0,
            next_progress_ms: config.progress_notify_ms,
            transfer: None,
            last_snapshot_index: applied,
            follower_snapshots: Default::default(),
            removed: false,
            config,
        };
        node.incarnation = node.rng.gen();
        node.reads.set_prefix(node.config.id, node.incarnation);
        node.redraw_election_timeout();
        Ok(node)
    }

    /// raft-rs draws election timeouts from the OS's randomness; replace every fresh draw with
    /// one from our seeded generator so elections happen at the same ticks in every replay.
    /// A fresh draw happens exactly when raft-rs resets its election clock to zero.
    fn redraw_election_timeout(&mut self) {
        let raft = &mut self.raw.raft;
        if raft.election_elapsed == 0 {
            let min = raft.election_timeout();
            let timeout = self.rng.gen_range(min..2 * min);
            raft.set_randomized_election_timeout(timeout);
        }
    }

    // ----- inputs -----

    /// The clock advanced by one tick to `now_ms` (monotonic milliseconds): drives elections,
    /// heartbeats, lease expiry on the leader and request deadlines.
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        if self.removed {
            return;
        }
        self.raw.tick();
        self.redraw_election_timeout();
        self.expire_requests();
        self.reads.retry_stale(self.now_ms, self.config.election_timeout_ms());
        if self.is_leader() {
            self.leader_duties();
        }
        if self.now_ms >= self.next_progress_ms {
            self.next_progress_ms = self.now_ms + self.config.progress_notify_ms;
            let responses = self.watches.progress(self.sm.store().current_revision());
            self.out.watch_responses.extend(responses);
        }
    }

    /// A message from a peer, as the bytes it sent. Peers are members of the cluster and are
    /// trusted to speak Raft, but a message that could crash raft-rs (malformed, misaddressed,
    /// or claiming a commit beyond our log) is refused with an error rather than stepped, and so
    /// is a snapshot whose state does not decode.
    pub fn step(&mut self, bytes: &[u8]) -> Result<()> {
        if self.removed {
            return Err(Error::Stopped);
        }
        let msg = Message::parse_from_bytes(bytes).map_err(|e| Error::Internal(format!("bad peer message: {e}")))?;
        self.check_peer_message(&msg)?;
        if msg.get_msg_type() == MessageType::MsgSnapshot {
            let snap = msg.get_snapshot();
            let decoded = StateMachine::decode_snapshot(snap.get_data())?;
            self.incoming_snapshot = Some((snap.get_metadata().index, decoded));
        }
        let result = self.raw.step(msg);
        self.redraw_election_timeout();
        match result {
            Ok(()) | Err(raft::Error::StepPeerNotFound) => Ok(()),
            Err(e) => Err(Error::Internal(format!("raft step: {e}"))),
        }
    }

    fn check_peer_message(&self, msg: &Message) -> Result<()> {
        let bad = |why: &str| {
            Err(Error::Internal(format!("refused peer message {:?} from {:x}: {why}", msg.get_msg_type(), msg.from)))
        };
        if raft::raw_node::is_local_msg(msg.get_msg_type()) {
            return bad("local message type");
        }
        if msg.to != self.config.id || msg.from == 0 || msg.from == self.config.id {
            return bad("wrong addressing");
        }
        match msg.get_msg_type() {
            MessageType::MsgReadIndex | MessageType::MsgReadIndexResp if msg.entries.len() != 1 => {
                bad("read index without exactly one context")
            }
            // raft-rs steps a message of term 0 as a local one, skipping every term check; peers
            // send term 0 only when forwarding proposals and read requests (found by the
            // raft_messages fuzzer: a term-0 heartbeat committed beyond the log).
            kind if msg.term == 0 && !matches!(kind, MessageType::MsgPropose | MessageType::MsgReadIndex) => {
                bad("no term")
            }
            // A follower forwards these to the leader, and raft-rs panics sending one with a
            // term; Keel forwards leadership transfers as requests, never as Raft messages
            // (found by the raft_messages fuzzer).
            MessageType::MsgPropose | MessageType::MsgReadIndex if msg.term != 0 => bad("forwarded with a term"),
            MessageType::MsgTransferLeader => bad("leadership transfer from a peer"),
            // raft-rs assumes an append's entries follow its index one by one, with terms that
            // never go down or past the message's (found by the raft_messages fuzzer).
            MessageType::MsgAppend if !entries_in_sequence(msg) => bad("entries out of sequence"),
            MessageType::MsgHeartbeat if msg.commit > self.raw.raft.raft_log.last_index() => {
                bad("heartbeat commits beyond our log")
            }
            MessageType::MsgSnapshot if msg.get_snapshot().get_metadata().index == 0 => bad("empty snapshot"),
            // raft-rs takes term 0 as a match for any index past its log and commits up to the
            // snapshot's index (found by the raft_messages fuzzer).
            MessageType::MsgSnapshot if msg.get_snapshot().get_metadata().term == 0 => bad("snapshot without a term"),
            // raft-rs panics restoring a configuration it could not have made (found by the
            // raft_messages fuzzer: a voter listed twice).
            MessageType::MsgSnapshot if !conf_state_valid(msg.get_snapshot().get_metadata().get_conf_state()) => {
                bad("snapshot with an impossible configuration")
            }
            // raft-rs panics on a proposal without entries (found by the raft_messages fuzzer).
            MessageType::MsgPropose if msg.entries.is_empty() => bad("proposal without entries"),
            _ => Ok(()),
        }
    }

    /// Storage made everything up to `Persist::number` durable.
    pub fn persisted(&mut self, number: u64) {
        self.durability.acked(number);
        self.release_durable();
    }

    /// Tell raft-rs which readies are durable, and send the messages that waited for them.
    /// A ready with nothing to write is durable only once every earlier ready with writes is:
    /// acknowledging it sooner would tell raft-rs (which counts acknowledgements cumulatively)
    /// that unsynced entries were safe.
    fn release_durable(&mut self) {
        // A member removed from the configuration drives Raft no further: raft-rs panics
        // looking up its own progress when a leader that removed itself is told of a write.
        if self.removed {
            return;
        }
        let Some(number) = self.durability.releasable() else { return };
        self.raw.on_persist_ready(number);
        self.report_applied();
        let (now, later): (Vec<_>, Vec<_>) = self.held.drain(..).partition(|(n, _)| *n <= number);
        self.held = later;
        for (_, msgs) in now {
            self.queue_messages(msgs);
        }
    }

    /// The transport could not reach `peer`; Raft slows down replication to it.
    pub fn report_unreachable(&mut self, peer: u64) {
        self.raw.report_unreachable(peer);
    }

    /// The transport finished (or failed) sending a snapshot to `peer`.
    pub fn report_snapshot(&mut self, peer: u64, delivered: bool) {
        let status = if delivered { raft::SnapshotStatus::Finish } else { raft::SnapshotStatus::Failure };
        self.raw.report_snapshot(peer, status);
        if let (true, Some(index)) = (delivered, self.raw.store().outgoing_index()) {
            self.follower_snapshots.delivered(peer, index, self.now_ms);
        }
        // Built for that follower; the next one that needs a snapshot gets a fresh one.
        self.raw.mut_store().drop_outgoing_snapshot();
    }

    /// The shell built the snapshot a [`Ready::snapshot_job`] asked for (`data`, or why it could
    /// not): it is kept to send the followers that need it.
    pub fn snapshot_built(&mut self, index: u64, data: Result<Vec<u8>>) {
        let Some(snapshot) = self.follower_snapshots.built(index) else { return };
        match data {
            Ok(data) => {
                self.raw.mut_store().set_outgoing_snapshot(snapshot, data);
            }
            // None is kept; raft-rs asks again at its next try.
            Err(e) => tracing::error!("cannot build a snapshot for a follower: {e}"),
        }
    }

    /// The shell built the backup a [`Ready::backups`] job asked for, of the state at `index`:
    /// it goes to the client that asked (Maintenance.Snapshot).
    pub fn backup_built(&mut self, id: RequestId, index: u64, data: Result<Vec<u8>>) {
        let response =
            data.map(|data| Response::Snapshot(SnapshotResponse { data, applied_index: index, ..Default::default() }));
        self.respond(id, response);
    }

    /// A client request. Its answer comes out of a later [`Node::ready`] under the same `id`.
    pub fn request(&mut self, id: RequestId, request: Request) {
        if self.removed {
            self.respond(id, Err(Error::Stopped));
            return;
        }
        if let Err(e) = self.start_request(id, request) {
            self.respond(id, Err(e));
        }
    }

    fn start_request(&mut self, id: RequestId, request: Request) -> Result<()> {
        match request {
            Request::Range(req) => {
                validate::range(&req)?;
                // Planted bug (simulation only): a leader skipping ReadIndex for its reads.
                let local = crate::bugs::enabled(crate::bugs::Bug::LocalLinearizableRead) && self.is_leader();
                if req.serializable || local {
                    let resp = self.sm.store().range(&req)?;
                    self.respond(id, Ok(Response::Range(resp)));
                } else {
                    self.pending.insert(id, self.deadline());
                    self.reads.add(id, req);
                }
                Ok(())
            }
            Request::Put(req) => {
                validate::put(&req)?;
                self.propose(id, Command::Put(req))
            }
            Request::PutInOrder(req) => self.propose(id, Command::PutInOrder(req)),
            Request::DeleteRange(req) => {
                validate::delete_range(&req)?;
                self.propose(id, Command::DeleteRange(req))
            }
            Request::Txn(req) => {
                validate::txn(&req, self.config.max_txn_ops)?;
                self.propose(id, Command::Txn(req))
            }
            Request::Compact(req) => self.propose(id, Command::Compact(req)),
            Request::LeaseGrant(mut req) => {
                if req.id == 0 {
                    req.id = self.rng.gen_range(1..i64::MAX);
                }
                self.propose(id, Command::LeaseGrant(req))
            }
            Request::LeaseRevoke(req) => self.propose(id, Command::LeaseRevoke(req)),
            Request::V2Write(mut req) => {
                validate::v2_write(&req)?;
                if req.ttl.is_some() {
                    req.lease = self.rng.gen_range(1..i64::MAX);
                }
                self.propose(id, Command::V2Write(req))
            }
            Request::LeaseKeepAlive(req) => {
                self.require_leader()?;
                if !self.leader_caught_up() {
                    // A new leader may not have applied a revoke its predecessor committed:
                    // renewing now could revive a lease whose keys are gone (etcd waits too).
                    self.pending.insert(id, self.deadline());
                    self.deferred_keepalives.push((id, req));
                    return Ok(());
                }
                let ttl = self.sm.lessor_mut().renew(req.id, self.now_ms)?;
                // A checkpointed countdown is stale after a keep-alive: clear it everywhere, or
                // a new leader would resume the old countdown instead of the renewed one.
                if self.sm.lessor().checkpointed_ttl(req.id).is_some_and(|t| t > 0) {
                    let _ = self.propose(0, Command::LeaseCheckpoint(vec![(req.id, 0)]));
                }
                let resp = LeaseKeepAliveResponse { id: req.id, ttl, ..Default::default() };
                self.respond(id, Ok(Response::LeaseKeepAlive(resp)));
                Ok(())
            }
            Request::LeaseTimeToLive(req) => {
                self.require_leader()?;
                let resp = self.sm.lessor().time_to_live(req.id, req.keys, Some(self.now_ms));
                self.respond(id, Ok(Response::LeaseTimeToLive(resp)));
                Ok(())
            }
            Request::LeaseLeases => {
                self.require_leader()?;
                let leases = self.sm.lessor().leases();
                self.respond(id, Ok(Response::LeaseLeases(LeaseLeasesResponse { leases, ..Default::default() })));
                Ok(())
            }
            Request::MemberChange(change) => self.propose_member_change(id, change),
            Request::MemberList => {
                let members = self.sm.members();
                self.respond(id, Ok(Response::Member(MemberResponse { members, ..Default::default() })));
                Ok(())
            }
            Request::MoveLeader { target } => self.move_leader(id, target),
            Request::Hash => {
                let resp =
                    HashResponse { hash: self.sm.hash(), applied_index: self.sm.applied_index(), ..Default::default() };
                self.respond(id, Ok(Response::Hash(resp)));
                Ok(())
            }
            Request::HashKv { revision } => {
                let resp = self.sm.store().hash_kv(revision)?;
                self.respond(id, Ok(Response::HashKv(resp)));
                Ok(())
            }
            Request::Alarm(req) => self.propose(id, Command::Alarm(req)),
            Request::Snapshot => {
                // Built off the apply path, as a follower's is; the answer comes from backup_built.
                let job = self.sm.snapshot_job()?;
                self.out.backups.push((id, job));
                Ok(())
            }
        }
    }

    /// Start a watch. Its creation notice, any replayed history and all later events come out
    /// of [`Node::ready`] as [`WatchResponse`](crate::watch::WatchResponse)s carrying the returned id.
    pub fn watch(&mut self, request: WatchCreate) -> WatchId {
        let (id, responses) = self.watches.create(request, self.sm.store());
        self.out.watch_responses.extend(responses);
        id
    }

    /// Stop a watch; its cancellation notice comes out of the next `ready()`.
    pub fn cancel_watch(&mut self, id: WatchId) {
        if let Some(resp) = self.watches.cancel(id) {
            self.out.watch_responses.push(resp);
        }
    }

    /// Ask for a progress notification for every watcher that wants them (etcd's
    /// WatchProgressRequest).
    pub fn request_progress(&mut self) {
        let responses = self.watches.progress(self.sm.store().current_revision());
        self.out.watch_responses.extend(responses);
    }

    // ----- outputs -----

    /// Everything the shell must do now. Call after any input; an empty `Ready` means nothing.
    pub fn ready(&mut self) -> Ready {
        if let Some(ctx) = self.reads.start_round(self.now_ms) {
            self.raw.read_index(ctx);
        }
        // Bounded: each round hands raft-rs's work over; new work appears only from new input.
        for _ in 0..64 {
            if !self.raw.has_ready() {
                break;
            }
            self.handle_raft_ready();
        }
        self.serve_reads();
        self.retry_keepalives();
        self.redraw_election_timeout();
        std::mem::take(&mut self.out)
    }

    fn handle_raft_ready(&mut self) {
        let mut rd = self.raw.ready();
        if let Some(ss) = rd.ss() {
            let (role, leader) = (ss.raft_state, ss.leader_id);
            self.on_soft_state(role, leader);
        }
        let msgs = rd.take_messages();
        self.queue_messages(msgs);

        let mut persist = Persist { number: rd.number(), must_sync: rd.must_sync(), ..Default::default() };
        if !rd.snapshot().is_empty() {
            let mut snapshot = rd.snapshot().clone();
            // The state goes into the engine; the log keeps only where the snapshot stands.
            snapshot.set_data(Default::default());
            persist.snapshot = Some(SnapshotRecord::from_raft(&snapshot));
            self.install_snapshot(snapshot);
        }
        let committed = rd.take_committed_entries();
        self.apply_entries(committed);

        let entries = rd.take_entries();
        if !entries.is_empty() {
            persist.entries = entries.iter().map(LogEntry::from_raft).collect();
            self.raw.mut_store().append(entries);
        }
        if let Some(hs) = rd.hs() {
            let mut durable = HardState::from_raft(hs);
            // Planted bug (simulation only): term and vote kept in memory only.
            if crate::bugs::enabled(crate::bugs::Bug::ForgetTermAndVote) {
                durable.term = 0;
                durable.vote = 0;
            }
            persist.hard_state = Some(durable);
            self.raw.mut_store().set_hard_state(hs.clone());
        }
        for rs in rd.take_read_states() {
            self.reads.confirm(&rs.request_ctx, rs.index);
        }
        let after_persist = rd.take_persisted_messages();
        if !after_persist.is_empty() {
            self.held.push((rd.number(), after_persist));
        }
        let has_writes = persist.snapshot.is_some() || !persist.entries.is_empty() || persist.hard_state.is_some();
        self.raw.advance_append_async(rd);
        self.report_applied();
        if has_writes {
            self.durability.wrote(persist.number);
            match &mut self.out.persist {
                Some(p) => p.merge(persist),
                None => self.out.persist = Some(persist),
            }
        } else {
            self.durability.wrote_nothing(persist.number);
            self.release_durable();
        }
        self.maybe_snapshot();
    }

    /// Tell raft-rs how far the state machine has applied. raft-rs accepts no more than it
    /// knows to be persisted, which after a snapshot install is less than the state machine
    /// holds until the snapshot is durable; the rest is reported once it is.
    fn report_applied(&mut self) {
        let log = &self.raw.raft.raft_log;
        let applied = self.sm.applied_index().min(log.persisted).min(log.committed);
        if applied > log.applied {
            self.raw.advance_apply_to(applied);
        }
    }

    fn queue_messages(&mut self, msgs: Vec<Message>) {
        for msg in msgs {
            if msg.get_msg_type() != raft::eraftpb::MessageType::MsgSnapshot {
                self.out.messages.push(OutMessage::encode(&msg, None));
                continue;
            }
            // raft-rs carries the snapshot's metadata; its data is the one kept for followers.
            match self.raw.store().outgoing_data(msg.get_snapshot().get_metadata().index) {
                Some(data) => self.out.messages.push(OutMessage::encode(&msg, Some(data))),
                // Given up meanwhile (this member stopped leading): raft-rs tries again later.
                None => self.raw.report_snapshot(msg.to, raft::SnapshotStatus::Failure),
            }
        }
    }

    fn on_soft_state(&mut self, role: StateRole, leader: u64) {
        if role == StateRole::Leader && self.last_role != StateRole::Leader {
            let extend = self.config.election_timeout_ms();
            self.sm.lessor_mut().promote(self.now_ms, extend);
            self.next_checkpoint_ms = self.now_ms + self.config.lease_checkpoint_ms;
            self.revoking.clear();
        }
        if role != StateRole::Leader && self.last_role == StateRole::Leader {
            self.sm.lessor_mut().demote();
            // Only a leader sends snapshots; holding one would hold back log compaction.
            self.follower_snapshots.clear();
            self.raw.mut_store().drop_outgoing_snapshot();
        }
        self.last_role = role;
        self.last_leader = leader;
        if let Some((id, target, _)) = self.transfer {
            if leader == target {
                self.transfer = None;
                self.pending.remove(&id);
                let header = ResponseHeader::default();
                self.respond(id, Ok(Response::MoveLeader(header)));
            }
        }
    }

    fn serve_reads(&mut self) {
        for (id, req) in self.reads.ready(self.sm.applied_index()) {
            if self.pending.remove(&id).is_none() {
                continue;
            }
            let resp = self.sm.store().range(&req).map(Response::Range);
            self.respond(id, resp);
        }
    }

    fn respond(&mut self, id: RequestId, mut result: Result<Response>) {
        if let Ok(resp) = &mut result {
            let header = resp.header_mut();
            header.cluster_id = self.config.cluster_id;
            header.member_id = self.config.id;
            header.raft_term = self.raw.raft.term;
            if header.revision == 0 {
                header.revision = self.sm.store().current_revision();
            }
        }
        self.out.responses.push((id, result));
    }

    fn deadline(&self) -> u64 {
        self.now_ms + self.config.request_timeout_ms
    }

    fn expire_requests(&mut self) {
        let now = self.now_ms;
        let expired: Vec<RequestId> = self.pending.iter().filter(|(_, d)| **d <= now).map(|(id, _)| *id).collect();
        if expired.is_empty() {
            return;
        }
        for id in &expired {
            self.pending.remove(id);
        }
        self.reads.take_expired(|id| expired.contains(&id));
        if self.transfer.is_some_and(|(id, _, _)| expired.contains(&id)) {
            self.transfer = None;
        }
        for id in expired {
            self.respond(id, Err(Error::Timeout));
        }
    }

    /// Whether this leader has committed an entry of its own term and applied everything
    /// committed: only then does its lessor reflect every revoke and grant.
    fn leader_caught_up(&self) -> bool {
        let raft = &self.raw.raft;
        raft.commit_to_current_term() && self.sm.applied_index() >= raft.raft_log.committed
    }

    fn retry_keepalives(&mut self) {
        // Once caught up they are answered; if leadership was lost, retrying answers NotLeader.
        let can_answer = !self.is_leader() || self.leader_caught_up();
        if self.deferred_keepalives.is_empty() || !can_answer {
            return;
        }
        for (id, req) in std::mem::take(&mut self.deferred_keepalives) {
            if self.pending.remove(&id).is_some() {
                self.request(id, Request::LeaseKeepAlive(req));
            }
        }
    }

    fn require_leader(&self) -> Result<()> {
        match self.raw.raft.leader_id {
            0 => Err(Error::NoLeader),
            l if l == self.config.id => Ok(()),
            _ => Err(Error::NotLeader),
        }
    }

    /// Whether `command` would take the key space to the space quota or past it (etcd lets a
    /// write through only while size plus cost stays below the quota; see [`crate::alarm`]).
    fn exceeds_quota(&self, command: &Command) -> bool {
        let quota = self.config.quota_bytes;
        quota > 0
            && alarm::quota_cost(command).is_some_and(|cost| self.sm.store().size_bytes().saturating_add(cost) >= quota)
    }

    /// Encode and propose a command on behalf of request `id` (0 with origin 0: internal). A
    /// client's write past the space quota becomes `QuotaExceeded`: it raises NOSPACE and fails.
    fn propose(&mut self, id: RequestId, command: Command) -> Result<()> {
        let command = match id != 0 && self.exceeds_quota(&command) {
            true => Command::QuotaExceeded { member_id: self.config.id },
            false => command,
        };
        let origin = if id == 0 { 0 } else { self.config.id };
        let data = Proposal { origin, incarnation: self.incarnation, request_id: id, command }.encode();
        if data.len() > self.config.max_request_bytes {
            return Err(Error::RequestTooLarge);
        }
        self.raw.propose(vec![], data).map_err(|_| self.dropped_error())?;
        if id != 0 {
            self.pending.insert(id, self.deadline());
        }
        Ok(())
    }

    /// Why raft-rs refused a proposal: no leader known, or a leader transfer under way.
    fn dropped_error(&self) -> Error {
        if self.raw.raft.leader_id == 0 {
            Error::NoLeader
        } else {
            Error::LeaderChanged
        }
    }

    fn propose_member_change(&mut self, id: RequestId, mut change: MemberChange) -> Result<()> {
        if let MemberChange::Add(req) = &mut change {
            while req.id == 0 || self.sm.member(req.id).is_some() {
                req.id = self.rng.gen();
            }
        }
        self.sm.check_member_change(&change)?;
        let (kind, target) = match &change {
            MemberChange::Add(req) if req.is_learner => (ConfChangeType::AddLearnerNode, req.id),
            MemberChange::Add(req) => (ConfChangeType::AddNode, req.id),
            MemberChange::Remove { id } => (ConfChangeType::RemoveNode, *id),
            MemberChange::Promote { id } => {
                self.check_learner_ready(*id)?;
                (ConfChangeType::AddNode, *id)
            }
            MemberChange::Update { .. } | MemberChange::Publish { .. } => {
                return self.propose(id, Command::Member(change))
            }
        };
        let proposal = Proposal {
            origin: self.config.id,
            incarnation: self.incarnation,
            request_id: id,
            command: Command::Member(change),
        };
        let cc = conf_change(kind, target, proposal.encode());
        self.raw.propose_conf_change(vec![], cc).map_err(|_| self.dropped_error())?;
        self.pending.insert(id, self.deadline());
        Ok(())
    }

    /// etcd promotes a learner only when it has caught up to 90% of the leader's log. Only the
    /// leader knows how far a learner is, so elsewhere the promotion is refused (the server
    /// forwards promotions to the leader; a follower proposing it would skip the check).
    fn check_learner_ready(&self, learner: u64) -> Result<()> {
        if !self.is_leader() {
            return Err(Error::NotLeader);
        }
        let last = self.raw.raft.raft_log.last_index();
        match self.raw.raft.prs().get(learner) {
            Some(pr) if pr.matched.saturating_mul(10) >= last.saturating_mul(9) => Ok(()),
            _ => Err(Error::LearnerNotReady),
        }
    }

    fn move_leader(&mut self, id: RequestId, target: u64) -> Result<()> {
        self.require_leader()?;
        if !self.raw.raft.prs().conf().voters().contains(target) {
            return Err(Error::BadLeaderTransferee);
        }
        if target == self.config.id {
            self.respond(id, Ok(Response::MoveLeader(ResponseHeader::default())));
            return Ok(());
        }
        self.raw.transfer_leader(target);
        self.transfer = Some((id, target, self.deadline()));
        self.pending.insert(id, self.deadline());
        Ok(())
    }

    /// Delete one batch of the history a compaction discarded (at most the configured
    /// `compaction_batch_limit` revisions); returns whether more remains. The shell calls it
    /// between its other work while [`Node::compaction_pending`] holds (etcd pauses 10 ms between
    /// batches), so a large compaction never holds up requests.
    pub fn sweep_compaction(&mut self) -> bool {
        self.sm.sweep_compaction(self.config.compaction_batch_limit)
    }

    // ----- queries -----

    /// Whether a compaction's discarded history is still being deleted.
    pub fn compaction_pending(&self) -> bool {
        self.sm.store().compaction_pending() && self.sm.failure().is_none()
    }

    /// This member's id.
    pub fn id(&self) -> u64 {
        self.config.id
    }

    /// The leader this member knows of (0 for none).
    pub fn leader_id(&self) -> u64 {
        self.raw.raft.leader_id
    }

    /// The current Raft term.
    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    /// Whether this member is the leader.
    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// This member's role.
    pub fn role(&self) -> Role {
        match self.raw.raft.state {
            StateRole::Leader => Role::Leader,
            StateRole::Candidate | StateRole::PreCandidate => Role::Candidate,
            StateRole::Follower => Role::Follower,
        }
    }

    /// Index of the last committed entry this member knows of.
    pub fn commit_index(&self) -> u64 {
        self.raw.raft.raft_log.committed
    }

    /// Index of the last entry applied to the state machine.
    pub fn applied_index(&self) -> u64 {
        self.sm.applied_index()
    }

    /// The applied state, for reads that need no consensus (status, tests, checkers).
    pub fn state(&self) -> &StateMachine {
        &self.sm
    }

    /// Keys deleted because their lease expired, as this member applied them since it started.
    pub fn expired_keys(&self) -> u64 {
        self.expired_keys
    }

    /// Why this member cannot go on, if so (its state store refused a write, or a committed
    /// entry cannot be read): it must stop, since its state would part from its log.
    pub fn failure(&self) -> Option<&str> {
        self.sm.failure()
    }

    /// Whether this member has been removed from the cluster (it should shut down).
    pub fn is_removed(&self) -> bool {
        self.removed
    }

    /// Number of active watchers.
    pub fn watch_count(&self) -> usize {
        self.watches.len()
    }

    /// The randomized election timeout in ticks currently in force (for determinism tests).
    pub fn election_timeout_ticks(&self) -> usize {
        self.raw.raft.randomized_election_timeout()
    }
}

/// Which raft-rs readies are durable. Readies are numbered in order; those with writes become
/// durable when the shell acknowledges them (cumulatively), those without as soon as every
/// earlier one with writes is.
#[derive(Default)]
struct Durability {
    /// Numbers of readies with writes, not yet acknowledged, in order.
    unsynced: std::collections::VecDeque<u64>,
    /// Numbers of readies with nothing to write, waiting for earlier writes, in order.
    empty: std::collections::VecDeque<u64>,
    /// Highest number acknowledged by the shell.
    acked: u64,
    /// Highest number reported to raft-rs.
    reported: u64,
}

impl Durability {
    fn wrote(&mut self, number: u64) {
        self.unsynced.push_back(number);
    }

    fn wrote_nothing(&mut self, number: u64) {
        self.empty.push_back(number);
    }

    fn acked(&mut self, number: u64) {
        self.acked = self.acked.max(number);
        while self.unsynced.front().is_some_and(|n| *n <= number) {
            self.unsynced.pop_front();
        }
    }

    /// The highest number now durable, if it is news.
    fn releasable(&mut self) -> Option<u64> {
        let limit = self.unsynced.front().map_or(u64::MAX, |first| first - 1);
        let mut durable = self.acked.min(limit);
        while self.empty.front().is_some_and(|n| *n <= limit) {
            durable = durable.max(self.empty.pop_front().unwrap_or(0));
        }
        (durable > self.reported).then(|| {
            self.reported = durable;
            durable
        })
    }
}

/// A single-step ConfChangeV2 (Raft leaves joint consensus by itself when one is needed).
fn conf_change(kind: ConfChangeType, node: u64, context: Vec<u8>) -> ConfChangeV2 {
    let mut single = ConfChangeSingle::default();
    single.set_change_type(kind);
    single.node_id = node;
    let mut cc = ConfChangeV2::default();
    cc.set_transition(ConfChangeTransition::Auto);
    cc.mut_changes().push(single);
    cc.context = context.into();
    cc
}

/// Whether an append is what a leader sends: a term for the entry before (raft-rs takes term 0
/// for any index past its log as a match), and entries whose indexes follow the message's one
/// by one, with terms never going down, from the previous entry's up to the message's.
fn entries_in_sequence(msg: &Message) -> bool {
    let mut term = msg.log_term;
    (msg.index == 0 || msg.log_term > 0)
        && msg.entries.iter().enumerate().all(|(i, e)| {
            let ok =
                e.index == msg.index.saturating_add(1 + i as u64) && e.term > 0 && e.term >= term && e.term <= msg.term;
            term = e.term;
            ok
        })
}

/// Whether a snapshot's configuration is one raft-rs can restore: voters, no id twice or zero,
/// learners apart from voters (in the configuration and in the one being left).
fn conf_state_valid(cs: &raft::eraftpb::ConfState) -> bool {
    let distinct = |ids: &[u64]| {
        let set: std::collections::BTreeSet<u64> = ids.iter().copied().collect();
        set.len() == ids.len() && !set.contains(&0)
    };
    let disjoint = |a: &[u64], b: &[u64]| a.iter().all(|id| !b.contains(id));
    !cs.voters.is_empty()
        && [&cs.voters, &cs.learners, &cs.voters_outgoing, &cs.learners_next].iter().all(|ids| distinct(ids))
        && disjoint(&cs.voters, &cs.learners)
        && disjoint(&cs.voters_outgoing, &cs.learners)
        && disjoint(&cs.learners_next, &cs.voters)
}

#[cfg(test)]
mod tests {
    use super::Durability;

    #[test]
    fn an_empty_ready_is_durable_only_after_every_earlier_write() {
        let mut d = Durability::default();
        d.wrote(5);
        d.wrote_nothing(6);
        assert_eq!(d.releasable(), None, "6 must wait for 5's fsync");
        d.wrote(8);
        d.wrote_nothing(9);
        d.acked(5);
        assert_eq!(d.releasable(), Some(6), "5 synced: 6 is durable, 9 still waits for 8");
        d.acked(8);
        assert_eq!(d.releasable(), Some(9));
        d.wrote_nothing(10);
        assert_eq!(d.releasable(), Some(10), "nothing unsynced: at once");
        assert_eq!(d.releasable(), None);
    }
}
