//! Target `storage_recovery`: a member's fjall store, written and synced step by step, then
//! damaged — bytes flipped, files cut short, runs of bytes zeroed — and opened again. Opening
//! must either recover exactly one of the states that were synced on the way (fjall drops a
//! damaged journal batch and everything after it as a torn tail, so an earlier one is possible,
//! but never the new, empty store: a member must not forget that it voted), or refuse with
//! [`StorageError::Corrupt`] naming the directory. Never a panic, another error, or a state that
//! was never written.
//!
//! The same harness damages every file at spread-out offsets in this crate's tests
//! ([`damage_every_file`]).

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use keel_core::cluster::Disk;
use keel_core::node::{HardState, LocalSnapshot, LogEntry, Persist, Recovery, SnapshotRecord};
use keel_server::storage::{FjallStorage, Storage, StorageError};

/// A synced store's files, kept in memory: the state after each step, and each file's path
/// (relative to the store), its written bytes (trailing zeros dropped) and its full length
/// (fjall preallocates its journal).
pub struct Pristine {
    pub history: Vec<Option<Disk>>,
    /// Every folder (relative), empty ones included.
    pub dirs: Vec<PathBuf>,
    pub files: Vec<(PathBuf, Vec<u8>, u64)>,
}

impl Pristine {
    /// Build a store from the fixed history, read it into memory and remove it. With `tables`,
    /// part of the data is moved from fjall's journal into table files, so both kinds of file
    /// get damaged.
    pub fn build(tables: bool) -> Pristine {
        let base = tempfile::tempdir().expect("a temporary directory");
        let dir = base.path().join("member");
        let history = build_history(&dir, tables);
        let (dirs, files) = tree(&dir);
        let relative = |p: &Path| p.strip_prefix(&dir).expect("under the store").to_path_buf();
        let dirs = dirs.iter().map(|d| relative(d)).collect();
        let files = files
            .into_iter()
            .map(|p| {
                let mut bytes = fs::read(&p).expect("reading a store file");
                let len = bytes.len() as u64;
                let used = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                bytes.truncate(used);
                (relative(&p), bytes, len)
            })
            .collect();
        Pristine { history, dirs, files }
    }

    /// Write the store into `dir` (a new directory), runs of zeros left as holes.
    pub fn write_to(&self, dir: &Path) {
        fs::create_dir_all(dir).expect("creating the store");
        for rel in &self.dirs {
            fs::create_dir_all(dir.join(rel)).expect("creating a store folder");
        }
        for (rel, bytes, len) in &self.files {
            let path = dir.join(rel);
            let mut f = fs::File::create(&path).expect("creating a store file");
            f.write_all(bytes).expect("writing a store file");
            f.set_len(*len).expect("sizing a store file");
        }
    }
}

/// The fixed history: appends, a snapshot that compacts the log, an overwritten suffix; synced
/// after each step. Returns the state after each step (the first being the new store).
fn build_history(dir: &Path, tables: bool) -> Vec<Option<Disk>> {
    let mut store = FjallStorage::open(dir).expect("a new store");
    let mut model = Disk::default();
    let mut states = vec![None];
    let big = |i: u64| LogEntry { index: i, term: 1 + i / 20, bytes: vec![i as u8; 300 + (i as usize * 7) % 200] };
    let mut step = 0;
    let mut synced = |store: &mut FjallStorage, model: &Disk, states: &mut Vec<Option<Disk>>| {
        store.sync().expect("sync");
        states.push(Some(model.clone()));
        step += 1;
        if tables && step == 5 {
            store.flush_to_tables().expect("flushing to tables");
        }
    };
    for chunk in 0..6u64 {
        let from = chunk * 10 + 1;
        let p = Persist {
            number: chunk * 2 + 1,
            entries: (from..from + 10).map(big).collect(),
            hard_state: Some(HardState { term: 1 + chunk, vote: 1, commit: from + 5 }),
            ..Default::default()
        };
        store.write(&p).expect("write");
        model.write(p);
        synced(&mut store, &model, &mut states);
        if chunk == 2 {
            let s = LocalSnapshot {
                snapshot: SnapshotRecord { index: 20, term: 2, bytes: vec![0xAB; 2000] },
                compact_to: 15,
            };
            store.keep_snapshot(&s).expect("keep_snapshot");
            model.keep_snapshot(&s.snapshot, s.compact_to);
            synced(&mut store, &model, &mut states);
        }
        if chunk == 4 {
            let entries = (44..48).map(|i| LogEntry { index: i, term: 9, bytes: vec![9; 64] }).collect();
            let p = Persist { number: 100, entries, ..Default::default() };
            store.write(&p).expect("write");
            model.write(p);
            synced(&mut store, &model, &mut states);
        }
    }
    states
}

/// The folders and files under `dir`, sorted.
fn tree(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut dirs, mut files) = (vec![], vec![]);
    for e in fs::read_dir(dir).expect("listing a store folder") {
        let p = e.expect("a folder entry").path();
        if p.is_dir() {
            let (d, f) = tree(&p);
            dirs.push(p);
            dirs.extend(d);
            files.extend(f);
        } else {
            files.push(p);
        }
    }
    dirs.sort();
    files.sort();
    (dirs, files)
}

/// How opening a damaged store ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Refused as corrupt.
    Corrupt,
    /// Recovered the state after step `n` of the history (the last one: the damage changed
    /// nothing readable).
    Recovered(usize),
}

/// Open the store in `dir` and judge what it recovered against `history`; panics on anything
/// but a [`StorageError::Corrupt`] naming the directory or a state of the history other than
/// the new store's.
pub fn judge(dir: &Path, history: &[Option<Disk>], what: &str) -> Outcome {
    match open_quietly(dir) {
        Err(StorageError::Corrupt(msg)) => {
            assert!(msg.contains(&dir.display().to_string()), "{what}: the message names the directory: {msg}");
            Outcome::Corrupt
        }
        Err(e) => panic!("{what}: damage must read as Corrupt, not as {e:?}"),
        Ok(r) => {
            let Some(hit) = history.iter().rposition(|d| same(&r, d.as_ref())) else {
                panic!("{what}: recovered a state that was never written: {r:?}")
            };
            assert!(hit > 0, "{what}: a member's store read back as a new one");
            Outcome::Recovered(hit)
        }
    }
}

/// Open and recover the store. fjall panics on some damage (an assertion while decoding a
/// journal entry); `FjallStorage` catches that and answers `Corrupt`, as it must. Under
/// cargo-fuzz (`cfg(fuzzing)`) the panic hook is silenced meanwhile, because libFuzzer's aborts
/// the process on any panic, caught or not; plain tests keep the process's hook alone.
fn open_quietly(dir: &Path) -> Result<Option<Recovery>, StorageError> {
    #[cfg(fuzzing)]
    let hook = {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        hook
    };
    let result = FjallStorage::open(dir).and_then(|mut s| s.recover());
    #[cfg(fuzzing)]
    std::panic::set_hook(hook);
    result
}

fn same(a: &Option<Recovery>, b: Option<&Disk>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => *a == b.stored,
        _ => false,
    }
}

/// One kind of damage to one file; offsets are taken modulo the file's written length.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Damage {
    Flip { file: u8, offset: u32, mask: u8 },
    Cut { file: u8, at: u32 },
    Zero { file: u8, offset: u32, len: u16 },
}

impl Damage {
    /// Damage the copy of `pristine` in `dir`; returns what was done, for messages.
    pub fn apply(self, pristine: &Pristine, dir: &Path) -> String {
        let pick = |file: u8| &pristine.files[file as usize % pristine.files.len()];
        let at = |offset: u32, used: usize| offset as usize % used.max(1);
        match self {
            Damage::Flip { file, offset, mask } => {
                let (rel, bytes, _) = pick(file);
                let off = at(offset, bytes.len());
                let mask = mask.max(1);
                let path = dir.join(rel);
                let mut b = fs::read(&path).expect("reading a store file");
                if let Some(byte) = b.get_mut(off) {
                    *byte ^= mask;
                }
                fs::write(&path, b).expect("writing a store file");
                format!("{} byte {off} ^ {mask:#x}", rel.display())
            }
            Damage::Cut { file, at: cut } => {
                let (rel, bytes, _) = pick(file);
                let cut = at(cut, bytes.len());
                let f = fs::OpenOptions::new().write(true).open(dir.join(rel)).expect("opening a store file");
                f.set_len(cut as u64).expect("cutting a store file");
                format!("{} cut to {cut}", rel.display())
            }
            Damage::Zero { file, offset, len } => {
                let (rel, bytes, _) = pick(file);
                let off = at(offset, bytes.len());
                let mut f = fs::OpenOptions::new().write(true).open(dir.join(rel)).expect("opening a store file");
                f.seek(SeekFrom::Start(off as u64)).expect("seeking");
                f.write_all(&vec![0; len as usize % 512 + 1]).expect("zeroing");
                format!("{} zeroed from {off}", rel.display())
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    tables: bool,
    damage: Vec<Damage>,
}

static PRISTINE: OnceLock<[Pristine; 2]> = OnceLock::new();

/// The target's body.
pub fn run(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else { return };
    let pristine = &PRISTINE.get_or_init(|| [Pristine::build(false), Pristine::build(true)])[input.tables as usize];
    let base = tempfile::tempdir().expect("a temporary directory");
    let dir = base.path().join("member");
    pristine.write_to(&dir);
    let what: Vec<String> = input.damage.iter().take(4).map(|d| d.apply(pristine, &dir)).collect();
    judge(&dir, &pristine.history, &what.join(", "));
}

/// Damage every file of a store (with or without table files) at spread-out offsets and at
/// both ends, one copy per case, and judge each. Returns the outcomes, for the test to check
/// that damage was detected at all.
pub fn damage_every_file(tables: bool) -> Vec<Outcome> {
    let pristine = Pristine::build(tables);
    let base = tempfile::tempdir().expect("a temporary directory");
    let check = base.path().join("check");
    pristine.write_to(&check);
    assert_eq!(judge(&check, &pristine.history, "undamaged"), Outcome::Recovered(pristine.history.len() - 1));
    let mut outcomes = vec![];
    let mut case = 0;
    for (n, (_, bytes, _)) in pristine.files.iter().enumerate() {
        let len = bytes.len() as u32;
        if len == 0 {
            continue;
        }
        let file = n as u8;
        let mut damage: Vec<Damage> =
            (0..12).map(|k| Damage::Flip { file, offset: len / 12 * k, mask: 0x5A }).collect();
        damage.push(Damage::Flip { file, offset: len - 1, mask: 0x5A });
        damage.extend([0, len / 3, len - 1].map(|at| Damage::Cut { file, at }));
        for d in damage {
            case += 1;
            let dir = base.path().join(format!("case{case}"));
            pristine.write_to(&dir);
            let what = d.apply(&pristine, &dir);
            outcomes.push(judge(&dir, &pristine.history, &what));
            fs::remove_dir_all(&dir).expect("removing a case");
        }
    }
    outcomes
}
