//! The key space as plain serializable data (for Raft snapshots) and a digest of it (for
//! comparing replicas).

use serde::{Deserialize, Serialize};

use crate::api::error::Result;
use crate::digest::Fnv64;
use crate::format::append;
use crate::state::engine::{Batch, Space};

use super::key_history::{change_bytes, Change, Live, Revision};
use super::layout;
use super::view::View;
use super::{MvccStore, StoreMeta};

/// Everything an [`MvccStore`] holds, in key order, so that equal stores give byte-equal
/// encodings. Opaque: produced by [`MvccStore::snapshot`], consumed by [`MvccStore::restore`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MvccSnapshot {
    current_revision: i64,
    compact_revision: i64,
    keys: Vec<SnapshotKey>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SnapshotKey {
    key: Vec<u8>,
    changes: Vec<SnapshotChange>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SnapshotChange {
    main: i64,
    sub: i64,
    /// `None` for a tombstone.
    live: Option<SnapshotLive>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SnapshotLive {
    create_revision: i64,
    version: i64,
    value: Vec<u8>,
    lease: i64,
}

/// Copies `store` into a snapshot, reading every retained change in key order.
pub(crate) fn snapshot(store: &MvccStore) -> Result<MvccSnapshot> {
    let mut keys = Vec::new();
    for_each_key(store, &mut |key| {
        keys.push(key);
        Ok(())
    })?;
    Ok(MvccSnapshot {
        current_revision: store.meta.current_revision,
        compact_revision: store.meta.compact_revision,
        keys,
    })
}

/// Appends to `out` the encoding of [`snapshot`]`(store)`, byte for byte, one key at a time:
/// the key space is never in memory twice (as values and as bytes), whatever its size.
pub(crate) fn encode_into(store: &MvccStore, out: &mut Vec<u8>) -> Result<()> {
    append(out, &store.meta.current_revision)?;
    append(out, &store.meta.compact_revision)?;
    // The key count leads the keys but is known only after them: they go after room for the
    // longest count, which then closes up behind the count's actual bytes.
    const ROOM: usize = 10;
    let count_at = out.len();
    out.resize(count_at + ROOM, 0);
    let mut count = 0u64;
    for_each_key(store, &mut |key| {
        count += 1;
        append(out, &key)
    })?;
    let mut length = Vec::new();
    append(&mut length, &count)?;
    let start = count_at + ROOM - length.len();
    out[start..count_at + ROOM].copy_from_slice(&length);
    out.drain(count_at..start);
    Ok(())
}

/// Every key with its retained changes, in key order.
fn for_each_key(store: &MvccStore, f: &mut dyn FnMut(SnapshotKey) -> Result<()>) -> Result<()> {
    let reader = store.reader();
    View::new(&reader, store.meta.compact_revision).for_each_history(b"", &[0], &mut |key, history| {
        let changes = history
            .changes
            .into_iter()
            .map(|c| SnapshotChange {
                main: c.rev.main,
                sub: c.rev.sub,
                live: c.live.map(|l| SnapshotLive {
                    create_revision: l.create_revision,
                    version: l.version,
                    value: l.value,
                    lease: l.lease,
                }),
            })
            .collect();
        f(SnapshotKey { key, changes })?;
        Ok(true)
    })
}

/// The batch that makes an engine hold exactly `snap` (it clears every space first) and the
/// store's records after it. Tolerates a malformed snapshot (it may come from the network):
/// histories are put back in revision order, duplicate revisions and empty histories dropped.
pub(crate) fn restore_batch(snap: MvccSnapshot) -> (Batch, StoreMeta) {
    let mut batch = Batch { clear: true, ..Batch::default() };
    let mut bytes = 0;
    let mut seen = std::collections::BTreeMap::<Vec<u8>, Vec<Change>>::new();
    for SnapshotKey { key, changes } in snap.keys {
        seen.entry(key).or_default().extend(changes.into_iter().map(|c| Change {
            rev: Revision { main: c.main, sub: c.sub },
            live: c.live.map(|l| Live {
                create_revision: l.create_revision,
                version: l.version,
                value: l.value,
                lease: l.lease,
            }),
        }));
    }
    for (key, mut changes) in seen {
        changes.sort_by_key(|c| c.rev);
        changes.dedup_by_key(|c| c.rev);
        let newest = changes.len().saturating_sub(1);
        for (i, change) in changes.iter().enumerate() {
            bytes += change_bytes(&key, change);
            match &change.live {
                Some(live) if i == newest => {
                    batch.put(Space::Latest, key.clone(), layout::encode_latest(change.rev, live))
                }
                _ => batch.put(Space::History, layout::history_key(&key, change.rev), layout::encode_history(change)),
            }
            if change.rev.main >= snap.compact_revision {
                batch.put(Space::Revisions, layout::revision_key(change.rev), layout::encode_revision_value(&key));
            }
        }
    }
    let meta = StoreMeta {
        current_revision: snap.current_revision,
        compact_revision: snap.compact_revision,
        bytes,
        sweep: None,
    };
    (batch, meta)
}

/// Digest of the revisions and every retained change (see [`MvccStore::hash`]).
pub(crate) fn hash(store: &MvccStore) -> u64 {
    let mut h = Fnv64::new();
    h.int(store.meta.current_revision);
    h.int(store.meta.compact_revision);
    if hash_changes(&mut h, store, i64::MAX).is_err() {
        // A store that cannot be read back is never equal to a healthy one.
        h.write(b"unreadable");
    }
    h.finish()
}

/// Digest of the versions at or below `revision` only (etcd's HashKV), folded to 32 bits as
/// etcd's is: later writes do not change it, so members compare it while writes go on.
pub(crate) fn hash_up_to(store: &MvccStore, revision: i64) -> Result<u32> {
    let mut h = Fnv64::new();
    h.int(store.meta.compact_revision);
    hash_changes(&mut h, store, revision)?;
    Ok(crate::digest::fold32(h.finish()))
}

/// Feeds every retained change at or below `revision`, in key and revision order, into `h`.
fn hash_changes(h: &mut Fnv64, store: &MvccStore, revision: i64) -> Result<()> {
    let reader = store.reader();
    View::new(&reader, store.meta.compact_revision).for_each_history(b"", &[0], &mut |key, history| {
        // A history is in revision order, so the changes up to `revision` are a prefix.
        let changes = &history.changes[..history.changes.partition_point(|c| c.rev.main <= revision)];
        if changes.is_empty() {
            return Ok(true);
        }
        h.field(&key);
        h.int(i64::try_from(changes.len()).unwrap_or(i64::MAX));
        for c in changes {
            h.int(c.rev.main);
            h.int(c.rev.sub);
            match &c.live {
                None => h.write(&[0]),
                Some(l) => {
                    h.write(&[1]);
                    h.int(l.create_revision);
                    h.int(l.version);
                    h.int(l.lease);
                    h.field(&l.value);
                }
            }
        }
        Ok(true)
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::MvccStore;
    use super::*;

    fn busy_store() -> MvccStore {
        let mut s = MvccStore::new();
        put(&mut s, "a", "1");
        put_lease(&mut s, "b", "1", 3);
        put(&mut s, "a", "2");
        del(&mut s, "b", "");
        put_lease(&mut s, "c", "1", 4);
        put(&mut s, "d", "1");
        s.compact(3).unwrap();
        s
    }

    #[test]
    fn snapshot_round_trip() {
        let s = busy_store();
        let snap = s.snapshot().unwrap();
        let bytes = postcard::to_allocvec(&snap).unwrap();
        let decoded: MvccSnapshot = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(decoded, snap);
        let restored = MvccStore::restore(decoded);
        assert_eq!(restored, s);
        assert_eq!(restored.hash(), s.hash());
        assert_eq!(MvccStore::restore(MvccStore::new().snapshot().unwrap()), MvccStore::new());
    }

    #[test]
    fn snapshots_are_deterministic() {
        let a = busy_store();
        let b = busy_store();
        assert_eq!(
            postcard::to_allocvec(&a.snapshot().unwrap()).unwrap(),
            postcard::to_allocvec(&b.snapshot().unwrap()).unwrap()
        );
    }

    #[test]
    fn hash_tracks_every_difference() {
        let s = busy_store();
        let mut value = s.clone();
        put(&mut value, "d", "2");
        let mut other = s.clone();
        put(&mut other, "d", "3");
        assert_ne!(value.hash(), other.hash());
        let mut compacted = s.clone();
        compacted.compact(4).unwrap();
        assert_ne!(compacted.hash(), s.hash(), "compaction changes the digest");
        let mut lease = MvccStore::new();
        put_lease(&mut lease, "k", "v", 1);
        let mut no_lease = MvccStore::new();
        put(&mut no_lease, "k", "v");
        assert_ne!(lease.hash(), no_lease.hash());
        assert_eq!(MvccStore::new().hash(), MvccStore::new().hash());
    }

    #[test]
    fn hash_kv_ignores_later_writes_and_sees_earlier_differences() {
        let s = busy_store();
        let at = s.current_revision();
        let before = s.hash_kv(at).unwrap().hash;
        let mut later = s.clone();
        put(&mut later, "d", "2");
        assert_eq!(later.hash_kv(at).unwrap().hash, before, "a later write leaves the digest at `at` alone");
        assert_ne!(later.hash_kv(0).unwrap().hash, before, "0 means the current revision");
        let mut other = MvccStore::new();
        put(&mut other, "d", "3");
        assert_ne!(other.hash_kv(other.current_revision()).unwrap().hash, MvccStore::new().hash_kv(0).unwrap().hash);
        assert_eq!(s.hash_kv(at + 1), Err(crate::api::error::Error::FutureRevision));
        let mut compacted = s.clone();
        compacted.compact(at).unwrap();
        assert_eq!(compacted.hash_kv(at - 1), Err(crate::api::error::Error::Compacted));
        assert_eq!(compacted.hash_kv(at).unwrap().compact_revision, at);
    }

    #[test]
    fn malformed_snapshots_are_tidied_not_trusted() {
        let change = |main: i64| SnapshotChange {
            main,
            sub: 0,
            live: Some(SnapshotLive { create_revision: 2, version: 1, value: b"v".to_vec(), lease: 0 }),
        };
        let snap = MvccSnapshot {
            current_revision: 5,
            compact_revision: 0,
            keys: vec![
                SnapshotKey { key: b"b".to_vec(), changes: vec![change(4), change(2), change(4)] },
                SnapshotKey { key: b"a".to_vec(), changes: vec![] },
            ],
        };
        let s = MvccStore::restore(snap);
        let restored = s.snapshot().unwrap();
        assert_eq!(restored.keys.len(), 1);
        let mains: Vec<i64> = restored.keys[0].changes.iter().map(|c| c.main).collect();
        assert_eq!(mains, vec![2, 4]);
    }
}
