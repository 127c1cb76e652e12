//! The FIFO queue built from POSTed in-order keys: every item taken at most once, nothing taken
//! or left that nobody enqueued, no item in the queue twice, and no acknowledged item lost
//! (each is taken, possibly taken by a dequeue whose answer was lost, or still there).

use std::collections::{BTreeMap, BTreeSet};

use super::Violation;
use crate::history::{Call, Op, Outcome, Return};

/// Check the queue's history.
pub fn check(ops: &[Op]) -> Vec<Violation> {
    let mut attempted = BTreeSet::new();
    let mut acked = Vec::new();
    let mut taken: BTreeMap<&str, &Op> = BTreeMap::new();
    let mut maybe_taken = 0usize;
    let mut left: Option<(&Op, &Vec<String>)> = None;
    let mut out = Vec::new();
    for op in ops {
        match (&op.call, &op.outcome) {
            (Call::Enqueue { value, .. }, Outcome::Ok(_)) => {
                attempted.insert(value.as_str());
                acked.push((value.as_str(), op));
            }
            (Call::Enqueue { value, .. }, Outcome::Unknown(_)) => {
                attempted.insert(value.as_str());
            }
            (Call::Dequeue { .. }, Outcome::Ok(Return::Value { value: Some(v), .. })) => {
                if let Some(first) = taken.insert(v, op) {
                    out.push(Violation::new("queue", format!("{v} taken twice:\n  {first}\n  {op}")));
                }
            }
            (Call::Dequeue { .. }, Outcome::Unknown(_)) => maybe_taken += 1,
            (Call::ListQueue { .. }, Outcome::Ok(Return::Items(items))) => left = Some((op, items)),
            _ => {}
        }
    }
    for (v, op) in &taken {
        if !attempted.contains(v) {
            out.push(Violation::new("queue", format!("{v} taken but never enqueued:\n  {op}")));
        }
    }
    if let Some((list, items)) = left {
        let mut seen = BTreeSet::new();
        for v in items {
            if !seen.insert(v.as_str()) {
                out.push(Violation::new("queue", format!("{v} is in the queue twice:\n  {list}")));
            }
            if !attempted.contains(v.as_str()) {
                out.push(Violation::new("queue", format!("{v} is in the queue but was never enqueued")));
            }
            if let Some(op) = taken.get(v.as_str()) {
                out.push(Violation::new("queue", format!("{v} is still in the queue after it was taken:\n  {op}")));
            }
        }
        // Each dequeue whose answer was lost may have taken one item unseen.
        let lost: Vec<&(&str, &Op)> = acked.iter().filter(|(v, _)| !taken.contains_key(v) && !seen.contains(v)).collect();
        if lost.len() > maybe_taken {
            for (v, op) in lost.iter().take(3) {
                out.push(Violation::new("queue", format!("acknowledged item {v} is neither taken nor in the queue:\n  {op}")));
            }
        }
    }
    out.truncate(10);
    out
}
