//! Reads: selecting keys of the key space by etcd's (`key`, `range_end`) convention and building a
//! `RangeResponse` the way etcd's applier does (count, filters, sort, limit).

use std::cmp::Ordering;

use super::key_history::Live;
use super::view::View;
use crate::api::error::{Error, Result};
use crate::api::kv::KeyValue;
use crate::api::request::{RangeRequest, RangeResponse, ResponseHeader, SortOrder, SortTarget};

/// A live key selected by a read.
struct Hit {
    key: Vec<u8>,
    mod_revision: i64,
    live: Live,
}

/// Serves `req` from `view` as of a store whose current revision is `current` and whose
/// compaction revision is `compacted`. `header.revision` is `current`.
pub(crate) fn range(view: View<'_>, req: &RangeRequest, current: i64, compacted: i64) -> Result<RangeResponse> {
    // Like etcd's mvcc layer: a revision of 0 (or below) reads the current one.
    let rev = if req.revision <= 0 { current } else { req.revision };
    if rev > current {
        return Err(Error::FutureRevision);
    }
    if rev < compacted {
        return Err(Error::Compacted);
    }

    let order = effective_order(req.sort_target, req.sort_order);
    let sorted = order != SortOrder::None;
    // Without a sort, hits arrive in final (key) order, so one past `limit` is enough to know
    // whether there are more; with a sort every hit is needed.
    let keep = match usize::try_from(req.limit) {
        Ok(limit) if limit > 0 && !sorted => limit.saturating_add(1),
        _ => usize::MAX,
    };

    let mut count: i64 = 0;
    let mut hits: Vec<Hit> = Vec::new();
    view.for_each_live(&req.key, &req.range_end, rev, current, &mut |key, mod_revision, live| {
        count = count.saturating_add(1);
        if !(req.count_only || hits.len() >= keep || !passes_filters(req, mod_revision, &live)) {
            hits.push(Hit { key, mod_revision, live });
        }
        Ok(true)
    })?;

    sort_hits(&mut hits, req.sort_target, order);

    let mut more = false;
    if let Ok(limit) = usize::try_from(req.limit) {
        if limit > 0 && hits.len() > limit {
            hits.truncate(limit);
            more = true;
        }
    }

    let kvs = hits
        .into_iter()
        .map(|hit| KeyValue {
            key: hit.key,
            create_revision: hit.live.create_revision,
            mod_revision: hit.mod_revision,
            version: hit.live.version,
            value: if req.keys_only { Vec::new() } else { hit.live.value },
            lease: hit.live.lease,
        })
        .collect();

    Ok(RangeResponse { header: ResponseHeader { revision: current, ..ResponseHeader::default() }, kvs, more, count })
}

/// etcd sorts ascending by default when a target other than the key is named.
fn effective_order(target: SortTarget, order: SortOrder) -> SortOrder {
    if target != SortTarget::Key && order == SortOrder::None {
        SortOrder::Ascend
    } else {
        order
    }
}

/// etcd's min/max mod/create revision filters; 0 disables a bound.
fn passes_filters(req: &RangeRequest, mod_revision: i64, live: &Live) -> bool {
    !(req.max_mod_revision != 0 && mod_revision > req.max_mod_revision
        || req.min_mod_revision != 0 && mod_revision < req.min_mod_revision
        || req.max_create_revision != 0 && live.create_revision > req.max_create_revision
        || req.min_create_revision != 0 && live.create_revision < req.min_create_revision)
}

/// Stable sort of hits (which arrive in ascending key order) on `target`.
fn sort_hits(hits: &mut [Hit], target: SortTarget, order: SortOrder) {
    let by = |a: &Hit, b: &Hit| -> Ordering {
        match target {
            SortTarget::Key => a.key.cmp(&b.key),
            SortTarget::Version => a.live.version.cmp(&b.live.version),
            SortTarget::Create => a.live.create_revision.cmp(&b.live.create_revision),
            SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
            SortTarget::Value => a.live.value.cmp(&b.live.value),
        }
    };
    match (order, target) {
        (SortOrder::None, _) | (SortOrder::Ascend, SortTarget::Key) => {}
        (SortOrder::Descend, SortTarget::Key) => hits.reverse(),
        (SortOrder::Ascend, _) => hits.sort_by(by),
        (SortOrder::Descend, _) => hits.sort_by(|a, b| by(b, a)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::MvccStore;
    use crate::api::error::Error;
    use crate::api::request::{RangeRequest, SortOrder, SortTarget};

    /// a(v=3, create 2, value "z"), b(v=1, create 3, value "y"), c(v=2, create 4, value "x"),
    /// d(v=1, create 8, value "y"); revision 8.
    fn store() -> MvccStore {
        let mut s = MvccStore::new();
        put(&mut s, "a", "1"); // 2
        put(&mut s, "b", "y"); // 3
        put(&mut s, "c", "1"); // 4
        put(&mut s, "a", "2"); // 5
        put(&mut s, "c", "x"); // 6
        put(&mut s, "a", "z"); // 7
        put(&mut s, "d", "y"); // 8
        s
    }

    fn req(key: &str, end: &[u8]) -> RangeRequest {
        RangeRequest { key: key.into(), range_end: end.to_vec(), ..Default::default() }
    }

    fn sorted(target: SortTarget, order: SortOrder) -> Vec<String> {
        let r = RangeRequest { sort_target: target, sort_order: order, ..req("a", &[0]) };
        keys_of(&store().range(&r).unwrap().kvs)
    }

    #[test]
    fn key_range_conventions() {
        let s = store();
        assert_eq!(keys_of(&s.range(&req("b", b"")).unwrap().kvs), ["b"]);
        assert_eq!(keys_of(&s.range(&req("b", b"d")).unwrap().kvs), ["b", "c"]);
        assert_eq!(keys_of(&s.range(&req("b", &[0])).unwrap().kvs), ["b", "c", "d"]);
        assert!(s.range(&req("bb", b"")).unwrap().kvs.is_empty());
        let inverted = s.range(&req("d", b"b")).unwrap();
        assert_eq!((inverted.kvs.len(), inverted.count), (0, 0));
        assert_eq!(s.range(&req("b", b"b")).unwrap().count, 0);
        let r = s.range(&req("a", &[0])).unwrap();
        assert_eq!((r.count, r.more, r.header.revision), (4, false, 8));
        assert_eq!(r.kvs[0], kv("a", "z", 2, 7, 3, 0));
    }

    #[test]
    fn sort_by_each_target_and_order() {
        use SortOrder::*;
        use SortTarget::*;
        assert_eq!(sorted(Key, None), ["a", "b", "c", "d"]);
        assert_eq!(sorted(Key, Ascend), ["a", "b", "c", "d"]);
        assert_eq!(sorted(Key, Descend), ["d", "c", "b", "a"]);
        // Versions a3 b1 c2 d1; ties keep key order (stable sort).
        assert_eq!(sorted(Version, Ascend), ["b", "d", "c", "a"]);
        assert_eq!(sorted(Version, None), ["b", "d", "c", "a"], "non-key target defaults to ascend");
        assert_eq!(sorted(Version, Descend), ["a", "c", "b", "d"]);
        // Create revisions a2 b3 c4 d8.
        assert_eq!(sorted(Create, Ascend), ["a", "b", "c", "d"]);
        assert_eq!(sorted(Create, Descend), ["d", "c", "b", "a"]);
        // Mod revisions a7 b3 c6 d8.
        assert_eq!(sorted(Mod, Ascend), ["b", "c", "a", "d"]);
        assert_eq!(sorted(Mod, Descend), ["d", "a", "c", "b"]);
        // Values a"z" b"y" c"x" d"y".
        assert_eq!(sorted(Value, Ascend), ["c", "b", "d", "a"]);
        assert_eq!(sorted(Value, Descend), ["a", "b", "d", "c"]);
    }

    #[test]
    fn limit_sets_more_and_applies_after_sorting() {
        let s = store();
        let r = s.range(&RangeRequest { limit: 2, ..req("a", &[0]) }).unwrap();
        assert_eq!((keys_of(&r.kvs), r.more, r.count), (vec!["a".into(), "b".into()], true, 4));
        let r = s.range(&RangeRequest { limit: 4, ..req("a", &[0]) }).unwrap();
        assert!(!r.more);
        let r = s.range(&RangeRequest { limit: 5, ..req("a", &[0]) }).unwrap();
        assert_eq!((r.kvs.len(), r.more), (4, false));
        let r = s
            .range(&RangeRequest {
                limit: 1,
                sort_target: SortTarget::Mod,
                sort_order: SortOrder::Descend,
                ..req("a", &[0])
            })
            .unwrap();
        assert_eq!((keys_of(&r.kvs), r.more), (vec!["d".into()], true));
        // Extreme limits neither overflow nor truncate.
        for limit in [i64::MAX, -1, i64::MIN] {
            let r = s.range(&RangeRequest { limit, ..req("a", &[0]) }).unwrap();
            assert_eq!((r.kvs.len(), r.more), (4, false));
        }
    }

    #[test]
    fn count_is_taken_before_filters() {
        let s = store();
        let r = s.range(&RangeRequest { min_mod_revision: 6, ..req("a", &[0]) }).unwrap();
        assert_eq!((keys_of(&r.kvs), r.count), (vec!["a".into(), "c".into(), "d".into()], 4));
        let r = s.range(&RangeRequest { max_mod_revision: 6, ..req("a", &[0]) }).unwrap();
        assert_eq!(keys_of(&r.kvs), ["b", "c"]);
        let r = s.range(&RangeRequest { min_create_revision: 3, ..req("a", &[0]) }).unwrap();
        assert_eq!(keys_of(&r.kvs), ["b", "c", "d"]);
        let r = s.range(&RangeRequest { max_create_revision: 3, ..req("a", &[0]) }).unwrap();
        assert_eq!(keys_of(&r.kvs), ["a", "b"]);
        let both = RangeRequest { min_mod_revision: 4, max_create_revision: 4, limit: 1, ..req("a", &[0]) };
        let r = s.range(&both).unwrap();
        assert_eq!((keys_of(&r.kvs), r.more, r.count), (vec!["a".into()], true, 4));
    }

    #[test]
    fn keys_only_and_count_only() {
        let s = store();
        let r = s.range(&RangeRequest { keys_only: true, ..req("a", b"c") }).unwrap();
        assert_eq!(r.kvs, vec![kv("a", "", 2, 7, 3, 0), kv("b", "", 3, 3, 1, 0)]);
        let r = s.range(&RangeRequest { count_only: true, limit: 1, ..req("a", &[0]) }).unwrap();
        assert_eq!((r.kvs.len(), r.count, r.more), (0, 4, false));
    }

    #[test]
    fn reads_at_past_revisions() {
        let s = store();
        let r = s.range(&RangeRequest { revision: 4, ..req("a", &[0]) }).unwrap();
        assert_eq!(r.kvs, vec![kv("a", "1", 2, 2, 1, 0), kv("b", "y", 3, 3, 1, 0), kv("c", "1", 4, 4, 1, 0)]);
        assert_eq!(r.header.revision, 8, "header carries the current revision");
        assert_eq!(s.range(&RangeRequest { revision: 1, ..req("a", &[0]) }).unwrap().count, 0);
        assert_eq!(s.range(&RangeRequest { revision: 8, ..req("a", &[0]) }).unwrap().count, 4);
        let negative = s.range(&RangeRequest { revision: -3, ..req("a", &[0]) }).unwrap();
        assert_eq!(negative.count, 4, "like etcd's mvcc, a revision <= 0 reads the current one");
    }

    #[test]
    fn future_and_compacted_revisions_fail() {
        let mut s = store();
        assert_eq!(s.range(&RangeRequest { revision: 9, ..req("a", b"") }), Err(Error::FutureRevision));
        s.compact(5).unwrap();
        assert_eq!(s.range(&RangeRequest { revision: 4, ..req("a", b"") }), Err(Error::Compacted));
        let at_compaction = s.range(&RangeRequest { revision: 5, ..req("a", &[0]) }).unwrap();
        assert_eq!(keys_of(&at_compaction.kvs), ["a", "b", "c"]);
        assert_eq!(at_compaction.kvs[0], kv("a", "2", 2, 5, 2, 0));
    }
}
