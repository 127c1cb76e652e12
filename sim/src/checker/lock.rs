//! Locks: no two clients held the lock at once, and fencing tokens grow with each holder.
//!
//! What a client provably held: from the moment its acquisition (a create-if-absent) returned
//! until the moment it sent its last refresh or release that succeeded — each of those compares
//! the key's index, so it proves the key was still the one it created, and a key with one
//! created index cannot vanish and come back. Two such intervals must never overlap.

use std::collections::BTreeMap;

use super::Violation;
use crate::history::{Call, Op, Return};

/// One acquisition and what it provably held.
#[derive(Debug)]
struct Holding<'a> {
    acquired: &'a Op,
    token: u64,
    /// Invocation time of the last successful refresh or release (the proof it still held).
    held_until: Option<u64>,
}

fn holdings(ops: &[Op]) -> Vec<Holding<'_>> {
    let mut out: BTreeMap<(u64, u64), Holding<'_>> = BTreeMap::new();
    for op in ops {
        match (&op.call, op.ok()) {
            (Call::LockAcquire { .. }, Some(Return::Acquired { token })) => {
                out.insert((op.client, *token), Holding { acquired: op, token: *token, held_until: None });
            }
            (Call::LockRefresh { token, .. } | Call::LockRelease { token, .. }, Some(Return::Written { .. })) => {
                if let Some(h) = out.get_mut(&(op.client, *token)) {
                    h.held_until = Some(h.held_until.unwrap_or(0).max(op.invoke_ms));
                }
            }
            _ => {}
        }
    }
    out.into_values().collect()
}

/// Check mutual exclusion and fencing order.
pub fn check(ops: &[Op]) -> Vec<Violation> {
    let all = holdings(ops);
    let mut out = Vec::new();
    let mut tokens = BTreeMap::new();
    for h in &all {
        if let Some(other) = tokens.insert(h.token, h.acquired.client) {
            out.push(Violation::new("lock fencing", format!("token {} handed to clients {other} and {}", h.token, h.acquired.client)));
        }
    }
    let proven: Vec<(&Holding<'_>, u64, u64)> =
        all.iter().filter_map(|h| Some((h, h.acquired.complete_ms, h.held_until?))).filter(|(_, s, e)| s < e).collect();
    for (i, (a, a_start, a_end)) in proven.iter().enumerate() {
        for (b, b_start, b_end) in &proven[i + 1..] {
            if a_start < b_end && b_start < a_end {
                out.push(Violation::new(
                    "lock exclusion",
                    format!(
                        "client {} (token {}) held the lock over [{a_start}, {a_end}] ms and client {} (token {}) over [{b_start}, {b_end}] ms\n  {}\n  {}",
                        a.acquired.client, a.token, b.acquired.client, b.token, a.acquired, b.acquired
                    ),
                ));
            } else if (a_end <= b_start) != (a.token < b.token) {
                out.push(Violation::new(
                    "lock fencing",
                    format!("token {} held over [{a_start}, {a_end}] ms, token {} over [{b_start}, {b_end}] ms: tokens out of order", a.token, b.token),
                ));
            }
        }
    }
    out.truncate(10);
    out
}
