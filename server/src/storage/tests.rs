//! Behaviour every [`Storage`] must show, written once and run against each implementation
//! (see `check_all`), plus the pieces the implementations' own tests share.

use std::collections::BTreeMap;
use std::ops::Bound;

use keel_core::cluster::Disk;
use keel_core::node::{HardState, LocalSnapshot, LogEntry, Persist, Recovery, SnapshotRecord};
use keel_core::state::engine::{Batch, KeyBounds, Reader, Space};
use proptest::prelude::*;

use super::{MemberIdentity, Storage};

/// How a test gets stores of one kind.
pub(crate) trait Harness {
    type S: Storage;
    /// A new, empty store.
    fn fresh(&mut self) -> Self::S;
    /// Stop the store and start it again from what it made durable (reopen, or crash).
    fn restart(&mut self, store: Self::S) -> Self::S;
}

/// One thing a test does to a store.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    Write(Persist),
    KeepSnapshot(LocalSnapshot),
    Sync,
    Crash,
}

pub(crate) fn entry(index: u64, term: u64) -> LogEntry {
    // Bytes that differ by index and term, so a mix-up shows.
    LogEntry { index, term, bytes: format!("entry {index} of term {term}").into_bytes() }
}

pub(crate) fn entries(from: u64, to: u64, term: u64) -> Vec<LogEntry> {
    (from..=to).map(|i| entry(i, term)).collect()
}

pub(crate) fn snapshot(index: u64, term: u64) -> SnapshotRecord {
    SnapshotRecord { index, term, bytes: format!("state at {index}").into_bytes() }
}

pub(crate) fn hs(term: u64, vote: u64, commit: u64) -> HardState {
    HardState { term, vote, commit }
}

pub(crate) fn append(number: u64, es: Vec<LogEntry>) -> Persist {
    Persist { number, entries: es, ..Default::default() }
}

/// Fail unless `actual` is exactly what `expected` (the reference) holds; `None` means a new store.
pub(crate) fn assert_recovers_to(actual: &Option<Recovery>, expected: Option<&Disk>) {
    match (actual, expected) {
        (None, None) => {}
        (Some(a), Some(e)) => {
            assert_eq!(a.snapshot, e.stored.snapshot, "snapshot");
            assert_eq!(a.hard_state, e.stored.hard_state, "hard state");
            assert_eq!(a.entries, e.stored.entries, "entries");
        }
        (a, e) => panic!("recovered {a:?}, expected {e:?}"),
    }
}

/// Apply `steps` (no crashes) to a fresh store and to the reference, sync, and check the store
/// reads back the reference before and after a restart. Returns the store and the reference.
fn run<H: Harness>(h: &mut H, steps: &[Step]) -> (H::S, Option<Disk>) {
    let mut store = h.fresh();
    let mut model: Option<Disk> = None;
    for step in steps {
        match step {
            Step::Write(p) => {
                store.write(p).unwrap();
                model.get_or_insert_with(Disk::default).write(p.clone());
            }
            Step::KeepSnapshot(s) => {
                store.keep_snapshot(s).unwrap();
                model.get_or_insert_with(Disk::default).keep_snapshot(&s.snapshot, s.compact_to);
            }
            Step::Sync => store.sync().unwrap(),
            Step::Crash => unreachable!("run() is for steps without crashes"),
        }
    }
    assert_recovers_to(&store.recover().unwrap(), model.as_ref());
    store.sync().unwrap();
    let mut store = h.restart(store);
    assert_recovers_to(&store.recover().unwrap(), model.as_ref());
    (store, model)
}

fn recover<S: Storage>(s: &mut S) -> Recovery {
    s.recover().unwrap().expect("the store holds a member")
}

/// Run every shared behaviour against stores from `h`.
pub(crate) fn check_all<H: Harness>(h: &mut H) {
    empty_store_recovers_to_none(h);
    round_trip(h);
    suffix_overwrite(h);
    snapshot_resets_log(h);
    keep_snapshot_drops_compacted_entries(h);
    hard_state_last_wins(h);
    group_of_writes_then_one_sync(h);
    one_persist_applies_snapshot_then_entries_then_hard_state(h);
    large_values_round_trip(h);
    writes_after_restart_follow_the_rules(h);
    identity_survives_a_restart_apart_from_the_log(h);
}

fn identity_survives_a_restart_apart_from_the_log<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    assert_eq!(s.identity().unwrap(), None);
    let kept = MemberIdentity { member_id: 0x1234_5678_9abc_def0, cluster_id: 7 };
    s.keep_identity(kept).unwrap();
    let mut s = h.restart(s);
    assert_eq!(s.identity().unwrap(), Some(kept));
    assert!(s.recover().unwrap().is_none(), "an identity alone does not make a store hold a member");
}

fn empty_store_recovers_to_none<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    assert!(s.recover().unwrap().is_none());
    s.sync().unwrap();
    let mut s = h.restart(s);
    assert!(s.recover().unwrap().is_none(), "a sync alone does not make a store hold a member");
}

fn round_trip<H: Harness>(h: &mut H) {
    let p = Persist { number: 1, entries: entries(1, 3, 1), hard_state: Some(hs(1, 2, 1)), ..Default::default() };
    let (mut s, _) = run(h, &[Step::Write(p), Step::Sync]);
    let r = recover(&mut s);
    assert_eq!(r.entries, entries(1, 3, 1));
    assert_eq!(r.hard_state, hs(1, 2, 1));
    assert_eq!(r.snapshot, None);
    // An empty Persist is a write too: the store now holds a member.
    let (mut s, _) = run(h, &[Step::Write(Persist::default())]);
    let r = recover(&mut s);
    assert!(r.entries.is_empty() && r.snapshot.is_none() && r.hard_state == HardState::default());
}

fn suffix_overwrite<H: Harness>(h: &mut H) {
    let (mut s, _) = run(h, &[Step::Write(append(1, entries(1, 5, 1))), Step::Write(append(2, entries(3, 4, 2)))]);
    let mut want = entries(1, 2, 1);
    want.extend(entries(3, 4, 2));
    assert_eq!(recover(&mut s).entries, want, "entries 3..=5 replaced by the new 3..=4");

    // Overwriting from the first stored index replaces everything; appending keeps everything.
    let (mut s, _) = run(
        h,
        &[
            Step::Write(append(1, entries(4, 8, 1))),
            Step::Write(append(2, entries(4, 4, 3))),
            Step::Write(append(3, entries(5, 6, 3))),
        ],
    );
    assert_eq!(recover(&mut s).entries, entries(4, 6, 3));

    // A longer replacement, spread over two syncs.
    run(
        h,
        &[
            Step::Write(append(1, entries(1, 3, 1))),
            Step::Sync,
            Step::Write(append(2, entries(2, 9, 2))),
            Step::Write(append(3, entries(9, 9, 3))),
        ],
    );
}

fn snapshot_resets_log<H: Harness>(h: &mut H) {
    let (mut s, _) = run(
        h,
        &[
            Step::Write(append(1, entries(1, 5, 1))),
            Step::Write(Persist {
                number: 2,
                snapshot: Some(snapshot(10, 2)),
                entries: entries(11, 12, 2),
                ..Default::default()
            }),
        ],
    );
    let r = recover(&mut s);
    assert_eq!(r.snapshot, Some(snapshot(10, 2)));
    assert_eq!(r.entries, entries(11, 12, 2));

    // A snapshot alone empties the log, even one older than stored entries.
    let (mut s, _) = run(
        h,
        &[
            Step::Write(append(1, entries(1, 5, 1))),
            Step::Write(Persist { number: 2, snapshot: Some(snapshot(3, 1)), ..Default::default() }),
        ],
    );
    let r = recover(&mut s);
    assert_eq!(r.snapshot, Some(snapshot(3, 1)));
    assert!(r.entries.is_empty());

    // A later snapshot replaces an earlier one; appends after it work.
    run(
        h,
        &[
            Step::Write(Persist {
                number: 1,
                snapshot: Some(snapshot(5, 1)),
                entries: entries(6, 7, 1),
                ..Default::default()
            }),
            Step::Sync,
            Step::Write(Persist { number: 2, snapshot: Some(snapshot(20, 3)), ..Default::default() }),
            Step::Write(append(3, entries(21, 23, 3))),
        ],
    );
}

fn keep_snapshot_drops_compacted_entries<H: Harness>(h: &mut H) {
    let (mut s, _) = run(
        h,
        &[
            Step::Write(append(1, entries(1, 10, 1))),
            Step::Sync,
            Step::KeepSnapshot(LocalSnapshot { snapshot: snapshot(6, 1), compact_to: 4 }),
        ],
    );
    let r = recover(&mut s);
    assert_eq!(r.snapshot, Some(snapshot(6, 1)));
    assert_eq!(r.entries, entries(5, 10, 1), "entries <= compact_to are gone, the rest stay");

    // Compacting past the end empties the log; appends and overwrites after it still work.
    let (mut s, _) = run(
        h,
        &[
            Step::Write(append(1, entries(1, 10, 1))),
            Step::KeepSnapshot(LocalSnapshot { snapshot: snapshot(10, 1), compact_to: 20 }),
            Step::Write(append(2, entries(11, 14, 2))),
            Step::KeepSnapshot(LocalSnapshot { snapshot: snapshot(12, 2), compact_to: 11 }),
            Step::Write(append(3, entries(13, 13, 3))),
            Step::KeepSnapshot(LocalSnapshot { snapshot: snapshot(12, 2), compact_to: 0 }),
        ],
    );
    let r = recover(&mut s);
    assert_eq!(r.entries, vec![entry(12, 2), entry(13, 3)]);
}

fn hard_state_last_wins<H: Harness>(h: &mut H) {
    let (mut s, _) = run(
        h,
        &[
            Step::Write(Persist { number: 1, hard_state: Some(hs(1, 1, 0)), ..Default::default() }),
            Step::Write(Persist { number: 2, hard_state: Some(hs(2, 3, 4)), ..Default::default() }),
            Step::Sync,
            Step::Write(Persist { number: 3, hard_state: Some(hs(3, 0, 4)), ..Default::default() }),
            Step::Write(append(4, entries(1, 1, 3))),
        ],
    );
    assert_eq!(recover(&mut s).hard_state, hs(3, 0, 4), "a Persist without hard state keeps the last one");
}

fn group_of_writes_then_one_sync<H: Harness>(h: &mut H) {
    let mut steps = vec![];
    for n in 1..=20u64 {
        steps.push(Step::Write(Persist {
            number: n,
            entries: entries(n, n + 1, n),
            hard_state: Some(hs(n, 1, n.saturating_sub(1))),
            ..Default::default()
        }));
    }
    steps.push(Step::Sync);
    let (mut s, _) = run(h, &steps);
    let r = recover(&mut s);
    let want: Vec<_> = (1..=20).map(|n| entry(n, n)).chain([entry(21, 20)]).collect();
    assert_eq!(r.entries, want);
    assert_eq!(r.hard_state, hs(20, 1, 19));
}

fn one_persist_applies_snapshot_then_entries_then_hard_state<H: Harness>(h: &mut H) {
    let (mut s, _) = run(
        h,
        &[
            Step::Write(append(1, entries(1, 4, 1))),
            Step::Write(Persist {
                number: 2,
                must_sync: true,
                snapshot: Some(snapshot(2, 1)),
                entries: entries(3, 6, 2),
                hard_state: Some(hs(2, 2, 3)),
            }),
        ],
    );
    let r = recover(&mut s);
    assert_eq!(r.snapshot, Some(snapshot(2, 1)));
    assert_eq!(r.entries, entries(3, 6, 2), "the snapshot cleared the log before the entries went in");
    assert_eq!(r.hard_state, hs(2, 2, 3));
}

fn large_values_round_trip<H: Harness>(h: &mut H) {
    let big =
        |seed: u8, len: usize| (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect::<Vec<u8>>();
    let es: Vec<LogEntry> = (1..=4).map(|i| LogEntry { index: i, term: 1, bytes: big(i as u8, 200_000) }).collect();
    let snap = SnapshotRecord { index: 0, term: 0, bytes: big(9, 3_000_000) };
    let (mut s, _) = run(
        h,
        &[Step::Write(Persist {
            number: 1,
            must_sync: true,
            snapshot: Some(snap.clone()),
            entries: es.clone(),
            hard_state: None,
        })],
    );
    let r = recover(&mut s);
    assert_eq!(r.snapshot, Some(snap));
    assert_eq!(r.entries, es);
    assert!(s.size_bytes() > 0);
}

fn writes_after_restart_follow_the_rules<H: Harness>(h: &mut H) {
    // The store must learn its log bounds from disk, not only from writes it saw.
    let (s, model) = run(h, &[Step::Write(append(1, entries(1, 6, 1)))]);
    let mut model = model.unwrap();
    let mut s = h.restart(s);
    let p = append(2, entries(4, 5, 2));
    s.write(&p).unwrap();
    model.write(p);
    let k = LocalSnapshot { snapshot: snapshot(2, 1), compact_to: 2 };
    s.keep_snapshot(&k).unwrap();
    model.keep_snapshot(&k.snapshot, k.compact_to);
    s.sync().unwrap();
    let mut s = h.restart(s);
    assert_recovers_to(&s.recover().unwrap(), Some(&model));
    assert_eq!(recover(&mut s).entries, vec![entry(3, 1), entry(4, 2), entry(5, 2)]);
}

/// Random steps for property tests: small, contiguous batches of entries at indexes that often
/// overlap what is stored, occasional snapshots, compactions, syncs and crashes.
pub(crate) fn arb_step() -> impl Strategy<Value = Step> {
    let arb_entries = (1u64..30, 0u64..5, 1u64..4, proptest::collection::vec(any::<u8>(), 0..3)).prop_map(
        |(first, count, term, bytes)| {
            (first..first + count).map(|index| LogEntry { index, term, bytes: bytes.clone() }).collect::<Vec<_>>()
        },
    );
    let arb_snapshot = (0u64..30, 1u64..4).prop_map(|(index, term)| snapshot(index, term));
    let arb_hs = (0u64..4, 0u64..4, 0u64..30).prop_map(|(t, v, c)| hs(t, v, c));
    let arb_persist =
        (1u64..1000, proptest::option::weighted(0.15, arb_snapshot.clone()), arb_entries, proptest::option::of(arb_hs))
            .prop_map(|(number, snapshot, entries, hard_state)| {
                Step::Write(Persist { number, must_sync: true, snapshot, entries, hard_state })
            });
    prop_oneof![
        6 => arb_persist,
        1 => (arb_snapshot, 0u64..35).prop_map(|(snapshot, compact_to)| Step::KeepSnapshot(LocalSnapshot { snapshot, compact_to })),
        3 => Just(Step::Sync),
        1 => Just(Step::Crash),
    ]
}

// ---- the applied state's engine (Storage::engine) ----

/// One thing a test does to a store's engine.
#[derive(Clone, Debug)]
pub(crate) enum EngineStep {
    Commit(Batch),
    Sync,
    Restart,
}

/// Every space's contents, as a model of an engine.
type Contents = BTreeMap<Space, BTreeMap<Vec<u8>, Vec<u8>>>;

fn contents(engine: &dyn Reader) -> Contents {
    let mut out = Contents::new();
    for space in Space::ALL {
        let pairs: BTreeMap<_, _> = engine.scan(space, KeyBounds::all(), false).map(|p| p.unwrap()).collect();
        if !pairs.is_empty() {
            out.insert(space, pairs);
        }
    }
    out
}

fn apply_to_model(model: &mut Contents, batch: &Batch) {
    if batch.clear {
        model.clear();
    }
    for ((space, key), value) in &batch.ops {
        let map = model.entry(*space).or_default();
        match value {
            Some(v) => map.insert(key.clone(), v.clone()),
            None => map.remove(key),
        };
    }
    model.retain(|_, m| !m.is_empty());
}

/// Reads through `engine` agree with `model`: point reads, and scans in both directions over a
/// few bounds.
fn assert_reads_match(engine: &dyn Reader, model: &Contents) {
    assert_eq!(&contents(engine), model);
    let empty = BTreeMap::new();
    for space in Space::ALL {
        let want = model.get(&space).unwrap_or(&empty);
        for key in [&b"a"[..], b"b", b"zz"] {
            assert_eq!(engine.get(space, key).unwrap().as_ref(), want.get(key), "get {space:?} {key:?}");
        }
        let bounds = KeyBounds { start: Bound::Excluded(&b"a"[..]), end: Bound::Included(&b"c"[..]) };
        let got: Vec<_> = engine.scan(space, bounds.clone(), true).map(|p| p.unwrap().0).collect();
        let expected: Vec<_> = want.keys().filter(|k| bounds.contains(k)).rev().cloned().collect();
        assert_eq!(got, expected, "reverse scan of {space:?}");
    }
}

/// Random engine batches, syncs and restarts against a model: reads always match it, a view
/// taken before a batch still reads as the state before it, and after a restart the engine
/// holds one of the states since the last sync (a prefix of the batches).
/// Log writes go between the batches, as a member makes them, and must not disturb the state.
pub(crate) fn engine_steps_match_the_model<H: Harness>(h: &mut H, steps: &[EngineStep]) {
    let mut store = h.fresh();
    let mut engine = store.engine();
    let mut model = Contents::new();
    let mut since_sync = vec![model.clone()];
    for (i, step) in steps.iter().enumerate() {
        match step {
            EngineStep::Commit(batch) => {
                let (view, before) = (engine.view().unwrap(), model.clone());
                engine.commit(batch.clone()).unwrap();
                assert_reads_match(&*view, &before);
                apply_to_model(&mut model, batch);
                since_sync.push(model.clone());
                store.write(&append(i as u64 + 1, vec![entry(i as u64 + 1, 1)])).unwrap();
            }
            EngineStep::Sync => {
                store.sync().unwrap();
                since_sync = vec![model.clone()];
            }
            EngineStep::Restart => {
                drop(engine);
                store = h.restart(store);
                engine = store.engine();
                let found = contents(&*engine);
                let hit = since_sync.iter().position(|m| *m == found);
                assert!(hit.is_some(), "after a restart the engine holds {found:?}, not a state since the last sync");
                model = since_sync[hit.unwrap_or(0)].clone();
                since_sync = vec![model.clone()];
            }
        }
        assert_reads_match(&*engine, &model);
    }
}

/// Random engine steps: batches of puts and removals over a few keys of every space, sometimes
/// replacing everything (`clear`).
pub(crate) fn arb_engine_step() -> impl Strategy<Value = EngineStep> {
    let arb_space = proptest::sample::select(Space::ALL.to_vec());
    let arb_key = proptest::sample::select(vec![
        b"a".to_vec(),
        b"b".to_vec(),
        b"bb".to_vec(),
        b"c".to_vec(),
        vec![0],
        vec![0xff],
    ]);
    let arb_op = (arb_space, arb_key, proptest::option::weighted(0.7, proptest::collection::vec(any::<u8>(), 0..4)));
    let arb_batch =
        (proptest::bool::weighted(0.05), proptest::collection::vec(arb_op, 0..6)).prop_map(|(clear, ops)| {
            let mut batch = Batch { clear, ..Batch::default() };
            for (space, key, value) in ops {
                batch.ops.insert((space, key), value);
            }
            EngineStep::Commit(batch)
        });
    prop_oneof![6 => arb_batch, 2 => Just(EngineStep::Sync), 1 => Just(EngineStep::Restart)]
}
