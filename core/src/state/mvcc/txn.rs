//! Transactions as etcd v3.4 runs them: every guard (nested ones included) is evaluated against
//! the state before the transaction, the chosen operations are checked against that same state,
//! and only then applied in order, atomically, at one revision.

use super::compare;
use super::view::View;
use super::write::Writer;
use super::MvccStore;
use crate::api::error::{Error, Result};
use crate::api::kv::Event;
use crate::api::request::{RequestOp, ResponseOp, TxnRequest, TxnResponse};

/// Which branch a transaction (and, in order, each nested transaction of that branch) takes.
pub(crate) struct Path {
    succeeded: bool,
    nested: Vec<Path>,
}

fn branch(req: &TxnRequest, succeeded: bool) -> &[RequestOp] {
    if succeeded {
        &req.success
    } else {
        &req.failure
    }
}

/// Decides every branch up front, at the current revision (etcd's `compareToPath`).
fn plan(view: View<'_>, req: &TxnRequest) -> Result<Path> {
    let mut succeeded = true;
    for c in &req.compare {
        if !compare::holds(view, c)? {
            succeeded = false;
            break;
        }
    }
    let nested = branch(req, succeeded)
        .iter()
        .filter_map(|op| match op {
            RequestOp::Txn(t) => Some(plan(view, t)),
            _ => None,
        })
        .collect::<Result<_>>()?;
    Ok(Path { succeeded, nested })
}

/// Visits the operations that will run, depth first, in order.
fn for_each_chosen_op(req: &TxnRequest, path: &Path, f: &mut dyn FnMut(&RequestOp) -> Result<()>) -> Result<()> {
    let mut nested = path.nested.iter();
    for op in branch(req, path.succeeded) {
        if let RequestOp::Txn(t) = op {
            if let Some(p) = nested.next() {
                for_each_chosen_op(t, p, f)?;
            }
        } else {
            f(op)?;
        }
    }
    Ok(())
}

/// etcd's pre-apply checks, against the state before the transaction: first every Put
/// (lease exists; key exists for ignore_value/ignore_lease), then every Range's revision.
fn check(
    store: &MvccStore,
    view: View<'_>,
    req: &TxnRequest,
    path: &Path,
    lease_exists: &dyn Fn(i64) -> bool,
) -> Result<()> {
    for_each_chosen_op(req, path, &mut |op| {
        if let RequestOp::Put(put) = op {
            if (put.ignore_value || put.ignore_lease) && view.latest(&put.key)?.is_none() {
                return Err(Error::KeyNotFound);
            }
            if put.lease != 0 && !lease_exists(put.lease) {
                return Err(Error::LeaseNotFound);
            }
        }
        Ok(())
    })?;
    for_each_chosen_op(req, path, &mut |op| {
        if let RequestOp::Range(range) = op {
            if range.revision == 0 {
                return Ok(());
            }
            if range.revision > store.meta.current_revision {
                return Err(Error::FutureRevision);
            }
            if range.revision < store.meta.compact_revision {
                return Err(Error::Compacted);
            }
        }
        Ok(())
    })
}

/// Runs the chosen branch of `req` (recursively) inside `w`.
fn apply(w: &mut Writer<'_>, req: &TxnRequest, path: &Path, lease_exists: &dyn Fn(i64) -> bool) -> Result<TxnResponse> {
    let ops = branch(req, path.succeeded);
    let mut nested = path.nested.iter();
    let mut responses = Vec::with_capacity(ops.len());
    for op in ops {
        responses.push(match op {
            RequestOp::Range(r) => ResponseOp::Range(w.range(r)?),
            RequestOp::Put(p) => ResponseOp::Put(w.put(p, lease_exists)?),
            RequestOp::DeleteRange(d) => ResponseOp::DeleteRange(w.delete_range(d)?),
            RequestOp::Txn(t) => {
                let p = nested.next().ok_or_else(|| Error::Internal("mvcc: txn plan out of step".into()))?;
                ResponseOp::Txn(apply(w, t, p, lease_exists)?)
            }
        });
    }
    Ok(TxnResponse { header: Default::default(), succeeded: path.succeeded, responses })
}

/// Sets `revision` into the header of `resp` and of every response inside it.
fn stamp(resp: &mut TxnResponse, revision: i64) {
    resp.header.revision = revision;
    for r in &mut resp.responses {
        match r {
            ResponseOp::Range(x) => x.header.revision = revision,
            ResponseOp::Put(x) => x.header.revision = revision,
            ResponseOp::DeleteRange(x) => x.header.revision = revision,
            ResponseOp::Txn(x) => stamp(x, revision),
        }
    }
}

/// The whole transaction: plan, check, apply, and commit or undo.
pub(crate) fn run(
    store: &mut MvccStore,
    req: &TxnRequest,
    lease_exists: &dyn Fn(i64) -> bool,
) -> Result<(TxnResponse, Vec<Event>)> {
    let path = {
        let reader = store.reader();
        let view = View::new(&reader, store.meta.compact_revision);
        let path = plan(view, req)?;
        check(store, view, req, &path, lease_exists)?;
        path
    };
    let mut w = Writer::begin(store)?;
    // An error here is only reachable when the request escaped validation (e.g. a delete then
    // an ignore_value put of the same key): the writer is dropped, so nothing partial remains.
    let mut resp = apply(&mut w, req, &path, lease_exists)?;
    let (revision, events) = w.commit();
    stamp(&mut resp, revision);
    Ok((resp, events))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::MvccStore;
    use crate::api::error::Error;
    use crate::api::kv::EventType;
    use crate::api::request::*;

    fn cmp(key: &str, end: &[u8], result: CompareResult, target: CompareTarget) -> Compare {
        Compare { result, target, key: key.into(), range_end: end.to_vec() }
    }

    fn put_op(key: &str, value: &str) -> RequestOp {
        RequestOp::Put(PutRequest { key: key.into(), value: value.into(), ..Default::default() })
    }

    fn get_op(key: &str, end: &[u8]) -> RequestOp {
        RequestOp::Range(RangeRequest { key: key.into(), range_end: end.to_vec(), ..Default::default() })
    }

    fn del_op(key: &str) -> RequestOp {
        RequestOp::DeleteRange(DeleteRangeRequest { key: key.into(), ..Default::default() })
    }

    /// Whether a txn guarded by `c` alone takes its success branch on `s`.
    fn holds(s: &MvccStore, c: Compare) -> bool {
        let mut s = s.clone();
        let req = TxnRequest { compare: vec![c], ..Default::default() };
        s.txn(&req, &leases).unwrap().response.succeeded
    }

    /// a: value "m", version 2, create 2, mod 3, lease 5; b: value "b", version 1, create 4,
    /// mod 4; revision 4.
    fn store() -> MvccStore {
        let mut s = MvccStore::new();
        put(&mut s, "a", "x");
        put_lease(&mut s, "a", "m", 5);
        put(&mut s, "b", "b");
        s
    }

    #[test]
    fn compare_each_target_and_result() {
        use CompareResult::*;
        use CompareTarget::*;
        let s = store();
        let cases: Vec<(CompareTarget, [bool; 4])> = vec![
            // [Equal, Greater, Less, NotEqual] of a's field against the given value.
            (Value(b"m".to_vec()), [true, false, false, false]),
            (Value(b"a".to_vec()), [false, true, false, true]),
            (Value(b"mm".to_vec()), [false, false, true, true]),
            (Version(2), [true, false, false, false]),
            (Version(1), [false, true, false, true]),
            (CreateRevision(2), [true, false, false, false]),
            (CreateRevision(3), [false, false, true, true]),
            (ModRevision(3), [true, false, false, false]),
            (ModRevision(2), [false, true, false, true]),
            (Lease(5), [true, false, false, false]),
            (Lease(6), [false, false, true, true]),
        ];
        for (target, expected) in cases {
            for (result, want) in [Equal, Greater, Less, NotEqual].into_iter().zip(expected) {
                let c = cmp("a", b"", result, target.clone());
                assert_eq!(holds(&s, c), want, "{result:?} {target:?}");
            }
        }
    }

    #[test]
    fn compare_on_missing_keys() {
        use CompareResult::*;
        use CompareTarget::*;
        let s = store();
        assert!(holds(&s, cmp("zz", b"", Equal, Version(0))), "missing key has version 0");
        assert!(holds(&s, cmp("zz", b"", Equal, CreateRevision(0))));
        assert!(holds(&s, cmp("zz", b"", Equal, ModRevision(0))));
        assert!(holds(&s, cmp("zz", b"", Equal, Lease(0))));
        assert!(holds(&s, cmp("zz", b"", Less, ModRevision(1))));
        assert!(!holds(&s, cmp("zz", b"", Equal, Value(vec![]))), "value compares fail");
        assert!(!holds(&s, cmp("zz", b"", NotEqual, Value(vec![]))), "value compares fail");
    }

    #[test]
    fn compare_over_a_range_needs_every_key() {
        use CompareResult::*;
        use CompareTarget::*;
        let s = store();
        assert!(holds(&s, cmp("a", b"c", Greater, ModRevision(2))));
        assert!(!holds(&s, cmp("a", b"c", Greater, ModRevision(3))), "a's mod is 3");
        assert!(holds(&s, cmp("a", &[0], Greater, CreateRevision(1))));
        assert!(holds(&s, cmp("c", &[0], Equal, Version(0))), "empty range compares a zero kv");
        assert!(!holds(&s, cmp("c", &[0], Equal, Value(vec![]))));
    }

    #[test]
    fn branch_choice_and_responses() {
        let mut s = store();
        let req = TxnRequest {
            compare: vec![cmp("b", b"", CompareResult::Equal, CompareTarget::Value(b"b".to_vec()))],
            success: vec![put_op("s", "1"), get_op("s", b"")],
            failure: vec![put_op("f", "1")],
        };
        let applied = s.txn(&req, &leases).unwrap();
        assert!(applied.response.succeeded);
        assert_eq!(applied.response.header.revision, 5);
        assert!(get(&s, "s").is_some() && get(&s, "f").is_none());
        match &applied.response.responses[..] {
            [ResponseOp::Put(p), ResponseOp::Range(r)] => {
                assert_eq!(p.header.revision, 5);
                assert_eq!(r.header.revision, 5);
                assert_eq!(r.kvs, vec![kv("s", "1", 5, 5, 1, 0)], "reads see the txn's own write");
            }
            other => panic!("unexpected responses {other:?}"),
        }
        let applied = s.txn(&req, &leases).unwrap();
        assert!(applied.response.succeeded);
        let flipped = TxnRequest {
            compare: vec![cmp("b", b"", CompareResult::NotEqual, CompareTarget::Value(b"b".to_vec()))],
            ..req
        };
        let applied = s.txn(&flipped, &leases).unwrap();
        assert!(!applied.response.succeeded);
        assert_eq!(get(&s, "f"), Some(kv("f", "1", 7, 7, 1, 0)));
    }

    #[test]
    fn all_changes_share_one_revision_in_sub_order() {
        let mut s = store();
        let req = TxnRequest {
            success: vec![get_op("a", b""), put_op("c", "1"), del_op("a"), put_op("d", "1")],
            ..Default::default()
        };
        let applied = s.txn(&req, &leases).unwrap();
        assert_eq!(s.current_revision(), 5);
        let kinds: Vec<_> = applied.events.iter().map(|e| (e.kind, e.kv.key.clone(), e.kv.mod_revision)).collect();
        assert_eq!(
            kinds,
            vec![
                (EventType::Put, b"c".to_vec(), 5),
                (EventType::Delete, b"a".to_vec(), 5),
                (EventType::Put, b"d".to_vec(), 5)
            ]
        );
        let ResponseOp::Range(first_read) = &applied.response.responses[0] else { panic!() };
        assert_eq!(first_read.kvs[0].mod_revision, 3);
        assert_eq!(first_read.header.revision, 5, "every header carries the final revision");
        assert_eq!(s.events_since(5, b"a", &[0]).unwrap(), applied.events);
    }

    #[test]
    fn read_only_and_no_op_txns_do_not_bump_the_revision() {
        let mut s = store();
        let req = TxnRequest { success: vec![get_op("a", b""), del_op("zz")], ..Default::default() };
        let applied = s.txn(&req, &leases).unwrap();
        assert_eq!(applied.response.header.revision, 4);
        assert!(applied.events.is_empty());
        assert_eq!(s, store());
        let empty = s.txn(&TxnRequest::default(), &leases).unwrap();
        assert!(empty.response.succeeded && empty.response.responses.is_empty());
    }

    #[test]
    fn nested_txns_decide_on_the_state_before_the_outer_txn() {
        let mut s = store();
        // The outer txn creates "n"; the nested compare on "n" still sees it missing.
        let inner = TxnRequest {
            compare: vec![cmp("n", b"", CompareResult::Equal, CompareTarget::Version(0))],
            success: vec![put_op("inner-then", "1"), get_op("n", b"")],
            failure: vec![put_op("inner-else", "1")],
        };
        let req = TxnRequest { success: vec![put_op("n", "1"), RequestOp::Txn(inner)], ..Default::default() };
        let applied = s.txn(&req, &leases).unwrap();
        assert!(get(&s, "inner-then").is_some() && get(&s, "inner-else").is_none());
        let ResponseOp::Txn(nested) = &applied.response.responses[1] else { panic!() };
        assert!(nested.succeeded);
        assert_eq!(nested.header.revision, 5);
        let ResponseOp::Range(read) = &nested.responses[1] else { panic!() };
        assert_eq!(read.kvs.len(), 1, "but its reads see the outer txn's writes");
        assert_eq!(read.header.revision, 5);
    }

    #[test]
    fn failing_txns_change_nothing() {
        let s0 = store();
        let mut s = s0.clone();
        let with =
            |op: RequestOp| TxnRequest { success: vec![put_op("x", "1"), del_op("b"), op], ..Default::default() };
        let cases = vec![
            (RequestOp::Put(PutRequest { key: b"y".to_vec(), lease: 77, ..Default::default() }), Error::LeaseNotFound),
            (
                RequestOp::Put(PutRequest { key: b"y".to_vec(), ignore_value: true, ..Default::default() }),
                Error::KeyNotFound,
            ),
            (
                RequestOp::Put(PutRequest { key: b"y".to_vec(), ignore_lease: true, ..Default::default() }),
                Error::KeyNotFound,
            ),
            (
                RequestOp::Range(RangeRequest { key: b"a".to_vec(), revision: 5, ..Default::default() }),
                Error::FutureRevision,
            ),
            // Ignore_value of a key the same txn deleted: passes the pre-check (the key exists
            // before the txn) and fails while applying; the undo must still leave nothing.
            (
                RequestOp::Put(PutRequest { key: b"b".to_vec(), ignore_value: true, ..Default::default() }),
                Error::KeyNotFound,
            ),
            (
                RequestOp::Txn(TxnRequest {
                    failure: vec![RequestOp::Put(PutRequest { key: b"y".to_vec(), lease: 77, ..Default::default() })],
                    compare: vec![cmp("a", b"", CompareResult::Equal, CompareTarget::Version(99))],
                    ..Default::default()
                }),
                Error::LeaseNotFound,
            ),
        ];
        for (op, err) in cases {
            assert_eq!(s.txn(&with(op.clone()), &leases).unwrap_err(), err, "{op:?}");
            assert_eq!(s, s0, "{op:?} left changes behind");
            assert_eq!(s.current_revision(), 4);
        }
        // An error in the branch not taken is no error.
        let untaken = TxnRequest {
            compare: vec![cmp("a", b"", CompareResult::Equal, CompareTarget::Version(2))],
            success: vec![put_op("ok", "1")],
            failure: vec![RequestOp::Put(PutRequest { key: b"y".to_vec(), lease: 77, ..Default::default() })],
        };
        assert!(s.txn(&untaken, &leases).unwrap().response.succeeded);
    }

    #[test]
    fn compacted_range_inside_txn_fails() {
        let mut s = store();
        s.compact(3).unwrap();
        let req = TxnRequest {
            success: vec![
                put_op("x", "1"),
                RequestOp::Range(RangeRequest { key: b"a".to_vec(), revision: 2, ..Default::default() }),
            ],
            ..Default::default()
        };
        assert_eq!(s.txn(&req, &leases).unwrap_err(), Error::Compacted);
        assert!(get(&s, "x").is_none());
        let at_compaction = TxnRequest {
            success: vec![RequestOp::Range(RangeRequest { key: b"a".to_vec(), revision: 3, ..Default::default() })],
            ..Default::default()
        };
        let applied = s.txn(&at_compaction, &leases).unwrap();
        let ResponseOp::Range(r) = &applied.response.responses[0] else { panic!() };
        assert_eq!(r.kvs, vec![kv("a", "m", 2, 3, 2, 5)]);
    }

    #[test]
    fn puts_checked_before_ranges() {
        let mut s = store();
        let req = TxnRequest {
            success: vec![
                RequestOp::Range(RangeRequest { key: b"a".to_vec(), revision: 50, ..Default::default() }),
                RequestOp::Put(PutRequest { key: b"y".to_vec(), lease: 77, ..Default::default() }),
            ],
            ..Default::default()
        };
        assert_eq!(s.txn(&req, &leases).unwrap_err(), Error::LeaseNotFound);
    }
}
