//! The simulated disk: the in-memory store shared between a member's incarnations (so a crash
//! loses only what was not synced), with switches for disk faults.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use keel_core::node::{LocalSnapshot, Persist, Recovery};
use keel_server::storage::{MemStorage, MemberIdentity, Storage, StorageError};
use parking_lot::Mutex;

/// A member's disk, shared by the sim (which crashes it) and the member (which writes it).
#[derive(Clone, Default)]
pub struct SimDisk {
    store: Arc<Mutex<MemStorage>>,
    /// While set, every sync fails (a dying disk); the member must stop, not acknowledge.
    failing: Arc<AtomicBool>,
    /// Milliseconds every sync takes (a slow or overloaded disk); 0 for a fast one.
    sync_ms: Arc<AtomicU64>,
}

impl SimDisk {
    /// A new, empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    /// Power loss: everything written since the last sync is gone.
    pub fn crash(&self) {
        self.store.lock().crash();
    }

    /// Replace everything on the disk with nothing (an operator emptying the data directory).
    pub fn wipe(&self) {
        *self.store.lock() = MemStorage::new();
    }

    /// Make syncs fail (or succeed again).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Make every sync take `ms` milliseconds (0: fast again).
    pub fn set_sync_ms(&self, ms: u64) {
        self.sync_ms.store(ms, Ordering::SeqCst);
    }
}

impl Storage for SimDisk {
    fn recover(&mut self) -> Result<Option<Recovery>, StorageError> {
        self.store.lock().recover()
    }

    fn write(&mut self, persist: &Persist) -> Result<(), StorageError> {
        self.store.lock().write(persist)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StorageError::Io("simulated fsync failure".into()));
        }
        self.store.lock().sync()
    }

    fn sync_latency(&self) -> Duration {
        Duration::from_millis(self.sync_ms.load(Ordering::SeqCst))
    }

    fn keep_snapshot(&mut self, snap: &LocalSnapshot) -> Result<(), StorageError> {
        self.store.lock().keep_snapshot(snap)
    }

    fn size_bytes(&self) -> u64 {
        self.store.lock().size_bytes()
    }

    fn engine(&self) -> Box<dyn keel_core::state::engine::Engine> {
        self.store.lock().engine()
    }

    fn identity(&self) -> Result<Option<MemberIdentity>, StorageError> {
        self.store.lock().identity()
    }

    fn keep_identity(&mut self, identity: MemberIdentity) -> Result<(), StorageError> {
        self.store.lock().keep_identity(identity)
    }
}
