//! The retained versions of one key, oldest first: the unit that reads at a revision, watch
//! replay and compaction work on.

use crate::api::kv::KeyValue;

/// Where a change sits in the global order: the write transaction's main revision and the
/// change's position inside it. Changes of one transaction share `main` and differ in `sub`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Revision {
    pub(crate) main: i64,
    pub(crate) sub: i64,
}

/// A version that made the key live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Live {
    pub(crate) create_revision: i64,
    pub(crate) version: i64,
    pub(crate) value: Vec<u8>,
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
            None => KeyValue { key: key.to_vec(), mod_revision: self.rev.main, ..KeyValue::default() },
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
        value: live.value.clone(),
        lease: live.lease,
    }
}

/// What one retained change counts towards the space quota: its key, its value and a fixed
/// allowance for the revision and metadata stored with it (as etcd's backend stores them).
pub(crate) fn change_bytes(key: &[u8], change: &Change) -> u64 {
    (key.len() + change.live.as_ref().map_or(0, |l| l.value.len())) as u64 + super::REVISION_OVERHEAD
}

/// Whether compaction at `compacted` discards `change`, whose key's next change (if any) is at
/// main revision `next`: every version superseded at or before `compacted`, and the version
/// in effect at `compacted` when it is a deletion. The one rule for the reads (which must not
/// see what compaction discarded while its deletion is still under way) and the deletion.
pub(crate) fn is_discarded(change: &Change, next: Option<i64>, compacted: i64) -> bool {
    change.rev.main <= compacted && (change.live.is_none() || next.is_some_and(|n| n <= compacted))
}

/// Every retained change of one key in revision order, as a read gathers them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyHistory {
    pub(crate) changes: Vec<Change>,
}

impl KeyHistory {
    /// The history without what compaction at `compacted` discarded (see [`is_discarded`]):
    /// always a prefix, as every change up to `compacted` but the last is superseded.
    pub(crate) fn without_discarded(mut self, compacted: i64) -> KeyHistory {
        let upto = self.changes.partition_point(|c| c.rev.main <= compacted);
        let discarded = match upto.checked_sub(1).and_then(|i| self.changes.get(i)) {
            Some(last) if !is_discarded(last, self.changes.get(upto).map(|c| c.rev.main), compacted) => upto - 1,
            _ => upto,
        };
        self.changes.drain(..discarded);
        self
    }

    /// The change in effect at main revision `rev` (the latest one at or before it).
    pub(crate) fn at(&self, rev: i64) -> Option<&Change> {
        match self.changes.partition_point(|c| c.rev.main <= rev) {
            0 => None,
            n => self.changes.get(n - 1),
        }
    }

    /// The live version at `rev`, with its mod revision; `None` when the key did not exist then.
    pub(crate) fn live_at(&self, rev: i64) -> Option<(i64, &Live)> {
        self.at(rev).and_then(|c| c.live.as_ref().map(|l| (c.rev.main, l)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_skip_exactly_what_the_deletion_discards() {
        // put 2, put 3, delete 5, put 7, put 8.
        let history = KeyHistory { changes: vec![put(2, 1, 2), put(3, 2, 2), tomb(5), put(7, 1, 7), put(8, 2, 7)] };
        for compacted in 0..10 {
            let kept = history.clone().without_discarded(compacted);
            let by_rule: Vec<Change> = history
                .changes
                .iter()
                .enumerate()
                .filter(|(i, c)| !is_discarded(c, history.changes.get(i + 1).map(|n| n.rev.main), compacted))
                .map(|(_, c)| c.clone())
                .collect();
            assert_eq!(kept.changes, by_rule, "compacted at {compacted}");
            for rev in compacted.max(1)..10 {
                assert_eq!(
                    kept.live_at(rev).map(|(m, _)| m),
                    history.live_at(rev).map(|(m, _)| m),
                    "reads at {rev} unchanged"
                );
            }
        }
        assert_eq!(history.clone().without_discarded(6).changes.len(), 2, "the deletion in effect at 6 goes");
        assert_eq!(history.without_discarded(3).changes.len(), 4, "the version in effect at 3 stays");
    }

    fn put(main: i64, version: i64, create: i64) -> Change {
        Change {
            rev: Revision { main, sub: 0 },
            live: Some(Live { create_revision: create, version, value: b"v".to_vec(), lease: 0 }),
        }
    }

    fn tomb(main: i64) -> Change {
        Change { rev: Revision { main, sub: 0 }, live: None }
    }

    #[test]
    fn reads_at_a_revision_see_the_change_in_effect() {
        let h = KeyHistory { changes: vec![put(2, 1, 2), put(4, 2, 2), tomb(6), put(8, 1, 8)] };
        assert!(h.at(1).is_none());
        assert_eq!(h.live_at(3).map(|(m, l)| (m, l.version)), Some((2, 1)));
        assert_eq!(h.live_at(5).map(|(m, l)| (m, l.version)), Some((4, 2)));
        assert!(h.live_at(6).is_none());
        assert!(h.live_at(7).is_none());
        assert_eq!(h.live_at(100).map(|(m, l)| (m, l.create_revision)), Some((8, 8)));
    }
}
