//! [`MemStorage`]: the storage rules in memory, with a power-loss model. No threads, no files, so
//! it runs inside the madsim simulator and in plain unit tests.

use keel_core::node::{LocalSnapshot, Persist, Recovery};
use keel_core::state::engine::{Engine, MemEngine};

use super::{MemberIdentity, Storage, StorageError};

/// One copy of everything a store holds.
#[derive(Clone, Debug, Default)]
struct State {
    /// Whether anything was ever written (a store that never held a member recovers to `None`).
    written: bool,
    /// The stored log, by the core's rules.
    stored: Recovery,
}

impl State {
    fn write(&mut self, p: &Persist) {
        self.written = true;
        self.stored.write(p.clone());
    }

    fn keep_snapshot(&mut self, snap: &LocalSnapshot) {
        self.written = true;
        self.stored.keep_snapshot(snap.snapshot.clone(), snap.compact_to);
    }

    fn recovery(&self) -> Option<Recovery> {
        self.written.then(|| self.stored.clone())
    }
}

/// A staged change not yet covered by a sync.
#[derive(Clone, Debug)]
enum Op {
    Write(Persist),
    KeepSnapshot(LocalSnapshot),
}

/// In-memory [`Storage`] for tests and the simulator. It keeps what a disk would have made
/// durable apart from what was merely written, so [`MemStorage::crash`] can model a power loss.
/// A clone is an independent copy (clones share nothing), so a test can fork a store.
#[derive(Debug, Default)]
pub struct MemStorage {
    /// What reads see: everything written, synced or not.
    current: State,
    /// What survives a crash: everything covered by a sync.
    durable: State,
    /// Writes since the last sync, in order; a sync replays them onto `durable`.
    pending: Vec<Op>,
    /// Kept durably at once, so a crash keeps it.
    identity: Option<MemberIdentity>,
    /// The applied state: synced and crashed with the log.
    engine: MemEngine,
}

impl Clone for MemStorage {
    fn clone(&self) -> Self {
        MemStorage {
            current: self.current.clone(),
            durable: self.durable.clone(),
            pending: self.pending.clone(),
            identity: self.identity,
            engine: self.engine.fork(),
        }
    }
}

impl MemStorage {
    /// An empty store (it recovers to `None` until something is written).
    pub fn new() -> Self {
        Self::default()
    }

    /// Model a power loss: forget everything written since the last [`Storage::sync`], keep
    /// everything before it.
    pub fn crash(&mut self) {
        self.pending.clear();
        self.current = self.durable.clone();
        self.engine.crash();
    }

    /// Whether some writes are not yet covered by a sync (a crash now would lose them).
    pub fn has_unsynced(&self) -> bool {
        !self.pending.is_empty()
    }
}

impl Storage for MemStorage {
    fn recover(&mut self) -> Result<Option<Recovery>, StorageError> {
        Ok(self.current.recovery())
    }

    fn write(&mut self, persist: &Persist) -> Result<(), StorageError> {
        self.current.write(persist);
        self.pending.push(Op::Write(persist.clone()));
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.engine.sync();
        for op in self.pending.drain(..) {
            match op {
                Op::Write(p) => self.durable.write(&p),
                Op::KeepSnapshot(s) => self.durable.keep_snapshot(&s),
            }
        }
        Ok(())
    }

    fn keep_snapshot(&mut self, snap: &LocalSnapshot) -> Result<(), StorageError> {
        self.current.keep_snapshot(snap);
        self.pending.push(Op::KeepSnapshot(snap.clone()));
        Ok(())
    }

    fn size_bytes(&self) -> u64 {
        // Roughly what the on-disk encoding takes: payload plus index, term and checksum.
        let entries: u64 = self.current.stored.entries.iter().map(|e| e.bytes.len() as u64 + 20).sum();
        let snapshot = self.current.stored.snapshot.as_ref().map_or(0, |s| s.bytes.len() as u64 + 20);
        entries + snapshot + 28 + self.engine.size_bytes()
    }

    fn engine(&self) -> Box<dyn Engine> {
        Box::new(self.engine.clone())
    }

    fn identity(&self) -> Result<Option<MemberIdentity>, StorageError> {
        Ok(self.identity)
    }

    fn keep_identity(&mut self, identity: MemberIdentity) -> Result<(), StorageError> {
        self.identity = Some(identity);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use keel_core::cluster::Disk;
    use keel_core::node::{HardState, LogEntry};
    use proptest::prelude::*;

    use super::*;
    use crate::storage::tests::{arb_step, assert_recovers_to, check_all, Harness, Step};

    struct Mem;

    impl Harness for Mem {
        type S = MemStorage;
        fn fresh(&mut self) -> MemStorage {
            MemStorage::new()
        }
        /// Everything before a restart was synced, so a crash must lose nothing.
        fn restart(&mut self, mut store: MemStorage) -> MemStorage {
            store.crash();
            store
        }
    }

    #[test]
    fn the_shared_behaviour_holds() {
        check_all(&mut Mem);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

        /// The in-memory engine keeps the contract the fjall one is held to (`fjall_tests`).
        #[test]
        fn engine_steps_match_the_model(steps in proptest::collection::vec(super::super::tests::arb_engine_step(), 1..40)) {
            super::super::tests::engine_steps_match_the_model(&mut Mem, &steps);
        }
    }

    #[test]
    fn a_crash_keeps_what_was_synced_and_loses_the_rest() {
        let mut s = MemStorage::new();
        let e = |i| LogEntry { index: i, term: 1, bytes: vec![i as u8] };
        s.write(&Persist { number: 1, entries: vec![e(1), e(2)], ..Default::default() }).unwrap();
        s.sync().unwrap();
        s.write(&Persist { number: 2, entries: vec![e(3)], ..Default::default() }).unwrap();
        assert!(s.has_unsynced());
        s.crash();
        let r = s.recover().unwrap().unwrap();
        assert_eq!(r.entries, vec![e(1), e(2)]);
        assert!(!s.has_unsynced());
    }

    #[test]
    fn a_crash_before_any_sync_leaves_a_new_store() {
        let mut s = MemStorage::new();
        s.write(&Persist {
            number: 1,
            hard_state: Some(HardState { term: 1, vote: 1, commit: 0 }),
            ..Default::default()
        })
        .unwrap();
        assert!(s.recover().unwrap().is_some());
        s.crash();
        assert!(s.recover().unwrap().is_none());
    }

    #[test]
    fn clones_share_nothing() {
        let mut a = MemStorage::new();
        a.write(&Persist {
            number: 1,
            hard_state: Some(HardState { term: 2, vote: 1, commit: 0 }),
            ..Default::default()
        })
        .unwrap();
        let mut b = a.clone();
        a.sync().unwrap();
        b.crash();
        assert!(b.recover().unwrap().is_none(), "the clone's unsynced write is its own");
        assert_eq!(a.recover().unwrap().unwrap().hard_state.term, 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// After every step the store reads back exactly what `Disk` (the core's reference) holds
        /// for the writes that count: all of them, or, after a crash, those covered by a sync.
        #[test]
        fn crashes_lose_exactly_the_unsynced_writes(steps in proptest::collection::vec(arb_step(), 1..60)) {
            let mut store = MemStorage::new();
            // The model: what is written, and what was synced; `None` until the first write.
            let mut current: Option<Disk> = None;
            let mut durable: Option<Disk> = None;
            for step in steps {
                match step {
                    Step::Write(p) => {
                        store.write(&p).unwrap();
                        current.get_or_insert_with(Disk::default).write(p);
                    }
                    Step::KeepSnapshot(s) => {
                        store.keep_snapshot(&s).unwrap();
                        current.get_or_insert_with(Disk::default).keep_snapshot(&s.snapshot, s.compact_to);
                    }
                    Step::Sync => {
                        store.sync().unwrap();
                        durable = current.clone();
                    }
                    Step::Crash => {
                        store.crash();
                        current = durable.clone();
                    }
                }
                assert_recovers_to(&store.recover().unwrap(), current.as_ref());
            }
        }
    }
}
