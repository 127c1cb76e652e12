//! The member's in-memory copy of its Raft log, which raft-rs reads through its `Storage` trait.
//!
//! raft-rs's own `MemStorage` cannot serve here: its snapshots carry no application data, so a
//! lagging follower could never be caught up. This store keeps where the log was last compacted
//! (a snapshot's metadata: the applied state itself lives in the engine) beside the entries after
//! it, and, while a follower needs one, a snapshot with the state's data built for it. Durability
//! is not its job: the shell makes entries durable and acknowledges them to the node (see
//! `node::Ready::persist`).

use std::sync::Arc;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

/// Entries, hard state and the latest snapshot of one member.
#[derive(Default)]
pub struct LogStore {
    hard_state: HardState,
    conf_state: ConfState,
    /// Where the log was last compacted: everything up to its index is in the applied state.
    /// Metadata only.
    snapshot: Snapshot,
    /// A snapshot built when a follower needed one, served to followers until it has been
    /// sent: raft-rs gets its metadata, the state's data stays here (the node attaches it to the
    /// message without copying it, see `OutMessage::encode`).
    outgoing: Option<(Snapshot, Arc<Vec<u8>>)>,
    /// Index and term of the last entry dropped from the log (at or before the snapshot's
    /// index: entries after a local snapshot are kept a while for lagging followers).
    compacted: (u64, u64),
    /// Entries after `compacted`; `entries[i].index == compacted.0 + 1 + i`.
    entries: Vec<Entry>,
    /// Raft asked for a snapshot the stored one cannot serve (it predates the member it is
    /// for): the node should take a new one.
    snapshot_wanted: std::cell::Cell<bool>,
}

impl LogStore {
    /// Whether raft asked for a newer snapshot than the stored one since the last call.
    pub fn take_snapshot_wanted(&self) -> bool {
        self.snapshot_wanted.replace(false)
    }

    /// A log that starts with the given voters (a new cluster's bootstrap configuration), as if
    /// a snapshot at index 0 had carried it, so every member agrees on the first configuration.
    pub fn bootstrap(voters: Vec<u64>) -> Self {
        let mut store = LogStore::default();
        store.conf_state.voters = voters;
        store.snapshot.mut_metadata().set_conf_state(store.conf_state.clone());
        store
    }

    /// Rebuild from what the shell recovered from disk: the newest snapshot (possibly empty),
    /// the hard state, the entries after the snapshot, and how far the state has applied them.
    /// A stored log with a gap is refused: entries after it cannot be trusted.
    pub fn recover(
        snapshot: Snapshot,
        hard_state: HardState,
        entries: Vec<Entry>,
        applied: u64,
    ) -> Result<Self, String> {
        let meta = snapshot.get_metadata();
        let mut hard_state = hard_state;
        // A snapshot and an applied state hold only committed entries; a crash between storing
        // them and the hard state that committed them must not leave the commit index behind.
        hard_state.commit = hard_state.commit.max(meta.index).max(applied);
        hard_state.term = hard_state.term.max(meta.term);
        let mut store = LogStore {
            conf_state: meta.get_conf_state().clone(),
            compacted: (meta.index, meta.term),
            snapshot,
            outgoing: None,
            hard_state,
            entries: Vec::new(),
            snapshot_wanted: Default::default(),
        };
        let first = store.first();
        store.entries = entries.into_iter().filter(|e| e.index >= first).collect();
        let contiguous = store.entries.iter().enumerate().all(|(i, e)| e.index == first + i as u64);
        if !contiguous {
            return Err(format!("stored log has a gap after index {}", first - 1));
        }
        Ok(store)
    }

    fn first(&self) -> u64 {
        self.compacted.0 + 1
    }

    fn last(&self) -> u64 {
        self.entries.last().map_or(self.first() - 1, |e| e.index)
    }

    /// The durable vote, term and commit index raft-rs last reported.
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// Record a new hard state from a `Ready`.
    pub fn set_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    /// Record the commit index from a `LightReady` or after applying.
    pub fn set_commit(&mut self, commit: u64) {
        self.hard_state.commit = commit;
    }

    /// The configuration after the last applied configuration change.
    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    /// Remember a configuration applied from a ConfChange entry, for the next snapshot.
    pub fn set_conf_state(&mut self, cs: ConfState) {
        self.conf_state = cs;
    }

    /// Where the log was last compacted (metadata only).
    pub fn snapshot_ref(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Append entries from a `Ready`, replacing any conflicting suffix (a new leader may
    /// overwrite entries that were never committed). Entries before the snapshot are ignored.
    pub fn append(&mut self, entries: Vec<Entry>) {
        let first = self.first();
        let mut entries = entries.into_iter().skip_while(|e| e.index < first).peekable();
        let Some(head) = entries.peek() else { return };
        let keep = (head.index - first) as usize;
        self.entries.truncate(keep.min(self.entries.len()));
        self.entries.extend(entries);
    }

    /// Install a snapshot received from the leader: the log restarts after it.
    pub fn install_snapshot(&mut self, snapshot: Snapshot) {
        let meta = snapshot.get_metadata();
        let index = meta.index;
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.hard_state.commit = self.hard_state.commit.max(index);
        self.conf_state = meta.get_conf_state().clone();
        // raft-rs sends a snapshot only when the log cannot continue from it: start afresh.
        self.entries.clear();
        self.compacted = (index, meta.term);
        self.snapshot = snapshot;
        self.outgoing = None;
    }

    /// Record that the applied state holds everything up to `index` (which must be applied,
    /// hence in the log or at the current snapshot) and drop entries up to `compact_to`, keeping
    /// the ones a slightly lagging follower still needs. Returns false when `index` is not in the
    /// log.
    pub fn create_snapshot(&mut self, index: u64, compact_to: u64) -> bool {
        let Ok(term) = self.term(index) else { return false };
        if index <= self.snapshot.get_metadata().index {
            return false;
        }
        self.snapshot = self.metadata_at(index, term);
        let compact_to = compact_to.min(index);
        if compact_to > self.compacted.0 {
            if let Ok(compact_term) = self.term(compact_to) {
                self.entries.retain(|e| e.index > compact_to);
                self.compacted = (compact_to, compact_term);
            }
        }
        true
    }

    fn metadata_at(&self, index: u64, term: u64) -> Snapshot {
        let mut snapshot = Snapshot::default();
        let meta = snapshot.mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(self.conf_state.clone());
        snapshot
    }

    /// A snapshot's metadata for the applied state at `index` (which must still be in the
    /// log): taken when a snapshot for a follower starts, as the log may move on before the
    /// state's data is ready.
    pub fn metadata_at_index(&self, index: u64) -> Option<Snapshot> {
        self.term(index).ok().map(|term| self.metadata_at(index, term))
    }

    /// Keep `metadata` and `data` (the state at its index) as the snapshot to send followers.
    /// It answers the asks raft made while it was being built.
    pub fn set_outgoing_snapshot(&mut self, metadata: Snapshot, data: Vec<u8>) {
        self.outgoing = Some((metadata, Arc::new(data)));
        self.snapshot_wanted.set(false);
    }

    /// The state's data of the snapshot kept for followers, if it is the one at `index`.
    pub fn outgoing_data(&self, index: u64) -> Option<Arc<Vec<u8>>> {
        self.outgoing.as_ref().filter(|(s, _)| s.get_metadata().index == index).map(|(_, data)| data.clone())
    }

    /// The index of the snapshot kept for followers, while there is one: the log is not
    /// compacted past it until it has been sent (as etcd skips compaction while a snapshot is
    /// in flight), or the follower would need another one as soon as it installed this one.
    pub fn outgoing_index(&self) -> Option<u64> {
        self.outgoing.as_ref().map(|(s, _)| s.get_metadata().index)
    }

    /// Forget the snapshot built for followers (it has been sent, or failed to be).
    pub fn drop_outgoing_snapshot(&mut self) {
        self.outgoing = None;
    }
}

impl Storage for LogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(self.hard_state.clone(), self.conf_state.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let offset = self.first();
        let slice = &self.entries[(low - offset) as usize..(high - offset) as usize];
        let max = max_size.into().unwrap_or(u64::MAX);
        let mut size = 0u64;
        let mut out = Vec::with_capacity(slice.len());
        for entry in slice {
            size += protobuf::Message::compute_size(entry) as u64;
            if !out.is_empty() && size > max {
                break;
            }
            out.push(entry.clone());
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.compacted.0 {
            return Ok(self.compacted.1);
        }
        if idx < self.compacted.0 {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        self.entries
            .get((idx - self.first()) as usize)
            .map(|e| e.term)
            .ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        // A snapshot taken before `to` joined does not list it, and `to` would refuse it
        // (found by keel-sim seed 73: a learner added after the last snapshot never caught up).
        // One that does not reach the log's start cannot be followed by the log.
        let servable = self.outgoing.as_ref().map(|(s, _)| s).filter(|s| {
            let meta = s.get_metadata();
            let conf = meta.get_conf_state();
            let lists_to =
                [conf.get_voters(), conf.get_learners(), conf.get_voters_outgoing(), conf.get_learners_next()]
                    .iter()
                    .any(|ids| ids.contains(&to));
            meta.index >= request_index && meta.index >= self.compacted.0 && lists_to
        });
        match servable {
            Some(s) => Ok(s.clone()),
            None => {
                self.snapshot_wanted.set(true);
                Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_snapshot_answers_the_asks_made_while_it_was_built() {
        let mut log = LogStore::recover(Snapshot::default(), HardState::default(), vec![], 0).unwrap();
        assert!(log.snapshot(0, 2).is_err(), "nothing kept yet");
        let mut metadata = Snapshot::default();
        metadata.mut_metadata().mut_conf_state().set_voters(vec![1, 2]);
        log.set_outgoing_snapshot(metadata, vec![7; 10]);
        assert!(!log.take_snapshot_wanted(), "the ask is answered by the kept snapshot");
        let served = log.snapshot(0, 2).unwrap();
        assert!(served.get_data().is_empty(), "raft-rs gets the metadata; the data stays kept");
        assert_eq!(log.outgoing_data(0).map(|d| d.len()), Some(10));
    }
}
