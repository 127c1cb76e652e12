//! Static checks of client requests before they are proposed to Raft, as etcd's v3 gRPC layer
//! does them (`checkRangeRequest`, `checkPutRequest`, `checkTxnRequest`, `checkIntervals`):
//! a request that can never succeed is refused without costing a log entry, and transactions
//! that write one key twice are refused because their outcome would depend on op order.

use std::collections::BTreeSet;

use crate::api::error::{Error, Result};
use crate::api::request::{DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest};
use crate::api::v2::V2WriteRequest;

/// A Range needs a key. (etcd checks nothing else statically: a negative limit means no limit
/// and a revision is checked against the store when the request runs.)
pub fn range(req: &RangeRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    Ok(())
}

/// A Put needs a key, and may not give a value or lease it asks to keep.
pub fn put(req: &PutRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(Error::ValueProvided);
    }
    if req.ignore_lease && req.lease != 0 {
        return Err(Error::LeaseProvided);
    }
    Ok(())
}

/// A v2 write's path must be one the state machine decides over in bounded work, and its TTL
/// one a lease can have.
pub fn v2_write(req: &V2WriteRequest) -> Result<()> {
    if !req.path.starts_with('/') {
        return Err(Error::EmptyKey);
    }
    if crate::api::v2::path::ancestors(&req.path).len() > crate::api::v2::MAX_DEPTH {
        return Err(Error::TooManyOps);
    }
    if req.ttl.is_some_and(|ttl| ttl > crate::api::request::MAX_LEASE_TTL) {
        return Err(Error::LeaseTtlTooLarge);
    }
    Ok(())
}

/// A DeleteRange needs a key.
pub fn delete_range(req: &DeleteRangeRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    Ok(())
}

/// A Txn must stay within `max_ops` per list (a nested txn within what its parent leaves, as
/// etcd counts), have keyed compares and valid ops, and must not write a key twice in one
/// branch (nested branches included): no two puts of a key, no put inside a deleted range.
pub fn txn(req: &TxnRequest, max_ops: usize) -> Result<()> {
    check_txn(req, max_ops)?;
    // After the cheap checks, so an oversized request cannot make this quadratic.
    writes_of(&req.success)?;
    writes_of(&req.failure)?;
    Ok(())
}

fn check_txn(req: &TxnRequest, max_ops: usize) -> Result<()> {
    let ops = req.compare.len().max(req.success.len()).max(req.failure.len());
    if ops > max_ops {
        return Err(Error::TooManyOps);
    }
    if req.compare.iter().any(|c| c.key.is_empty()) {
        return Err(Error::EmptyKey);
    }
    for op in req.success.iter().chain(&req.failure) {
        check_op(op, max_ops - ops)?;
    }
    Ok(())
}

fn check_op(op: &RequestOp, max_ops: usize) -> Result<()> {
    match op {
        RequestOp::Range(r) => range(r),
        RequestOp::Put(p) => put(p),
        RequestOp::DeleteRange(d) => delete_range(d),
        RequestOp::Txn(t) => check_txn(t, max_ops),
    }
}

/// A deleted interval as etcd's interval tree sees it: `[start, end)` with `end == None` for a
/// single key. etcd compares a `range_end` of `[0]` as the plain string "\0", so a from-key
/// delete covers no put here — reproduced rather than "fixed", to accept what etcd accepts.
struct Deleted<'a> {
    start: &'a [u8],
    end: Option<&'a [u8]>,
}

impl Deleted<'_> {
    fn covers(&self, key: &[u8]) -> bool {
        match self.end {
            None => key == self.start,
            Some(end) => key >= self.start && key < end,
        }
    }
}

/// The puts and deletes of one op list (and of the nested txns in it), failing with
/// `DuplicateKey` on a conflicting write. The order of checks follows etcd's `checkIntervals`:
/// this level's deletes first, then each nested txn's puts (either branch may run, but a key
/// put in both branches of one nested txn is fine), then this level's puts.
fn writes_of(ops: &[RequestOp]) -> Result<(BTreeSet<&[u8]>, Vec<Deleted<'_>>)> {
    let mut dels: Vec<Deleted<'_>> = ops
        .iter()
        .filter_map(|op| match op {
            RequestOp::DeleteRange(d) => {
                Some(Deleted { start: &d.key, end: (!d.range_end.is_empty()).then_some(d.range_end.as_slice()) })
            }
            _ => None,
        })
        .collect();
    let deleted = |dels: &[Deleted<'_>], key: &[u8]| dels.iter().any(|d| d.covers(key));

    let mut puts: BTreeSet<&[u8]> = BTreeSet::new();
    for op in ops {
        let RequestOp::Txn(t) = op else { continue };
        let (puts_then, dels_then) = writes_of(&t.success)?;
        let (puts_else, dels_else) = writes_of(&t.failure)?;
        for &key in &puts_then {
            if puts.contains(key) || deleted(&dels, key) {
                return Err(Error::DuplicateKey);
            }
            puts.insert(key);
        }
        for &key in &puts_else {
            if puts.contains(key) && !puts_then.contains(key) || deleted(&dels, key) {
                return Err(Error::DuplicateKey);
            }
            puts.insert(key);
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }

    for op in ops {
        let RequestOp::Put(p) = op else { continue };
        let key = p.key.as_slice();
        if puts.contains(key) || deleted(&dels, key) {
            return Err(Error::DuplicateKey);
        }
        puts.insert(key);
    }
    Ok((puts, dels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::request::{Compare, CompareResult, CompareTarget};

    fn p(key: &str) -> RequestOp {
        RequestOp::Put(PutRequest { key: key.into(), ..Default::default() })
    }

    fn d(key: &str, end: &[u8]) -> RequestOp {
        RequestOp::DeleteRange(DeleteRangeRequest { key: key.into(), range_end: end.to_vec(), prev_kv: false })
    }

    fn r(key: &str) -> RequestOp {
        RequestOp::Range(RangeRequest { key: key.into(), ..Default::default() })
    }

    fn t(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> TxnRequest {
        TxnRequest { compare: vec![], success, failure }
    }

    fn cmp(key: &str) -> Compare {
        Compare { result: CompareResult::Equal, target: CompareTarget::Version(0), key: key.into(), range_end: vec![] }
    }

    #[test]
    fn single_requests() {
        assert_eq!(range(&RangeRequest::default()), Err(Error::EmptyKey));
        let negative = RangeRequest { key: b"a".to_vec(), limit: -1, revision: -5, ..Default::default() };
        assert_eq!(range(&negative), Ok(()));
        assert_eq!(delete_range(&DeleteRangeRequest::default()), Err(Error::EmptyKey));
        assert_eq!(put(&PutRequest::default()), Err(Error::EmptyKey));
        let base = PutRequest { key: b"k".to_vec(), ..Default::default() };
        assert_eq!(put(&base), Ok(()));
        let value = PutRequest { ignore_value: true, value: b"v".to_vec(), ..base.clone() };
        assert_eq!(put(&value), Err(Error::ValueProvided));
        let lease = PutRequest { ignore_lease: true, lease: 7, ..base.clone() };
        assert_eq!(put(&lease), Err(Error::LeaseProvided));
        let both_ignored = PutRequest { ignore_lease: true, ignore_value: true, ..base };
        assert_eq!(put(&both_ignored), Ok(()));
    }

    #[test]
    fn too_many_ops_counts_each_list_and_what_parents_leave() {
        let ok = t(vec![p("a"), p("b")], vec![p("c"), p("d")]);
        assert_eq!(txn(&ok, 2), Ok(()));
        assert_eq!(txn(&ok, 1), Err(Error::TooManyOps));
        let compares = TxnRequest { compare: vec![cmp("a"), cmp("b"), cmp("c")], ..ok.clone() };
        assert_eq!(txn(&compares, 2), Err(Error::TooManyOps));
        // The parent uses 2 of 4; its nested txn may use 2, not 3.
        let nested = |n: usize| {
            t(vec![RequestOp::Txn(t((0..n).map(|i| p(&format!("n{i}"))).collect(), vec![])), p("x")], vec![])
        };
        assert_eq!(txn(&nested(2), 4), Ok(()));
        assert_eq!(txn(&nested(3), 4), Err(Error::TooManyOps));
    }

    #[test]
    fn ops_and_compares_are_checked_recursively() {
        let empty_compare = TxnRequest { compare: vec![cmp("")], ..Default::default() };
        assert_eq!(txn(&empty_compare, 8), Err(Error::EmptyKey));
        assert_eq!(txn(&t(vec![], vec![r("")]), 8), Err(Error::EmptyKey));
        let bad_put = RequestOp::Put(PutRequest {
            key: b"k".to_vec(),
            ignore_value: true,
            value: b"v".to_vec(),
            ..Default::default()
        });
        let deep = t(vec![RequestOp::Txn(t(vec![], vec![RequestOp::Txn(t(vec![bad_put], vec![]))]))], vec![]);
        assert_eq!(txn(&deep, 8), Err(Error::ValueProvided));
    }

    #[test]
    fn duplicate_puts_and_puts_in_deleted_ranges() {
        assert_eq!(txn(&t(vec![p("a"), p("a")], vec![]), 8), Err(Error::DuplicateKey));
        assert_eq!(txn(&t(vec![p("a")], vec![p("a")]), 8), Ok(()), "branches are exclusive");
        assert_eq!(txn(&t(vec![d("a", b""), p("a")], vec![]), 8), Err(Error::DuplicateKey));
        assert_eq!(txn(&t(vec![p("b"), d("a", b"c")], vec![]), 8), Err(Error::DuplicateKey));
        assert_eq!(txn(&t(vec![p("c"), d("a", b"c")], vec![]), 8), Ok(()), "range end is exclusive");
        assert_eq!(txn(&t(vec![p("a"), d("b", b"")], vec![]), 8), Ok(()));
        assert_eq!(txn(&t(vec![d("a", b"b"), d("a", b"")], vec![]), 8), Ok(()), "deletes may overlap");
        // etcd's interval tree reads a `[0]` range end literally: from-key deletes never clash.
        assert_eq!(txn(&t(vec![d("a", &[0]), p("b")], vec![]), 8), Ok(()));
        // Reads do not conflict with anything.
        assert_eq!(txn(&t(vec![r("a"), p("a"), r("a")], vec![]), 8), Ok(()));
    }

    #[test]
    fn nested_txns_share_the_branch_key_set() {
        let inner_then_else = RequestOp::Txn(t(vec![p("a")], vec![p("a")]));
        assert_eq!(txn(&t(vec![inner_then_else.clone()], vec![]), 8), Ok(()));
        assert_eq!(
            txn(&t(vec![inner_then_else.clone(), p("a")], vec![]), 8),
            Err(Error::DuplicateKey),
            "outer put clashes with nested put"
        );
        assert_eq!(
            txn(&t(vec![d("a", b"b"), RequestOp::Txn(t(vec![], vec![p("a")]))], vec![]), 8),
            Err(Error::DuplicateKey),
            "nested put inside outer delete"
        );
        assert_eq!(
            txn(&t(vec![RequestOp::Txn(t(vec![d("a", b"")], vec![])), p("a")], vec![]), 8),
            Err(Error::DuplicateKey),
            "outer put inside nested delete"
        );
        let sibling_puts =
            t(vec![RequestOp::Txn(t(vec![p("a")], vec![])), RequestOp::Txn(t(vec![], vec![p("a")]))], vec![]);
        assert_eq!(txn(&sibling_puts, 8), Err(Error::DuplicateKey));
        // Else-branch put of a key an earlier sibling put in its then-branch only.
        let else_after_then =
            t(vec![RequestOp::Txn(t(vec![p("a")], vec![])), RequestOp::Txn(t(vec![p("b")], vec![p("a")]))], vec![]);
        assert_eq!(txn(&else_after_then, 8), Err(Error::DuplicateKey));
        assert_eq!(
            txn(&t(vec![RequestOp::Txn(t(vec![p("x"), p("x")], vec![]))], vec![]), 8),
            Err(Error::DuplicateKey),
            "inside a nested branch"
        );
    }
}
