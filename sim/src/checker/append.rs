//! Lists grown by read-modify-write appends (the append workload): per key, every list anyone
//! saw — read, or written by an append — is a prefix of one longest list, so the key went
//! through one sequence of versions, each one element longer; no element appears twice; an
//! append nobody could have made (it definitely failed) never shows up; an append that
//! finished before a read began is in that read; and the final read after healing holds every
//! acknowledged append.

use std::collections::{BTreeMap, BTreeSet};

use super::Violation;
use crate::history::{Call, Op, Outcome, Return};

/// What one key's history holds.
#[derive(Default)]
struct KeyHistory<'a> {
    /// Lists read or written, with the operation that saw them.
    lists: Vec<(&'a [String], &'a Op)>,
    /// Appends acknowledged, by element.
    acked: Vec<(&'a str, &'a Op)>,
    /// Elements of appends that definitely did not happen (failed, or refused by the txn).
    failed: BTreeSet<&'a str>,
    /// Reads of the list (for real-time order), last of all the final ones.
    reads: Vec<(&'a [String], &'a Op)>,
}

/// Check the append workload's history.
pub fn check(ops: &[Op]) -> Vec<Violation> {
    let mut keys: BTreeMap<&str, KeyHistory<'_>> = BTreeMap::new();
    for op in ops {
        match (&op.call, &op.outcome) {
            (Call::Append { key, element }, Outcome::Ok(Return::Items(list))) => {
                let h = keys.entry(key).or_default();
                h.lists.push((list, op));
                h.acked.push((element, op));
            }
            // Refused: the list changed between the read and the txn, which then wrote nothing.
            (Call::Append { key, element }, Outcome::Failed(_) | Outcome::Ok(Return::Refused)) => {
                keys.entry(key).or_default().failed.insert(element);
            }
            (Call::ReadList { key }, Outcome::Ok(Return::Items(list))) => {
                let h = keys.entry(key).or_default();
                h.lists.push((list, op));
                h.reads.push((list, op));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (key, h) in &keys {
        check_key(key, h, &mut out);
    }
    out
}

fn check_key(key: &str, h: &KeyHistory<'_>, out: &mut Vec<Violation>) {
    let Some(&(longest, _)) = h.lists.iter().max_by_key(|(list, _)| list.len()) else { return };
    for (list, op) in &h.lists {
        if !longest.starts_with(list) {
            out.push(Violation::new(
                "append",
                format!("{key}: two lists that are not one sequence:\n  {op}\n  longest: {longest:?}"),
            ));
            return;
        }
    }
    let mut seen = BTreeSet::new();
    for element in longest {
        if !seen.insert(element.as_str()) {
            out.push(Violation::new("append", format!("{key}: {element} appended twice: {longest:?}")));
        }
        if h.failed.contains(element.as_str()) {
            out.push(Violation::new("append", format!("{key}: {element}, whose append failed, is in the list")));
        }
    }
    for (element, appended) in &h.acked {
        for (list, read) in &h.reads {
            if appended.complete_ms < read.invoke_ms && !list.iter().any(|e| e == element) {
                out.push(Violation::new(
                    "append",
                    format!("{key}: a read began after an append finished and missed it:\n  {appended}\n  {read}"),
                ));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(call: Call, outcome: Outcome, invoke_ms: u64, complete_ms: u64) -> Op {
        Op { client: 1, member: 0, call, invoke_ms, complete_ms, outcome }
    }

    fn items(list: &[&str]) -> Outcome {
        Outcome::Ok(Return::Items(list.iter().map(|s| s.to_string()).collect()))
    }

    fn append(element: &str, outcome: Outcome, at: u64) -> Op {
        op(Call::Append { key: "/a".into(), element: element.into() }, outcome, at, at + 1)
    }

    fn read(outcome: Outcome, at: u64) -> Op {
        op(Call::ReadList { key: "/a".into() }, outcome, at, at + 1)
    }

    #[test]
    fn one_growing_sequence_passes() {
        let ops = vec![append("x", items(&["x"]), 0), append("y", items(&["x", "y"]), 2), read(items(&["x", "y"]), 4)];
        assert!(check(&ops).is_empty());
    }

    #[test]
    fn forks_duplicates_failed_and_missed_appends_are_caught() {
        let fork = vec![append("x", items(&["x"]), 0), append("y", items(&["y"]), 2)];
        assert!(check(&fork)[0].detail.contains("not one sequence"));
        let twice = vec![read(items(&["x", "x"]), 0)];
        assert!(check(&twice)[0].detail.contains("appended twice"));
        let ghost = vec![append("x", Outcome::Failed("refused".into()), 0), read(items(&["x"]), 3)];
        assert!(check(&ghost)[0].detail.contains("failed"));
        let refused = vec![append("x", Outcome::Ok(Return::Refused), 0), read(items(&["x"]), 3)];
        assert!(check(&refused)[0].detail.contains("failed"));
        let lost = vec![append("x", items(&["x"]), 0), read(items(&[]), 5)];
        assert!(check(&lost)[0].detail.contains("missed it"));
    }
}
