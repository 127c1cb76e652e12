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
    matches!(
        (&op.call, op.ok()),
        (Call::Lookup { .. }, Some(Return::Value { value: None, .. }))
            | (Call::Heartbeat { .. }, Some(Return::Refused))
    )
}

/// Whether a registration or heartbeat may have (re)started the key's countdown.
fn may_have_kept_alive(op: &Op) -> bool {
    matches!(op.outcome, Outcome::Ok(Return::Written { .. }) | Outcome::Unknown(_))
}

fn saw_present(op: &Op) -> bool {
    matches!((&op.call, op.ok()), (Call::Lookup { .. }, Some(Return::Value { value: Some(_), .. })))
}

fn check_key(key: &str, ops: &[&Op], out: &mut Vec<Violation>) {
    for o in ops {
        if saw_gone(o) {
            let kept = ops.iter().filter(|h| {
                ttl_ms(&h.call).is_some()
                    && matches!(h.ok(), Some(Return::Written { .. }))
                    && h.complete_ms < o.invoke_ms
            });
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
            let refreshes = ops
                .iter()
                .filter(|h| ttl_ms(&h.call).is_some() && may_have_kept_alive(h) && h.invoke_ms < o.complete_ms);
            if let Some(h) = refreshes.max_by_key(|h| h.invoke_ms) {
                let deadline = h.complete_ms + ttl_ms(&h.call).unwrap_or(0) + OUTLIVE_TOLERANCE_MS;
                if o.invoke_ms > deadline {
                    out.push(Violation::new(
                        "lease expiry",
                        format!("{key} outlived its lease: last kept alive by\n  {h}\nstill there for\n  {o}"),
                    ));
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

#[cfg(test)]
mod tests {
    use super::check;
    use crate::checker::testing::{failed, op, properties, refused, unknown, value, written};
    use crate::history::{Call, Op, Outcome};

    const KEY: &str = "/svc/c1";

    /// Registrations and heartbeats all carry a 3 s TTL.
    fn register(at: (u64, u64), outcome: Outcome) -> Op {
        op(1, Call::Register { key: KEY.into(), ttl: 3 }, at, outcome)
    }

    fn heartbeat(at: (u64, u64), outcome: Outcome) -> Op {
        op(1, Call::Heartbeat { key: KEY.into(), ttl: 3 }, at, outcome)
    }

    /// A lookup of `key` that found it present or gone.
    fn lookup(key: &str, at: (u64, u64), present: bool) -> Op {
        op(2, Call::Lookup { key: key.into() }, at, value(present.then_some("up"), 1))
    }

    fn judge(ops: &[Op]) -> Vec<&'static str> {
        properties(&check(ops))
    }

    #[test]
    fn lease_kept_alive_then_left_to_expire_passes() {
        let ops = [
            register((0, 50), written(2)),
            heartbeat((1000, 1050), written(3)),
            heartbeat((2000, 2050), written(4)),
            lookup(KEY, (3000, 3050), true),
            // Alive until 5000 at least; gone at 5100 is fine.
            lookup(KEY, (5050, 5100), false),
            heartbeat((5200, 5250), refused()),
            lookup(KEY, (9000, 9050), false),
            register((10_000, 10_050), written(9)),
            lookup(KEY, (11_000, 11_050), true),
        ];
        assert_eq!(judge(&ops), Vec::<&str>::new());
    }

    #[test]
    fn gone_within_the_ttl_is_lease_expiry() {
        let ops = [register((0, 50), written(2)), lookup(KEY, (1000, 1100), false)];
        assert_eq!(judge(&ops), ["lease expiry"]);
    }

    #[test]
    fn heartbeat_refused_within_the_ttl_is_lease_expiry() {
        let ops = [register((0, 50), written(2)), heartbeat((1000, 1100), refused())];
        assert_eq!(judge(&ops), ["lease expiry"]);
    }

    #[test]
    fn early_expiry_is_judged_by_when_the_read_completed() {
        // Alive until 3000 at least, less 600 ms of tolerated skew: a read completing at 2500
        // may see it gone even though it was sent at 2000; one completing at 2300 may not.
        let fine = [register((0, 50), written(2)), lookup(KEY, (2000, 2500), false)];
        assert_eq!(judge(&fine), Vec::<&str>::new());
        let early = [register((0, 50), written(2)), lookup(KEY, (2000, 2300), false)];
        assert_eq!(judge(&early), ["lease expiry"]);
    }

    #[test]
    fn ttl_counts_from_when_the_keep_alive_was_sent() {
        // Acknowledged only at 1000, but the countdown may have started at 0.
        let ops = [register((0, 1000), written(2)), lookup(KEY, (2000, 2450), false)];
        assert_eq!(judge(&ops), Vec::<&str>::new());
    }

    #[test]
    fn only_acknowledged_keep_alives_finished_before_the_read_count_for_early_expiry() {
        let ops = [
            register((0, 50), written(2)),
            heartbeat((1000, 1050), unknown()),
            heartbeat((1500, 1550), failed()),
            // Still in flight when the read began.
            heartbeat((3000, 3200), written(3)),
            lookup(KEY, (3100, 3150), false),
        ];
        assert_eq!(judge(&ops), Vec::<&str>::new());
    }

    #[test]
    fn present_long_after_the_last_keep_alive_is_lease_expiry() {
        // The deadline is 50 + 3000 + 20000 = 23050.
        let fine = [register((0, 50), written(2)), lookup(KEY, (23_050, 23_100), true)];
        assert_eq!(judge(&fine), Vec::<&str>::new());
        let outlived = [register((0, 50), written(2)), lookup(KEY, (23_100, 23_150), true)];
        assert_eq!(judge(&outlived), ["lease expiry"]);
    }

    #[test]
    fn unknown_keep_alive_may_extend_the_lease() {
        let ops =
            [register((0, 50), written(2)), heartbeat((1000, 5000), unknown()), lookup(KEY, (25_000, 25_050), true)];
        assert_eq!(judge(&ops), Vec::<&str>::new());
    }

    #[test]
    fn failed_keep_alive_does_not_extend_the_lease() {
        let ops =
            [register((0, 50), written(2)), heartbeat((1000, 5000), failed()), lookup(KEY, (25_000, 25_050), true)];
        assert_eq!(judge(&ops), ["lease expiry"]);
    }

    #[test]
    fn keys_are_judged_separately() {
        let ops = [
            register((0, 50), written(2)),
            lookup("/svc/c2", (1000, 1100), false),
            lookup("/svc/c2", (30_000, 30_050), true),
        ];
        assert_eq!(judge(&ops), Vec::<&str>::new());
    }
}
