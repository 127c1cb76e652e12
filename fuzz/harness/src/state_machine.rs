//! Target `state_machine`: a structured sequence of operations — puts (with and without
//! leases), deletes of keys and ranges, transactions, reads at past revisions, compactions,
//! lease grants, revocations and expiries, watches created and cancelled, snapshot/restore
//! round trips and restarts from the member's disk — applied to a real member (a one-member
//! cluster of the core, Raft and all) and to a plain reference model ([`Model`]). Any
//! difference in an answer, the key space, the leases or the events a watch delivers is a crash.
//!
//! The member snapshots every few entries, so a restart recovers from a snapshot plus the log.
//! Lease expiry is judged within a window: a lease must not go before its TTL has passed, and
//! must be gone shortly after.

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::{Arbitrary, Unstructured};
use keel_core::api::error::Error;
use keel_core::api::kv::{in_range, Event, EventType, KeyValue};
use keel_core::api::request::*;
use keel_core::cluster::LocalCluster;
use keel_core::state::machine::StateMachine;
use keel_core::state::watch::{WatchCreate, WatchId, WatchResponse};

/// Operations per input.
const MAX_OPS: usize = 48;
/// The member's smallest lease TTL with the cluster's default timing (1.5 election timeouts).
const MIN_TTL: i64 = 2;
/// How late after its deadline a lease may still be there (ticks, the revoke's commit).
const EXPIRY_SLACK_MS: u64 = 1_500;
/// How much longer a lease may live after a restart (the new leader extends every lease).
const RESTART_EXTENSION_MS: u64 = 3_000;

/// One operation. Keys are single letters from a tiny alphabet, so operations collide.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    Put {
        key: u8,
        value: u8,
        lease: Option<u8>,
    },
    /// Delete one key (`width` 0) or the keys from `key` up to `key + width`.
    Delete {
        key: u8,
        width: u8,
    },
    Txn {
        compare: Cmp,
        success: Vec<TxnOp>,
        failure: Vec<TxnOp>,
    },
    /// Read one key or a range, at the current revision or `current + delta`.
    Get {
        key: u8,
        width: u8,
        delta: Option<i8>,
    },
    /// Compact at `current + delta` (at least revision 1).
    Compact {
        delta: i8,
    },
    Grant {
        lease: u8,
        ttl: u8,
    },
    Revoke {
        lease: u8,
    },
    /// Let `ticks` ticks (100 ms each) pass.
    Advance {
        ticks: u8,
    },
    /// Watch one key, a range, or every key (`width` 255), from `start` if given.
    Watch {
        key: u8,
        width: u8,
        start: Option<i8>,
    },
    Cancel {
        watch: u8,
    },
    SnapshotRestore,
    Restart,
}

/// A transaction's single compare on one key.
#[derive(Arbitrary, Debug, Clone)]
pub enum Cmp {
    Value { key: u8, value: u8, result: u8 },
    Version { key: u8, version: u8, result: u8 },
    Mod { key: u8, back: u8, result: u8 },
    Lease { key: u8, lease: u8 },
}

/// One operation inside a transaction branch (writes to a key already written in the branch
/// are dropped: etcd refuses duplicate keys, which is not what this target is about).
#[derive(Arbitrary, Debug, Clone)]
pub enum TxnOp {
    Put { key: u8, value: u8 },
    Delete { key: u8 },
    Get { key: u8, width: u8 },
}

const KEYS: u8 = 5;

fn key(k: u8) -> Vec<u8> {
    vec![b'a' + k % KEYS]
}

/// `(key, range_end)` for `width` keys from `k` (one key for 0, every key for 255).
fn range(k: u8, width: u8) -> (Vec<u8>, Vec<u8>) {
    match width {
        0 => (key(k), vec![]),
        255 => (vec![0], vec![0]),
        w => (key(k), vec![b'a' + k % KEYS + w % KEYS + 1]),
    }
}

fn lease_id(slot: u8) -> i64 {
    i64::from(slot % 3) + 1
}

fn result(r: u8) -> CompareResult {
    [CompareResult::Equal, CompareResult::Greater, CompareResult::Less, CompareResult::NotEqual][r as usize % 4]
}

type State = BTreeMap<Vec<u8>, KeyValue>;

/// A lease as the model knows it: its keys and when it may and must expire.
#[derive(Clone, Debug)]
struct LeaseModel {
    keys: BTreeSet<Vec<u8>>,
    ttl_ms: u64,
    /// Not gone before this time (ms).
    earliest_ms: u64,
    /// Gone by this time (ms).
    latest_ms: u64,
}

/// A watch as the model knows it.
#[derive(Debug)]
struct WatchModel {
    id: WatchId,
    key: Vec<u8>,
    range_end: Vec<u8>,
    /// First revision it reports.
    start: i64,
    /// Whether the member must cancel it as compacted (with this compact revision).
    compacted: Option<i64>,
    /// Started exactly at the compact revision: compaction removed that revision's deletions,
    /// so (as on etcd) only its puts are reported.
    starts_at_compaction: bool,
    /// Cancelled by the client: events after `until` are not expected.
    until: Option<i64>,
    received: Vec<Event>,
    cancelled: Option<WatchResponse>,
}

/// The reference: the whole key space after every revision, the event log, leases, watches.
pub struct Model {
    states: Vec<State>,
    compacted: i64,
    events: Vec<Event>,
    leases: BTreeMap<i64, LeaseModel>,
    watches: Vec<WatchModel>,
}

impl Model {
    fn new() -> Model {
        // Revision 1 is the empty key space, as on a new etcd.
        Model {
            states: vec![State::new(), State::new()],
            compacted: 0,
            events: vec![],
            leases: BTreeMap::new(),
            watches: vec![],
        }
    }

    fn current(&self) -> i64 {
        self.states.len() as i64 - 1
    }

    fn now(&self) -> &State {
        &self.states[self.states.len() - 1]
    }

    fn range(&self, req: &RangeRequest) -> Result<Vec<KeyValue>, Error> {
        let rev = if req.revision <= 0 { self.current() } else { req.revision };
        if rev > self.current() {
            return Err(Error::FutureRevision);
        }
        if rev < self.compacted {
            return Err(Error::Compacted);
        }
        Ok(live(&self.states[rev as usize], &req.key, &req.range_end))
    }
}

fn live(state: &State, key: &[u8], range_end: &[u8]) -> Vec<KeyValue> {
    state.values().filter(|kv| in_range(&kv.key, key, range_end)).cloned().collect()
}

/// The writes of one revision, on a scratch copy of the key space.
struct Scratch<'a> {
    model: &'a mut Model,
    state: State,
    events: Vec<Event>,
}

impl<'a> Scratch<'a> {
    fn new(model: &'a mut Model) -> Self {
        let state = model.now().clone();
        Scratch { model, state, events: vec![] }
    }

    fn revision(&self) -> i64 {
        self.model.current() + 1
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>, lease: i64) {
        let rev = self.revision();
        let kv = match self.state.get(&key) {
            Some(old) => {
                if let Some(l) = self.model.leases.get_mut(&old.lease) {
                    l.keys.remove(&key);
                }
                KeyValue {
                    key: key.clone(),
                    create_revision: old.create_revision,
                    mod_revision: rev,
                    version: old.version + 1,
                    value,
                    lease,
                }
            }
            None => KeyValue { key: key.clone(), create_revision: rev, mod_revision: rev, version: 1, value, lease },
        };
        if let Some(l) = self.model.leases.get_mut(&lease) {
            l.keys.insert(key.clone());
        }
        self.state.insert(key, kv.clone());
        self.events.push(Event { kind: EventType::Put, kv, prev_kv: None });
    }

    fn delete(&mut self, key: &[u8], range_end: &[u8]) -> i64 {
        let rev = self.revision();
        let doomed: Vec<KeyValue> = live(&self.state, key, range_end);
        for kv in &doomed {
            self.state.remove(&kv.key);
            if let Some(l) = self.model.leases.get_mut(&kv.lease) {
                l.keys.remove(&kv.key);
            }
            let gone = KeyValue { key: kv.key.clone(), mod_revision: rev, ..Default::default() };
            self.events.push(Event { kind: EventType::Delete, kv: gone, prev_kv: None });
        }
        doomed.len() as i64
    }

    /// Make the writes one new revision (none if nothing changed).
    fn commit(self) {
        if !self.events.is_empty() {
            self.model.states.push(self.state);
            self.model.events.extend(self.events);
        }
    }
}

/// The member under test and the model, side by side.
struct Run {
    cluster: LocalCluster,
    model: Model,
}

/// The target's body.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut cluster = LocalCluster::with_config(1, 11, |c| {
        c.snapshot_count = 8;
        c.snapshot_catchup_entries = 2;
    });
    cluster.wait_for_leader();
    let mut run = Run { cluster, model: Model::new() };
    run.watch_everything();
    for _ in 0..MAX_OPS {
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        run.apply(&op);
        run.after_each(&op);
    }
    for _ in 0..40 {
        run.cluster.tick();
    }
    run.after_each(&Op::Advance { ticks: 40 });
    run.check_watches_complete();
}

impl Run {
    fn call(&mut self, request: Request) -> Result<Response, Error> {
        self.cluster.call(1, request)
    }

    /// A watch on every key from the next revision: every event the member makes is checked.
    fn watch_everything(&mut self) {
        let start = self.model.current() + 1;
        self.create_watch(vec![0], vec![0], start);
    }

    fn create_watch(&mut self, key: Vec<u8>, range_end: Vec<u8>, start: i64) {
        let compacted = (start > 0 && start < self.model.compacted).then_some(self.model.compacted);
        let req =
            WatchCreate { key: key.clone(), range_end: range_end.clone(), start_revision: start, ..Default::default() };
        let id = self.cluster.watch(1, req);
        let start = if start <= 0 { self.model.current() + 1 } else { start };
        let starts_at_compaction = start == self.model.compacted;
        self.model.watches.push(WatchModel {
            id,
            key,
            range_end,
            start,
            compacted,
            starts_at_compaction,
            until: None,
            received: vec![],
            cancelled: None,
        });
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Put { key: k, value, lease } => {
                let lease = lease.map_or(0, lease_id);
                let got = self.call(Request::Put(PutRequest {
                    key: key(*k),
                    value: vec![*value],
                    lease,
                    ..Default::default()
                }));
                if lease != 0 && !self.model.leases.contains_key(&lease) {
                    assert_eq!(got.err(), Some(Error::LeaseNotFound), "{op:?}");
                    return;
                }
                assert!(matches!(got, Ok(Response::Put(_))), "{op:?}: {got:?}");
                let mut s = Scratch::new(&mut self.model);
                s.put(key(*k), vec![*value], lease);
                s.commit();
            }
            Op::Delete { key: k, width } => {
                let (key, range_end) = range(*k, *width % 255);
                let got = self.call(Request::DeleteRange(DeleteRangeRequest {
                    key: key.clone(),
                    range_end: range_end.clone(),
                    prev_kv: false,
                }));
                let mut s = Scratch::new(&mut self.model);
                let deleted = s.delete(&key, &range_end);
                s.commit();
                match got {
                    Ok(Response::DeleteRange(r)) => assert_eq!(r.deleted, deleted, "{op:?}"),
                    other => panic!("{op:?}: {other:?}"),
                }
            }
            Op::Txn { compare, success, failure } => self.txn(compare, success, failure),
            Op::Get { key: k, width, delta } => {
                let (key, range_end) = range(*k, *width);
                let revision = delta.map_or(0, |d| (self.model.current() + i64::from(d)).max(0));
                let req = RangeRequest { key, range_end, revision, ..Default::default() };
                let want = self.model.range(&req);
                let got = self.call(Request::Range(req));
                match (got, want) {
                    (Ok(Response::Range(r)), Ok(kvs)) => {
                        assert_eq!(r.kvs, kvs, "{op:?}");
                        assert_eq!(r.count, kvs.len() as i64, "{op:?}");
                    }
                    (Err(e), Err(w)) => assert_eq!(e, w, "{op:?}"),
                    (got, want) => panic!("{op:?}: got {got:?}, the model says {want:?}"),
                }
            }
            Op::Compact { delta } => {
                let revision = (self.model.current() + i64::from(*delta)).max(1);
                let got = self.call(Request::Compact(CompactionRequest { revision, physical: false }));
                let want = if revision <= self.model.compacted {
                    Err(Error::Compacted)
                } else if revision > self.model.current() {
                    Err(Error::FutureRevision)
                } else {
                    self.model.compacted = revision;
                    Ok(())
                };
                assert_eq!(got.map(|_| ()), want, "{op:?}");
            }
            Op::Grant { lease, ttl } => {
                let id = lease_id(*lease);
                let ttl = MIN_TTL + i64::from(*ttl % 8);
                let got = self.call(Request::LeaseGrant(LeaseGrantRequest { id, ttl }));
                if self.model.leases.contains_key(&id) {
                    assert_eq!(got.err(), Some(Error::LeaseExists), "{op:?}");
                    return;
                }
                assert!(
                    matches!(got, Ok(Response::LeaseGrant(ref r)) if r.id == id && r.ttl == ttl),
                    "{op:?}: {got:?}"
                );
                let deadline = self.cluster.now_ms() + ttl as u64 * 1000;
                let lease = LeaseModel {
                    keys: BTreeSet::new(),
                    ttl_ms: ttl as u64 * 1000,
                    earliest_ms: deadline.saturating_sub(200),
                    latest_ms: deadline + EXPIRY_SLACK_MS,
                };
                self.model.leases.insert(id, lease);
            }
            Op::Revoke { lease } => {
                let id = lease_id(*lease);
                let got = self.call(Request::LeaseRevoke(LeaseRevokeRequest { id }));
                if !self.model.leases.contains_key(&id) {
                    assert_eq!(got.err(), Some(Error::LeaseNotFound), "{op:?}");
                    return;
                }
                assert!(got.is_ok(), "{op:?}: {got:?}");
                self.model_revoke(id);
            }
            Op::Advance { ticks } => {
                for _ in 0..*ticks % 64 {
                    self.cluster.tick();
                }
            }
            Op::Watch { key: k, width, start } => {
                let (key, range_end) = range(*k, *width);
                let start = start.map_or(0, |d| (self.model.current() + i64::from(d)).max(1));
                self.create_watch(key, range_end, start);
            }
            Op::Cancel { watch } => {
                // The watch on every key (the first) stays.
                let open: Vec<usize> =
                    (1..self.model.watches.len()).filter(|&i| self.model.watches[i].until.is_none()).collect();
                let Some(&i) = open.get(*watch as usize % open.len().max(1)) else { return };
                self.collect_watch_responses();
                let id = self.model.watches[i].id;
                self.model.watches[i].until = Some(self.model.current());
                self.cluster.node_mut(1).cancel_watch(id);
                self.cluster.settle();
            }
            Op::SnapshotRestore => {
                let sm = self.cluster.node(1).state();
                let restored = StateMachine::restore(&sm.snapshot().expect("a member reads its own state"), MIN_TTL)
                    .expect("a member's own snapshot restores");
                assert_eq!(restored.hash(), sm.hash(), "a restored snapshot is the same state");
                assert_eq!(everything(&restored), everything(sm));
                assert_eq!(restored.lessor().leases(), sm.lessor().leases());
            }
            Op::Restart => {
                self.collect_watch_responses();
                self.check_watches_so_far();
                self.cluster.crash(1);
                self.cluster.restart(1);
                self.cluster.wait_for_leader();
                // Watches live in memory: they are gone, and their clients would watch again.
                self.model.watches.clear();
                let now = self.cluster.now_ms();
                for l in self.model.leases.values_mut() {
                    l.latest_ms = l.latest_ms.max(now + l.ttl_ms + RESTART_EXTENSION_MS + EXPIRY_SLACK_MS);
                }
                self.watch_everything();
            }
        }
    }

    fn txn(&mut self, compare: &Cmp, success: &[TxnOp], failure: &[TxnOp]) {
        let (cmp, holds) = self.compare(compare);
        let branch = |ops: &[TxnOp]| -> Vec<TxnOp> {
            let mut written = BTreeSet::new();
            ops.iter()
                .take(4)
                .filter(|op| match op {
                    TxnOp::Put { key: k, .. } | TxnOp::Delete { key: k } => written.insert(key(*k)),
                    TxnOp::Get { .. } => true,
                })
                .cloned()
                .collect()
        };
        let (success, failure) = (branch(success), branch(failure));
        let request = |ops: &[TxnOp]| -> Vec<RequestOp> {
            ops.iter()
                .map(|op| match op {
                    TxnOp::Put { key: k, value } => {
                        RequestOp::Put(PutRequest { key: key(*k), value: vec![*value], ..Default::default() })
                    }
                    TxnOp::Delete { key: k } => {
                        RequestOp::DeleteRange(DeleteRangeRequest { key: key(*k), ..Default::default() })
                    }
                    TxnOp::Get { key: k, width } => {
                        let (key, range_end) = range(*k, *width);
                        RequestOp::Range(RangeRequest { key, range_end, ..Default::default() })
                    }
                })
                .collect()
        };
        let req = TxnRequest { compare: vec![cmp], success: request(&success), failure: request(&failure) };
        let got = self.call(Request::Txn(req));
        let Ok(Response::Txn(got)) = got else { panic!("txn: {got:?}") };
        assert_eq!(got.succeeded, holds, "txn compare {compare:?}");
        let ops = if holds { &success } else { &failure };
        assert_eq!(got.responses.len(), ops.len());
        let mut s = Scratch::new(&mut self.model);
        for (op, resp) in ops.iter().zip(&got.responses) {
            match (op, resp) {
                (TxnOp::Put { key: k, value }, ResponseOp::Put(_)) => s.put(key(*k), vec![*value], 0),
                (TxnOp::Delete { key: k }, ResponseOp::DeleteRange(r)) => {
                    assert_eq!(r.deleted, s.delete(&key(*k), &[]), "txn delete")
                }
                (TxnOp::Get { key: k, width }, ResponseOp::Range(r)) => {
                    let (key, range_end) = range(*k, *width);
                    // A read in a transaction sees the branch's earlier writes.
                    assert_eq!(r.kvs, live(&s.state, &key, &range_end), "txn read {op:?}");
                }
                (op, resp) => panic!("txn: {op:?} answered with {resp:?}"),
            }
        }
        s.commit();
    }

    /// The compare for the member, and whether it holds on the model.
    fn compare(&self, c: &Cmp) -> (Compare, bool) {
        let now = self.model.now();
        let (k, target, result) = match c {
            Cmp::Value { key: k, value, result: r } => (*k, CompareTarget::Value(vec![*value]), result(*r)),
            Cmp::Version { key: k, version, result: r } => {
                (*k, CompareTarget::Version(i64::from(*version % 4)), result(*r))
            }
            Cmp::Mod { key: k, back, result: r } => {
                (*k, CompareTarget::ModRevision((self.model.current() - i64::from(*back % 8)).max(0)), result(*r))
            }
            Cmp::Lease { key: k, lease } => (*k, CompareTarget::Lease(i64::from(*lease % 4)), CompareResult::Equal),
        };
        let kv = now.get(&key(k));
        let ordering = match (&target, kv) {
            (CompareTarget::Value(_), None) => None,
            (CompareTarget::Value(want), Some(kv)) => Some(kv.value.cmp(want)),
            (CompareTarget::Version(want), kv) => Some(kv.map_or(0, |kv| kv.version).cmp(want)),
            (CompareTarget::ModRevision(want), kv) => Some(kv.map_or(0, |kv| kv.mod_revision).cmp(want)),
            (CompareTarget::Lease(want), kv) => Some(kv.map_or(0, |kv| kv.lease).cmp(want)),
            (CompareTarget::CreateRevision(want), kv) => Some(kv.map_or(0, |kv| kv.create_revision).cmp(want)),
        };
        let holds = ordering.is_some_and(|o| match result {
            CompareResult::Equal => o.is_eq(),
            CompareResult::NotEqual => o.is_ne(),
            CompareResult::Greater => o.is_gt(),
            CompareResult::Less => o.is_lt(),
        });
        (Compare { result, target, key: key(k), range_end: vec![] }, holds)
    }

    /// The model's side of a revocation: the lease goes, its keys with it, in one revision.
    fn model_revoke(&mut self, id: i64) {
        let Some(lease) = self.model.leases.remove(&id) else { return };
        let mut s = Scratch::new(&mut self.model);
        for k in &lease.keys {
            s.delete(k, &[]);
        }
        s.commit();
    }

    /// After every operation: leases expired (or not) within their windows, the key space and
    /// revision agree with the model, and watches have delivered nothing unexpected.
    fn after_each(&mut self, op: &Op) {
        self.expire_leases(op);
        let sm = self.cluster.node(1).state();
        assert_eq!(sm.store().current_revision(), self.model.current(), "revision after {op:?}");
        assert_eq!(everything(sm), live(self.model.now(), &[0], &[0]), "key space after {op:?}");
        assert_eq!(sm.lessor().leases(), self.model.leases.keys().copied().collect::<Vec<_>>(), "leases after {op:?}");
        for (id, lease) in &self.model.leases {
            let ttl = sm.lessor().time_to_live(*id, true, None);
            assert_eq!(ttl.keys.into_iter().collect::<BTreeSet<_>>(), lease.keys, "lease {id}'s keys after {op:?}");
        }
        self.collect_watch_responses();
        self.check_watches_so_far();
    }

    /// Leases the member no longer has expired: check they were due, and apply them to the
    /// model in the order the member revoked them (read from its history).
    fn expire_leases(&mut self, op: &Op) {
        let now = self.cluster.now_ms();
        let sm = self.cluster.node(1).state();
        let held: BTreeSet<i64> = sm.lessor().leases().into_iter().collect();
        let mut gone: Vec<i64> = vec![];
        for (id, lease) in &self.model.leases {
            if held.contains(id) {
                assert!(
                    now <= lease.latest_ms,
                    "lease {id} outlived its TTL: now {now} ms, due by {} ms",
                    lease.latest_ms
                );
            } else {
                assert!(
                    now >= lease.earliest_ms,
                    "lease {id} expired early after {op:?}: now {now} ms, due at {} ms",
                    lease.earliest_ms
                );
                gone.push(*id);
            }
        }
        if gone.is_empty() {
            return;
        }
        let events = sm.store().events_since(self.model.current() + 1, &[0], &[0]).expect("uncompacted history");
        let mut by_revision: BTreeMap<i64, BTreeSet<Vec<u8>>> = BTreeMap::new();
        for e in events {
            assert_eq!(e.kind, EventType::Delete, "only expiries happened since the model's revision: {e:?}");
            by_revision.entry(e.kv.mod_revision).or_default().insert(e.kv.key);
        }
        for keys in by_revision.into_values() {
            let id = gone.iter().copied().find(|id| self.model.leases[id].keys == keys).unwrap_or_else(|| {
                panic!("keys {keys:?} were deleted together, but no expired lease holds exactly them")
            });
            gone.retain(|g| *g != id);
            self.model_revoke(id);
        }
        for id in gone {
            assert!(self.model.leases[&id].keys.is_empty(), "lease {id} expired without deleting its keys");
            self.model_revoke(id);
        }
    }

    fn collect_watch_responses(&mut self) {
        for r in self.cluster.take_watch_responses(1) {
            let Some(w) = self.model.watches.iter_mut().find(|w| w.id == r.watch_id) else {
                panic!("a response for a watch nobody created: {r:?}")
            };
            assert!(w.cancelled.is_none(), "a response after the watch was cancelled: {r:?}");
            w.received.extend(r.events.iter().cloned());
            if r.canceled {
                w.cancelled = Some(r);
            }
        }
    }

    /// What a watch must deliver, given the model's events so far.
    fn expected(&self, w: &WatchModel) -> Vec<Event> {
        if w.compacted.is_some() {
            return vec![];
        }
        self.model
            .events
            .iter()
            .filter(|e| e.kv.mod_revision >= w.start && w.until.is_none_or(|u| e.kv.mod_revision <= u))
            .filter(|e| in_range(&e.kv.key, &w.key, &w.range_end))
            .filter(|e| !(w.starts_at_compaction && e.kv.mod_revision == w.start && e.kind == EventType::Delete))
            .cloned()
            .collect()
    }

    /// Every watch has delivered a prefix of what it must (delivery may lag).
    fn check_watches_so_far(&self) {
        for w in &self.model.watches {
            let expected = self.expected(w);
            assert!(
                w.received.len() <= expected.len() && w.received[..] == expected[..w.received.len()],
                "watch {} ({:?}..{:?} from {}) delivered {:?}, expected a prefix of {:?}",
                w.id,
                w.key,
                w.range_end,
                w.start,
                w.received,
                expected
            );
            if let Some(c) = &w.cancelled {
                assert!(w.until.is_some() || w.compacted.is_some(), "watch {} cancelled unasked: {c:?}", w.id);
            }
        }
    }

    /// At the end: every open watch delivered everything, and compacted starts were cancelled.
    fn check_watches_complete(&self) {
        for w in &self.model.watches {
            if let Some(compact) = w.compacted {
                let c = w
                    .cancelled
                    .as_ref()
                    .unwrap_or_else(|| panic!("watch {} from compacted revision {} not cancelled", w.id, w.start));
                assert_eq!(c.compact_revision, compact, "watch {}", w.id);
            } else if w.until.is_none() {
                assert_eq!(
                    w.received,
                    self.expected(w),
                    "watch {} ({:?}..{:?} from {})",
                    w.id,
                    w.key,
                    w.range_end,
                    w.start
                );
            }
        }
    }
}

/// Every live key of a state machine.
fn everything(sm: &StateMachine) -> Vec<KeyValue> {
    let all = RangeRequest { key: vec![0], range_end: vec![0], ..Default::default() };
    sm.store().range(&all).expect("reading every key").kvs
}
