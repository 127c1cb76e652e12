//! What a member's disk holds, by the rules of [`Persist`], written down once: `LocalCluster`'s
//! disks, the simulator's `MemStorage` and [`Persist::merge`] all follow them here, and the fjall
//! store is tested against them.

use super::output::{HardState, LogEntry, Persist, SnapshotRecord};

/// A member's stored log: what its disk holds, and what it recovers from it on a restart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The newest snapshot stored, if any.
    pub snapshot: Option<SnapshotRecord>,
    pub hard_state: HardState,
    /// Stored entries, in index order.
    pub entries: Vec<LogEntry>,
}

impl Recovery {
    /// Carry out one `Persist` (what a store does before it fsyncs).
    pub fn write(&mut self, p: Persist) {
        fold_log(&mut self.snapshot, &mut self.entries, p.snapshot, p.entries);
        if let Some(hs) = p.hard_state {
            self.hard_state = hs;
        }
    }

    /// Keep a snapshot the member took and drop the entries up to `compact_to` (all of them for
    /// `u64::MAX`).
    pub fn keep_snapshot(&mut self, snapshot: SnapshotRecord, compact_to: u64) {
        self.snapshot = Some(snapshot);
        self.entries.retain(|e| e.index > compact_to);
    }
}

/// The stored-log rules: a snapshot restarts the log (every stored entry goes), and entries
/// replace every stored entry from their first index on.
pub(super) fn fold_log(
    snapshot: &mut Option<SnapshotRecord>,
    entries: &mut Vec<LogEntry>,
    later_snapshot: Option<SnapshotRecord>,
    later_entries: Vec<LogEntry>,
) {
    if later_snapshot.is_some() {
        *snapshot = later_snapshot;
        entries.clear();
    }
    if let Some(first) = later_entries.first() {
        let keep = entries.partition_point(|e| e.index < first.index);
        entries.truncate(keep);
        entries.extend(later_entries);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> LogEntry {
        LogEntry { index, term, bytes: vec![index as u8] }
    }

    #[test]
    fn later_entries_replace_the_tail_and_a_snapshot_restarts_the_log() {
        let mut stored = Recovery::default();
        stored.write(Persist { entries: vec![entry(1, 1), entry(2, 1), entry(3, 1)], ..Default::default() });
        stored.write(Persist { entries: vec![entry(2, 2)], ..Default::default() });
        assert_eq!(stored.entries, vec![entry(1, 1), entry(2, 2)]);
        let snap = SnapshotRecord { index: 9, term: 2, bytes: vec![] };
        stored.write(Persist { snapshot: Some(snap.clone()), entries: vec![entry(10, 2)], ..Default::default() });
        assert_eq!((stored.snapshot.as_ref(), stored.entries.clone()), (Some(&snap), vec![entry(10, 2)]));
        stored.keep_snapshot(snap, u64::MAX);
        assert!(stored.entries.is_empty());
    }
}
