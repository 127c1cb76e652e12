use super::*;
use crate::api::kv::KeyValue;
use proptest::prelude::*;

/// A simple history: every event ever applied, plus a compaction mark.
#[derive(Default)]
struct Log {
    events: Vec<Event>,
    current: i64,
    compacted: i64,
}

impl Log {
    /// Apply one revision of (key, is_put) writes; returns its events.
    fn write(&mut self, ops: &[(&[u8], bool)]) -> (Vec<Event>, i64) {
        self.current += 1;
        let rev = self.current;
        let evs: Vec<Event> = ops.iter().map(|&(k, put)| ev(k, rev, put)).collect();
        self.events.extend(evs.iter().cloned());
        (evs, rev)
    }
}

impl EventHistory for Log {
    fn current_revision(&self) -> i64 {
        self.current
    }
    fn compact_revision(&self) -> i64 {
        self.compacted
    }
    fn events_since(&self, start: i64, key: &[u8], range_end: &[u8]) -> Result<Vec<Event>> {
        if start < self.compacted {
            return Err(Error::Compacted);
        }
        Ok(self
            .events
            .iter()
            .filter(|e| e.kv.mod_revision >= start && in_range(&e.kv.key, key, range_end))
            .cloned()
            .collect())
    }
}

fn ev(key: &[u8], rev: i64, put: bool) -> Event {
    let prev = KeyValue { key: key.to_vec(), mod_revision: rev - 1, ..Default::default() };
    Event {
        kind: if put { EventType::Put } else { EventType::Delete },
        kv: KeyValue {
            key: key.to_vec(),
            mod_revision: rev,
            value: if put { b"v".to_vec() } else { vec![] },
            ..Default::default()
        },
        prev_kv: Some(prev),
    }
}

fn watch(key: &[u8], range_end: &[u8], start: i64) -> WatchCreate {
    WatchCreate { key: key.to_vec(), range_end: range_end.to_vec(), start_revision: start, ..Default::default() }
}

fn revs(resps: &[WatchResponse]) -> Vec<i64> {
    resps.iter().flat_map(|r| r.events.iter().map(|e| e.kv.mod_revision)).collect()
}

#[test]
fn resync_after_a_state_jump_delivers_the_missed_revisions_once() {
    let mut log = Log::default();
    log.write(&[(b"a", true)]);
    let mut hub = WatchHub::new();
    let (live, _) = hub.create(watch(b"a", b"", 0), &log);
    // The member's state jumps ahead (a snapshot arrived) without `on_events` calls.
    log.write(&[(b"a", true)]);
    log.write(&[(b"b", true)]);
    log.write(&[(b"a", false)]);
    let out = hub.resync(&log);
    assert_eq!(revs(&out), vec![2, 4]);
    assert!(out.iter().all(|r| r.watch_id == live));
    // Nothing twice: neither a second resync nor a late event of a passed revision.
    assert!(hub.resync(&log).is_empty());
    assert!(hub.on_events(&[ev(b"a", 4, true)], 4).is_empty());
    // A watcher whose missed history was compacted away is cancelled with the compact revision.
    let (old, _) = hub.create(watch(b"a", b"", 0), &log);
    log.write(&[(b"a", true)]);
    log.write(&[(b"a", true)]);
    log.compacted = 6;
    let out = hub.resync(&log);
    assert!(out.iter().any(|r| r.watch_id == old && r.canceled && r.compact_revision == 6));
    assert_eq!(hub.request(old), None);
}

#[test]
fn create_from_now_sends_created_only() {
    let mut log = Log::default();
    log.write(&[(b"a", true)]);
    let mut hub = WatchHub::new();
    let (id, out) = hub.create(watch(b"a", b"", 0), &log);
    assert_eq!(id, 0);
    assert_eq!(out, vec![WatchResponse { watch_id: 0, created: true, revision: 1, ..Default::default() }]);
    let (id2, _) = hub.create(watch(b"b", b"", 0), &log);
    assert_eq!(id2, 1);
    assert_eq!(hub.len(), 2);
    assert!(!hub.is_empty());
    // The next revision arrives live.
    let (evs, rev) = log.write(&[(b"a", true), (b"b", false)]);
    let out = hub.on_events(&evs, rev);
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].watch_id, out[0].revision, out[0].events.len()), (0, 2, 1));
    assert_eq!(out[1].events[0].kind, EventType::Delete);
    // Already seen: not again.
    assert!(hub.on_events(&evs, rev).is_empty());
}

#[test]
fn replay_groups_by_revision_then_goes_live_without_duplicates() {
    let mut log = Log::default();
    log.write(&[(b"a", true)]); // 1
    log.write(&[(b"a", true), (b"b", true)]); // 2
    log.write(&[(b"c", true)]); // 3
    log.write(&[(b"b", false), (b"a", false)]); // 4
    let mut hub = WatchHub::new();
    let (id, out) = hub.create(watch(b"a", b"c", 2), &log);
    assert!(out[0].created);
    assert_eq!(out[0].revision, 4);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].watch_id, id);
    assert_eq!(out[1].revision, 4);
    let got: Vec<(Vec<u8>, i64)> = out[1].events.iter().map(|e| (e.kv.key.clone(), e.kv.mod_revision)).collect();
    assert_eq!(got, vec![(b"a".to_vec(), 2), (b"b".to_vec(), 2), (b"b".to_vec(), 4), (b"a".to_vec(), 4)]);
    // Replaying revision 4 again (e.g. the node routes it late) delivers nothing twice.
    let again: Vec<Event> = log.events.iter().filter(|e| e.kv.mod_revision == 4).cloned().collect();
    assert!(hub.on_events(&again, 4).is_empty());
    let (evs, rev) = log.write(&[(b"a", true)]); // 5
    let out = hub.on_events(&evs, rev);
    assert_eq!(revs(&out), vec![5]);
}

#[test]
fn start_at_current_replays_current_revision_once() {
    let mut log = Log::default();
    log.write(&[(b"k", true)]);
    log.write(&[(b"k", true)]);
    let mut hub = WatchHub::new();
    let (_, out) = hub.create(watch(b"k", b"", 2), &log);
    assert_eq!(revs(&out), vec![2]);
    let (evs, rev) = log.write(&[(b"k", false)]);
    assert_eq!(revs(&hub.on_events(&evs, rev)), vec![3]);
}

#[test]
fn future_start_revision_waits() {
    let mut log = Log::default();
    log.write(&[(b"k", true)]);
    let mut hub = WatchHub::new();
    let (_, out) = hub.create(watch(b"k", b"", 3), &log);
    assert_eq!(out.len(), 1);
    let (evs, rev) = log.write(&[(b"k", true)]); // 2 < 3
    assert!(hub.on_events(&evs, rev).is_empty());
    let (evs, rev) = log.write(&[(b"k", true)]); // 3
    assert_eq!(revs(&hub.on_events(&evs, rev)), vec![3]);
}

#[test]
fn compacted_start_cancels() {
    let mut log = Log::default();
    for _ in 0..5 {
        log.write(&[(b"k", true)]);
    }
    log.compacted = 3;
    let mut hub = WatchHub::new();
    let (id, out) = hub.create(watch(b"k", b"", 2), &log);
    assert_eq!(out.len(), 2);
    assert!(out[0].created);
    assert_eq!(
        out[1],
        WatchResponse { watch_id: id, canceled: true, compact_revision: 3, revision: 5, ..Default::default() }
    );
    assert!(hub.is_empty());
    assert_eq!(hub.cancel(id), None);
    // At the compaction revision itself: allowed.
    let (_, out) = hub.create(watch(b"k", b"", 3), &log);
    assert_eq!(revs(&out), vec![3, 4, 5]);
    // Start 0 is never "compacted".
    let (_, out) = hub.create(watch(b"k", b"", 0), &log);
    assert_eq!(out.len(), 1);
    assert_eq!(hub.len(), 2);
}

/// A history whose replay fails.
struct Broken(Error);
impl EventHistory for Broken {
    fn current_revision(&self) -> i64 {
        10
    }
    fn compact_revision(&self) -> i64 {
        2
    }
    fn events_since(&self, _: i64, _: &[u8], _: &[u8]) -> Result<Vec<Event>> {
        Err(self.0.clone())
    }
}

#[test]
fn replay_errors_cancel_the_watch() {
    let mut hub = WatchHub::new();
    let (_, out) = hub.create(watch(b"k", b"", 5), &Broken(Error::Compacted));
    assert_eq!((out[1].canceled, out[1].compact_revision), (true, 2));
    let (_, out) = hub.create(watch(b"k", b"", 5), &Broken(Error::Internal("boom".into())));
    assert!(out[1].canceled);
    assert_eq!(out[1].cancel_reason, "etcdserver: boom");
    assert!(hub.is_empty());
}

#[test]
fn cancel_removes_watcher() {
    let mut log = Log::default();
    let mut hub = WatchHub::new();
    let (id, _) = hub.create(watch(b"k", b"", 0), &log);
    let (evs, rev) = log.write(&[(b"k", true)]);
    hub.on_events(&evs, rev);
    assert_eq!(hub.cancel(id), Some(WatchResponse { watch_id: id, canceled: true, revision: 1, ..Default::default() }));
    assert_eq!(hub.cancel(id), None);
    assert_eq!(hub.cancel(99), None);
    assert!(hub.is_empty());
    let (evs, rev) = log.write(&[(b"k", true)]);
    assert!(hub.on_events(&evs, rev).is_empty());
    // Ids are never reused.
    assert_eq!(hub.create(watch(b"k", b"", 0), &log).0, 1);
}

#[test]
fn filters_drop_event_kinds() {
    let mut log = Log::default();
    log.write(&[(b"a", true)]);
    log.write(&[(b"a", false)]);
    let mut hub = WatchHub::new();
    let mut no_put = watch(b"a", b"", 1);
    no_put.filters = vec![WatchFilter::NoPut];
    let mut no_del = watch(b"a", b"", 1);
    no_del.filters = vec![WatchFilter::NoDelete];
    let mut none = watch(b"a", b"", 1);
    none.filters = vec![WatchFilter::NoDelete, WatchFilter::NoPut];
    let (_, o1) = hub.create(no_put, &log);
    let (_, o2) = hub.create(no_del, &log);
    let (_, o3) = hub.create(none, &log);
    assert_eq!(revs(&o1), vec![2]);
    assert_eq!(revs(&o2), vec![1]);
    assert_eq!(o3.len(), 1, "created only: no empty replay responses");
    let (evs, rev) = log.write(&[(b"a", true)]);
    let out = hub.on_events(&evs, rev);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].watch_id, 1);
}

#[test]
fn prev_kv_is_stripped_unless_asked() {
    let mut log = Log::default();
    log.write(&[(b"a", true)]);
    let mut hub = WatchHub::new();
    let mut with = watch(b"a", b"", 1);
    with.prev_kv = true;
    let (_, o0) = hub.create(watch(b"a", b"", 1), &log);
    let (_, o1) = hub.create(with, &log);
    assert_eq!(o0[1].events[0].prev_kv, None);
    assert!(o1[1].events[0].prev_kv.is_some());
    let (evs, rev) = log.write(&[(b"a", false)]);
    let out = hub.on_events(&evs, rev);
    assert_eq!(out[0].events[0].prev_kv, None);
    assert_eq!(out[1].events[0].prev_kv, evs[0].prev_kv);
}

#[test]
fn ranges_prefix_and_from_key() {
    let mut log = Log::default();
    let mut hub = WatchHub::new();
    hub.create(watch(b"p/", &crate::api::kv::prefix_range_end(b"p/"), 0), &log); // 0
    hub.create(watch(b"m", &[0], 0), &log); // 1: from-key
    hub.create(watch(b"p/a", b"", 0), &log); // 2: single key
    let (evs, rev) = log.write(&[(b"a", true), (b"p/a", true), (b"p0", true), (b"z", true)]);
    let out = hub.on_events(&evs, rev);
    let keys = |i: usize| -> Vec<Vec<u8>> { out[i].events.iter().map(|e| e.kv.key.clone()).collect() };
    assert_eq!(out.len(), 3);
    assert_eq!(keys(0), vec![b"p/a".to_vec()]);
    assert_eq!(keys(1), vec![b"p/a".to_vec(), b"p0".to_vec(), b"z".to_vec()]);
    assert_eq!(keys(2), vec![b"p/a".to_vec()]);
}

#[test]
fn progress_only_for_those_who_asked() {
    let log = Log::default();
    let mut hub = WatchHub::new();
    hub.create(watch(b"a", b"", 0), &log);
    let mut p = watch(b"b", b"", 0);
    p.progress_notify = true;
    hub.create(p, &log);
    assert_eq!(hub.progress(7), vec![WatchResponse { watch_id: 1, revision: 7, ..Default::default() }]);
}

#[test]
fn large_replay_is_packed_without_splitting_revisions() {
    let mut log = Log::default();
    let big: Vec<Vec<u8>> = (0..MAX_REPLAY_EVENTS_PER_RESPONSE + 5).map(|i| format!("k{i:05}").into_bytes()).collect();
    log.write(&[(b"k", true)]); // 1
    let ops: Vec<(&[u8], bool)> = big.iter().map(|k| (k.as_slice(), true)).collect();
    log.write(&ops); // 2: more than one response's worth
    log.write(&[(b"k", true)]); // 3
    let mut hub = WatchHub::new();
    let (_, out) = hub.create(watch(b"k", &[0], 1), &log);
    assert_eq!(out.len(), 4);
    assert_eq!(revs(&out[1..2]), vec![1]);
    assert_eq!(out[2].events.len(), MAX_REPLAY_EVENTS_PER_RESPONSE + 5);
    assert_eq!(revs(&out[3..4]), vec![3]);
}

#[test]
fn extreme_revisions_do_not_overflow() {
    let mut hub = WatchHub::new();
    let log = Log { current: i64::MAX, ..Default::default() };
    hub.create(watch(b"k", b"", 0), &log);
    hub.create(watch(b"k", b"", i64::MIN), &log);
    hub.create(watch(b"k", b"", i64::MAX), &log);
    // Every watcher has passed revision i64::MAX already: nothing is delivered twice.
    assert!(hub.on_events(&[ev(b"k", i64::MAX, true)], i64::MAX).is_empty());
    let log = Log { current: 5, ..Default::default() };
    let (id, _) = hub.create(watch(b"k", b"", i64::MAX), &log);
    let out = hub.on_events(&[ev(b"k", i64::MAX, true)], i64::MAX);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].watch_id, id);
    assert!(hub.on_events(&[ev(b"k", i64::MAX, true)], i64::MAX).is_empty());
    assert!(hub.on_events(&[ev(b"k", 1, true)], i64::MIN).is_empty());
}

// --- property: exactly-once, in order, never split, across replay and live ---

#[derive(Clone, Debug)]
enum Step {
    /// Apply one revision of writes: (key index, is_put).
    Write(Vec<(u8, bool)>),
    /// Create a watch: key index, range kind, start offset from current (-3..=3, -9 = 0),
    /// put/delete filters.
    Watch {
        key: u8,
        kind: u8,
        start: i8,
        no_put: bool,
        no_delete: bool,
    },
    Cancel(u8),
    Compact(u8),
    /// Route an already applied revision again (a late or repeated delivery).
    Reroute(u8),
}

const KEYS: &[&[u8]] = &[b"a", b"b", b"ba", b"c", b"d"];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => prop::collection::vec((0u8..5, any::<bool>()), 1..4).prop_map(Step::Write),
        2 => (0u8..5, 0u8..3, -9i8..4, any::<bool>(), any::<bool>()).prop_map(
            |(key, kind, start, no_put, no_delete)| Step::Watch {
                key, kind, start, no_put, no_delete
            }
        ),
        1 => any::<u8>().prop_map(Step::Cancel),
        1 => any::<u8>().prop_map(Step::Compact),
        1 => any::<u8>().prop_map(Step::Reroute),
    ]
}

proptest! {
    #[test]
    fn every_watcher_sees_each_matching_event_once_in_order(
        steps in prop::collection::vec(step(), 1..60)
    ) {
        let mut log = Log::default();
        let mut hub = WatchHub::new();
        // Per watcher: the request, effective start, and the responses it received.
        let mut watches: BTreeMap<WatchId, (WatchCreate, i64, Vec<WatchResponse>)> =
            BTreeMap::new();
        let mut canceled: BTreeMap<WatchId, i64> = BTreeMap::new(); // id -> revision at cancel
        for s in steps {
            match s {
                Step::Write(ops) => {
                    let ops: Vec<(&[u8], bool)> =
                        ops.iter().map(|&(k, p)| (KEYS[k as usize], p)).collect();
                    let (evs, rev) = log.write(&ops);
                    for r in hub.on_events(&evs, rev) {
                        prop_assert_eq!(r.revision, rev);
                        prop_assert!(!canceled.contains_key(&r.watch_id));
                        watches.get_mut(&r.watch_id).unwrap().2.push(r);
                    }
                }
                Step::Watch { key, kind, start, no_put, no_delete } => {
                    let k = KEYS[key as usize].to_vec();
                    let range_end = match kind {
                        0 => vec![],
                        1 => crate::api::kv::prefix_range_end(&k),
                        _ => vec![0],
                    };
                    let start_revision =
                        if start == -9 { 0 } else { (log.current + start as i64).max(1) };
                    let mut filters = vec![];
                    if no_put { filters.push(WatchFilter::NoPut); }
                    if no_delete { filters.push(WatchFilter::NoDelete); }
                    let req = WatchCreate {
                        key: k, range_end, start_revision, filters,
                        prev_kv: start % 2 == 0, ..Default::default()
                    };
                    let (id, out) = hub.create(req.clone(), &log);
                    prop_assert!(out[0].created);
                    prop_assert_eq!(out[0].watch_id, id);
                    if start_revision != 0 && start_revision < log.compacted {
                        prop_assert_eq!(out.len(), 2);
                        prop_assert!(out[1].canceled);
                        prop_assert_eq!(out[1].compact_revision, log.compacted);
                        prop_assert!(hub.request(id).is_none());
                        continue;
                    }
                    let eff = if start_revision == 0 { log.current + 1 } else { start_revision };
                    watches.insert(id, (req, eff, out[1..].to_vec()));
                }
                Step::Cancel(i) => {
                    let live: Vec<WatchId> = watches
                        .keys().copied().filter(|id| !canceled.contains_key(id)).collect();
                    if !live.is_empty() {
                        let id = live[i as usize % live.len()];
                        prop_assert!(hub.cancel(id).is_some());
                        canceled.insert(id, log.current);
                    }
                }
                Step::Reroute(i) => {
                    if log.current > 0 {
                        let rev = 1 + i as i64 % log.current;
                        let evs: Vec<Event> = log
                            .events
                            .iter()
                            .filter(|e| e.kv.mod_revision == rev)
                            .cloned()
                            .collect();
                        prop_assert_eq!(hub.on_events(&evs, rev), vec![]);
                    }
                }
                Step::Compact(i) => {
                    if log.current > 0 {
                        log.compacted = log.compacted.max(1 + i as i64 % log.current);
                    }
                }
            }
        }
        prop_assert_eq!(hub.len(), watches.len() - canceled.len());
        for (id, (req, eff, resps)) in &watches {
            let until = canceled.get(id).copied().unwrap_or(log.current);
            let expected: Vec<Event> = log
                .events
                .iter()
                .filter(|e| e.kv.mod_revision >= *eff && e.kv.mod_revision <= until)
                .filter(|e| in_range(&e.kv.key, &req.key, &req.range_end))
                .filter(|e| !(e.kind == EventType::Put && req.filters.contains(&WatchFilter::NoPut)))
                .filter(|e| !(e.kind == EventType::Delete && req.filters.contains(&WatchFilter::NoDelete)))
                .map(|e| {
                    let mut e = e.clone();
                    if !req.prev_kv { e.prev_kv = None; }
                    e
                })
                .collect();
            let got: Vec<Event> = resps.iter().flat_map(|r| r.events.iter().cloned()).collect();
            prop_assert_eq!(&got, &expected);
            // Never split within a revision, and strictly increasing across responses.
            let mut last = i64::MIN;
            for r in resps {
                prop_assert!(!r.events.is_empty());
                prop_assert!(!r.canceled && !r.created);
                let first = r.events[0].kv.mod_revision;
                prop_assert!(first > last, "revision {} split or repeated", first);
                last = r.events.last().unwrap().kv.mod_revision;
                for w in r.events.windows(2) {
                    prop_assert!(w[0].kv.mod_revision <= w[1].kv.mod_revision);
                }
            }
        }
    }
}

#[test]
fn a_watcher_that_fell_behind_is_caught_up_from_history_without_gaps_or_repeats() {
    let mut log = Log::default();
    let mut hub = WatchHub::new();
    let (id, _) = hub.create(watch(b"a", b"", 0), &log);
    let mut delivered = Vec::new();
    for i in 0..10 {
        let (evs, rev) = log.write(&[(b"a", true)]);
        let out = hub.on_events(&evs, rev);
        // The shell hands over revisions 1-3; the one at revision 4 finds the client's buffer full.
        if i < 3 {
            delivered.extend(revs(&out));
        } else if i == 3 {
            hub.fell_behind(id, out[0].events[0].kv.mod_revision);
        } else {
            assert!(out.is_empty(), "nothing live while behind: {out:?}");
        }
    }
    assert!(hub.is_behind(id));
    let mut progress_watch = watch(b"a", b"", 0);
    progress_watch.progress_notify = true;
    let (p, _) = hub.create(progress_watch, &log);
    hub.fell_behind(p, 0);
    assert!(hub.progress(log.current).is_empty(), "a watcher behind gets no progress notification");
    let caught_up = hub.resume(id, &log);
    delivered.extend(revs(&caught_up));
    assert_eq!(delivered, (1..=10).collect::<Vec<i64>>(), "every revision once, in order");
    assert!(!hub.is_behind(id));
    let (evs, rev) = log.write(&[(b"a", true)]);
    assert_eq!(revs(&hub.on_events(&evs, rev)), vec![11], "live again");
}

#[test]
fn a_watcher_whose_missed_history_was_compacted_is_canceled_on_resume() {
    let mut log = Log::default();
    let mut hub = WatchHub::new();
    let (id, _) = hub.create(watch(b"a", b"", 0), &log);
    let (evs, rev) = log.write(&[(b"a", true)]);
    hub.on_events(&evs, rev);
    hub.fell_behind(id, rev);
    for _ in 0..5 {
        let (evs, rev) = log.write(&[(b"a", true)]);
        hub.on_events(&evs, rev);
    }
    log.compacted = 4;
    let out = hub.resume(id, &log);
    assert_eq!(out.len(), 1);
    assert!(out[0].canceled && out[0].compact_revision == 4, "{out:?}");
    assert!(hub.request(id).is_none(), "the watcher is gone");
}
