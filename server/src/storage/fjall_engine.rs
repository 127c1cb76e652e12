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

use fjall::{Database, Keyspace};
use keel_core::engine::{Batch, Engine, EngineError, EngineResult, KeyBounds, Reader, Scan, Space};

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
        let spaces = Space::ALL.iter().map(|s| db.keyspace(s.name(), super::fjall::keyspace_options)).collect::<Result<_, _>>()?;
        Ok(FjallEngine { dir: dir.to_path_buf(), db: db.clone(), spaces })
    }

    /// Another handle on the same keyspaces.
    pub(super) fn handle(&self) -> FjallEngine {
        FjallEngine { dir: self.dir.clone(), db: self.db.clone(), spaces: self.spaces.clone() }
    }

    fn keyspace(&self, space: Space) -> &Keyspace {
        let i = Space::ALL.iter().position(|s| *s == space).unwrap_or(0);
        &self.spaces[i]
    }

    fn error(&self, doing: &str, e: fjall::Error) -> EngineError {
        EngineError(format!("{doing} in data directory {}: {e}", self.dir.display()))
    }
}

impl Reader for FjallEngine {
    fn get(&self, space: Space, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        match self.keyspace(space).get(key) {
            Ok(v) => Ok(v.map(|v| v.to_vec())),
            Err(e) => Err(self.error("reading the state", e)),
        }
    }

    fn scan<'a>(&'a self, space: Space, bounds: KeyBounds<'a>, reverse: bool) -> Scan<'a> {
        if !bounds.is_ordered() {
            return Box::new(std::iter::empty());
        }
        let iter = self.keyspace(space).range::<&[u8], _>((bounds.start, bounds.end));
        let pair = move |g: fjall::Guard| match g.into_inner() {
            Ok((k, v)) => Ok((k.to_vec(), v.to_vec())),
            Err(e) => Err(self.error("reading the state", e)),
        };
        match reverse {
            false => Box::new(iter.map(pair)),
            true => Box::new(iter.rev().map(pair)),
        }
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
}
