//! Model test of the MVCC key space: random sequences of puts, deletes, transactions,
//! compactions, reads and watch replays run against `MvccStore` and against a deliberately naive
//! reference model that keeps a full copy of the key space for every revision. Every response,
//! every event and the revisions must agree; at the end the store must survive a snapshot round
//! trip. Keys come from a tiny alphabet so that writes collide.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use std::collections::BTreeMap;

use keel_core::api::error::{Error, Result};
use keel_core::api::kv::{in_range, Event, EventType, KeyValue};
use keel_core::api::request::*;
use keel_core::state::mvcc::{MvccSnapshot, MvccStore};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Reference model

type State = BTreeMap<Vec<u8>, KeyValue>;

fn lease_exists(id: i64) -> bool {
    id == 1 || id == 2
}

struct Model {
    /// The whole key space after each retained revision.
    states: BTreeMap<i64, State>,
    current: i64,
    compacted: i64,
    /// Every event ever, in order.
    log: Vec<Event>,
}

/// A write transaction of the model: a scratch copy of the key space plus what changed.
struct Scratch {
    state: State,
    main: i64,
    changes: usize,
    events: Vec<Event>,
}

impl Model {
    fn new() -> Self {
        Model { states: BTreeMap::from([(1, State::new())]), current: 1, compacted: 0, log: vec![] }
    }

    fn now(&self) -> &State {
        &self.states[&self.current]
    }

    fn scratch(&self) -> Scratch {
        Scratch { state: self.now().clone(), main: self.current + 1, changes: 0, events: vec![] }
    }

    fn commit(&mut self, s: Scratch) -> (i64, Vec<Event>) {
        if s.changes > 0 {
            self.current = s.main;
            self.states.insert(s.main, s.state);
            self.log.extend(s.events.iter().cloned());
        }
        (self.current, s.events)
    }

    /// A read: `state_now` is what revision 0 reads, `current` the newest readable revision.
    fn range(&self, req: &RangeRequest, state_now: &State, current: i64) -> Result<RangeResponse> {
        let rev = if req.revision <= 0 { current } else { req.revision };
        if rev > current {
            return Err(Error::FutureRevision);
        }
        if rev < self.compacted {
            return Err(Error::Compacted);
        }
        let state = if rev == current { state_now } else { &self.states[&rev] };
        let live: Vec<&KeyValue> = state.values().filter(|kv| in_range(&kv.key, &req.key, &req.range_end)).collect();
        let count = live.len() as i64;
        let mut kvs: Vec<KeyValue> = live
            .into_iter()
            .filter(|kv| req.min_mod_revision == 0 || kv.mod_revision >= req.min_mod_revision)
            .filter(|kv| req.max_mod_revision == 0 || kv.mod_revision <= req.max_mod_revision)
            .filter(|kv| req.min_create_revision == 0 || kv.create_revision >= req.min_create_revision)
            .filter(|kv| req.max_create_revision == 0 || kv.create_revision <= req.max_create_revision)
            .cloned()
            .collect();
        let order = match (req.sort_target, req.sort_order) {
            (SortTarget::Key, o) => o,
            (_, SortOrder::None) => SortOrder::Ascend,
            (_, o) => o,
        };
        let key_of = |kv: &KeyValue| -> (Vec<u8>, i64) {
            match req.sort_target {
                SortTarget::Key => (kv.key.clone(), 0),
                SortTarget::Version => (vec![], kv.version),
                SortTarget::Create => (vec![], kv.create_revision),
                SortTarget::Mod => (vec![], kv.mod_revision),
                SortTarget::Value => (kv.value.clone(), 0),
            }
        };
        match order {
            SortOrder::None => {}
            SortOrder::Ascend => kvs.sort_by_key(key_of),
            SortOrder::Descend => kvs.sort_by_key(|kv| std::cmp::Reverse(key_of(kv))),
        }
        let mut more = false;
        if req.limit > 0 && kvs.len() as i64 > req.limit {
            kvs.truncate(req.limit as usize);
            more = true;
        }
        if req.keys_only {
            kvs.iter_mut().for_each(|kv| kv.value.clear());
        }
        if req.count_only {
            kvs.clear();
            more = false;
        }
        Ok(RangeResponse { header: header(self.current), kvs, more, count })
    }

    fn put(&self, s: &mut Scratch, req: &PutRequest) -> Result<PutResponse> {
        if req.lease != 0 && !lease_exists(req.lease) {
            return Err(Error::LeaseNotFound);
        }
        let prev = s.state.get(&req.key).cloned();
        if (req.ignore_value || req.ignore_lease) && prev.is_none() {
            return Err(Error::KeyNotFound);
        }
        let kv = KeyValue {
            key: req.key.clone(),
            create_revision: prev.as_ref().map_or(s.main, |p| p.create_revision),
            mod_revision: s.main,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            value: match &prev {
                Some(p) if req.ignore_value => p.value.clone(),
                _ => req.value.clone(),
            },
            lease: match &prev {
                Some(p) if req.ignore_lease => p.lease,
                _ => req.lease,
            },
        };
        s.state.insert(req.key.clone(), kv.clone());
        s.changes += 1;
        s.events.push(Event { kind: EventType::Put, kv, prev_kv: prev.clone() });
        Ok(PutResponse { header: header(0), prev_kv: if req.prev_kv { prev } else { None } })
    }

    fn delete(&self, s: &mut Scratch, req: &DeleteRangeRequest) -> DeleteRangeResponse {
        let gone: Vec<KeyValue> =
            s.state.values().filter(|kv| in_range(&kv.key, &req.key, &req.range_end)).cloned().collect();
        for prev in &gone {
            s.state.remove(&prev.key);
            s.changes += 1;
            s.events.push(Event {
                kind: EventType::Delete,
                kv: KeyValue { key: prev.key.clone(), mod_revision: s.main, ..Default::default() },
                prev_kv: Some(prev.clone()),
            });
        }
        DeleteRangeResponse {
            header: header(0),
            deleted: gone.len() as i64,
            prev_kvs: if req.prev_kv { gone } else { vec![] },
        }
    }

    fn compare_holds(&self, c: &Compare) -> bool {
        let kvs: Vec<&KeyValue> = self.now().values().filter(|kv| in_range(&kv.key, &c.key, &c.range_end)).collect();
        if kvs.is_empty() {
            if matches!(c.target, CompareTarget::Value(_)) {
                return false;
            }
            return compare_kv(c, &KeyValue::default());
        }
        kvs.iter().all(|kv| compare_kv(c, kv))
    }

    /// The chosen branches, in depth-first order of the transactions that run.
    fn path(&self, req: &TxnRequest, out: &mut Vec<bool>) {
        let ok = req.compare.iter().all(|c| self.compare_holds(c));
        out.push(ok);
        for op in if ok { &req.success } else { &req.failure } {
            if let RequestOp::Txn(t) = op {
                self.path(t, out);
            }
        }
    }

    fn chosen_ops<'a>(req: &'a TxnRequest, path: &mut std::slice::Iter<'_, bool>, out: &mut Vec<&'a RequestOp>) {
        let ok = *path.next().unwrap();
        for op in if ok { &req.success } else { &req.failure } {
            match op {
                RequestOp::Txn(t) => Model::chosen_ops(t, path, out),
                other => out.push(other),
            }
        }
    }

    fn txn(&mut self, req: &TxnRequest) -> Result<(TxnResponse, Vec<Event>)> {
        let mut path = vec![];
        self.path(req, &mut path);
        let mut ops = vec![];
        Model::chosen_ops(req, &mut path.iter(), &mut ops);
        for op in &ops {
            if let RequestOp::Put(p) = op {
                if (p.ignore_value || p.ignore_lease) && !self.now().contains_key(&p.key) {
                    return Err(Error::KeyNotFound);
                }
                if p.lease != 0 && !lease_exists(p.lease) {
                    return Err(Error::LeaseNotFound);
                }
            }
        }
        for op in &ops {
            if let RequestOp::Range(r) = op {
                if r.revision != 0 && r.revision > self.current {
                    return Err(Error::FutureRevision);
                }
                if r.revision != 0 && r.revision < self.compacted {
                    return Err(Error::Compacted);
                }
            }
        }
        let mut s = self.scratch();
        let mut path = path.iter();
        let mut resp = self.apply(&mut s, req, &mut path)?;
        let (rev, events) = self.commit(s);
        stamp(&mut resp, rev);
        Ok((resp, events))
    }

    fn apply(&self, s: &mut Scratch, req: &TxnRequest, path: &mut std::slice::Iter<'_, bool>) -> Result<TxnResponse> {
        let ok = *path.next().unwrap();
        let mut responses = vec![];
        for op in if ok { &req.success } else { &req.failure } {
            responses.push(match op {
                RequestOp::Range(r) => {
                    let current = if s.changes > 0 { s.main } else { self.current };
                    let now = s.state.clone();
                    ResponseOp::Range(self.range(r, &now, current)?)
                }
                RequestOp::Put(p) => ResponseOp::Put(self.put(s, p)?),
                RequestOp::DeleteRange(d) => ResponseOp::DeleteRange(self.delete(s, d)),
                RequestOp::Txn(t) => ResponseOp::Txn(self.apply(s, t, path)?),
            });
        }
        Ok(TxnResponse { header: header(0), succeeded: ok, responses })
    }

    fn compact(&mut self, rev: i64) -> Result<CompactionResponse> {
        if rev <= self.compacted {
            return Err(Error::Compacted);
        }
        if rev > self.current {
            return Err(Error::FutureRevision);
        }
        self.compacted = rev;
        self.states.retain(|r, _| *r >= rev);
        Ok(CompactionResponse { header: header(self.current) })
    }

    /// Events from `start` that compaction has not discarded: everything after the compaction
    /// revision, and at it only a put that is its key's last change there (without prev_kv).
    fn events_since(&self, start: i64, key: &[u8], end: &[u8]) -> Result<Vec<Event>> {
        if start < self.compacted {
            return Err(Error::Compacted);
        }
        let c = self.compacted;
        let mut out = vec![];
        for (i, e) in self.log.iter().enumerate() {
            let main = e.kv.mod_revision;
            if main < start || !in_range(&e.kv.key, key, end) {
                continue;
            }
            if main > c {
                out.push(e.clone());
            } else if main == c {
                let last_at_c =
                    !self.log[i + 1..].iter().any(|later| later.kv.mod_revision == c && later.kv.key == e.kv.key);
                if e.kind == EventType::Put && last_at_c {
                    out.push(Event { prev_kv: None, ..e.clone() });
                }
            }
        }
        Ok(out)
    }
}

fn header(revision: i64) -> ResponseHeader {
    ResponseHeader { revision, ..Default::default() }
}

fn stamp(resp: &mut TxnResponse, rev: i64) {
    resp.header.revision = rev;
    for r in &mut resp.responses {
        match r {
            ResponseOp::Range(x) => x.header.revision = rev,
            ResponseOp::Put(x) => x.header.revision = rev,
            ResponseOp::DeleteRange(x) => x.header.revision = rev,
            ResponseOp::Txn(x) => stamp(x, rev),
        }
    }
}

fn compare_kv(c: &Compare, kv: &KeyValue) -> bool {
    let ord = match &c.target {
        CompareTarget::Value(v) => kv.value.cmp(v),
        CompareTarget::Version(v) => kv.version.cmp(v),
        CompareTarget::CreateRevision(v) => kv.create_revision.cmp(v),
        CompareTarget::ModRevision(v) => kv.mod_revision.cmp(v),
        CompareTarget::Lease(v) => kv.lease.cmp(v),
    };
    match c.result {
        CompareResult::Equal => ord.is_eq(),
        CompareResult::NotEqual => ord.is_ne(),
        CompareResult::Greater => ord.is_gt(),
        CompareResult::Less => ord.is_lt(),
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![Just("a"), Just("ab"), Just("b"), Just("c"), Just("d")].prop_map(|k| k.as_bytes().to_vec())
}

fn range_end() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(vec![]),
        1 => Just(vec![0]),
        2 => prop_oneof![Just("b"), Just("c"), Just("d"), Just("e")].prop_map(|k| k.as_bytes().to_vec()),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![Just(""), Just("x"), Just("y"), Just("z")].prop_map(|v| v.as_bytes().to_vec())
}

fn lease() -> impl Strategy<Value = i64> {
    prop_oneof![4 => Just(0i64), 1 => Just(1), 1 => Just(2), 1 => Just(3)]
}

fn put_req() -> impl Strategy<Value = PutRequest> {
    (key(), value(), lease(), any::<bool>(), prop::bool::weighted(0.15), prop::bool::weighted(0.15)).prop_map(
        |(key, value, lease, prev_kv, ignore_value, ignore_lease)| PutRequest {
            key,
            value,
            lease,
            prev_kv,
            ignore_value,
            ignore_lease,
        },
    )
}

fn del_req() -> impl Strategy<Value = DeleteRangeRequest> {
    (key(), range_end(), any::<bool>()).prop_map(|(key, range_end, prev_kv)| DeleteRangeRequest {
        key,
        range_end,
        prev_kv,
    })
}

fn revision_filter() -> impl Strategy<Value = i64> {
    prop_oneof![6 => Just(0i64), 1 => 1i64..12]
}

/// A read; `revision` is absolute (the caller may rebase it on the current revision).
fn range_req() -> impl Strategy<Value = RangeRequest> {
    let sort = (
        prop_oneof![Just(SortOrder::None), Just(SortOrder::Ascend), Just(SortOrder::Descend)],
        prop_oneof![
            Just(SortTarget::Key),
            Just(SortTarget::Version),
            Just(SortTarget::Create),
            Just(SortTarget::Mod),
            Just(SortTarget::Value)
        ],
    );
    let filters = (revision_filter(), revision_filter(), revision_filter(), revision_filter());
    (
        key(),
        range_end(),
        prop_oneof![3 => Just(0i64), 2 => -1i64..4],
        prop_oneof![3 => Just(0i64), 2 => -1i64..14],
        sort,
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
        filters,
    )
        .prop_map(|(key, range_end, limit, revision, (sort_order, sort_target), keys_only, count_only, f)| {
            RangeRequest {
                key,
                range_end,
                limit,
                revision,
                sort_order,
                sort_target,
                serializable: false,
                keys_only,
                count_only,
                min_mod_revision: f.0,
                max_mod_revision: f.1,
                min_create_revision: f.2,
                max_create_revision: f.3,
            }
        })
}

fn compare() -> impl Strategy<Value = Compare> {
    let target = prop_oneof![
        (0i64..4).prop_map(CompareTarget::Version),
        (0i64..10).prop_map(CompareTarget::CreateRevision),
        (0i64..10).prop_map(CompareTarget::ModRevision),
        value().prop_map(CompareTarget::Value),
        (0i64..3).prop_map(CompareTarget::Lease),
    ];
    let result = prop_oneof![
        Just(CompareResult::Equal),
        Just(CompareResult::Greater),
        Just(CompareResult::Less),
        Just(CompareResult::NotEqual)
    ];
    (key(), prop_oneof![3 => Just(vec![]), 1 => range_end()], result, target)
        .prop_map(|(key, range_end, result, target)| Compare { result, target, key, range_end })
}

fn leaf_op() -> BoxedStrategy<RequestOp> {
    prop_oneof![
        3 => put_req().prop_map(RequestOp::Put),
        1 => del_req().prop_map(RequestOp::DeleteRange),
        2 => range_req().prop_map(RequestOp::Range),
    ]
    .boxed()
}

fn txn_of(op: BoxedStrategy<RequestOp>) -> BoxedStrategy<TxnRequest> {
    (prop::collection::vec(compare(), 0..3), prop::collection::vec(op.clone(), 0..4), prop::collection::vec(op, 0..3))
        .prop_map(|(compare, success, failure)| TxnRequest { compare, success, failure })
        .boxed()
}

fn txn_req() -> BoxedStrategy<TxnRequest> {
    txn_of(prop_oneof![5 => leaf_op(), 1 => txn_of(leaf_op()).prop_map(RequestOp::Txn)].boxed())
}

#[derive(Clone, Debug)]
enum Op {
    Put(PutRequest),
    Delete(DeleteRangeRequest),
    Txn(TxnRequest),
    /// Compact at `current - back` (so most attempts are in bounds; some are not).
    Compact {
        back: i64,
    },
    /// Read; when `rebase`, the revision counts back from the current one.
    Range {
        req: RangeRequest,
        rebase: bool,
    },
    Events {
        back: i64,
        key: Vec<u8>,
        range_end: Vec<u8>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => put_req().prop_map(Op::Put),
        2 => del_req().prop_map(Op::Delete),
        3 => txn_req().prop_map(Op::Txn),
        1 => (-1i64..6).prop_map(|back| Op::Compact { back }),
        3 => (range_req(), any::<bool>()).prop_map(|(req, rebase)| Op::Range { req, rebase }),
        1 => (-1i64..8, key(), range_end()).prop_map(|(back, key, range_end)| Op::Events { back, key, range_end }),
    ]
}

// ---------------------------------------------------------------------------------------------
// The property

fn run(ops: &[Op]) -> std::result::Result<(), TestCaseError> {
    let mut store = MvccStore::new();
    let mut model = Model::new();
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Put(req) => {
                let got = store.put(req, &lease_exists).map(|a| (a.response, a.events));
                let mut s = model.scratch();
                let want = model.put(&mut s, req).map(|mut resp| {
                    let (rev, events) = model.commit(s);
                    resp.header.revision = rev;
                    (resp, events)
                });
                prop_assert_eq!(got, want, "op {}: {:?}", i, op);
            }
            Op::Delete(req) => {
                let got = store.delete_range(req).map(|a| (a.response, a.events));
                let mut s = model.scratch();
                let mut resp = model.delete(&mut s, req);
                let (rev, events) = model.commit(s);
                resp.header.revision = rev;
                prop_assert_eq!(got, Ok((resp, events)), "op {}: {:?}", i, op);
            }
            Op::Txn(req) => {
                let got = store.txn(req, &lease_exists).map(|a| (a.response, a.events));
                let want = model.txn(req);
                prop_assert_eq!(got, want, "op {}: {:?}", i, op);
            }
            Op::Compact { back } => {
                let rev = model.current - back;
                prop_assert_eq!(store.compact(rev), model.compact(rev), "op {}: {:?}", i, op);
            }
            Op::Range { req, rebase } => {
                let mut req = req.clone();
                if *rebase {
                    req.revision = model.current - req.revision.abs();
                }
                let want = model.range(&req, model.now(), model.current);
                prop_assert_eq!(store.range(&req), want, "op {}: {:?}", i, req);
            }
            Op::Events { back, key, range_end } => {
                let start = model.current - back;
                prop_assert_eq!(
                    store.events_since(start, key, range_end),
                    model.events_since(start, key, range_end),
                    "op {}: {:?}",
                    i,
                    op
                );
            }
        }
        prop_assert_eq!(store.current_revision(), model.current);
        prop_assert_eq!(store.compact_revision(), model.compacted);
    }

    // Every retained revision still reads like the model.
    for rev in model.compacted.max(1)..=model.current {
        let req = RangeRequest { key: vec![0], range_end: vec![0], revision: rev, ..Default::default() };
        prop_assert_eq!(store.range(&req), model.range(&req, model.now(), model.current), "full read at {}", rev);
    }
    let start = model.compacted;
    prop_assert_eq!(store.events_since(start, &[0], &[0]), model.events_since(start, &[0], &[0]));

    let fail = |e: &dyn std::fmt::Display| TestCaseError::fail(e.to_string());
    let original = store.snapshot().map_err(|e| fail(&e))?;
    let bytes = postcard::to_allocvec(&original).map_err(|e| fail(&e))?;
    let snap: MvccSnapshot = postcard::from_bytes(&bytes).map_err(|e| fail(&e))?;
    let restored = MvccStore::restore(snap);
    prop_assert_eq!(restored.hash(), store.hash());
    prop_assert_eq!(restored.snapshot().map_err(|e| fail(&e))?, original);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_reference_model(ops in prop::collection::vec(op(), 1..40)) {
        run(&ops)?;
    }
}
