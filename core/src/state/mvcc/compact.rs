//! Compaction: discarding history no read or watch at or after the compaction revision needs.
//!
//! Applying a compaction only moves the compaction revision: from then on reads skip what it
//! discarded (see `is_discarded`), so the entry costs the same whatever the history holds. The
//! records are deleted afterwards, in batches of a bounded number of revisions between client
//! requests (etcd's `--experimental-compaction-batch-limit`), by [`sweep`], which walks the
//! `Revisions` records up to the compaction revision in order. Only keys changed since the
//! previous compaction can have versions to delete (a version kept then is discarded once a
//! later change supersedes it, and that change has a `Revisions` record), so the work is
//! proportional to the revisions compacted, not to the key space.

use std::ops::Bound;

use super::key_history::{change_bytes, is_discarded, Change, Revision};
use super::layout;
use super::view::{first_history_change, storage_error, stored_history_change, stored_latest};
use super::MvccStore;
use crate::api::error::{Error, Result};
use crate::api::request::{CompactionResponse, ResponseHeader};
use crate::state::engine::{Batch, KeyBounds, Overlay, Reader, Space};

/// Compacts `store` at `revision` (see [`MvccStore::compact`]): the deletion starts over from
/// the first `Revisions` record, which also covers a deletion still under way for an earlier
/// compaction.
pub(crate) fn compact(store: &mut MvccStore, revision: i64) -> Result<CompactionResponse> {
    if revision <= store.meta.compact_revision {
        return Err(Error::Compacted);
    }
    if revision > store.meta.current_revision {
        return Err(Error::FutureRevision);
    }
    store.meta.compact_revision = revision;
    store.meta.sweep = Some(Revision { main: 0, sub: 0 });
    Ok(CompactionResponse {
        header: ResponseHeader { revision: store.meta.current_revision, ..ResponseHeader::default() },
    })
}

/// Stages the deletion of what compaction discarded for up to `limit` `Revisions` records from
/// where the last batch stopped; returns whether records remain.
pub(crate) fn sweep(store: &mut MvccStore, limit: usize) -> Result<bool> {
    let Some(from) = store.meta.sweep else { return Ok(false) };
    let compacted = store.meta.compact_revision;
    let mut batch = Batch::default();
    let mut freed = 0;
    let mut resume = None;
    {
        let reader = store.reader();
        let start = layout::revision_key(from);
        let end = layout::revision_floor(compacted.saturating_add(1));
        let bounds = KeyBounds { start: Bound::Included(start.as_slice()), end: Bound::Excluded(end.as_slice()) };
        for (done, pair) in reader.scan(Space::Revisions, bounds, false).enumerate() {
            let (k, v) = pair.map_err(storage_error)?;
            let rev = layout::decode_revision(&k).map_err(storage_error)?;
            if done == limit {
                resume = Some(rev);
                break;
            }
            let key = layout::decode_revision_value(&v).map_err(storage_error)?;
            // This batch's deletions are seen, so nothing is deleted (or counted) twice.
            let seen = Overlay { base: &reader, top: &batch };
            let deletions = sweep_change(&seen, &key, rev, compacted)?;
            for (revision, change) in deletions {
                if let Some(change) = change {
                    freed += change_bytes(&key, &change);
                    batch.delete(Space::History, layout::history_key(&key, revision));
                }
                batch.delete(Space::Revisions, layout::revision_key(revision));
            }
        }
    }
    store.staged.extend(batch);
    store.meta.bytes -= freed.min(store.meta.bytes);
    store.meta.sweep = resume;
    Ok(resume.is_some())
}

/// What to delete for `key`'s `Revisions` record at `rev` (at or below `compacted`): the
/// change before it, which it superseded; the change itself when compaction discarded it; and
/// the record itself below `compacted` (watches start at `compacted` or later). Each item is a
/// revision with the `History` change to delete at it (`None`: only its `Revisions` record).
fn sweep_change(
    reader: &dyn Reader,
    key: &[u8],
    rev: Revision,
    compacted: i64,
) -> Result<Vec<(Revision, Option<Change>)>> {
    let mut deletions = Vec::new();
    let prefix = layout::history_prefix(key);
    let here = layout::history_key(key, rev);
    let before = KeyBounds { start: Bound::Included(prefix.as_slice()), end: Bound::Excluded(here.as_slice()) };
    if let Some(previous) = first_history_change(reader, before, true)? {
        deletions.push((previous.rev, Some(previous)));
    }
    let latest = stored_latest(reader, key)?;
    let Some(change) = stored_history_change(reader, key, rev)? else {
        // The key's newest version (never discarded), or a change already deleted.
        if latest.is_none_or(|l| l.rev != rev) || rev.main < compacted {
            deletions.push((rev, None));
        }
        return Ok(deletions);
    };
    let end = crate::api::kv::prefix_successor(&prefix);
    let after = KeyBounds { start: Bound::Excluded(here.as_slice()), end: Bound::Excluded(end.as_slice()) };
    let next = first_history_change(reader, after, false)?.map(|c| c.rev.main).or(latest.map(|l| l.rev.main));
    if is_discarded(&change, next, compacted) {
        deletions.push((rev, Some(change)));
    } else if rev.main < compacted {
        deletions.push((rev, None));
    }
    Ok(deletions)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::MvccStore;
    use crate::api::error::Error;
    use crate::api::request::RangeRequest;
    use crate::state::engine::{KeyBounds, Reader, Space};

    fn all_at(s: &MvccStore, revision: i64) -> Result<Vec<String>, Error> {
        let req = RangeRequest { key: b"a".to_vec(), range_end: vec![0], revision, ..Default::default() };
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
        let revs: Vec<(Vec<u8>, i64)> = events.iter().map(|e| (e.kv.key.clone(), e.kv.mod_revision)).collect();
        assert_eq!(revs, vec![(b"c".to_vec(), 8), (b"a".to_vec(), 9)]);
        assert_eq!(events[1].prev_kv.as_ref().map(|p| p.mod_revision), Some(3), "retained prev");
        assert_eq!(events[0].prev_kv, None);
        assert_eq!(retained(&s), vec![("a".into(), vec![3, 9]), ("c".into(), vec![8])]);
    }

    /// Key → main revisions of its retained changes.
    fn retained(s: &MvccStore) -> Vec<(String, Vec<i64>)> {
        let reader = s.reader();
        let mut out = Vec::new();
        super::super::view::View::new(&reader, s.compact_revision())
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
        assert_eq!(s.size_bytes(), 69 + 69 + 65 + 65, "nothing is deleted yet");
        sweep_all(&mut s, 1);
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

    fn sweep_all(s: &mut MvccStore, limit: usize) -> usize {
        let mut batches = 1;
        while s.sweep_compaction(limit).unwrap() {
            batches += 1;
        }
        assert!(!s.compaction_pending());
        batches
    }

    /// Every record of the spaces the key space uses, as stored.
    fn records(s: &MvccStore) -> Vec<(Space, Vec<u8>, Vec<u8>)> {
        let reader = s.reader();
        let mut out = Vec::new();
        for space in [Space::Latest, Space::History, Space::Revisions] {
            for pair in reader.scan(space, KeyBounds::all(), false) {
                let (k, v) = pair.unwrap();
                out.push((space, k, v));
            }
        }
        out
    }

    /// A store with overwrites, deletions and re-creations of five keys, and one that saw the
    /// same writes but compactions (at `compactions`) whose deletion went in batches of two
    /// revisions between the writes.
    fn pair_with_compactions(compactions: &[i64]) -> (MvccStore, MvccStore) {
        let (mut plain, mut swept) = (MvccStore::new(), MvccStore::new());
        for i in 0..60 {
            let key = ["a", "b", "c", "d", "e"][i * 7 % 5];
            for s in [&mut plain, &mut swept] {
                if i % 4 == 3 {
                    del(s, key, "");
                } else {
                    put(s, key, &i.to_string());
                }
            }
            let revision = swept.current_revision();
            if compactions.contains(&revision) {
                swept.compact(revision).unwrap();
            }
            swept.sweep_compaction(2).unwrap();
        }
        (plain, swept)
    }

    #[test]
    fn reads_and_digests_do_not_depend_on_how_far_the_deletion_went() {
        let (plain, mut swept) = pair_with_compactions(&[10, 20, 21, 40]);
        let mut unswept = plain.clone();
        unswept.compact(40).unwrap();
        assert_ne!(records(&swept), records(&unswept), "the deletion has begun");
        for s in [&swept, &unswept] {
            assert_eq!(s.hash(), unswept.hash());
            assert_eq!(s.snapshot().unwrap(), unswept.snapshot().unwrap());
            for rev in 40..=plain.current_revision() {
                assert_eq!(all_at(s, rev), all_at(&plain, rev), "reads at {rev}");
                for key in ["a", "b", "c", "d", "e"] {
                    assert_eq!(get_at(s, key, rev), get_at(&plain, key, rev));
                }
                // From the compaction revision itself, a deletion at it is gone (as in etcd).
                let reference = if rev == 40 { &unswept } else { &plain };
                assert_eq!(
                    s.events_since(rev, b"a", &[0]),
                    reference.events_since(rev, b"a", &[0]),
                    "replay from {rev}"
                );
            }
        }
        sweep_all(&mut swept, 2);
        assert_eq!(swept.hash(), unswept.hash());
        // Once done, the records are exactly what a copy restored from a snapshot holds.
        let restored = MvccStore::restore(unswept.snapshot().unwrap());
        assert_eq!(records(&swept), records(&restored));
        assert_eq!(swept.size_bytes(), restored.size_bytes());
    }

    #[test]
    fn the_deletion_goes_in_batches_and_resumes_after_a_restart() {
        let (plain, _) = pair_with_compactions(&[]);
        let engine = crate::state::engine::MemEngine::new();
        let mut s = MvccStore::open(Box::new(engine.clone())).unwrap();
        s.replace(plain.snapshot().unwrap());
        s.commit(crate::state::engine::Batch::default()).unwrap();
        s.compact(50).unwrap();
        assert!(s.compaction_pending());
        assert!(s.sweep_compaction(10).unwrap(), "49 revisions take more than one batch of 10");
        let mut reopened = MvccStore::open(Box::new(engine)).unwrap();
        assert!(reopened.compaction_pending(), "the position is stored with each batch");
        assert!(sweep_all(&mut reopened, 10) >= 4);
        let mut eager = plain.clone();
        eager.compact(50).unwrap();
        sweep_all(&mut eager, usize::MAX);
        assert_eq!(records(&reopened), records(&eager));
    }
}
