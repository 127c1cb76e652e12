//! The key space's own single records in the engine's `Meta` space: its revisions, quota count
//! and where the background compaction stands, kept in memory too (every response header needs
//! the revision).

use super::key_history::Revision;
use super::layout;
use crate::state::engine::{Batch, EngineError, EngineResult, Reader, Space};

const CURRENT_REVISION: &[u8] = b"mvcc/current_revision";
const COMPACT_REVISION: &[u8] = b"mvcc/compact_revision";
const BYTES: &[u8] = b"mvcc/bytes";
const SWEEP: &[u8] = b"mvcc/compaction_sweep";
/// The version byte of these records.
const FORMAT: u8 = 1;

/// Revisions and quota count of a key space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StoreMeta {
    pub(crate) current_revision: i64,
    pub(crate) compact_revision: i64,
    /// What the retained history counts towards the space quota (see `change_bytes`).
    pub(crate) bytes: u64,
    /// Where the deletion of what compaction discarded resumes (the first `Revisions` record
    /// not yet looked at), or `None` when nothing is left to delete.
    pub(crate) sweep: Option<Revision>,
}

impl Default for StoreMeta {
    fn default() -> Self {
        StoreMeta { current_revision: 1, compact_revision: 0, bytes: 0, sweep: None }
    }
}

fn encode(n: u64) -> Vec<u8> {
    let mut out = vec![FORMAT];
    out.extend_from_slice(&n.to_be_bytes());
    out
}

fn decode(name: &[u8], bytes: &[u8]) -> EngineResult<u64> {
    match bytes {
        [FORMAT, rest @ ..] if rest.len() == 8 => Ok(u64::from_be_bytes(rest.try_into().unwrap_or_default())),
        _ => Err(EngineError(format!("corrupt {} record in the state store", String::from_utf8_lossy(name)))),
    }
}

fn read_one(reader: &dyn Reader, name: &[u8]) -> EngineResult<Option<u64>> {
    reader.get(Space::Meta, name)?.map(|b| decode(name, &b)).transpose()
}

fn encode_revision(rev: Revision) -> Vec<u8> {
    let mut out = vec![FORMAT];
    out.extend_from_slice(&layout::revision_key(rev));
    out
}

fn read_revision(reader: &dyn Reader, name: &[u8]) -> EngineResult<Option<Revision>> {
    let Some(bytes) = reader.get(Space::Meta, name)? else { return Ok(None) };
    match bytes.as_slice() {
        [FORMAT, rest @ ..] => layout::decode_revision(rest).map(Some),
        _ => Err(EngineError(format!("corrupt {} record in the state store", String::from_utf8_lossy(name)))),
    }
}

impl StoreMeta {
    /// The records as stored, or a new store's when there are none.
    pub(crate) fn read(reader: &dyn Reader) -> EngineResult<Self> {
        let fresh = StoreMeta::default();
        Ok(StoreMeta {
            current_revision: read_one(reader, CURRENT_REVISION)?.map_or(fresh.current_revision, |n| n as i64),
            compact_revision: read_one(reader, COMPACT_REVISION)?.map_or(fresh.compact_revision, |n| n as i64),
            bytes: read_one(reader, BYTES)?.unwrap_or(fresh.bytes),
            sweep: read_revision(reader, SWEEP)?,
        })
    }

    /// Stage the records that differ from `stored` (all of them when nothing is stored, as
    /// after a batch that clears the engine): most entries change only the current revision
    /// and the quota count.
    pub(crate) fn write(&self, stored: Option<&StoreMeta>, batch: &mut Batch) {
        let changed = |field: fn(&StoreMeta) -> u64| stored.is_none_or(|s| field(s) != field(self));
        if changed(|m| m.current_revision as u64) {
            batch.put(Space::Meta, CURRENT_REVISION.to_vec(), encode(self.current_revision as u64));
        }
        if changed(|m| m.compact_revision as u64) {
            batch.put(Space::Meta, COMPACT_REVISION.to_vec(), encode(self.compact_revision as u64));
        }
        if changed(|m| m.bytes) {
            batch.put(Space::Meta, BYTES.to_vec(), encode(self.bytes));
        }
        match (self.sweep, stored.and_then(|s| s.sweep)) {
            (Some(rev), was) if was != Some(rev) => batch.put(Space::Meta, SWEEP.to_vec(), encode_revision(rev)),
            (None, Some(_)) => batch.delete(Space::Meta, SWEEP.to_vec()),
            _ => {}
        }
    }
}
