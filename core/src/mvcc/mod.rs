//! The MVCC key space (etcd v3.4's model): every key keeps its history of versions under
//! cluster-wide revisions, so reads can name a past revision and watches can replay changes,
//! until compaction discards what is no longer needed.
//!
//! Layout: `key_history` holds one key's versions, `range` serves reads, `write` applies
//! puts and deletes of one write transaction (with undo), `compare` and `txn` run
//! transactions, `compact` discards history, `replay` feeds watches, `snapshot` copies and
//! digests the whole store.

mod compact;
mod compare;
mod key_history;
mod range;
mod replay;
mod snapshot;
mod txn;
mod write;

#[cfg(test)]
mod test_util;

pub use snapshot::MvccSnapshot;

use crate::error::Result;
use crate::kv::Event;
use crate::request::{
    CompactionResponse, DeleteRangeRequest, HashKvResponse, DeleteRangeResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use range::KeySpace;
use write::Writer;

/// What each retained change counts towards the space quota beyond its key and value: the
/// revision and metadata stored with it, as etcd's backend stores them.
pub(crate) const REVISION_OVERHEAD: u64 = 64;

/// The replicated key space of one member. Deterministic: the same writes in the same order give
/// equal stores (compared with `==` or, across replicas, with [`MvccStore::hash`]).
#[derive(Clone, Debug, PartialEq)]
pub struct MvccStore {
    keys: KeySpace,
    current_revision: i64,
    compact_revision: i64,
    /// What the retained history counts towards the space quota (see `change_bytes`).
    bytes: u64,
}

/// The answer to a write together with the changes it made, which the lessor (to track which
/// keys a lease holds) and the watchers (to notify) consume.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied<T> {
    /// What the client gets back.
    pub response: T,
    /// The write's changes in (revision, sub-revision) order; `prev_kv` is always filled when a
    /// previous live version existed, whatever the request asked for.
    pub events: Vec<Event>,
}

impl Default for MvccStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MvccStore {
    /// An empty key space at revision 1 with nothing compacted, like a fresh etcd.
    pub fn new() -> Self {
        MvccStore { keys: KeySpace::new(), current_revision: 1, compact_revision: 0, bytes: 0 }
    }

    /// The bytes the retained history takes for the space quota (`--quota-backend-bytes`):
    /// every retained version's key and value plus a per-revision allowance. Compaction frees
    /// them, as compaction and defragmentation free etcd's backend.
    pub fn size_bytes(&self) -> u64 {
        self.bytes
    }

    /// The revision of the last write transaction that changed something (1 when none has);
    /// every response header carries it.
    pub fn current_revision(&self) -> i64 {
        self.current_revision
    }

    /// The revision of the last compaction (0 when none): reads and watches below it fail.
    pub fn compact_revision(&self) -> i64 {
        self.compact_revision
    }

    /// Reads keys, at the current or a past revision, with etcd's count/filter/sort/limit rules.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        range::range(&self.keys, req, self.current_revision, self.compact_revision)
    }

    /// Writes one key at a new revision. `lease_exists` answers whether a lease is granted (the
    /// lessor lives outside the key space); a put naming an unknown lease fails.
    pub fn put(
        &mut self,
        req: &PutRequest,
        lease_exists: &dyn Fn(i64) -> bool,
    ) -> Result<Applied<PutResponse>> {
        self.write(|w| w.put(req, lease_exists), |r, rev| r.header.revision = rev)
    }

    /// Deletes one key or a range; bumps the revision only when something was deleted.
    pub fn delete_range(
        &mut self,
        req: &DeleteRangeRequest,
    ) -> Result<Applied<DeleteRangeResponse>> {
        self.write(|w| w.delete_range(req), |r, rev| r.header.revision = rev)
    }

    /// Runs a transaction atomically: on any error nothing changes.
    pub fn txn(
        &mut self,
        req: &TxnRequest,
        lease_exists: &dyn Fn(i64) -> bool,
    ) -> Result<Applied<TxnResponse>> {
        let (response, events) = txn::run(self, req, lease_exists)?;
        Ok(Applied { response, events })
    }

    /// Discards history before `revision`: per key the version in effect at `revision` is kept
    /// (unless it is a deletion), plus everything after. The revision does not change.
    pub fn compact(&mut self, revision: i64) -> Result<CompactionResponse> {
        compact::compact(self, revision)
    }

    /// Watch replay: every retained event with revision >= `start` in [`key`, `range_end`),
    /// ordered by (revision, sub), `prev_kv` filled when that version is still retained;
    /// `Err(Compacted)` if `start` is below the compaction revision.
    pub fn events_since(&self, start: i64, key: &[u8], range_end: &[u8]) -> Result<Vec<Event>> {
        replay::events_since(self, start, key, range_end)
    }

    /// The whole store as serializable data, for Raft snapshots.
    pub fn snapshot(&self) -> MvccSnapshot {
        snapshot::snapshot(self)
    }

    /// Rebuilds a store from [`MvccStore::snapshot`]'s output: `restore(s.snapshot()) == s`.
    pub fn restore(snap: MvccSnapshot) -> Self {
        snapshot::restore(snap)
    }

    /// A deterministic digest (FNV-1a) of the revisions and every retained version: replicas
    /// that applied the same log agree on it, so a mismatch reveals divergence.
    pub fn hash(&self) -> u64 {
        snapshot::hash(self)
    }

    /// etcd's HashKV: a digest of every version at or below `revision` (0: the current one)
    /// that compaction kept. Errors as a Range at that revision would.
    pub fn hash_kv(&self, revision: i64) -> Result<HashKvResponse> {
        let revision = if revision <= 0 { self.current_revision } else { revision };
        if revision > self.current_revision {
            return Err(crate::error::Error::FutureRevision);
        }
        if revision < self.compact_revision {
            return Err(crate::error::Error::Compacted);
        }
        let hash = snapshot::hash_up_to(self, revision);
        Ok(HashKvResponse { hash, compact_revision: self.compact_revision, ..Default::default() })
    }

    /// Runs one write operation as a write transaction: commit on success (stamping the header
    /// with the resulting revision), undo on error.
    fn write<T>(
        &mut self,
        op: impl FnOnce(&mut Writer<'_>) -> Result<T>,
        stamp: impl FnOnce(&mut T, i64),
    ) -> Result<Applied<T>> {
        let mut w = Writer::begin(self)?;
        match op(&mut w) {
            Ok(mut response) => {
                let (revision, events) = w.commit();
                stamp(&mut response, revision);
                Ok(Applied { response, events })
            }
            Err(e) => {
                w.abort();
                Err(e)
            }
        }
    }
}
