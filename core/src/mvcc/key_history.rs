//! The retained versions of one key, oldest first: the unit that reads at a revision, watch
//! replay and compaction work on.

use std::sync::Arc;

use crate::kv::{Event, EventType, KeyValue};

/// Where a change sits in the global order: the write transaction's main revision and the
/// change's position inside it. Changes of one transaction share `main` and differ in `sub`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Revision {
    pub(crate) main: i64,
    pub(crate) sub: i64,
}

/// A version that made the key live. The value is shared (`Arc`) so that copies of the store and
/// read results do not duplicate large values until they are turned into a [`KeyValue`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Live {
    pub(crate) create_revision: i64,
    pub(crate) version: i64,
    pub(crate) value: Arc<[u8]>,
    pub(crate) lease: i64,
}

/// One change of the key: a put (a live version) or a delete (a tombstone ending a generation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) rev: Revision,
    /// `None` is a tombstone.
    pub(crate) live: Option<Live>,
}

impl Change {
    /// This change as etcd's `KeyValue`; a tombstone gives only key and mod revision, as etcd
    /// sends deletes to watchers.
    pub(crate) fn to_key_value(&self, key: &[u8]) -> KeyValue {
        match &self.live {
            Some(live) => live_key_value(key, self.rev.main, live),
            None => {
                KeyValue { key: key.to_vec(), mod_revision: self.rev.main, ..KeyValue::default() }
            }
        }
    }
}

/// The `KeyValue` of a live version written at main revision `mod_revision`.
pub(crate) fn live_key_value(key: &[u8], mod_revision: i64, live: &Live) -> KeyValue {
    KeyValue {
        key: key.to_vec(),
        create_revision: live.create_revision,
        mod_revision,
        version: live.version,
        value: live.value.to_vec(),
        lease: live.lease,
    }
}

/// What one retained change counts towards the space quota: its key, its value and a fixed
/// allowance for the revision and metadata stored with it (as etcd's backend stores them).
pub(crate) fn change_bytes(key: &[u8], change: &Change) -> u64 {
    (key.len() + change.live.as_ref().map_or(0, |l| l.value.len())) as u64 + super::REVISION_OVERHEAD
}

/// Every retained change of one key in revision order. Never empty while stored in the key
/// space (a key whose history compaction empties is removed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyHistory {
    pub(crate) changes: Vec<Change>,
}

impl KeyHistory {
    /// Index one past the last change with main revision `<= rev`.
    fn end_at(&self, rev: i64) -> usize {
        self.changes.partition_point(|c| c.rev.main <= rev)
    }

    /// The change in effect at main revision `rev` (the latest one at or before it).
    pub(crate) fn at(&self, rev: i64) -> Option<&Change> {
        match self.end_at(rev) {
            0 => None,
            n => self.changes.get(n - 1),
        }
    }

    /// The live version at `rev`, with its mod revision; `None` when the key did not exist then.
    pub(crate) fn live_at(&self, rev: i64) -> Option<(i64, &Live)> {
        self.at(rev).and_then(|c| c.live.as_ref().map(|l| (c.rev.main, l)))
    }

    /// The newest change, including uncommitted ones of a write in progress.
    pub(crate) fn latest(&self) -> Option<&Change> {
        self.changes.last()
    }

    /// The newest live version with its mod revision, if the key currently exists.
    pub(crate) fn latest_live(&self) -> Option<(i64, &Live)> {
        self.latest().and_then(|c| c.live.as_ref().map(|l| (c.rev.main, l)))
    }

    /// What the key's retained changes count towards the space quota.
    pub(crate) fn bytes(&self, key: &[u8]) -> u64 {
        self.changes.iter().map(|c| change_bytes(key, c)).sum()
    }

    /// Appends a change; callers guarantee `rev` is newer than every retained change.
    pub(crate) fn push(&mut self, change: Change) {
        self.changes.push(change);
    }

    /// Drops every change with main revision `main` (undo of an aborted write transaction).
    pub(crate) fn drop_main(&mut self, main: i64) {
        while self.changes.last().is_some_and(|c| c.rev.main == main) {
            self.changes.pop();
        }
    }

    /// Discards what compaction at `rev` makes unreachable: everything before the change in
    /// effect at `rev`, and that change too when it is a tombstone. Returns whether the history
    /// is now empty.
    pub(crate) fn compact(&mut self, rev: i64) -> bool {
        let end = self.end_at(rev);
        if end > 0 {
            let in_effect_is_live = self.changes.get(end - 1).is_some_and(|c| c.live.is_some());
            let keep_from = if in_effect_is_live { end - 1 } else { end };
            self.changes.drain(..keep_from);
        }
        self.changes.is_empty()
    }

    /// The change at `index` as a watch event, with the previous live version when retained.
    pub(crate) fn event(&self, key: &[u8], index: usize) -> Option<(Revision, Event)> {
        let change = self.changes.get(index)?;
        let prev_kv = index
            .checked_sub(1)
            .and_then(|i| self.changes.get(i))
            .filter(|p| p.live.is_some())
            .map(|p| p.to_key_value(key));
        let kind = if change.live.is_some() { EventType::Put } else { EventType::Delete };
        Some((change.rev, Event { kind, kv: change.to_key_value(key), prev_kv }))
    }

    /// Indexes of the changes with main revision `>= start`.
    pub(crate) fn indexes_since(&self, start: i64) -> std::ops::Range<usize> {
        self.changes.partition_point(|c| c.rev.main < start)..self.changes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(main: i64, sub: i64, version: i64, create: i64) -> Change {
        Change {
            rev: Revision { main, sub },
            live: Some(Live {
                create_revision: create,
                version,
                value: Arc::from(&b"v"[..]),
                lease: 0,
            }),
        }
    }

    fn tomb(main: i64) -> Change {
        Change { rev: Revision { main, sub: 0 }, live: None }
    }

    fn history(changes: Vec<Change>) -> KeyHistory {
        KeyHistory { changes }
    }

    #[test]
    fn reads_at_a_revision_see_the_change_in_effect() {
        let h = history(vec![put(2, 0, 1, 2), put(4, 0, 2, 2), tomb(6), put(8, 0, 1, 8)]);
        assert!(h.at(1).is_none());
        assert_eq!(h.live_at(3).map(|(m, l)| (m, l.version)), Some((2, 1)));
        assert_eq!(h.live_at(5).map(|(m, l)| (m, l.version)), Some((4, 2)));
        assert!(h.live_at(6).is_none());
        assert!(h.live_at(7).is_none());
        assert_eq!(h.live_at(100).map(|(m, l)| (m, l.create_revision)), Some((8, 8)));
    }

    #[test]
    fn compaction_keeps_the_version_in_effect_unless_it_is_a_tombstone() {
        let mut h = history(vec![put(2, 0, 1, 2), put(4, 0, 2, 2), tomb(6), put(8, 0, 1, 8)]);
        assert!(!h.compact(5));
        assert_eq!(h.changes.iter().map(|c| c.rev.main).collect::<Vec<_>>(), vec![4, 6, 8]);
        assert!(!h.compact(7));
        assert_eq!(h.changes.iter().map(|c| c.rev.main).collect::<Vec<_>>(), vec![8]);

        let mut gone = history(vec![put(2, 0, 1, 2), tomb(3)]);
        assert!(gone.compact(3), "a tombstone at the compaction revision goes too");
    }

    #[test]
    fn events_carry_the_previous_live_version() {
        let h = history(vec![put(2, 0, 1, 2), tomb(3), put(4, 0, 1, 4)]);
        let (_, del) = h.event(b"k", 1).unwrap();
        assert_eq!(del.kind, EventType::Delete);
        assert_eq!(del.kv, KeyValue { key: b"k".to_vec(), mod_revision: 3, ..Default::default() });
        assert_eq!(del.prev_kv.unwrap().mod_revision, 2);
        let (_, put_after_delete) = h.event(b"k", 2).unwrap();
        assert!(put_after_delete.prev_kv.is_none());
        assert_eq!(h.indexes_since(3), 1..3);
    }

    #[test]
    fn undo_drops_only_the_aborted_revision() {
        let mut h = history(vec![put(2, 0, 1, 2), put(3, 0, 2, 2), put(3, 1, 3, 2)]);
        h.drop_main(3);
        assert_eq!(h.changes.len(), 1);
        h.drop_main(3);
        assert_eq!(h.changes.len(), 1);
    }
}
