//! Durable storage for one member: the Raft log, the hard state, where the log was last
//! compacted, and (through [`Storage::engine`]) the applied state.
//!
//! The core (`keel_core::node::Node`) says *what* must be durable through
//! [`Persist`] and [`LocalSnapshot`]; a [`Storage`] says *how*. The rules
//! are written down once, in `keel_core::node::Recovery::write` (the core's in-memory reference,
//! which `MemStorage` and `LocalCluster` use and the fjall store is tested against):
//!
//! - a `Persist` applies its `snapshot` first (the stored log restarts after it: every stored
//!   entry is dropped), then its `entries` (stored entries at `entries[0].index` and after are
//!   dropped, then these are stored), then its `hard_state`;
//! - `keep_snapshot` stores a snapshot the member took and drops entries up to `compact_to`;
//! - `recover` returns the newest snapshot, the hard state and every stored entry in index order.
//!
//! Writes are staged by [`Storage::write`] and made durable by one [`Storage::sync`] (group
//! commit); the driver acknowledges a `Persist` to the core only after the sync that covers it.
//!
//! Two implementations: [`FjallStorage`] on disk (production) and [`MemStorage`] in memory (tests
//! and the simulator, which cannot run fjall's threads), whose [`MemStorage::crash`] models a
//! power loss by dropping everything written since the last sync.

mod fjall;
mod fjall_engine;
mod memory;

#[cfg(test)]
mod fjall_tests;
#[cfg(test)]
mod tests;

pub use self::fjall::FjallStorage;
pub use self::fjall_engine::FjallEngine;
pub use self::memory::MemStorage;

use keel_core::node::{LocalSnapshot, Persist, Recovery};
use keel_core::state::engine::Engine;

/// Why a storage operation failed, in words an operator can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The operating system refused or failed an operation (permissions, missing or unusable
    /// directory, full disk, failed fsync). The message names the path and the cause.
    #[error("{0}")]
    Io(String),
    /// What is stored does not read back as what was written (a checksum mismatch, a truncated or
    /// overwritten file, an unknown format). The member must not start from it.
    #[error("{0}")]
    Corrupt(String),
    /// Another process (or another handle in this one) holds the data directory.
    #[error("{0}")]
    Locked(String),
}

/// The ids a data directory was made for. A joined member's were chosen by `member add`, so
/// they cannot be derived from its flags and a restart must not forget them; a founding
/// member's are kept too, so a restart under another cluster's flags is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberIdentity {
    pub member_id: u64,
    pub cluster_id: u64,
}

/// Where a member keeps what Raft needs to survive a restart. See the module documentation for
/// the rules every implementation follows.
pub trait Storage: Send + 'static {
    /// What a restarting member reads back; `None` when the store is new (nothing was ever
    /// written to it, so it never held a member).
    fn recover(&mut self) -> Result<Option<Recovery>, StorageError>;

    /// Stage one `Persist`: its snapshot, then its entries, then its hard state, as one atomic
    /// step. Not durable until the next [`Storage::sync`].
    fn write(&mut self, persist: &Persist) -> Result<(), StorageError>;

    /// Make everything staged so far durable (fsync). The driver may stage several `Persist`s,
    /// sync once, then acknowledge the last one's number.
    fn sync(&mut self) -> Result<(), StorageError>;

    /// How long the next sync takes beyond the call itself: nothing for real disks (their sync
    /// blocks for as long as it takes), a simulated slow disk's latency in the simulator, whose
    /// clock only moves while the driver waits.
    fn sync_latency(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// Keep a snapshot the member took and drop stored entries with index `<= compact_to`, as one
    /// atomic step (so no crash can leave the entries gone without the snapshot). Not
    /// necessarily durable before returning; the next `sync` covers it.
    fn keep_snapshot(&mut self, snap: &LocalSnapshot) -> Result<(), StorageError>;

    /// Approximate bytes the store occupies, for the db-size metric and `dbSize` in Status (the
    /// space quota counts the key space instead: `MvccStore::size_bytes`).
    fn size_bytes(&self) -> u64;

    /// The engine that holds the member's applied state, in the same store: every
    /// [`Storage::sync`] makes the batches committed to it so far durable too (so a crash keeps
    /// a prefix of them), and a crash never keeps a state batch without the log writes before it.
    fn engine(&self) -> Box<dyn Engine>;

    /// The identity kept by [`Storage::keep_identity`], if any.
    fn identity(&self) -> Result<Option<MemberIdentity>, StorageError>;

    /// Keep the member's identity, durably before returning. Kept apart from the log: a
    /// store holding only an identity still recovers as new.
    fn keep_identity(&mut self, identity: MemberIdentity) -> Result<(), StorageError>;
}

impl<S: Storage + ?Sized> Storage for Box<S> {
    fn recover(&mut self) -> Result<Option<Recovery>, StorageError> {
        (**self).recover()
    }

    fn write(&mut self, persist: &Persist) -> Result<(), StorageError> {
        (**self).write(persist)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        (**self).sync()
    }

    fn sync_latency(&self) -> std::time::Duration {
        (**self).sync_latency()
    }

    fn keep_snapshot(&mut self, snap: &LocalSnapshot) -> Result<(), StorageError> {
        (**self).keep_snapshot(snap)
    }

    fn size_bytes(&self) -> u64 {
        (**self).size_bytes()
    }

    fn engine(&self) -> Box<dyn Engine> {
        (**self).engine()
    }

    fn identity(&self) -> Result<Option<MemberIdentity>, StorageError> {
        (**self).identity()
    }

    fn keep_identity(&mut self, identity: MemberIdentity) -> Result<(), StorageError> {
        (**self).keep_identity(identity)
    }
}
