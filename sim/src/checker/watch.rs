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
            None => out.push(Violation::new("watch events", format!("{who}: event {e:?} matches no write any client attempted"))),
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
        if in_range && !log.events.iter().any(|e| e.index == index) {
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
                    format!("at index {}: watcher {} saw {}={:?}, watcher {} saw {}={:?}", e.index, other.0, other.1, other.2, seen.0, seen.1, seen.2),
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
