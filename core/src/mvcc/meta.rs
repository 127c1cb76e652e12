//! The key space's own single records in the engine's `Meta` space: its revisions and quota
//! count, kept in memory too (every response header needs the revision).

use crate::engine::{Batch, EngineError, EngineResult, Reader, Space};

const CURRENT_REVISION: &[u8] = b"mvcc/current_revision";
const COMPACT_REVISION: &[u8] = b"mvcc/compact_revision";
const BYTES: &[u8] = b"mvcc/bytes";
/// The version byte of these records.
const FORMAT: u8 = 1;

/// Revisions and quota count of a key space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StoreMeta {
    pub(crate) current_revision: i64,
    pub(crate) compact_revision: i64,
    /// What the retained history counts towards the space quota (see `change_bytes`).
    pub(crate) bytes: u64,
}

impl Default for StoreMeta {
    fn default() -> Self {
        StoreMeta { current_revision: 1, compact_revision: 0, bytes: 0 }
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

impl StoreMeta {
    /// The records as stored, or a new store's when there are none.
    pub(crate) fn read(reader: &dyn Reader) -> EngineResult<Self> {
        let fresh = StoreMeta::default();
        Ok(StoreMeta {
            current_revision: read_one(reader, CURRENT_REVISION)?.map_or(fresh.current_revision, |n| n as i64),
            compact_revision: read_one(reader, COMPACT_REVISION)?.map_or(fresh.compact_revision, |n| n as i64),
            bytes: read_one(reader, BYTES)?.unwrap_or(fresh.bytes),
        })
    }

    /// Stage the records.
    pub(crate) fn write(&self, batch: &mut Batch) {
        batch.put(Space::Meta, CURRENT_REVISION.to_vec(), encode(self.current_revision as u64));
        batch.put(Space::Meta, COMPACT_REVISION.to_vec(), encode(self.compact_revision as u64));
        batch.put(Space::Meta, BYTES.to_vec(), encode(self.bytes));
    }
}
