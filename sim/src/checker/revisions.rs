//! Revisions never go backwards in real time: an operation that starts after another finished
//! must not observe (or produce) a smaller index. Only linearizable operations count, and only
//! those whose index is a revision they read at or wrote (keep-alives and deletes report the
//! key's older index).

use super::Violation;
use crate::history::{Call, Op, Return};

fn revision(op: &Op) -> Option<u64> {
    let counted = matches!(op.call, Call::Get { .. } | Call::Lookup { .. } | Call::Put { .. } | Call::Cas { .. } | Call::LockAcquire { .. } | Call::Register { .. });
    match op.ok()? {
        Return::Value { index, .. } | Return::Written { index } if counted => Some(*index),
        Return::Acquired { token } => Some(*token),
        _ => None,
    }
}

/// Check that indexes respect real-time order.
pub fn check(ops: &[Op]) -> Vec<Violation> {
    let mut indexed: Vec<(&Op, u64)> = ops.iter().filter_map(|op| Some((op, revision(op)?))).collect();
    let mut by_complete = indexed.clone();
    by_complete.sort_by_key(|(op, _)| op.complete_ms);
    indexed.sort_by_key(|(op, _)| op.invoke_ms);
    let mut out = Vec::new();
    let mut done = 0;
    let mut highest: Option<(&Op, u64)> = None;
    for (op, index) in indexed {
        while done < by_complete.len() && by_complete[done].0.complete_ms < op.invoke_ms {
            let (prev, prev_index) = by_complete[done];
            if highest.map_or(true, |(_, h)| prev_index > h) {
                highest = Some((prev, prev_index));
            }
            done += 1;
        }
        if let Some((before, before_index)) = highest {
            if index < before_index && out.len() < 5 {
                out.push(Violation::new("revisions", format!("index {index} observed by\n  {op}\nafter index {before_index} from\n  {before}")));
            }
        }
    }
    out
}
