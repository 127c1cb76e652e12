//! [`FjallStorage`]: the storage rules on disk, in one fjall database.
//!
//! # Layout
//! The database lives directly in the directory given to [`FjallStorage::open`] (fjall's own
//! `version` marker, `lock` file, journals and `keyspaces/` folder), which must hold nothing else.
//! Two keyspaces:
//!
//! - `raft_log`: one record per stored entry; key = the index as a big-endian `u64` (so key order
//!   is index order), value = `[1][write][term: u64 LE][entry bytes][crc32]`.
//! - `raft_meta`: `format` = `[4]["keel-raft-log"][version: u32 LE][crc32]` (present once anything
//!   was written: it tells a member's store from a new one), `hard_state` =
//!   `[2][write][term][vote][commit][crc32]`, `snapshot` =
//!   `[3][write][index][term][snapshot bytes][crc32]`, and `last_write` = `[5][write][crc32]`.
//!
//! Every batch is a numbered *write*; each record carries the number of the write that stored it
//! (`write`, a `u64` LE; log records are `[1][write][term][entry bytes][crc32]`), and every batch
//! also stores its number as `last_write`. fjall does not checksum a batch's sequence number, so
//! a damaged one can make an old batch replay as the newest, resurrecting old values beside newer
//! ones (the storage_recovery fuzzer found this); then some record carries a write number above
//! `last_write`, and the store reads as [`StorageError::Corrupt`].
//!
//! Beside fjall's files, `keel-store` (a marker outside fjall, written and fsynced once, after the
//! first sync that made a write durable) records that the store has held a member. fjall reads a
//! damaged journal batch as a torn tail and drops it and everything after it; when that would
//! leave a store that once held a member looking new (a member that forgot it ever voted), the
//! marker turns it into [`StorageError::Corrupt`] instead.
//!
//! A member that joined a running cluster keeps the ids `member add` gave it in `keel-member`,
//! another file beside fjall's (`member <hex>` and `cluster <hex>` lines, written like the
//! marker), apart from the log so that a store holding only them still recovers as new.
//!
//! Every value ends in a CRC-32 of its key followed by the rest of the value, so a flipped byte,
//! a truncated value or a value under the wrong key reads back as [`StorageError::Corrupt`]. fjall
//! checks its journal batches and table blocks with its own checksums as well.
//!
//! # Atomicity and durability
//! Each [`Storage::write`] and [`Storage::keep_snapshot`] is one fjall write batch spanning both
//! keyspaces (the batch is one checksummed record in fjall's journal: after a crash it is there
//! whole or not at all, and batches come back in order, so a crash leaves a prefix of the writes).
//! A committed batch is handed to the OS at once (it survives the process dying) and
//! [`Storage::sync`] flushes the journal to disk (`Database::persist(PersistMode::SyncData)`,
//! fdatasync: the data and the metadata needed to read it back, as etcd syncs its WAL), so it
//! also survives a power loss. Dropping a store without `sync` may keep or lose the unsynced writes
//! (fjall tries a final fsync on drop); either is allowed, since nothing unsynced was acknowledged.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use keel_core::node::{HardState, LocalSnapshot, LogEntry, Persist, Recovery, SnapshotRecord};

use super::fjall_engine::FjallEngine;
use super::{MemberIdentity, Storage, StorageError};

const LOG_KEYSPACE: &str = "raft_log";
const META_KEYSPACE: &str = "raft_meta";

const KEY_FORMAT: &[u8] = b"format";
const KEY_HARD_STATE: &[u8] = b"hard_state";
const KEY_SNAPSHOT: &[u8] = b"snapshot";
const KEY_LAST_WRITE: &[u8] = b"last_write";

const TAG_ENTRY: u8 = 1;
const TAG_HARD_STATE: u8 = 2;
const TAG_SNAPSHOT: u8 = 3;
const TAG_FORMAT: u8 = 4;
const TAG_LAST_WRITE: u8 = 5;

const FORMAT_MAGIC: &[u8] = b"keel-raft-log";
/// The layout this release writes: entries and snapshots in their own versioned formats.
const FORMAT_VERSION: u32 = 3;
/// The layout of releases before that (the same records, bare proposals and states inside):
/// opened by rewriting them once (see [`keel_core::upgrade`]).
const UNVERSIONED_FORMAT_VERSION: u32 = 2;

/// One keyspace's memtable size before it is written out as a table. fjall's default (64 MiB)
/// over Keel's seven keyspaces is hundreds of MiB of memory (fjall 3 has no working cap on all
/// memtables together).
const MEMTABLE_BYTES: u64 = 16 * 1024 * 1024;
/// fjall's flush and compaction threads. Its default (one per core, at most four) leaves a
/// 2-core member's flushes behind its writes, and fjall then halts writes for 100 ms at a time.
const FJALL_WORKERS: usize = 4;
/// How much journal may pile up before the memtables it covers are flushed: what a restart
/// replays at most.
const JOURNAL_BYTES: u64 = 128 * 1024 * 1024;

/// The options of every keyspace of a member's database (the log's and the state's).
pub(super) fn keyspace_options() -> KeyspaceCreateOptions {
    KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
}

/// The file (beside fjall's) that says this store has durably held a member.
const MARKER: &str = "keel-store";
/// The file (beside fjall's) with a joined member's ids: `member <hex>` and `cluster <hex>` lines.
const IDENTITY: &str = "keel-member";

/// The Raft log, hard state and snapshot of one member in a fjall database on disk: the
/// production [`Storage`]. See the module documentation for the layout and the guarantees.
pub struct FjallStorage {
    dir: PathBuf,
    db: Database,
    log: Keyspace,
    meta: Keyspace,
    /// The applied state's keyspaces in the same database (see [`FjallEngine`]).
    engine: FjallEngine,
    /// Lowest and highest stored log index (`None`: no entries), kept in step with every write.
    /// The entries between them are all stored (raft appends without gaps, and a snapshot
    /// starts the log afresh), so no write has to read the log to know what it drops.
    bounds: Option<(u64, u64)>,
    /// Whether anything was ever written (the `format` record exists).
    written: bool,
    /// Whether the `keel-store` marker exists.
    marked: bool,
    /// The number of the last write (batch) stored: the next one gets this plus one.
    last_write: u64,
}

impl FjallStorage {
    /// Open the store in `dir`, creating the directory and an empty store if there is none.
    /// Fails with [`StorageError::Locked`] if another process (or another open handle) uses
    /// `dir`, [`StorageError::Io`] if `dir` cannot be created or written, and
    /// [`StorageError::Corrupt`] if what is there is not a readable keel store.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        check_dir(dir)?;
        check_manifests(dir)?;
        let opened = catch_panic(dir, "opening", || {
            let db = Database::builder(dir)
                .max_journaling_size(JOURNAL_BYTES)
                .worker_threads(FJALL_WORKERS)
                .open()
                .map_err(|e| engine_error(dir, "opening the store", e))?;
            let log =
                db.keyspace(LOG_KEYSPACE, keyspace_options).map_err(|e| engine_error(dir, "opening the log", e))?;
            let meta = db
                .keyspace(META_KEYSPACE, keyspace_options)
                .map_err(|e| engine_error(dir, "opening the metadata", e))?;
            Ok((db, log, meta))
        })?;
        let (db, log, meta) = opened;
        let engine = FjallEngine::open(dir, &db).map_err(|e| engine_error(dir, "opening the state", e))?;
        let mut store = FjallStorage {
            dir: dir.to_path_buf(),
            db,
            log,
            meta,
            engine,
            bounds: None,
            written: false,
            marked: false,
            last_write: 0,
        };
        let format = catch_panic(dir, "reading", || store.load_bounds())?;
        if format == Some(UNVERSIONED_FORMAT_VERSION) {
            catch_panic(dir, "upgrading", || store.upgrade_unversioned())?;
        }
        Ok(store)
    }

    /// The directory this store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Read the format record and the log's first and last index (cheap: two seeks); returns
    /// the store's format version (`None`: a new store).
    fn load_bounds(&mut self) -> Result<Option<u32>, StorageError> {
        let format = match self.meta.get(KEY_FORMAT).map_err(|e| self.err("reading the format record", e))? {
            Some(v) => {
                let body = unseal(KEY_FORMAT, &v).map_err(|m| self.corrupt("the format record", m))?;
                Some(check_format(body).map_err(|m| self.corrupt("the format record", m))?)
            }
            None => None,
        };
        if let Some(v) = format.filter(|v| ![FORMAT_VERSION, UNVERSIONED_FORMAT_VERSION].contains(v)) {
            return Err(StorageError::Corrupt(format!(
                "data directory {} was written by another keel release (storage format {v}; this keel \
                 reads formats {UNVERSIONED_FORMAT_VERSION} and {FORMAT_VERSION}): run the release that \
                 wrote it, or remove the directory and add this member to the cluster again",
                self.dir.display()
            )));
        }
        self.written = format.is_some();
        self.last_write =
            match self.meta.get(KEY_LAST_WRITE).map_err(|e| self.err("reading the last write's number", e))? {
                Some(v) => decode_last_write(&v).map_err(|m| self.corrupt("the last write's number", m))?,
                None => 0,
            };
        let first = self.edge_key(true)?;
        let last = self.edge_key(false)?;
        self.bounds = match (first, last) {
            (Some(a), Some(b)) if a <= b => Some((a, b)),
            (None, None) => None,
            _ => return Err(self.corrupt("the log", "its first and last keys disagree".into())),
        };
        self.marked = self.dir.join(MARKER).exists();
        if !self.written {
            let has_meta = self.meta.first_key_value().is_some();
            if self.bounds.is_some() || has_meta {
                return Err(self.corrupt("the metadata", "data is present but its format record is missing".into()));
            }
            if self.marked {
                return Err(self.corrupt(
                    "the log",
                    "this store held a member's data but reads back empty (its journal was \
                     probably damaged and dropped)"
                        .into(),
                ));
            }
        }
        Ok(format)
    }

    /// Rewrite a store of [`UNVERSIONED_FORMAT_VERSION`] in this release's format: every log
    /// entry and the snapshot, with the new format record, in one batch (a crash leaves the old
    /// store whole, and the next start upgrades it again), made durable before it is used.
    fn upgrade_unversioned(&mut self) -> Result<(), StorageError> {
        let mut batch = self.db.batch();
        let mut rewritten = 0;
        for g in self.log.iter() {
            let (key, value) = g.into_inner().map_err(|e| self.err("reading the log", e))?;
            let (entry, write) = decode_entry(&key, &value).map_err(|m| self.corrupt("the log", m))?;
            let upgraded =
                keel_core::upgrade::unversioned_entry(&entry).map_err(|e| self.corrupt("the log", e.to_string()))?;
            batch.insert(&self.log, key, encode_entry(&upgraded, write));
            rewritten += 1;
        }
        if let Some(v) = self.meta.get(KEY_SNAPSHOT).map_err(|e| self.err("reading the snapshot", e))? {
            let (snapshot, write) = decode_snapshot(&v).map_err(|m| self.corrupt("the snapshot", m))?;
            let upgraded = keel_core::upgrade::unversioned_snapshot(&snapshot)
                .map_err(|e| self.corrupt("the snapshot", e.to_string()))?;
            batch.insert(&self.meta, KEY_SNAPSHOT, encode_snapshot(&upgraded, write));
        }
        batch.insert(&self.meta, KEY_FORMAT, format_record());
        batch.commit().map_err(|e| self.err("upgrading the store", e))?;
        self.db.persist(PersistMode::SyncData).map_err(|e| self.err("upgrading the store", e))?;
        tracing::info!(
            "upgraded data directory {} from storage format {UNVERSIONED_FORMAT_VERSION} to {FORMAT_VERSION} ({rewritten} log entries rewritten)",
            self.dir.display()
        );
        Ok(())
    }

    fn edge_key(&self, first: bool) -> Result<Option<u64>, StorageError> {
        let guard = if first { self.log.first_key_value() } else { self.log.last_key_value() };
        match guard {
            None => Ok(None),
            Some(g) => {
                let key = g.key().map_err(|e| self.err("reading the log", e))?;
                decode_index(&key).map(Some).map_err(|m| self.corrupt("the log", m))
            }
        }
    }

    fn err(&self, doing: &str, e: fjall::Error) -> StorageError {
        engine_error(&self.dir, doing, e)
    }

    fn corrupt(&self, what: &str, detail: String) -> StorageError {
        StorageError::Corrupt(format!(
            "{what} in data directory {} is corrupt: {detail}; restore the directory from a backup, \
             or remove it and add this member to the cluster again",
            self.dir.display()
        ))
    }

    /// Write the memtables out as table files now. fjall does this by itself as memtables fill;
    /// damage tests and the storage fuzzer call it so that a small store has table files too.
    pub fn flush_to_tables(&self) -> Result<(), StorageError> {
        self.log.rotate_memtable_and_wait().map_err(|e| self.err("writing tables", e))?;
        self.meta.rotate_memtable_and_wait().map_err(|e| self.err("writing tables", e))
    }

    /// Store a raw value, bypassing the encoding, so tests can plant bad records.
    #[cfg(test)]
    pub(crate) fn plant(&self, in_log: bool, key: &[u8], value: &[u8]) {
        let ks = if in_log { &self.log } else { &self.meta };
        ks.insert(key, value).unwrap();
    }
}

impl Storage for FjallStorage {
    fn recover(&mut self) -> Result<Option<Recovery>, StorageError> {
        let dir = self.dir.clone();
        catch_panic(&dir, "recovering", || {
            self.load_bounds()?;
            if !self.written {
                return Ok(None);
            }
            // The newest write any record comes from: never past the last write stored.
            let mut newest = 0;
            let hard_state = match self.meta.get(KEY_HARD_STATE).map_err(|e| self.err("reading the hard state", e))? {
                Some(v) => {
                    let (hs, write) = decode_hard_state(&v).map_err(|m| self.corrupt("the hard state", m))?;
                    newest = newest.max(write);
                    hs
                }
                None => HardState::default(),
            };
            let snapshot = match self.meta.get(KEY_SNAPSHOT).map_err(|e| self.err("reading the snapshot", e))? {
                Some(v) => {
                    let (snapshot, write) = decode_snapshot(&v).map_err(|m| self.corrupt("the snapshot", m))?;
                    newest = newest.max(write);
                    Some(snapshot)
                }
                None => None,
            };
            let mut entries = Vec::new();
            for g in self.log.iter() {
                let (key, value) = g.into_inner().map_err(|e| self.err("reading the log", e))?;
                let (entry, write) = decode_entry(&key, &value).map_err(|m| self.corrupt("the log", m))?;
                newest = newest.max(write);
                entries.push(entry);
            }
            if newest > self.last_write {
                return Err(self.corrupt(
                    "the store",
                    format!(
                        "a record of write {newest} survives but the last write stored is {}: the journal \
                         replayed its batches out of order",
                        self.last_write
                    ),
                ));
            }
            Ok(Some(Recovery { snapshot, hard_state, entries }))
        })
    }

    fn write(&mut self, persist: &Persist) -> Result<(), StorageError> {
        debug_assert!(
            persist.entries.windows(2).all(|w| w[0].index < w[1].index),
            "a Persist's entries are in ascending index order"
        );
        let mut batch = self.db.batch();
        let write = self.last_write + 1;
        if !self.written {
            batch.insert(&self.meta, KEY_FORMAT, format_record());
        }
        batch.insert(&self.meta, KEY_LAST_WRITE, encode_last_write(write));
        // Stored entries from this index on are dropped (all of them under a snapshot).
        let drop_from = match (&persist.snapshot, persist.entries.first()) {
            (Some(_), _) => Some(0),
            (None, Some(first)) => Some(first.index),
            (None, None) => None,
        };
        if let (Some(from), Some((lo, hi))) = (drop_from, self.bounds) {
            if from <= hi {
                // Keys written again below get their new value; only the others need tombstones
                // (one batch must not hold two changes to one key).
                let rewritten: BTreeSet<u64> = persist.entries.iter().map(|e| e.index).collect();
                for index in from.max(lo)..=hi {
                    if !rewritten.contains(&index) {
                        batch.remove(&self.log, index.to_be_bytes());
                    }
                }
            }
        }
        if let Some(s) = &persist.snapshot {
            batch.insert(&self.meta, KEY_SNAPSHOT, encode_snapshot(s, write));
        }
        for e in &persist.entries {
            batch.insert(&self.log, e.index.to_be_bytes(), encode_entry(e, write));
        }
        if let Some(hs) = &persist.hard_state {
            batch.insert(&self.meta, KEY_HARD_STATE, encode_hard_state(hs, write));
        }
        batch.commit().map_err(|e| self.err("writing to the log", e))?;

        self.written = true;
        self.last_write = write;
        if persist.snapshot.is_some() {
            self.bounds = None;
        }
        if let (Some(first), Some(last)) = (persist.entries.first(), persist.entries.last()) {
            let lo = match self.bounds {
                Some((lo, _)) if lo < first.index => lo,
                _ => first.index,
            };
            self.bounds = Some((lo, last.index));
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.db.persist(PersistMode::SyncData).map_err(|e| self.err("syncing the log to disk (fsync)", e))?;
        if self.written && !self.marked {
            write_marker(&self.dir)?;
            self.marked = true;
        }
        Ok(())
    }

    fn keep_snapshot(&mut self, snap: &LocalSnapshot) -> Result<(), StorageError> {
        // The snapshot and the removals go in one batch: no crash can keep one without the other.
        let mut batch = self.db.batch();
        let write = self.last_write + 1;
        if !self.written {
            batch.insert(&self.meta, KEY_FORMAT, format_record());
        }
        batch.insert(&self.meta, KEY_LAST_WRITE, encode_last_write(write));
        batch.insert(&self.meta, KEY_SNAPSHOT, encode_snapshot(&snap.snapshot, write));
        let mut bounds = self.bounds;
        if let Some((lo, hi)) = self.bounds {
            if lo <= snap.compact_to {
                let last_dropped = snap.compact_to.min(hi);
                for index in lo..=last_dropped {
                    batch.remove(&self.log, index.to_be_bytes());
                }
                bounds = (last_dropped < hi).then_some((last_dropped + 1, hi));
            }
        }
        batch.commit().map_err(|e| self.err("storing a snapshot", e))?;
        self.written = true;
        self.last_write = write;
        self.bounds = bounds;
        Ok(())
    }

    fn size_bytes(&self) -> u64 {
        // Space the files take on disk (fjall preallocates its journal, sparsely).
        disk_usage(&self.dir)
    }

    fn engine(&self) -> Box<dyn keel_core::state::engine::Engine> {
        Box::new(self.engine.handle())
    }

    fn identity(&self) -> Result<Option<MemberIdentity>, StorageError> {
        let path = self.dir.join(IDENTITY);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&self.dir, "reading the member's identity", &e)),
        };
        parse_identity(&text).map(Some).ok_or_else(|| {
            self.corrupt(
                "the member's identity (keel-member)",
                format!("{text:?} is not two lines `member <hex>` and `cluster <hex>`"),
            )
        })
    }

    fn keep_identity(&mut self, identity: MemberIdentity) -> Result<(), StorageError> {
        let text = format!("member {:x}\ncluster {:x}\n", identity.member_id, identity.cluster_id);
        write_durably(&self.dir, IDENTITY, text.as_bytes(), "writing the member's identity")
    }
}

fn parse_identity(text: &str) -> Option<MemberIdentity> {
    let mut lines = text.lines();
    let mut field = |name: &str| {
        let value = lines.next()?.strip_prefix(name)?.strip_prefix(' ')?;
        u64::from_str_radix(value, 16).ok()
    };
    let identity = MemberIdentity { member_id: field("member")?, cluster_id: field("cluster")? };
    lines.next().is_none().then_some(identity)
}

impl std::fmt::Debug for FjallStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallStorage").field("dir", &self.dir).field("bounds", &self.bounds).finish_non_exhaustive()
    }
}

/// Refuse directories fjall would misread: a path that is not a directory, or a non-empty
/// directory without fjall's version marker (fjall would start a new, empty database there and
/// the member would forget it ever existed).
fn check_dir(dir: &Path) -> Result<(), StorageError> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Err(StorageError::Io(format!("data directory {shown} is not a directory"))),
        Ok(_) => {
            let mut names = std::fs::read_dir(dir).map_err(|e| io_error(dir, "listing the data directory", &e))?;
            let empty = names.next().is_none();
            if !empty && !dir.join("version").exists() {
                return Err(StorageError::Corrupt(format!(
                    "data directory {shown} is not empty but holds no keel store (fjall's version \
                     marker is missing); point --data-dir at an empty or keel-owned directory"
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(dir, "opening the data directory", &e)),
    }
}

/// Durably create the `keel-store` marker, so it exists only once it is complete.
fn write_marker(dir: &Path) -> Result<(), StorageError> {
    write_durably(
        dir,
        MARKER,
        b"keel raft store: this directory holds a member's durable state\n",
        "writing the store marker",
    )
}

/// Durably create file `name` in `dir` (write a temporary file, fsync, rename, fsync the
/// directory), so it exists only once it is complete.
fn write_durably(dir: &Path, name: &str, contents: &[u8], doing: &str) -> Result<(), StorageError> {
    use std::io::Write as _;
    let io = |e: std::io::Error| io_error(dir, doing, &e);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(contents).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name)).map_err(io)?;
    #[cfg(unix)]
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

/// Verify each LSM tree's manifest before fjall reads it.
///
/// A tree folder (`keyspaces/<id>/`) names its current manifest in a file `current`:
/// `[manifest id: u64 LE][xxh3-128 of the manifest file: u128 LE][checksum kind: u8 = 0]`, and
/// the manifest is the file `v<id>` beside it. lsm-tree 3 reads the manifest without checking that
/// checksum, and a damaged one can make it abort the whole process (it allocates by a garbage
/// length), which no error handling can catch. So we check it here. This ties us to lsm-tree 3's
/// manifest layout: a fjall upgrade that changes it fails the reopen tests, not silently.
fn check_manifests(dir: &Path) -> Result<(), StorageError> {
    let trees = dir.join("keyspaces");
    let corrupt = |what: &Path, why: &str| {
        StorageError::Corrupt(format!(
            "data in data directory {} is corrupt: {} {why}; restore the directory from a backup, \
             or remove it and add this member to the cluster again",
            dir.display(),
            what.display()
        ))
    };
    let folders = match std::fs::read_dir(&trees) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(dir, "listing the keyspaces", &e)),
    };
    for folder in folders {
        let folder = folder.map_err(|e| io_error(dir, "listing the keyspaces", &e))?.path();
        let current = folder.join("current");
        let pointer = match std::fs::read(&current) {
            Ok(b) => b,
            // A tree that never wrote a manifest (fjall starts it afresh), or not a tree folder.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => continue,
            Err(e) => return Err(io_error(dir, "reading a manifest pointer", &e)),
        };
        let Ok(pointer) = <[u8; 25]>::try_from(pointer.as_slice()) else {
            return Err(corrupt(&current, &format!("is {} bytes long instead of 25", pointer.len())));
        };
        if pointer[24] != 0 {
            return Err(corrupt(&current, "names an unknown checksum kind"));
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&pointer[..8]);
        let mut sum = [0u8; 16];
        sum.copy_from_slice(&pointer[8..24]);
        let manifest = folder.join(format!("v{}", u64::from_le_bytes(id)));
        let bytes = match std::fs::read(&manifest) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(corrupt(&current, "names a manifest that does not exist"))
            }
            Err(e) => return Err(io_error(dir, "reading a manifest", &e)),
        };
        if xxhash_rust::xxh3::xxh3_128(&bytes) != u128::from_le_bytes(sum) {
            return Err(corrupt(&manifest, "does not match its checksum"));
        }
    }
    Ok(())
}

/// Run `f`, turning a panic inside the storage engine (which corrupt files can provoke) into an
/// error instead of taking the process down.
fn catch_panic<T>(dir: &Path, doing: &str, f: impl FnOnce() -> Result<T, StorageError>) -> Result<T, StorageError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".into());
        Err(StorageError::Corrupt(format!(
            "the storage engine failed while {doing} data directory {}: {why}; its files are \
             probably damaged",
            dir.display()
        )))
    })
}

fn engine_error(dir: &Path, doing: &str, e: fjall::Error) -> StorageError {
    let shown = dir.display();
    match e {
        fjall::Error::Io(io) | fjall::Error::Storage(fjall::LsmError::Io(io)) => io_error(dir, doing, &io),
        fjall::Error::Locked => StorageError::Locked(format!(
            "data directory {shown} is in use by another process (its lock file is held); stop \
             that process or choose another data directory"
        )),
        fjall::Error::Poisoned => StorageError::Io(format!(
            "an earlier write or fsync in data directory {shown} failed, so the store refuses \
             further writes; check the disk and restart the member"
        )),
        other => StorageError::Corrupt(format!(
            "data in data directory {shown} is corrupt or unreadable ({doing}): {other:?}; restore \
             the directory from a backup, or remove it and add this member to the cluster again"
        )),
    }
}

fn io_error(dir: &Path, doing: &str, e: &std::io::Error) -> StorageError {
    use std::io::ErrorKind as K;
    let shown = dir.display();
    match e.kind() {
        K::PermissionDenied | K::ReadOnlyFilesystem => {
            StorageError::Io(format!("data directory {shown} is not writable: {} ({doing}: {e})", e.kind()))
        }
        K::NotADirectory => StorageError::Io(format!(
            "data directory {shown} cannot be created or used: part of its path is not a directory ({e})"
        )),
        K::StorageFull | K::QuotaExceeded => {
            StorageError::Io(format!("no space left for data directory {shown} ({doing}: {e})"))
        }
        // While reading a store, a file too short for its own offsets makes a seek fail with
        // EINVAL: that is damage too.
        K::UnexpectedEof | K::InvalidData | K::InvalidInput => StorageError::Corrupt(format!(
            "data in data directory {shown} is truncated or corrupt ({doing}: {e}); restore the \
             directory from a backup, or remove it and add this member to the cluster again"
        )),
        _ => StorageError::Io(format!("I/O error in data directory {shown} while {doing}: {e}")),
    }
}

/// Bytes the files under `dir` occupy on disk.
fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            total += disk_usage(&entry.path());
        } else {
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                total += meta.blocks() * 512;
            }
            #[cfg(not(unix))]
            {
                total += meta.len();
            }
        }
    }
    total
}

// ---- record encoding -------------------------------------------------------------------------

/// Append a CRC-32 of `key` and `body` to `body`.
fn seal(key: &[u8], mut body: Vec<u8>) -> Vec<u8> {
    let mut h = crc32fast::Hasher::new();
    h.update(key);
    h.update(&body);
    let crc = h.finalize();
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

/// Check a value's CRC-32 against its key and return the body before it.
fn unseal<'a>(key: &[u8], value: &'a [u8]) -> Result<&'a [u8], String> {
    let Some(split) = value.len().checked_sub(4) else {
        return Err(format!("a {}-byte record is too short to hold its checksum", value.len()));
    };
    let (body, crc) = value.split_at(split);
    let mut h = crc32fast::Hasher::new();
    h.update(key);
    h.update(body);
    let want = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if h.finalize() != want {
        return Err(format!("checksum mismatch in the record under key {}", show_key(key)));
    }
    Ok(body)
}

fn show_key(key: &[u8]) -> String {
    match <[u8; 8]>::try_from(key) {
        Ok(b) => format!("{} (log index)", u64::from_be_bytes(b)),
        Err(_) => format!("{:?}", String::from_utf8_lossy(key)),
    }
}

/// Split a tagged body into its fixed-size `u64` fields and the variable tail.
fn fields<const N: usize>(body: &[u8], tag: u8) -> Result<([u64; N], &[u8]), String> {
    let need = 1 + 8 * N;
    if body.len() < need {
        return Err(format!("record of {} bytes is shorter than its {need}-byte header", body.len()));
    }
    if body[0] != tag {
        return Err(format!("record has kind {} where kind {tag} belongs", body[0]));
    }
    let mut out = [0u64; N];
    for (i, slot) in out.iter_mut().enumerate() {
        let at = 1 + 8 * i;
        let mut b = [0u8; 8];
        b.copy_from_slice(&body[at..at + 8]);
        *slot = u64::from_le_bytes(b);
    }
    Ok((out, &body[need..]))
}

fn header(tag: u8, nums: &[u64], tail: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(1 + 8 * nums.len() + tail.len() + 4);
    body.push(tag);
    for n in nums {
        body.extend_from_slice(&n.to_le_bytes());
    }
    body.extend_from_slice(tail);
    body
}

fn decode_index(key: &[u8]) -> Result<u64, String> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| format!("a log key is {} bytes long instead of 8", key.len()))
}

/// A log record of write `write`.
pub(super) fn encode_entry(e: &LogEntry, write: u64) -> Vec<u8> {
    seal(&e.index.to_be_bytes(), header(TAG_ENTRY, &[write, e.term], &e.bytes))
}

/// A log record and the number of the write that stored it.
pub(super) fn decode_entry(key: &[u8], value: &[u8]) -> Result<(LogEntry, u64), String> {
    let index = decode_index(key)?;
    let ([write, term], bytes) = fields::<2>(unseal(key, value)?, TAG_ENTRY)?;
    Ok((LogEntry { index, term, bytes: bytes.to_vec() }, write))
}

pub(super) fn encode_hard_state(hs: &HardState, write: u64) -> Vec<u8> {
    seal(KEY_HARD_STATE, header(TAG_HARD_STATE, &[write, hs.term, hs.vote, hs.commit], &[]))
}

pub(super) fn decode_hard_state(value: &[u8]) -> Result<(HardState, u64), String> {
    let ([write, term, vote, commit], rest) = fields::<4>(unseal(KEY_HARD_STATE, value)?, TAG_HARD_STATE)?;
    if !rest.is_empty() {
        return Err(format!("hard state record has {} stray bytes", rest.len()));
    }
    Ok((HardState { term, vote, commit }, write))
}

pub(super) fn encode_snapshot(s: &SnapshotRecord, write: u64) -> Vec<u8> {
    seal(KEY_SNAPSHOT, header(TAG_SNAPSHOT, &[write, s.index, s.term], &s.bytes))
}

pub(super) fn decode_snapshot(value: &[u8]) -> Result<(SnapshotRecord, u64), String> {
    let ([write, index, term], bytes) = fields::<3>(unseal(KEY_SNAPSHOT, value)?, TAG_SNAPSHOT)?;
    Ok((SnapshotRecord { index, term, bytes: bytes.to_vec() }, write))
}

fn encode_last_write(write: u64) -> Vec<u8> {
    seal(KEY_LAST_WRITE, header(TAG_LAST_WRITE, &[write], &[]))
}

fn decode_last_write(value: &[u8]) -> Result<u64, String> {
    let ([write], rest) = fields::<1>(unseal(KEY_LAST_WRITE, value)?, TAG_LAST_WRITE)?;
    if !rest.is_empty() {
        return Err(format!("last write record has {} stray bytes", rest.len()));
    }
    Ok(write)
}

fn format_record() -> Vec<u8> {
    let mut tail = FORMAT_MAGIC.to_vec();
    tail.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    seal(KEY_FORMAT, header(TAG_FORMAT, &[], &tail))
}

/// The version in a format record.
fn check_format(body: &[u8]) -> Result<u32, String> {
    let ([], tail) = fields::<0>(body, TAG_FORMAT)?;
    let Some(version) = tail.strip_prefix(FORMAT_MAGIC) else {
        return Err("the format record does not name a keel log".into());
    };
    <[u8; 4]>::try_from(version).map(u32::from_le_bytes).map_err(|_| "the format record's version is malformed".into())
}
