//! Compaction: discarding history no read or watch at or after the compaction revision needs.
//!
//! Only keys changed since the previous compaction can have versions to discard (a version kept
//! then is discarded once a later change supersedes it, and that change names the key in
//! `Revisions`), so the work is proportional to the revisions compacted, not to the key space.

use std::collections::BTreeSet;
use std::ops::Bound;

use super::key_history::change_bytes;
use super::layout;
use super::view::{storage_error, View};
use super::MvccStore;
use crate::engine::{Batch, KeyBounds, Reader, Space};
use crate::error::{Error, Result};
use crate::request::{CompactionResponse, ResponseHeader};

/// Compacts `store` at `revision` (see [`MvccStore::compact`]), staging the deletions.
pub(crate) fn compact(store: &mut MvccStore, revision: i64) -> Result<CompactionResponse> {
    if revision <= store.meta.compact_revision {
        return Err(Error::Compacted);
    }
    if revision > store.meta.current_revision {
        return Err(Error::FutureRevision);
    }
    let mut batch = Batch::default();
    let mut freed = 0;
    {
        let reader = store.reader();
        let touched = touched_keys(&reader, revision, &mut batch)?;
        let view = View::new(&reader);
        for key in touched {
            let history = view.history(&key)?;
            for (i, change) in history.changes.iter().enumerate() {
                if change.rev.main > revision {
                    break;
                }
                let superseded_by = history.changes.get(i + 1).map_or(i64::MAX, |next| next.rev.main);
                // The version in effect at `revision` stays, unless it is a deletion.
                if change.live.is_some() && superseded_by > revision {
                    continue;
                }
                batch.delete(Space::History, layout::history_key(&key, change.rev));
                batch.delete(Space::Revisions, layout::revision_key(change.rev));
                freed += change_bytes(&key, change);
            }
        }
    }
    store.staged.extend(batch);
    store.meta.bytes -= freed.min(store.meta.bytes);
    store.meta.compact_revision = revision;
    Ok(CompactionResponse {
        header: ResponseHeader { revision: store.meta.current_revision, ..ResponseHeader::default() },
    })
}

/// The keys changed at or before `revision` since the last compaction, staging the removal of
/// their `Revisions` records below `revision` (watches start at `revision` or later).
fn touched_keys(reader: &dyn Reader, revision: i64, batch: &mut Batch) -> Result<BTreeSet<Vec<u8>>> {
    let end = layout::revision_floor(revision.saturating_add(1));
    let bounds = KeyBounds { start: Bound::Unbounded, end: Bound::Excluded(end.as_slice()) };
    let mut touched = BTreeSet::new();
    for pair in reader.scan(Space::Revisions, bounds, false) {
        let (k, v) = pair.map_err(storage_error)?;
        let rev = layout::decode_revision(&k).map_err(storage_error)?;
        if rev.main < revision {
            batch.delete(Space::Revisions, k);
        }
        touched.insert(layout::decode_revision_value(&v).map_err(storage_error)?);
    }
    Ok(touched)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::MvccStore;
    use crate::error::Error;
    use crate::request::RangeRequest;

    fn all_at(s: &MvccStore, revision: i64) -> Result<Vec<String>, Error> {
        let req =
            RangeRequest { key: b"a".to_vec(), range_end: vec![0], revision, ..Default::default() };
        s.range(&req).map(|r| keys_of(&r.kvs))
    }

    #[test]
    fn bounds_of_the_compaction_revision() {
        let mut s = MvccStore::new();
        assert_eq!(s.compact(0).unwrap_err(), Error::Compacted);
        assert_eq!(s.compact(2).unwrap_err(), Error::FutureRevision);
        assert_eq!(s.compact(1).unwrap().header.revision, 1);
        assert_eq!(s.compact(1).unwrap_err(), Error::Compacted);
        put(&mut s, "a", "1");
        assert_eq!(s.compact(2).unwrap().header.revision, 2);
        assert_eq!((s.current_revision(), s.compact_revision()), (2, 2), "no revision bump");
    }

    #[test]
    fn retention_keeps_what_reads_at_or_after_the_revision_need() {
        let mut s = MvccStore::new();
        put(&mut s, "a", "1"); // 2
        put(&mut s, "a", "2"); // 3
        put(&mut s, "b", "1"); // 4
        del(&mut s, "b", ""); // 5
        put(&mut s, "c", "1"); // 6
        del(&mut s, "c", ""); // 7
        put(&mut s, "c", "2"); // 8
        put(&mut s, "a", "3"); // 9
        let before = s.clone();
        s.compact(7).unwrap();
        for rev in 7..=9 {
            assert_eq!(all_at(&s, rev), all_at(&before, rev), "reads at {rev} unchanged");
            for key in ["a", "b", "c"] {
                assert_eq!(get_at(&s, key, rev), get_at(&before, key, rev));
            }
        }
        assert_eq!(all_at(&s, 6), Err(Error::Compacted));
        // a keeps its version at 3 and 9; b (deleted at 5) is gone; c keeps only 8: its
        // tombstone at 7 is the version in effect at 7.
        let events = s.events_since(7, b"a", &[0]).unwrap();
        let revs: Vec<(Vec<u8>, i64)> =
            events.iter().map(|e| (e.kv.key.clone(), e.kv.mod_revision)).collect();
        assert_eq!(revs, vec![(b"c".to_vec(), 8), (b"a".to_vec(), 9)]);
        assert_eq!(events[1].prev_kv.as_ref().map(|p| p.mod_revision), Some(3), "retained prev");
        assert_eq!(events[0].prev_kv, None);
        assert_eq!(retained(&s), vec![("a".into(), vec![3, 9]), ("c".into(), vec![8])]);
    }

    /// Key → main revisions of its retained changes.
    fn retained(s: &MvccStore) -> Vec<(String, Vec<i64>)> {
        let reader = s.reader();
        let mut out = Vec::new();
        super::View::new(&reader)
            .for_each_history(b"", &[0], &mut |k, h| {
                out.push((String::from_utf8_lossy(&k).into_owned(), h.changes.iter().map(|c| c.rev.main).collect()));
                Ok(true)
            })
            .unwrap();
        out
    }

    #[test]
    fn quota_bytes_grow_with_history_and_compaction_frees_them() {
        let mut s = MvccStore::new();
        put(&mut s, "a", "1234"); // 2: key 1 + value 4 + 64
        put(&mut s, "a", "5678"); // 3
        put(&mut s, "b", ""); // 4: 65
        assert_eq!(s.size_bytes(), 69 + 69 + 65);
        del(&mut s, "a", ""); // 5: a tombstone, 65
        assert_eq!(s.size_bytes(), 69 + 69 + 65 + 65);
        s.compact(5).unwrap();
        assert_eq!(s.size_bytes(), 65, "only b's live version is left");
        assert_eq!(MvccStore::restore(s.snapshot().unwrap()).size_bytes(), 65);
    }

    #[test]
    fn compaction_drops_keys_with_nothing_left() {
        let mut s = MvccStore::new();
        put(&mut s, "gone", "1");
        del(&mut s, "gone", "");
        put(&mut s, "kept", "1");
        s.compact(4).unwrap();
        assert_eq!(retained(&s), vec![("kept".into(), vec![4])]);
        assert_eq!(get(&s, "gone"), None);
        // Only the version in effect at the compaction revision survives.
        put(&mut s, "kept", "2");
        s.compact(5).unwrap();
        assert_eq!(retained(&s), vec![("kept".into(), vec![5])]);
    }
}
