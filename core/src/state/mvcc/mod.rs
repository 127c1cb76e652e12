//! The MVCC key space (etcd v3.4's model): every key keeps its history of versions under
//! cluster-wide revisions, so reads can name a past revision and watches can replay changes,
//! until compaction discards what is no longer needed.
//!
//! The versions live in an [`Engine`] (fjall on disk in production), laid out as `layout` says;
//! in memory stay only the revisions and the quota count. Layout: `layout` encodes the records,
//! `view` reads them, `range` serves reads, `write` applies puts and deletes of one write
//! transaction, `compare` and `txn` run transactions, `compact` discards history, `replay` feeds
//! watches, `snapshot` copies and digests the whole store.

mod compact;
mod compare;
mod key_history;
mod layout;
mod meta;
mod range;
mod replay;
mod snapshot;
mod txn;
mod view;
mod write;

#[cfg(test)]
mod test_util;

pub use snapshot::MvccSnapshot;

use crate::api::error::{Error, Result};
use crate::api::kv::Event;
use crate::api::request::{
    CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, HashKvResponse, PutRequest, PutResponse, RangeRequest,
    RangeResponse, TxnRequest, TxnResponse,
};
use crate::state::engine::{Batch, Engine, MemEngine, Overlay};
use view::{storage_error, View};
use write::Writer;

pub(crate) use meta::StoreMeta;

/// What each retained change counts towards the space quota beyond its key and value: the
/// revision and metadata stored with it, as etcd's backend stores them.
pub(crate) const REVISION_OVERHEAD: u64 = 64;

/// The replicated key space of one member, over the engine that holds its versions.
/// Deterministic: the same writes in the same order give equal stores (compared across replicas
/// with [`MvccStore::hash`]).
///
/// Writes are staged and reach the engine in one batch: at once for a store used on its own,
/// with the rest of an applied entry's changes when the state machine holds the batch open
/// (see `MvccStore::hold`).
pub struct MvccStore {
    engine: Box<dyn Engine>,
    /// Changes not yet committed to the engine; every read sees them.
    staged: Batch,
    /// Whether the state machine is gathering one entry's changes (commit waits for it).
    held: bool,
    meta: StoreMeta,
    /// The revisions as the engine last stored them (they are written only when they change).
    written: StoreMeta,
}

impl std::fmt::Debug for MvccStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MvccStore").field("meta", &self.meta).finish_non_exhaustive()
    }
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

/// Two stores are equal when they hold the same revisions and versions (an O(size) comparison,
/// for the unit tests).
#[cfg(test)]
impl PartialEq for MvccStore {
    fn eq(&self, other: &Self) -> bool {
        matches!((self.snapshot(), other.snapshot()), (Ok(a), Ok(b)) if a == b)
    }
}

/// A copy in memory: the same revisions and versions on a new [`MemEngine`] (for the unit tests,
/// which fork stores).
#[cfg(test)]
impl Clone for MvccStore {
    fn clone(&self) -> Self {
        MvccStore::restore(self.snapshot().expect("a store in memory reads back"))
    }
}

impl MvccStore {
    /// An empty key space at revision 1 with nothing compacted, like a fresh etcd, in memory.
    pub fn new() -> Self {
        MvccStore::with_meta(Box::new(MemEngine::new()), StoreMeta::default())
    }

    fn with_meta(engine: Box<dyn Engine>, meta: StoreMeta) -> Self {
        MvccStore { engine, staged: Batch::default(), held: false, meta, written: meta }
    }

    /// The key space `engine` holds (an empty one at revision 1 if it holds none).
    pub fn open(engine: Box<dyn Engine>) -> Result<Self> {
        let meta = StoreMeta::read(&*engine).map_err(storage_error)?;
        Ok(MvccStore::with_meta(engine, meta))
    }

    /// What reads see: the engine with the staged changes on top.
    pub(crate) fn reader(&self) -> Overlay<'_> {
        Overlay { base: &*self.engine, top: &self.staged }
    }

    /// Gather changes from now on until [`MvccStore::commit`], so that one applied entry's
    /// changes (with the state machine's own records) reach the engine as one batch.
    pub(crate) fn hold(&mut self) {
        self.held = true;
    }

    /// Commit everything staged, with `extra` records and the store's revisions, as one batch.
    pub(crate) fn commit(&mut self, extra: Batch) -> Result<()> {
        self.held = false;
        let mut batch = std::mem::take(&mut self.staged);
        // A replaced state (`clear`) rewrites them: the batch empties the space they are in.
        if batch.clear {
            self.meta.write(None, &mut batch);
        } else if self.meta != self.written {
            self.meta.write(Some(&self.written), &mut batch);
        }
        batch.extend(extra);
        self.engine.commit(batch).map_err(storage_error)?;
        self.written = self.meta;
        Ok(())
    }

    /// Commit what a write staged unless the state machine holds the batch open.
    fn settle(&mut self) -> Result<()> {
        match self.held {
            true => Ok(()),
            false => self.commit(Batch::default()),
        }
    }

    /// Replace the whole key space with `snap`, staged as one batch that first clears every
    /// space of the engine (the state machine adds its own records and commits).
    pub(crate) fn replace(&mut self, snap: MvccSnapshot) {
        let (batch, meta) = snapshot::restore_batch(snap);
        self.staged = batch;
        self.meta = meta;
    }

    /// The bytes the retained history takes for the space quota (`--quota-backend-bytes`):
    /// every retained version's key and value plus a per-revision allowance. Compaction frees
    /// them, as compaction and defragmentation free etcd's backend.
    pub fn size_bytes(&self) -> u64 {
        self.meta.bytes
    }

    /// The revision of the last write transaction that changed something (1 when none has);
    /// every response header carries it.
    pub fn current_revision(&self) -> i64 {
        self.meta.current_revision
    }

    /// The revision of the last compaction (0 when none): reads and watches below it fail.
    pub fn compact_revision(&self) -> i64 {
        self.meta.compact_revision
    }

    /// Reads keys, at the current or a past revision, with etcd's count/filter/sort/limit rules.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        let reader = self.reader();
        range::range(
            View::new(&reader, self.meta.compact_revision),
            req,
            self.meta.current_revision,
            self.meta.compact_revision,
        )
    }

    /// Writes one key at a new revision. `lease_exists` answers whether a lease is granted (the
    /// lessor lives outside the key space); a put naming an unknown lease fails.
    pub fn put(&mut self, req: &PutRequest, lease_exists: &dyn Fn(i64) -> bool) -> Result<Applied<PutResponse>> {
        self.write(|w| w.put(req, lease_exists), |r, rev| r.header.revision = rev)
    }

    /// Deletes one key or a range; bumps the revision only when something was deleted.
    pub fn delete_range(&mut self, req: &DeleteRangeRequest) -> Result<Applied<DeleteRangeResponse>> {
        self.write(|w| w.delete_range(req), |r, rev| r.header.revision = rev)
    }

    /// Runs a transaction atomically: on any error nothing changes.
    pub fn txn(&mut self, req: &TxnRequest, lease_exists: &dyn Fn(i64) -> bool) -> Result<Applied<TxnResponse>> {
        let (response, events) = txn::run(self, req, lease_exists)?;
        self.settle()?;
        Ok(Applied { response, events })
    }

    /// Discards history before `revision`: per key the version in effect at `revision` is kept
    /// (unless it is a deletion), plus everything after. The revision does not change. Reads
    /// stop seeing the discarded versions at once; their records go in later batches (see
    /// [`MvccStore::sweep_compaction`]), so compacting costs no more than any other entry.
    pub fn compact(&mut self, revision: i64) -> Result<CompactionResponse> {
        let response = compact::compact(self, revision)?;
        self.settle()?;
        Ok(response)
    }

    /// Deletes the records of up to `limit` revisions that compaction discarded, as a batch of
    /// its own; returns whether more remain. Invisible to reads and digests, so each member
    /// sweeps at its own pace; does nothing while the state machine holds a batch open.
    pub fn sweep_compaction(&mut self, limit: usize) -> Result<bool> {
        if self.held || self.meta.sweep.is_none() {
            return Ok(self.meta.sweep.is_some());
        }
        let more = compact::sweep(self, limit.max(1))?;
        self.commit(Batch::default())?;
        Ok(more)
    }

    /// Whether records that compaction discarded are still to be deleted.
    pub fn compaction_pending(&self) -> bool {
        self.meta.sweep.is_some()
    }

    /// Watch replay: every retained event with revision >= `start` in [`key`, `range_end`),
    /// ordered by (revision, sub), `prev_kv` filled when that version is still retained;
    /// `Err(Compacted)` if `start` is below the compaction revision.
    pub fn events_since(&self, start: i64, key: &[u8], range_end: &[u8]) -> Result<Vec<Event>> {
        replay::events_since(self, start, key, range_end)
    }

    /// The whole store as serializable data, for Raft snapshots; fails when the engine cannot
    /// read it back (a short copy would lose data wherever it is restored).
    pub fn snapshot(&self) -> Result<MvccSnapshot> {
        snapshot::snapshot(self)
    }

    /// A frozen read view of the committed store (see [`crate::state::engine::Engine::view`]); fails
    /// while changes are staged, which a view would miss.
    pub(crate) fn engine_view(&self) -> Result<crate::state::engine::View> {
        if !self.staged.is_empty() {
            return Err(Error::Internal("a view of the key space was asked for with changes not yet committed".into()));
        }
        self.engine.view().map_err(storage_error)
    }

    /// Append [`MvccStore::snapshot`]'s encoding to `out`, byte for byte, without building it
    /// in memory first (a follower's snapshot or a backup of any size).
    pub fn encode_snapshot_into(&self, out: &mut Vec<u8>) -> Result<()> {
        snapshot::encode_into(self, out)
    }

    /// Rebuilds a store in memory from [`MvccStore::snapshot`]'s output:
    /// `restore(s.snapshot()) == s`.
    pub fn restore(snap: MvccSnapshot) -> Self {
        let mut store = MvccStore::new();
        store.replace(snap);
        // An in-memory engine takes every batch.
        let _ = store.commit(Batch::default());
        store
    }

    /// A deterministic digest (FNV-1a) of the revisions and every retained version: replicas
    /// that applied the same log agree on it, so a mismatch reveals divergence.
    pub fn hash(&self) -> u64 {
        snapshot::hash(self)
    }

    /// etcd's HashKV: a digest of every version at or below `revision` (0: the current one)
    /// that compaction kept. Errors as a Range at that revision would.
    pub fn hash_kv(&self, revision: i64) -> Result<HashKvResponse> {
        let current = self.meta.current_revision;
        let revision = if revision <= 0 { current } else { revision };
        if revision > current {
            return Err(crate::api::error::Error::FutureRevision);
        }
        if revision < self.meta.compact_revision {
            return Err(crate::api::error::Error::Compacted);
        }
        let hash = snapshot::hash_up_to(self, revision)?;
        Ok(HashKvResponse { hash, compact_revision: self.meta.compact_revision, ..Default::default() })
    }

    /// Runs one write operation as a write transaction: commit on success (stamping the header
    /// with the resulting revision), nothing on error.
    fn write<T>(
        &mut self,
        op: impl FnOnce(&mut Writer<'_>) -> Result<T>,
        stamp: impl FnOnce(&mut T, i64),
    ) -> Result<Applied<T>> {
        let mut w = Writer::begin(self)?;
        let mut response = op(&mut w)?;
        let (revision, events) = w.commit();
        stamp(&mut response, revision);
        self.settle()?;
        Ok(Applied { response, events })
    }

    /// Calls `f` with (lease, key) for every live key that names a lease: what the lessor
    /// rebuilds its key sets from when a member opens its state.
    pub(crate) fn for_each_leased_key(&self, f: &mut dyn FnMut(i64, Vec<u8>)) -> Result<()> {
        let reader = self.reader();
        View::new(&reader, self.meta.compact_revision).for_each_latest(b"", &[0], &mut |key, _, live| {
            if live.lease != 0 {
                f(live.lease, key);
            }
            Ok(true)
        })
    }
}
