//! [`FjallEngine`]: the applied state's engine on disk, as keyspaces of the member's fjall
//! database (one keyspace per [`Space`], named by [`Space::name`]).
//!
//! It shares the database, and so the journal, with [`super::FjallStorage`]'s log: a batch of
//! the state is in the journal after the log entries it applies, and [`Storage::sync`] (one
//! fsync of that journal) makes both durable. That ordering is what the core relies on: after a
//! crash the state holds a prefix of the applied entries, never more than the log has, and log
//! compaction (which comes after the state it compacts into, in the same journal) never
//! outlives that state.
//!
//! [`Storage::sync`]: super::Storage::sync

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fjall::{Database, Keyspace, Readable};
use keel_core::state::engine::{Batch, Engine, EngineError, EngineResult, KeyBounds, Reader, Scan, Space, View};

/// The applied state's spaces in a fjall database.
pub struct FjallEngine {
    dir: PathBuf,
    db: Database,
    /// One keyspace per space, in [`Space::ALL`]'s order.
    spaces: Vec<Keyspace>,
}

impl FjallEngine {
    /// The state's keyspaces in `db` (living in `dir`), created when missing.
    pub(super) fn open(dir: &Path, db: &Database) -> Result<Self, fjall::Error> {
        let spaces = Space::ALL
            .iter()
            .map(|s| db.keyspace(s.name(), super::fjall::keyspace_options))
            .collect::<Result<_, _>>()?;
        Ok(FjallEngine { dir: dir.to_path_buf(), db: db.clone(), spaces })
    }

    /// Another handle on the same keyspaces.
    pub(super) fn handle(&self) -> FjallEngine {
        FjallEngine { dir: self.dir.clone(), db: self.db.clone(), spaces: self.spaces.clone() }
    }

    fn keyspace(&self, space: Space) -> &Keyspace {
        &self.spaces[space_index(space)]
    }

    fn error(&self, doing: &str, e: fjall::Error) -> EngineError {
        EngineError(format!("{doing} in data directory {}: {e}", self.dir.display()))
    }
}

/// Where a read went wrong, as the engine reports it.
fn read_error(dir: &Path, e: fjall::Error) -> EngineError {
    EngineError(format!("reading the state in data directory {}: {e}", dir.display()))
}

/// A point read's result, copied out.
fn found(dir: &Path, value: Result<Option<fjall::Slice>, fjall::Error>) -> EngineResult<Option<Vec<u8>>> {
    value.map(|v| v.map(|v| v.to_vec())).map_err(|e| read_error(dir, e))
}

/// A range iterator (of a keyspace or of a snapshot) as a scan, copied out pair by pair.
fn pairs<'a>(dir: &'a Path, iter: fjall::Iter, reverse: bool) -> Scan<'a> {
    let pair = move |g: fjall::Guard| match g.into_inner() {
        Ok((k, v)) => Ok((k.to_vec(), v.to_vec())),
        Err(e) => Err(read_error(dir, e)),
    };
    match reverse {
        false => Box::new(iter.map(pair)),
        true => Box::new(iter.rev().map(pair)),
    }
}

/// The position of `space` in [`Space::ALL`], hence of its keyspace.
fn space_index(space: Space) -> usize {
    Space::ALL.iter().position(|s| *s == space).unwrap_or(0)
}

impl Reader for FjallEngine {
    fn get(&self, space: Space, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        found(&self.dir, self.keyspace(space).get(key))
    }

    fn scan<'a>(&'a self, space: Space, bounds: KeyBounds<'a>, reverse: bool) -> Scan<'a> {
        if !bounds.is_ordered() {
            return Box::new(std::iter::empty());
        }
        pairs(&self.dir, self.keyspace(space).range::<&[u8], _>((bounds.start, bounds.end)), reverse)
    }
}

/// The state's keyspaces as a fjall snapshot holds them: what a follower's snapshot is read
/// from while the member goes on writing (fjall keeps the versions it sees until it is dropped).
struct FjallView {
    dir: PathBuf,
    snapshot: fjall::Snapshot,
    spaces: Vec<Keyspace>,
}

impl Reader for FjallView {
    fn get(&self, space: Space, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        found(&self.dir, self.snapshot.get(&self.spaces[space_index(space)], key))
    }

    fn scan<'a>(&'a self, space: Space, bounds: KeyBounds<'a>, reverse: bool) -> Scan<'a> {
        if !bounds.is_ordered() {
            return Box::new(std::iter::empty());
        }
        let iter = self.snapshot.range::<&[u8], _>(&self.spaces[space_index(space)], (bounds.start, bounds.end));
        pairs(&self.dir, iter, reverse)
    }
}

impl Engine for FjallEngine {
    fn commit(&mut self, batch: Batch) -> EngineResult<()> {
        let mut out = self.db.batch();
        if batch.clear {
            // Every old record goes in the same batch as the new ones, so no crash leaves the
            // state half replaced.
            for space in Space::ALL {
                for g in self.keyspace(space).iter() {
                    let key = g.key().map_err(|e| self.error("reading the state", e))?;
                    if !batch.ops.contains_key(&(space, key.to_vec())) {
                        out.remove(self.keyspace(space), key);
                    }
                }
            }
        }
        for ((space, key), value) in batch.ops {
            match value {
                Some(v) => out.insert(self.keyspace(space), key, v),
                None => out.remove(self.keyspace(space), key),
            }
        }
        out.commit().map_err(|e| self.error("writing the state", e))
    }

    fn view(&self) -> EngineResult<View> {
        Ok(Arc::new(FjallView { dir: self.dir.clone(), snapshot: self.db.snapshot(), spaces: self.spaces.clone() }))
    }
}
