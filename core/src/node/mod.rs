//! The member: one sans-IO state machine that takes inputs and yields outputs.
//!
//! Inputs are method calls — [`Node::tick`] (time), [`Node::step`] (a peer's message),
//! [`Node::request`] (a client's request), [`Node::watch`], [`Node::persisted`] (storage caught
//! up) — and outputs are collected by [`Node::ready`]. The node never blocks, never reads a clock
//! and draws randomness only from its own seeded generator, so a cluster of nodes driven by the
//! same inputs produces the same outputs, byte for byte.

mod apply;
mod auth;
pub mod backup;
mod durability;
mod follower_snapshots;
mod leader;
mod membership;
mod output;
mod peer_checks;
pub mod raft_log;
mod raft_logger;
mod reads;
mod requests;
mod status;
mod stored;
mod tokens;

use std::collections::BTreeMap;

use protobuf::Message as _;
use raft::eraftpb::{ConfChangeType, Entry, EntryType, Message, MessageType};
use raft::{RawNode, ReadOnlyOption, StateRole};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use output::{
    HardState, LocalSnapshot, LogEntry, OutMessage, Persist, Ready, RequestId, SnapshotPayload, SnapshotRecord,
};
pub use status::{Role, StateView};
pub use stored::Recovery;

use crate::api::auth::Caller;
use crate::api::command::{Command, Proposal};
use crate::api::error::{Error, Result};
use crate::api::request::{MemberChange, Response, ResponseHeader, SnapshotResponse};
use crate::config::NodeConfig;
use crate::node::raft_log::LogStore;
use crate::state::engine::Engine;
use crate::state::lease::Lessor;
use crate::state::machine::{StateMachine, StateSnapshot};
use crate::state::watch::{WatchCreate, WatchHub, WatchId};
use durability::Durability;
use membership::conf_change;
use reads::ReadBatcher;

/// Whether an encoded peer message is a proposal forwarded to the leader (which, unlike every
/// other Raft message, must not arrive twice: it would be appended twice).
pub fn is_proposal(bytes: &[u8]) -> bool {
    Message::parse_from_bytes(bytes).is_ok_and(|m| m.get_msg_type() == MessageType::MsgPropose)
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
    deferred_keepalives: Vec<(RequestId, crate::api::request::LeaseKeepAliveRequest)>,
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
    /// The simple tokens this member knows (volatile, as etcd's).
    tokens: tokens::Tokens,
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
            let change = MemberChange::Add(crate::api::request::MemberAddRequest {
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
        let raw = RawNode::new(&raft_config, log, &crate::node::raft_logger::logger(config.id))
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
            tokens: tokens::Tokens::new(config.auth_token_ttl_ms),
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

    /// Start a watch. Its creation notice, any replayed history and all later events come out
    /// of [`Node::ready`] as [`WatchResponse`](crate::state::watch::WatchResponse)s carrying the returned id.
    pub fn watch(&mut self, request: WatchCreate) -> WatchId {
        let (id, responses) = self.watches.create(request, self.sm.store());
        self.out.watch_responses.extend(responses);
        id
    }

    /// [`Node::watch`] for `caller`, who needs read permission on the watched range when auth
    /// is on; refused with etcd's "permission denied" whatever was wrong with the credentials.
    pub fn watch_as(&mut self, caller: &Caller, request: WatchCreate) -> Result<WatchId> {
        let who = self.resolve(caller).map_err(|_| Error::PermissionDenied)?;
        self.require_read(&who, &request.key, &request.range_end).map_err(|_| Error::PermissionDenied)?;
        Ok(self.watch(request))
    }

    /// Stop a watch; its cancellation notice comes out of the next `ready()`.
    pub fn cancel_watch(&mut self, id: WatchId) {
        if let Some(resp) = self.watches.cancel(id) {
            self.out.watch_responses.push(resp);
        }
    }

    /// The shell could not hand watcher `id` its response whose events start at `revision` (0
    /// for one without events): its client reads too slowly. The watcher gets nothing more
    /// until [`Node::resume_watch`], which replays what it missed from history.
    pub fn watch_fell_behind(&mut self, id: WatchId, revision: i64) {
        self.watches.fell_behind(id, revision);
    }

    /// Watcher `id`'s client has room again: catch it up from history (the responses come out
    /// of the next `ready()`), or cancel it if what it missed was compacted meanwhile.
    pub fn resume_watch(&mut self, id: WatchId) {
        let responses = self.watches.resume(id, self.sm.store());
        self.out.watch_responses.extend(responses);
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

    /// Delete one batch of the history a compaction discarded (at most the configured
    /// `compaction_batch_limit` revisions); returns whether more remains. The shell calls it
    /// between its other work while [`Node::compaction_pending`] holds (etcd pauses 10 ms between
    /// batches), so a large compaction never holds up requests.
    pub fn sweep_compaction(&mut self) -> bool {
        self.sm.sweep_compaction(self.config.compaction_batch_limit)
    }
}
