//! Leases (TTL keys kept alive by heartbeats): a registration kept alive within its TTL must not
//! expire, and one left alone must go.
//!
//! - Early expiry: once a registration or heartbeat succeeded, the key lives at least its TTL
//!   from when it was sent (the leader starts the countdown no earlier). A read that saw it gone
//!   and ended sooner — less a tolerance for the clock skew the nemesis injects — is a violation.
//! - Outliving: a key whose last registration or heartbeat ended long ago must be gone. Leader
//!   changes restart countdowns (as etcd's do), so the bound is loose; it catches leases that
//!   never expire.

use std::collections::BTreeMap;

use super::Violation;
use crate::history::{Call, Op, Outcome, Return};

/// Clock skew the nemesis may inject on a leader (rate and jump), plus scheduling slack.
pub const EARLY_TOLERANCE_MS: u64 = 600;
/// How long past its TTL a key may linger: leader changes restart countdowns, and an unknown
/// heartbeat may still be applied late.
pub const OUTLIVE_TOLERANCE_MS: u64 = 20_000;

fn ttl_ms(call: &Call) -> Option<u64> {
    match call {
        Call::Register { ttl, .. } | Call::Heartbeat { ttl, .. } => Some(ttl * 1000),
        _ => None,
    }
}

fn key_of(call: &Call) -> Option<&str> {
    match call {
        Call::Register { key, .. } | Call::Heartbeat { key, .. } | Call::Lookup { key } => Some(key),
        _ => None,
    }
}

/// Whether `op` certainly saw the key gone.
fn saw_gone(op: &Op) -> bool {
    matches!((&op.call, op.ok()), (Call::Lookup { .. }, Some(Return::Value { value: None, .. })) | (Call::Heartbeat { .. }, Some(Return::Refused)))
}

fn saw_present(op: &Op) -> bool {
    matches!((&op.call, op.ok()), (Call::Lookup { .. }, Some(Return::Value { value: Some(_), .. })))
}

fn check_key(key: &str, ops: &[&Op], out: &mut Vec<Violation>) {
    for o in ops {
        if saw_gone(o) {
            let kept = ops.iter().filter(|h| ttl_ms(&h.call).is_some() && matches!(h.ok(), Some(Return::Written { .. })) && h.complete_ms < o.invoke_ms);
            if let Some(h) = kept.max_by_key(|h| h.invoke_ms) {
                let alive_until = h.invoke_ms + ttl_ms(&h.call).unwrap_or(0);
                if o.complete_ms + EARLY_TOLERANCE_MS < alive_until {
                    out.push(Violation::new(
                        "lease expiry",
                        format!("{key} expired early: kept alive by\n  {h}\n(alive until {alive_until} ms at least), gone for\n  {o}"),
                    ));
                }
            }
        }
        if saw_present(o) {
            let refreshes = ops.iter().filter(|h| ttl_ms(&h.call).is_some() && !matches!(h.outcome, Outcome::Failed(_)) && h.invoke_ms < o.complete_ms);
            if let Some(h) = refreshes.max_by_key(|h| h.invoke_ms) {
                let deadline = h.complete_ms + ttl_ms(&h.call).unwrap_or(0) + OUTLIVE_TOLERANCE_MS;
                if o.invoke_ms > deadline {
                    out.push(Violation::new("lease expiry", format!("{key} outlived its lease: last kept alive by\n  {h}\nstill there for\n  {o}")));
                }
            }
        }
    }
}

/// Check every TTL key.
pub fn check(ops: &[Op]) -> Vec<Violation> {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        if let Some(key) = key_of(&op.call) {
            by_key.entry(key).or_default().push(op);
        }
    }
    let mut out = Vec::new();
    for (key, ops) in by_key {
        check_key(key, &ops, &mut out);
    }
    out.truncate(10);
    out
}
