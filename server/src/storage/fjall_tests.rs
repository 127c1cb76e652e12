//! Tests of [`FjallStorage`] beyond the shared behaviour: reopening, unsynced writes at a drop,
//! damaged records, locked and unusable directories. (Damaged files: keel-fuzz's
//! `storage_recovery`.)

use std::fs;
use std::path::PathBuf;

use keel_core::cluster::Disk;
use keel_core::node::{HardState, LocalSnapshot, LogEntry, Persist, Recovery, SnapshotRecord};
use proptest::prelude::*;
use tempfile::TempDir;

use super::fjall as codec;
use super::tests::{
    append, arb_engine_step, arb_step, assert_recovers_to, check_all, engine_steps_match_the_model, entries, hs,
    snapshot, Harness, Step,
};
use super::{FjallStorage, Storage, StorageError};

/// Stores in fresh temporary directories (kept until the harness is dropped).
#[derive(Default)]
struct Fjall {
    dirs: Vec<TempDir>,
}

impl Fjall {
    fn new_dir(&mut self) -> PathBuf {
        let t = tempfile::tempdir().unwrap();
        // A directory that does not exist yet: open() must create it.
        let dir = t.path().join("member");
        self.dirs.push(t);
        dir
    }
}

impl Harness for Fjall {
    type S = FjallStorage;
    fn fresh(&mut self) -> FjallStorage {
        FjallStorage::open(&self.new_dir()).unwrap()
    }
    /// Close the store (dropping it) and open its directory again.
    fn restart(&mut self, store: FjallStorage) -> FjallStorage {
        let dir = store.dir().to_path_buf();
        drop(store);
        FjallStorage::open(&dir).unwrap()
    }
}

fn same(a: &Option<Recovery>, b: Option<&Disk>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => *a == b.stored,
        _ => false,
    }
}

#[test]
fn the_shared_behaviour_holds() {
    check_all(&mut Fjall::default());
}

#[test]
fn reopening_returns_the_same_recovery() {
    let mut h = Fjall::default();
    let mut s = h.fresh();
    s.write(&Persist { number: 1, entries: entries(1, 50, 1), hard_state: Some(hs(1, 1, 40)), ..Default::default() })
        .unwrap();
    s.keep_snapshot(&LocalSnapshot { snapshot: snapshot(30, 1), compact_to: 25 }).unwrap();
    s.write(&append(2, entries(45, 60, 2))).unwrap();
    s.sync().unwrap();
    let before = s.recover().unwrap().unwrap();
    for _ in 0..3 {
        s = h.restart(s);
        let after = s.recover().unwrap().unwrap();
        assert_eq!(after.snapshot, before.snapshot);
        assert_eq!(after.hard_state, before.hard_state);
        assert_eq!(after.entries, before.entries);
    }
    assert_eq!(before.entries.first().map(|e| e.index), Some(26));
    assert_eq!(before.entries.last().map(|e| (e.index, e.term)), Some((60, 2)));
}

/// Dropping a store with unsynced writes is allowed to keep or lose them (they were never
/// acknowledged), but never to keep a part of one write, and never to lose synced ones. In
/// practice fjall hands every batch to the OS at once and fsyncs on drop, so a clean drop keeps
/// them; only a power loss would not.
#[test]
fn a_drop_without_sync_keeps_the_synced_writes_and_whole_later_ones() {
    let mut h = Fjall::default();
    let mut s = h.fresh();
    s.write(&Persist { number: 1, entries: entries(1, 5, 1), hard_state: Some(hs(1, 1, 3)), ..Default::default() })
        .unwrap();
    s.sync().unwrap();
    let mut synced = Disk::default();
    synced.write(Persist { number: 1, entries: entries(1, 5, 1), hard_state: Some(hs(1, 1, 3)), ..Default::default() });
    let later = Persist { number: 2, entries: entries(4, 8, 2), hard_state: Some(hs(2, 2, 5)), ..Default::default() };
    s.write(&later).unwrap();
    let mut with_later = synced.clone();
    with_later.write(later);
    let mut s = h.restart(s);
    let r = s.recover().unwrap();
    assert!(same(&r, Some(&synced)) || same(&r, Some(&with_later)), "recovered {r:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The applied state's keyspaces against the model the in-memory engine is held to too:
    /// reads match it, and a reopen keeps a prefix of the batches, all of those before a sync.
    #[test]
    fn engine_steps_match_the_model_across_reopens(steps in proptest::collection::vec(arb_engine_step(), 1..40)) {
        engine_steps_match_the_model(&mut Fjall::default(), &steps);
    }

    /// Random writes, snapshots, syncs and restarts (a `Crash` step drops the store without a
    /// sync and reopens it): the store always reads back the reference, and after a restart one
    /// of the states since the last sync (a prefix of the writes).
    #[test]
    fn random_steps_match_the_reference_across_restarts(steps in proptest::collection::vec(arb_step(), 1..40)) {
        let mut h = Fjall::default();
        let mut store = h.fresh();
        let mut current: Option<Disk> = None;
        // States since the last sync, oldest first; a restart may land on any of them.
        let mut since_sync: Vec<Option<Disk>> = vec![None];
        for step in steps {
            match step {
                Step::Write(p) => {
                    store.write(&p).unwrap();
                    current.get_or_insert_with(Disk::default).write(p);
                    since_sync.push(current.clone());
                }
                Step::KeepSnapshot(s) => {
                    store.keep_snapshot(&s).unwrap();
                    current.get_or_insert_with(Disk::default).keep_snapshot(&s.snapshot, s.compact_to);
                    since_sync.push(current.clone());
                }
                Step::Sync => {
                    store.sync().unwrap();
                    since_sync = vec![current.clone()];
                }
                Step::Crash => {
                    store = h.restart(store);
                    let r = store.recover().unwrap();
                    let hit = since_sync.iter().position(|d| same(&r, d.as_ref()));
                    prop_assert!(hit.is_some(), "recovered {:?}, not a state since the last sync", r);
                    current = since_sync[hit.unwrap_or(0)].clone();
                    since_sync = vec![current.clone()];
                }
            }
            assert_recovers_to(&store.recover().unwrap(), current.as_ref());
        }
    }
}

// ---- damaged records (damaged files: keel-fuzz's storage_recovery, its tests and its fuzzer) ---

#[test]
fn a_bad_record_reads_as_corrupt() {
    let mut h = Fjall::default();
    let good = codec::encode_entry(&LogEntry { index: 3, term: 1, bytes: b"abc".to_vec() }, 1);
    // A good record from a write after the last one stored: what fjall makes of a batch whose
    // sequence number was damaged (found by the storage_recovery fuzzer).
    let from_the_future = codec::encode_entry(&LogEntry { index: 3, term: 1, bytes: b"abc".to_vec() }, 99);
    let mut flipped = good.clone();
    flipped[5] ^= 1;
    let cases: Vec<(bool, Vec<u8>, Vec<u8>)> = vec![
        (true, 3u64.to_be_bytes().to_vec(), flipped),
        // A good record under the wrong key.
        (true, 4u64.to_be_bytes().to_vec(), good.clone()),
        // A key that is not an index.
        (true, b"zz".to_vec(), good.clone()),
        (false, b"hard_state".to_vec(), vec![2, 0, 0]),
        (false, b"snapshot".to_vec(), codec::encode_hard_state(&HardState::default(), 1)),
        (true, 3u64.to_be_bytes().to_vec(), from_the_future),
        (false, b"format".to_vec(), b"not a format record".to_vec()),
    ];
    for (in_log, key, value) in cases {
        let mut s = h.fresh();
        s.write(&append(1, entries(1, 3, 1))).unwrap();
        s.plant(in_log, &key, &value);
        s.sync().unwrap();
        let r = s.recover();
        assert!(matches!(r, Err(StorageError::Corrupt(_))), "{key:?}: {r:?}");
        // And on the next start too (or at open, for damage open() reads).
        let dir = s.dir().to_path_buf();
        drop(s);
        let r = FjallStorage::open(&dir).and_then(|mut s| s.recover());
        assert!(matches!(r, Err(StorageError::Corrupt(_))), "{key:?} after reopen: {r:?}");
    }
}

#[test]
fn every_flipped_byte_or_cut_of_a_record_is_detected() {
    let e = LogEntry { index: 7, term: 3, bytes: b"payload".to_vec() };
    let s = SnapshotRecord { index: 9, term: 2, bytes: b"state".to_vec() };
    let hs = HardState { term: 4, vote: 2, commit: 8 };
    let key = 7u64.to_be_bytes();
    let enc_e = codec::encode_entry(&e, 5);
    let enc_s = codec::encode_snapshot(&s, 6);
    let enc_h = codec::encode_hard_state(&hs, 7);
    assert_eq!(codec::decode_entry(&key, &enc_e).unwrap(), (e, 5));
    assert_eq!(codec::decode_snapshot(&enc_s).unwrap(), (s, 6));
    assert_eq!(codec::decode_hard_state(&enc_h).unwrap(), (hs, 7));
    for i in 0..enc_e.len() {
        for bit in 0..8 {
            let mut v = enc_e.clone();
            v[i] ^= 1 << bit;
            assert!(codec::decode_entry(&key, &v).is_err(), "entry byte {i} bit {bit}");
        }
        assert!(codec::decode_entry(&key, &enc_e[..i]).is_err(), "entry cut to {i}");
    }
    for i in 0..enc_s.len() {
        let mut v = enc_s.clone();
        v[i] ^= 0x80;
        assert!(codec::decode_snapshot(&v).is_err(), "snapshot byte {i}");
        assert!(codec::decode_snapshot(&enc_s[..i]).is_err(), "snapshot cut to {i}");
    }
    for i in 0..enc_h.len() {
        let mut v = enc_h.clone();
        v[i] ^= 0x01;
        assert!(codec::decode_hard_state(&v).is_err(), "hard state byte {i}");
        assert!(codec::decode_hard_state(&enc_h[..i]).is_err(), "hard state cut to {i}");
    }
    assert!(codec::decode_entry(&8u64.to_be_bytes(), &enc_e).is_err(), "a record under another key");
}

// ---- unusable directories --------------------------------------------------------------------

#[test]
fn a_second_open_of_a_directory_in_use_is_locked() {
    let mut h = Fjall::default();
    let mut s = h.fresh();
    s.write(&append(1, entries(1, 2, 1))).unwrap();
    let err = FjallStorage::open(s.dir()).unwrap_err();
    match &err {
        StorageError::Locked(msg) => assert!(msg.contains(&s.dir().display().to_string()), "{msg}"),
        other => panic!("expected Locked, got {other:?}"),
    }
    // The first handle is unharmed, and the directory opens once it is closed.
    s.sync().unwrap();
    assert_eq!(s.recover().unwrap().unwrap().entries, entries(1, 2, 1));
    let s = h.restart(s);
    assert!(FjallStorage::open(s.dir()).is_err());
}

#[test]
fn a_directory_that_cannot_be_created_is_an_io_error() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("a-file");
    fs::write(&file, b"not a directory").unwrap();
    for dir in [file.join("member"), file.clone()] {
        match FjallStorage::open(&dir) {
            Err(StorageError::Io(msg)) => assert!(msg.contains(&dir.display().to_string()), "{msg}"),
            other => panic!("{}: expected Io, got {other:?}", dir.display()),
        }
    }
}

#[cfg(unix)]
#[test]
fn a_read_only_directory_is_an_io_error() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("ro");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
    if fs::write(dir.join("probe"), b"x").is_ok() {
        // Running as root: permissions do not stop us, so there is nothing to test here
        // (a_directory_that_cannot_be_created_is_an_io_error covers the error path).
        eprintln!("skipped: this user can write to read-only directories");
        return;
    }
    match FjallStorage::open(&dir) {
        Err(StorageError::Io(msg)) => {
            assert!(msg.contains("is not writable") && msg.contains(&dir.display().to_string()), "{msg}")
        }
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn a_directory_holding_something_else_is_refused() {
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("member.json"), b"{}").unwrap();
    assert!(matches!(FjallStorage::open(t.path()), Err(StorageError::Corrupt(_))));
    // And nothing was added to it.
    assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1);
}

#[test]
fn size_grows_with_the_data() {
    let mut h = Fjall::default();
    let mut s = h.fresh();
    let empty = s.size_bytes();
    let es: Vec<LogEntry> = (1..=200).map(|i| LogEntry { index: i, term: 1, bytes: vec![i as u8; 4096] }).collect();
    s.write(&append(1, es)).unwrap();
    s.sync().unwrap();
    let s = h.restart(s);
    s.flush_to_tables().unwrap();
    assert!(s.size_bytes() > empty, "{} > {empty}", s.size_bytes());
}

#[test]
fn a_damaged_identity_is_corrupt_not_a_new_id() {
    let mut h = Fjall::default();
    let mut s = h.fresh();
    s.keep_identity(super::MemberIdentity { member_id: 0xabc, cluster_id: 0xdef }).unwrap();
    assert_eq!(fs::read_to_string(s.dir().join("keel-member")).unwrap(), "member abc\ncluster def\n");
    fs::write(s.dir().join("keel-member"), "member zz\n").unwrap();
    assert!(matches!(s.identity(), Err(StorageError::Corrupt(m)) if m.contains("keel-member")));
}
