//! The applied state's storage engine, as the core sees it: a few ordered byte keyspaces that
//! are read directly and changed only by atomic batches.
//!
//! The core decides *what* the applied state's records are (see `mvcc::layout` and
//! `state_machine`); an [`Engine`] decides *where* they live. The shell hands the node one: fjall
//! on disk in production (`keel_server::storage`), [`MemEngine`] in memory for the simulator and
//! tests. Keeping the records behind this trait is what lets the key space outgrow RAM while the
//! core stays sans-IO: the core only calls methods, it never opens a file.
//!
//! The contract every engine keeps:
//! - a committed [`Batch`] is visible to every later read, whole;
//! - after a crash an engine holds a prefix of the committed batches (none torn), and at least
//!   every batch committed before the shell's last sync of the member's storage, which covers
//!   the engine too (one journal in fjall; [`MemEngine::sync`] in memory);
//! - scans return keys in byte order (reversed when asked).

mod memory;
mod overlay;
mod view;

pub use memory::MemEngine;
pub(crate) use overlay::Overlay;
pub use view::{View, ViewEngine};

use std::collections::BTreeMap;
use std::ops::Bound;

/// The keyspaces of the applied state. Each is an independent ordered map of byte keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Space {
    /// The live version of every live key, by user key (reads at the current revision).
    Latest,
    /// Superseded versions and tombstones, by (escaped user key, revision): past reads, watch
    /// replay's values, compaction.
    History,
    /// Every retained change by revision, naming its key: watch replay and compaction.
    Revisions,
    /// Lease records by id.
    Leases,
    /// Single records: format, applied index, revisions, quota bytes, members, alarms.
    Meta,
}

impl Space {
    /// Every space, in a fixed order.
    pub const ALL: [Space; 5] = [Space::Latest, Space::History, Space::Revisions, Space::Leases, Space::Meta];

    /// The space's name as an engine stores it (fjall's keyspace names).
    pub fn name(self) -> &'static str {
        match self {
            Space::Latest => "state_latest",
            Space::History => "state_history",
            Space::Revisions => "state_revisions",
            Space::Leases => "state_leases",
            Space::Meta => "state_meta",
        }
    }
}

/// Why an engine could not read or write. The message names what failed and why; the member
/// cannot go on from a failed write (its state would part from the log), so the node stops.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EngineError(pub String);

/// What engine calls return.
pub type EngineResult<T> = std::result::Result<T, EngineError>;

/// One key-value pair read from a space.
pub type Pair = (Vec<u8>, Vec<u8>);

/// A scan's results, in key order (or reversed), each read possibly failing.
pub type Scan<'a> = Box<dyn Iterator<Item = EngineResult<Pair>> + 'a>;

/// Bounds of a scan over one space.
#[derive(Clone, Debug)]
pub struct KeyBounds<'a> {
    pub start: Bound<&'a [u8]>,
    pub end: Bound<&'a [u8]>,
}

impl<'a> KeyBounds<'a> {
    /// Every key of the space.
    pub fn all() -> Self {
        KeyBounds { start: Bound::Unbounded, end: Bound::Unbounded }
    }

    /// Whether the bounds select a well-formed interval (an inverted one selects nothing, and
    /// ordered maps may panic on it).
    pub fn is_ordered(&self) -> bool {
        match (self.start, self.end) {
            (Bound::Included(s), Bound::Included(e)) => s <= e,
            (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e) | Bound::Included(e)) => s < e,
            _ => true,
        }
    }

    /// Whether `key` lies within the bounds.
    pub fn contains(&self, key: &[u8]) -> bool {
        let above = match self.start {
            Bound::Included(s) => key >= s,
            Bound::Excluded(s) => key > s,
            Bound::Unbounded => true,
        };
        let below = match self.end {
            Bound::Included(e) => key <= e,
            Bound::Excluded(e) => key < e,
            Bound::Unbounded => true,
        };
        above && below
    }
}

/// Read access to the applied state's spaces.
pub trait Reader {
    /// The value stored under `key` in `space`.
    fn get(&self, space: Space, key: &[u8]) -> EngineResult<Option<Vec<u8>>>;

    /// The pairs of `space` within `bounds`, ascending (descending with `reverse`).
    fn scan<'a>(&'a self, space: Space, bounds: KeyBounds<'a>, reverse: bool) -> Scan<'a>;
}

/// A storage engine for the applied state: reads plus atomic batches (see the module
/// documentation for the contract).
pub trait Engine: Reader + Send {
    /// Apply `batch` atomically: all of it becomes visible, or (on error) none of it.
    fn commit(&mut self, batch: Batch) -> EngineResult<()>;

    /// The state as every batch committed so far left it, unchanged by later ones, readable
    /// from another thread: a snapshot for a follower is read from one while the member goes
    /// on applying. Cheap on disk (fjall keeps the old versions while the view lives).
    fn view(&self) -> EngineResult<View>;
}

/// Changes to apply together. Later changes to one key replace earlier ones; with `clear`, every
/// space is emptied first (a snapshot from the leader replaces the whole state).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub clear: bool,
    /// `None` removes the key.
    pub ops: BTreeMap<(Space, Vec<u8>), Option<Vec<u8>>>,
}

impl Batch {
    /// Store `value` under `key`.
    pub fn put(&mut self, space: Space, key: Vec<u8>, value: Vec<u8>) {
        self.ops.insert((space, key), Some(value));
    }

    /// Remove `key`.
    pub fn delete(&mut self, space: Space, key: Vec<u8>) {
        self.ops.insert((space, key), None);
    }

    /// Whether the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        !self.clear && self.ops.is_empty()
    }

    /// Fold `later` into this batch, as if it were committed after it.
    pub fn extend(&mut self, later: Batch) {
        if later.clear {
            self.clear = true;
            self.ops.clear();
        }
        self.ops.extend(later.ops);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_clear_drops_earlier_changes() {
        let mut a = Batch::default();
        a.put(Space::Latest, b"k".to_vec(), b"v".to_vec());
        let mut b = Batch { clear: true, ..Default::default() };
        b.put(Space::Meta, b"m".to_vec(), b"1".to_vec());
        a.extend(b);
        assert!(a.clear);
        assert_eq!(a.ops.len(), 1);
    }
}
