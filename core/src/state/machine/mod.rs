//! The applied state of a member: MVCC key space, leases and membership, advanced only by
//! committed [`Command`]s so that every member holding the same log holds the same state.
//!
//! The state lives in the member's [`Engine`]: each applied entry's changes, with the applied
//! index, reach it as one batch (`records` holds the state machine's own records), so a restart
//! opens the engine and replays only the entries after that index. In memory stay the lessor
//! (rebuilt from the lease records and the keys that name a lease), the membership, alarms
//! and the auth store (users and roles: small).

mod membership;
mod permit;
mod records;
mod snapshot;
mod snapshot_job;
mod v2_write;

pub use snapshot::{StateSnapshot, SNAPSHOT_FORMAT};
pub use snapshot_job::SnapshotJob;

use std::collections::BTreeMap;

use crate::api::alarm::{AlarmAction, AlarmRequest, AlarmType};
use crate::api::command::Command;
use crate::api::error::{Error, Result};
use crate::api::kv::{Event, EventType};
use crate::api::request::{
    DeleteRangeRequest, LeaseRevokeResponse, Member, PutInOrderRequest, PutInOrderResponse, PutRequest, RequestOp,
    Response, TxnRequest,
};
use crate::state::alarm::{self, Alarms};
use crate::state::auth::AuthStore;
use crate::state::engine::{Batch, Engine};
use crate::state::lease::{LeaseRecord, LeaseSnapshot, Lessor};
use crate::state::mvcc::{Applied, MvccStore};

/// The result of applying one command: the answer for its client (`None` for commands that
/// answer nobody, like lease checkpoints) and the key events it produced, all at one revision,
/// for the watchers.
pub struct ApplyResult {
    pub response: Option<Result<Response>>,
    pub events: Vec<Event>,
}

/// Key space, leases and members, plus the index of the last entry applied to them.
#[derive(Debug)]
pub struct StateMachine {
    store: MvccStore,
    lessor: Lessor,
    members: BTreeMap<u64, Member>,
    alarms: Alarms,
    auth: AuthStore,
    applied_index: u64,
    /// The term of the entry at `applied_index` (0 when unknown: nothing applied yet).
    applied_term: u64,
    /// The state machine's own records changed by the entry being applied, committed with the
    /// key space's changes and the applied index.
    records: Batch,
    /// Why the engine refused a batch: the state can no longer follow the log.
    failure: Option<String>,
    /// Whether the engine holds this state (it was opened from one, or committed to it).
    stored: bool,
    /// Raft's configuration after the applied entries (encoded by the node, opaque here), so a
    /// restart knows the voters without replaying the entries that made them.
    conf_state: Option<Vec<u8>>,
}

impl StateMachine {
    /// An empty key space in memory for a cluster whose first members are `members`.
    pub fn new(members: Vec<Member>, min_lease_ttl: i64) -> Self {
        let mut sm = StateMachine::empty(MvccStore::new(), min_lease_ttl);
        sm.members = members.into_iter().map(|m| (m.id, m)).collect();
        sm
    }

    /// A state machine over `store` with no leases, members, alarms or applied entries.
    fn empty(store: MvccStore, min_lease_ttl: i64) -> Self {
        StateMachine {
            store,
            lessor: Lessor::new(min_lease_ttl),
            members: BTreeMap::new(),
            alarms: Alarms::default(),
            auth: AuthStore::default(),
            applied_index: 0,
            applied_term: 0,
            records: Batch::default(),
            failure: None,
            stored: false,
            conf_state: None,
        }
    }

    /// The state `engine` holds, or an empty one (with [`StateMachine::is_stored`] false) when
    /// it holds none. Fails when what it holds cannot be read back.
    pub fn open(engine: Box<dyn Engine>, min_lease_ttl: i64) -> Result<Self> {
        let stored = records::read(&*engine).map_err(|e| Error::Internal(format!("storage: {e}")))?;
        let mut sm = StateMachine::empty(MvccStore::open(engine)?, min_lease_ttl);
        let Some(stored) = stored else { return Ok(sm) };
        sm.stored = true;
        let mut keys: BTreeMap<i64, Vec<Vec<u8>>> = BTreeMap::new();
        sm.store.for_each_leased_key(&mut |lease, key| keys.entry(lease).or_default().push(key))?;
        let leases = stored
            .leases
            .into_iter()
            .map(|(id, ttl, remaining_ttl)| LeaseRecord {
                id,
                ttl,
                remaining_ttl,
                keys: keys.remove(&id).unwrap_or_default(),
            })
            .collect();
        sm.lessor = Lessor::restore(LeaseSnapshot { min_ttl: min_lease_ttl, leases });
        sm.members = stored.members.into_iter().map(|m| (m.id, m)).collect();
        sm.alarms = Alarms::restore(stored.alarms);
        sm.auth = stored.auth;
        sm.applied_index = stored.applied_index;
        sm.applied_term = stored.applied_term;
        sm.conf_state = stored.conf_state;
        Ok(sm)
    }

    /// Whether the engine holds a state (false for a new member, or a data directory whose
    /// state is still only in its snapshot).
    pub fn is_stored(&self) -> bool {
        self.stored
    }

    /// Raft's configuration after the applied entries, as the node encoded it.
    pub fn conf_state(&self) -> Option<&[u8]> {
        self.conf_state.as_deref()
    }

    /// Record Raft's configuration after the entry being applied (stored with it).
    pub fn set_conf_state(&mut self, conf_state: Vec<u8>) {
        records::write_conf_state(&mut self.records, &conf_state);
        self.conf_state = Some(conf_state);
    }

    /// Why the state cannot go on (the engine refused to store it, or a committed entry cannot
    /// be read), if so: the member must stop.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// The key space, for reads.
    pub fn store(&self) -> &MvccStore {
        &self.store
    }

    /// The leases, for reads and the leader's expiry decisions.
    pub fn lessor(&self) -> &Lessor {
        &self.lessor
    }

    /// The leases, for the leader's volatile bookkeeping (keep-alives, expiry clocks).
    pub fn lessor_mut(&mut self) -> &mut Lessor {
        &mut self.lessor
    }

    /// Current members, ordered by id.
    pub fn members(&self) -> Vec<Member> {
        self.members.values().cloned().collect()
    }

    /// One member, if present.
    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.get(&id)
    }

    /// Make this the state a new cluster of `members` starts from at raft index `index` (a
    /// restored backup): their membership replaces the old one and alarms are cleared.
    pub(crate) fn refound(&mut self, members: Vec<Member>, index: u64) {
        self.members = members.into_iter().map(|m| (m.id, m)).collect();
        self.alarms = Alarms::default();
        self.applied_index = index;
        let members = self.members();
        records::write_members(&mut self.records, &members);
        records::write_alarms(&mut self.records, &[]);
        self.commit();
    }

    /// The active alarms (NOSPACE refuses writes that add data).
    pub fn alarms(&self) -> &Alarms {
        &self.alarms
    }

    /// Users, roles and permissions, for the node's token checks and read permission checks.
    pub fn auth(&self) -> &AuthStore {
        &self.auth
    }

    /// Whether a client's `command` that nobody vouched for (it was admitted while auth was off)
    /// must be refused because auth is on now.
    pub fn refuses_unvouched(&self, command: &Command) -> bool {
        self.auth.is_enabled() && permit::needs_caller(command)
    }

    /// Index of the last applied Raft entry.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// Record that entries up to `index` (of term `term`) are applied, including ones carrying
    /// no command, and commit what applying them changed, with the index, as one batch.
    pub fn set_applied(&mut self, index: u64, term: u64) {
        if index > self.applied_index {
            self.applied_index = index;
            self.applied_term = term;
        }
        self.commit();
    }

    /// Delete one batch of what compaction discarded (see [`MvccStore::sweep_compaction`]);
    /// returns whether more remains. A refusal is kept for [`StateMachine::failure`].
    pub fn sweep_compaction(&mut self, limit: usize) -> bool {
        match self.store.sweep_compaction(limit) {
            Ok(more) => more,
            Err(e) => {
                self.fail(format!("the state store refused a write: {e}"));
                false
            }
        }
    }

    /// Stop this member's state where it is: nothing more is applied or stored, and the shell
    /// stops the member with `why` (see [`StateMachine::failure`]). The first reason wins.
    pub(crate) fn fail(&mut self, why: String) {
        if self.failure.is_none() {
            tracing::error!("the member must stop: {why}");
            self.failure = Some(why);
        }
    }

    /// The term of the last applied entry, as the state store knows it (0: unknown).
    pub fn applied_term(&self) -> u64 {
        self.applied_term
    }

    /// Commit the changes gathered since the last commit with the applied index. A refusal
    /// leaves the member unable to go on; it is kept for [`StateMachine::failure`].
    fn commit(&mut self) {
        // Planted bug (simulation only): the stored applied index claims ten entries less than
        // the state holds, so a restart applies them a second time.
        let stored = match crate::bugs::enabled(crate::bugs::Bug::DoubleApplyAfterRestart) {
            true => self.applied_index.saturating_sub(crate::bugs::UNDERCLAIMED_ENTRIES),
            false => self.applied_index,
        };
        let mut batch = std::mem::take(&mut self.records);
        if !self.stored {
            records::write_format(&mut batch);
        }
        records::write_applied(&mut batch, stored, self.applied_term);
        self.stored = true;
        if let Err(e) = self.store.commit(batch) {
            self.fail(format!("the state store refused a write: {e}"));
        }
    }

    /// Apply a committed command. `now_ms` is the leader's clock on the leader, `None` elsewhere:
    /// only the leader tracks when leases expire. Its changes reach the engine with the next
    /// [`StateMachine::set_applied`].
    pub fn apply(&mut self, command: &Command, now_ms: Option<u64>) -> ApplyResult {
        self.store.hold();
        let result = self.apply_command(command, now_ms);
        self.stage_records(command);
        result
    }

    /// Stage the records of whatever `command` may have changed besides the key space.
    fn stage_records(&mut self, command: &Command) {
        let lease = |sm: &mut Self, id: i64| {
            let record = sm.lessor.granted(id);
            records::write_lease(&mut sm.records, id, record);
        };
        match command {
            Command::LeaseGrant(req) => lease(self, req.id),
            Command::LeaseRevoke(req) => lease(self, req.id),
            Command::LeaseCheckpoint(checkpoints) => {
                for &(id, _) in checkpoints {
                    lease(self, id);
                }
            }
            Command::Member(_) => {
                let members = self.members();
                records::write_members(&mut self.records, &members);
            }
            Command::Alarm(_) | Command::QuotaExceeded { .. } => {
                records::write_alarms(&mut self.records, &self.alarms.list())
            }
            Command::Auth(_) => records::write_auth(&mut self.records, &self.auth),
            Command::Authed { command, .. } => self.stage_records(command),
            _ => {}
        }
    }

    fn apply_command(&mut self, command: &Command, now_ms: Option<u64>) -> ApplyResult {
        if self.alarms.out_of_space() && alarm::quota_cost(command).is_some() {
            return ApplyResult { response: Some(Err(Error::NoSpace)), events: vec![] };
        }
        let (response, events) = match command {
            Command::Authed { caller, command } => match self.permit(caller, command) {
                Ok(()) => return self.apply_command(command, now_ms),
                Err(e) => return ApplyResult { response: Some(Err(e)), events: vec![] },
            },
            Command::Auth(req) => (self.auth.apply(req).map(Response::Auth), vec![]),
            Command::V2Write(req) => return self.apply_v2(req, now_ms),
            Command::Put(req) => {
                let lessor = &self.lessor;
                split(self.store.put(req, &|id| lessor.exists(id)), Response::Put)
            }
            Command::PutInOrder(req) => self.put_in_order(req),
            Command::DeleteRange(req) => split(self.store.delete_range(req), Response::DeleteRange),
            Command::Txn(req) => {
                let lessor = &self.lessor;
                split(self.store.txn(req, &|id| lessor.exists(id)), Response::Txn)
            }
            Command::Compact(req) => (self.store.compact(req.revision).map(Response::Compact), vec![]),
            Command::LeaseGrant(req) => (self.lessor.grant(req.id, req.ttl, now_ms).map(Response::LeaseGrant), vec![]),
            Command::LeaseRevoke(req) => self.revoke(req.id),
            Command::LeaseCheckpoint(checkpoints) => {
                for &(id, remaining) in checkpoints {
                    self.lessor.checkpoint(id, remaining);
                }
                return ApplyResult { response: None, events: vec![] };
            }
            Command::Member(change) => (self.change_member(change), vec![]),
            Command::Alarm(req) => (Ok(Response::Alarm(self.alarms.apply(req))), vec![]),
            Command::QuotaExceeded { member_id } => {
                self.alarms.apply(&AlarmRequest {
                    action: AlarmAction::Activate,
                    member_id: *member_id,
                    alarm: AlarmType::Nospace,
                });
                (Err(Error::NoSpace), vec![])
            }
        };
        self.track_lease_keys(&events);
        let response = response.map(|mut r| {
            r.header_mut().revision = self.store.current_revision();
            r
        });
        ApplyResult { response: Some(response), events }
    }

    /// Put under a name made of the prefix and the revision this write will get.
    fn put_in_order(&mut self, req: &PutInOrderRequest) -> (Result<Response>, Vec<Event>) {
        let revision = self.store.current_revision().saturating_add(1);
        let mut key = req.prefix.clone();
        key.extend_from_slice(format!("{revision:020}").as_bytes());
        let put = PutRequest { key, value: req.value.clone(), lease: req.lease, ..Default::default() };
        let lessor = &self.lessor;
        match self.store.put(&put, &|id| lessor.exists(id)) {
            Ok(applied) => {
                let kv = applied.events.first().map(|e| e.kv.clone()).unwrap_or_default();
                let resp = PutInOrderResponse { kv, ..Default::default() };
                (Ok(Response::PutInOrder(resp)), applied.events)
            }
            Err(e) => (Err(e), vec![]),
        }
    }

    /// Revoke a lease and delete its keys in one revision (one transaction of deletes).
    fn revoke(&mut self, id: i64) -> (Result<Response>, Vec<Event>) {
        let keys = match self.lessor.revoke(id) {
            Ok(keys) => keys,
            Err(e) => return (Err(e), vec![]),
        };
        let deletes = keys
            .into_iter()
            .map(|key| RequestOp::DeleteRange(DeleteRangeRequest { key, ..Default::default() }))
            .collect();
        let txn = TxnRequest { compare: vec![], success: deletes, failure: vec![] };
        match self.store.txn(&txn, &|_| false) {
            Ok(applied) => (Ok(Response::LeaseRevoke(LeaseRevokeResponse::default())), applied.events),
            Err(e) => (Err(e), vec![]),
        }
    }

    /// Keep each lease's key set in step with the puts and deletes just applied.
    fn track_lease_keys(&mut self, events: &[Event]) {
        for event in events {
            if let Some(prev) = &event.prev_kv {
                if prev.lease != 0 {
                    self.lessor.detach(prev.lease, &prev.key);
                }
            }
            if event.kind == EventType::Put && event.kv.lease != 0 {
                self.lessor.attach(event.kv.lease, &event.kv.key);
            }
        }
    }

    /// A digest of the replicated state, equal on members that applied the same entries.
    pub fn hash(&self) -> u64 {
        let mut h = crate::digest::Fnv64::new();
        h.write_u64(self.store.hash());
        h.write(&postcard::to_stdvec(&self.lessor.snapshot()).unwrap_or_default());
        h.write(&postcard::to_stdvec(&self.members()).unwrap_or_default());
        // Alarms only when there are any, so a state without any hashes as it did before them.
        let alarms = self.alarms.list();
        if !alarms.is_empty() {
            h.write(&postcard::to_stdvec(&alarms).unwrap_or_default());
        }
        // Auth likewise only once it was ever used.
        if !self.auth.is_pristine() {
            h.write(&postcard::to_stdvec(&self.auth).unwrap_or_default());
        }
        h.finish()
    }
}

/// Turn a store result into a response and its events.
fn split<T>(result: Result<Applied<T>>, wrap: fn(T) -> Response) -> (Result<Response>, Vec<Event>) {
    match result {
        Ok(applied) => (Ok(wrap(applied.response)), applied.events),
        Err(e) => (Err(e), vec![]),
    }
}

impl crate::state::watch::EventHistory for MvccStore {
    fn current_revision(&self) -> i64 {
        MvccStore::current_revision(self)
    }

    fn compact_revision(&self) -> i64 {
        MvccStore::compact_revision(self)
    }

    fn events_since(&self, start: i64, key: &[u8], range_end: &[u8]) -> Result<Vec<Event>> {
        MvccStore::events_since(self, start, key, range_end)
    }
}
