//! Watch replay: the retained changes of a key range from a revision on, as events.

use std::ops::Bound;

use super::layout;
use super::view::{storage_error, View};
use super::MvccStore;
use crate::api::error::{Error, Result};
use crate::api::kv::{in_range, Event, EventType};
use crate::state::engine::{KeyBounds, Reader, Space};

/// Every retained event in (`key`, `range_end`) with main revision `>= start`, in (revision,
/// sub) order (see [`MvccStore::events_since`]): the `Revisions` records from `start` on, each
/// read back with the version before it.
pub(crate) fn events_since(store: &MvccStore, start: i64, key: &[u8], range_end: &[u8]) -> Result<Vec<Event>> {
    if start < store.meta.compact_revision {
        return Err(Error::Compacted);
    }
    let reader = store.reader();
    let view = View::new(&reader, store.meta.compact_revision);
    let floor = layout::revision_floor(start.max(0));
    let bounds = KeyBounds { start: Bound::Included(floor.as_slice()), end: Bound::Unbounded };
    let mut events = Vec::new();
    for pair in reader.scan(Space::Revisions, bounds, false) {
        let (k, v) = pair.map_err(storage_error)?;
        let user_key = layout::decode_revision_value(&v).map_err(storage_error)?;
        if !in_range(&user_key, key, range_end) {
            continue;
        }
        let rev = layout::decode_revision(&k).map_err(storage_error)?;
        let Some(change) = view.change_at(&user_key, rev)? else { continue };
        let prev_kv =
            view.change_before(&user_key, rev)?.filter(|p| p.live.is_some()).map(|p| p.to_key_value(&user_key));
        let kind = if change.live.is_some() { EventType::Put } else { EventType::Delete };
        events.push(Event { kind, kv: change.to_key_value(&user_key), prev_kv });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::MvccStore;
    use crate::api::error::Error;
    use crate::api::kv::EventType;
    use crate::api::request::{PutRequest, RequestOp, TxnRequest};

    fn summary(s: &MvccStore, start: i64, key: &str, end: &[u8]) -> Vec<(EventType, String, i64, Option<i64>)> {
        s.events_since(start, key.as_bytes(), end)
            .unwrap()
            .into_iter()
            .map(|e| {
                (
                    e.kind,
                    String::from_utf8_lossy(&e.kv.key).into_owned(),
                    e.kv.mod_revision,
                    e.prev_kv.map(|p| p.mod_revision),
                )
            })
            .collect()
    }

    #[test]
    fn events_in_revision_then_sub_order() {
        let mut s = MvccStore::new();
        put(&mut s, "b", "1"); // 2
        put(&mut s, "a", "1"); // 3
                               // One txn at 4 writing b then a: sub order b, a (not key order).
        let txn = TxnRequest {
            success: ["b", "a"]
                .iter()
                .map(|k| {
                    RequestOp::Put(PutRequest {
                        key: k.as_bytes().to_vec(),
                        value: b"2".to_vec(),
                        ..Default::default()
                    })
                })
                .collect(),
            ..Default::default()
        };
        s.txn(&txn, &leases).unwrap();
        del(&mut s, "a", "c"); // 5: a then b
        put(&mut s, "a", "3"); // 6
        use EventType::*;
        assert_eq!(
            summary(&s, 0, "a", &[0]),
            vec![
                (Put, "b".into(), 2, None),
                (Put, "a".into(), 3, None),
                (Put, "b".into(), 4, Some(2)),
                (Put, "a".into(), 4, Some(3)),
                (Delete, "a".into(), 5, Some(4)),
                (Delete, "b".into(), 5, Some(4)),
                (Put, "a".into(), 6, None),
            ]
        );
        assert_eq!(summary(&s, 5, "a", b""), vec![(Delete, "a".into(), 5, Some(4)), (Put, "a".into(), 6, None)]);
        assert_eq!(summary(&s, 4, "b", b"c").len(), 2);
        assert!(summary(&s, 7, "a", &[0]).is_empty());
        let deleted = s.events_since(5, b"b", b"").unwrap();
        assert_eq!(
            deleted[0].kv,
            crate::api::kv::KeyValue { key: b"b".to_vec(), mod_revision: 5, ..Default::default() }
        );
        assert_eq!(deleted[0].prev_kv, Some(kv("b", "2", 2, 4, 2, 0)));
    }

    #[test]
    fn replay_below_the_compaction_revision_fails() {
        let mut s = MvccStore::new();
        put(&mut s, "a", "1"); // 2
        put(&mut s, "a", "2"); // 3
        put(&mut s, "a", "3"); // 4
        s.compact(3).unwrap();
        assert_eq!(s.events_since(2, b"a", b""), Err(Error::Compacted));
        use EventType::*;
        // The put at the compaction revision is retained, its predecessor is not.
        assert_eq!(summary(&s, 3, "a", b""), vec![(Put, "a".into(), 3, None), (Put, "a".into(), 4, Some(3))]);
    }
}
