//! Watches: per watcher, events in strictly increasing index order; none missing between its
//! start and the last index it saw (every acknowledged write in that range must be there);
//! each one a write some client really attempted (with the index it was acknowledged at); and
//! all watchers agreeing on what happened at each index.

use std::collections::BTreeMap;

use super::Violation;
use crate::history::{Call, History, Outcome, Return, WatchLog};

/// Writes clients attempted under a prefix: (key, value) → the acknowledged index, if any.
type Attempts = BTreeMap<(String, String), Option<u64>>;

fn attempts(history: &History) -> Attempts {
    let mut out = Attempts::new();
    for op in &history.ops {
        let (Call::Put { key, value } | Call::Cas { key, value, .. }) = &op.call else { continue };
        let acked = match &op.outcome {
            Outcome::Ok(Return::Written { index }) => Some(*index),
            Outcome::Ok(_) | Outcome::Failed(_) => continue,
            Outcome::Unknown(_) => None,
        };
        out.insert((key.clone(), value.clone()), acked);
    }
    out
}

fn check_log(log: &WatchLog, attempts: &Attempts, out: &mut Vec<Violation>) {
    let who = format!("watcher {} on {} from index {}", log.watcher, log.prefix, log.start_index);
    let mut last = log.start_index.saturating_sub(1);
    for e in &log.events {
        if e.index <= last {
            out.push(Violation::new("watch order", format!("{who}: event at index {} after index {last}", e.index)));
        }
        last = last.max(e.index);
        let value = e.value.clone().unwrap_or_default();
        match attempts.get(&(e.key.clone(), value.clone())) {
            None => out.push(Violation::new(
                "watch events",
                format!("{who}: event {e:?} matches no write any client attempted"),
            )),
            Some(Some(index)) if *index != e.index => out.push(Violation::new(
                "watch events",
                format!("{who}: event {e:?}, but that write was acknowledged at index {index}"),
            )),
            Some(_) => {}
        }
    }
    let Some(seen_to) = log.events.last().map(|e| e.index) else { return };
    for ((key, value), index) in attempts {
        let Some(index) = *index else { continue };
        let in_range = index >= log.start_index && index <= seen_to && key.starts_with(&format!("{}/", log.prefix));
        // The write itself must be there: another event at its index does not stand in for it.
        let seen = log
            .events
            .iter()
            .any(|e| e.index == index && e.key == *key && e.value.as_deref().unwrap_or_default() == value);
        if in_range && !seen {
            out.push(Violation::new(
                "watch completeness",
                format!("{who}: saw up to index {seen_to} but missed {key}={value} acknowledged at index {index}"),
            ));
        }
    }
}

/// Check every watcher's stream.
pub fn check(history: &History) -> Vec<Violation> {
    let attempts = attempts(history);
    let mut out = Vec::new();
    let mut at_index: BTreeMap<u64, (u64, String, Option<String>)> = BTreeMap::new();
    for log in &history.watches {
        check_log(log, &attempts, &mut out);
        for e in &log.events {
            let seen = (log.watcher, e.key.clone(), e.value.clone());
            match at_index.get(&e.index) {
                Some(other) if (&other.1, &other.2) != (&seen.1, &seen.2) => out.push(Violation::new(
                    "watch agreement",
                    format!(
                        "at index {}: watcher {} saw {}={:?}, watcher {} saw {}={:?}",
                        e.index, other.0, other.1, other.2, seen.0, seen.1, seen.2
                    ),
                )),
                Some(_) => {}
                None => {
                    at_index.insert(e.index, seen);
                }
            }
        }
    }
    out.truncate(10);
    out
}

#[cfg(test)]
mod tests {
    use super::check;
    use crate::checker::testing::{cas, failed, op, properties, put, refused, unknown, written};
    use crate::history::{History, Op, SeenEvent, WatchLog};

    /// A watcher on `/r` from `start` that saw `events` as (index, key, value).
    fn log(watcher: u64, start: u64, events: &[(u64, &str, &str)]) -> WatchLog {
        let events = events
            .iter()
            .map(|&(index, key, value)| SeenEvent { index, key: key.into(), value: Some(value.into()), at_ms: 0 })
            .collect();
        WatchLog { watcher, prefix: "/r".into(), start_index: start, events }
    }

    fn judge(ops: Vec<Op>, watches: Vec<WatchLog>) -> Vec<&'static str> {
        properties(&check(&History { ops, watches }))
    }

    /// Acknowledged puts of (key, value) at each index.
    fn acked(writes: &[(u64, &str, &str)]) -> Vec<Op> {
        writes
            .iter()
            .map(|&(index, key, value)| op(1, put(key, value), (index * 10, index * 10 + 5), written(index)))
            .collect()
    }

    #[test]
    fn complete_agreeing_streams_pass() {
        let mut ops = acked(&[(5, "/r/k0", "a"), (7, "/r/k0", "c")]);
        ops.push(op(2, cas("/r/k1", None, "b"), (60, 65), written(6)));
        let watches = vec![
            log(1, 5, &[(5, "/r/k0", "a"), (6, "/r/k1", "b"), (7, "/r/k0", "c")]),
            log(2, 6, &[(6, "/r/k1", "b"), (7, "/r/k0", "c")]),
            log(3, 8, &[]),
        ];
        assert_eq!(judge(ops, watches), Vec::<&str>::new());
    }

    #[test]
    fn no_watchers_pass() {
        assert_eq!(judge(acked(&[(5, "/r/k0", "a")]), vec![]), Vec::<&str>::new());
    }

    #[test]
    fn index_going_backwards_is_watch_order() {
        let ops = acked(&[(5, "/r/k0", "a"), (6, "/r/k1", "b")]);
        assert_eq!(judge(ops, vec![log(1, 5, &[(6, "/r/k1", "b"), (5, "/r/k0", "a")])]), ["watch order"]);
    }

    #[test]
    fn repeated_event_is_watch_order() {
        let ops = acked(&[(5, "/r/k0", "a")]);
        assert_eq!(judge(ops, vec![log(1, 5, &[(5, "/r/k0", "a"), (5, "/r/k0", "a")])]), ["watch order"]);
    }

    #[test]
    fn event_before_start_is_watch_order() {
        let ops = acked(&[(5, "/r/k0", "a")]);
        assert_eq!(judge(ops, vec![log(1, 6, &[(5, "/r/k0", "a")])]), ["watch order"]);
    }

    #[test]
    fn missed_acknowledged_write_is_watch_completeness() {
        let ops = acked(&[(5, "/r/k0", "a"), (6, "/r/k1", "b"), (7, "/r/k0", "c")]);
        assert_eq!(judge(ops, vec![log(1, 5, &[(5, "/r/k0", "a"), (7, "/r/k0", "c")])]), ["watch completeness"]);
    }

    #[test]
    fn writes_outside_the_seen_range_or_prefix_need_not_appear() {
        let ops = acked(&[
            (4, "/r/k0", "before-start"),
            (5, "/r/k0", "a"),
            (6, "/other/x", "other-dir"),
            (7, "/rx/k", "sibling-dir"),
            (8, "/r/k1", "b"),
            (10, "/r/k1", "after-last-seen"),
        ]);
        assert_eq!(judge(ops, vec![log(1, 5, &[(5, "/r/k0", "a"), (8, "/r/k1", "b")])]), Vec::<&str>::new());
    }

    #[test]
    fn unknown_writes_may_or_may_not_appear() {
        let mut ops = acked(&[(7, "/r/k0", "c")]);
        ops.push(op(2, put("/r/k0", "a"), (40, 80), unknown()));
        ops.push(op(3, cas("/r/k1", None, "b"), (40, 80), unknown()));
        // "a" applied at 6, "b" never (or later than anything seen): both fine.
        assert_eq!(judge(ops, vec![log(1, 5, &[(6, "/r/k0", "a"), (7, "/r/k0", "c")])]), Vec::<&str>::new());
    }

    #[test]
    fn failed_write_in_a_watch_is_watch_events() {
        let ops = vec![op(1, put("/r/k0", "a"), (0, 5), failed())];
        assert_eq!(judge(ops, vec![log(1, 5, &[(6, "/r/k0", "a")])]), ["watch events"]);
    }

    #[test]
    fn refused_cas_in_a_watch_is_watch_events() {
        let ops = vec![op(1, cas("/r/k0", Some("x"), "a"), (0, 5), refused())];
        assert_eq!(judge(ops, vec![log(1, 5, &[(6, "/r/k0", "a")])]), ["watch events"]);
    }

    #[test]
    fn event_nobody_wrote_is_watch_events() {
        let ops = acked(&[(6, "/r/k0", "a")]);
        assert_eq!(judge(ops, vec![log(1, 6, &[(6, "/r/k0", "a"), (7, "/r/k0", "ghost")])]), ["watch events"]);
    }

    #[test]
    fn event_at_another_index_than_acknowledged_is_watch_events() {
        // Acknowledged at 5 (before this watcher's start), but seen at 6.
        let ops = acked(&[(5, "/r/k0", "a")]);
        assert_eq!(judge(ops, vec![log(1, 6, &[(6, "/r/k0", "a")])]), ["watch events"]);
    }

    #[test]
    fn unknown_write_in_place_of_an_acknowledged_one_is_watch_completeness() {
        // Index 5 belongs to the acknowledged "a"; seeing the unknown "b" there means "a" was missed.
        let mut ops = acked(&[(5, "/r/k0", "a")]);
        ops.push(op(2, put("/r/k0", "b"), (40, 80), unknown()));
        assert_eq!(judge(ops, vec![log(1, 5, &[(5, "/r/k0", "b")])]), ["watch completeness"]);
    }

    #[test]
    fn watchers_disagreeing_on_an_index_is_watch_agreement() {
        let ops = vec![op(1, put("/r/k0", "a"), (0, 90), unknown()), op(2, put("/r/k0", "b"), (0, 90), unknown())];
        let watches = vec![log(1, 5, &[(6, "/r/k0", "a")]), log(2, 5, &[(6, "/r/k0", "b")])];
        assert_eq!(judge(ops, watches), ["watch agreement"]);
    }
}
