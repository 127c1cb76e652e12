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
    /// Which lock (clients of different locks may hold theirs at once).
    lock: &'a str,
    acquired: &'a Op,
    token: u64,
    /// Invocation time of the last successful refresh or release (the proof it still held).
    held_until: Option<u64>,
}

fn holdings(ops: &[Op]) -> Vec<Holding<'_>> {
    let mut out: BTreeMap<(&str, u64, u64), Holding<'_>> = BTreeMap::new();
    for op in ops {
        match (&op.call, op.ok()) {
            (Call::LockAcquire { lock, .. }, Some(Return::Acquired { token })) => {
                out.insert(
                    (lock.as_str(), op.client, *token),
                    Holding { lock, acquired: op, token: *token, held_until: None },
                );
            }
            (
                Call::LockRefresh { lock, token, .. } | Call::LockRelease { lock, token, .. },
                Some(Return::Written { .. }),
            ) => {
                if let Some(h) = out.get_mut(&(lock.as_str(), op.client, *token)) {
                    h.held_until = Some(h.held_until.unwrap_or(0).max(op.invoke_ms));
                }
            }
            _ => {}
        }
    }
    out.into_values().collect()
}

/// Check mutual exclusion and fencing order, lock by lock.
pub fn check(ops: &[Op]) -> Vec<Violation> {
    let mut by_lock: BTreeMap<&str, Vec<Holding<'_>>> = BTreeMap::new();
    for h in holdings(ops) {
        by_lock.entry(h.lock).or_default().push(h);
    }
    let mut out: Vec<Violation> = by_lock.values().flat_map(|all| check_lock(all)).collect();
    out.truncate(10);
    out
}

/// Mutual exclusion and fencing order among the holders of one lock.
fn check_lock(all: &[Holding<'_>]) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut tokens = BTreeMap::new();
    for h in all {
        if let Some(other) = tokens.insert(h.token, h.acquired.client) {
            out.push(Violation::new(
                "lock fencing",
                format!("token {} handed to clients {other} and {}", h.token, h.acquired.client),
            ));
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

#[cfg(test)]
mod tests {
    use super::check;
    use crate::checker::testing::{failed, op, properties, refused, unknown, written};
    use crate::history::{Call, Op, Outcome, Return};

    const LOCK: &str = "/locks/l";

    fn acquire(client: u64, at: (u64, u64), token: u64) -> Op {
        op(client, Call::LockAcquire { lock: LOCK.into(), ttl: 3 }, at, Outcome::Ok(Return::Acquired { token }))
    }

    fn refresh(client: u64, token: u64, at: (u64, u64), outcome: Outcome) -> Op {
        op(client, Call::LockRefresh { lock: LOCK.into(), token, prev_index: token }, at, outcome)
    }

    fn release(client: u64, token: u64, at: (u64, u64), outcome: Outcome) -> Op {
        op(client, Call::LockRelease { lock: LOCK.into(), token, prev_index: token }, at, outcome)
    }

    #[test]
    fn orderly_handovers_pass() {
        let ops = vec![
            acquire(1, (0, 10), 5),
            refresh(1, 5, (500, 520), written(6)),
            release(1, 5, (1000, 1010), written(7)),
            acquire(2, (1005, 1020), 9),
            release(2, 9, (2000, 2010), written(10)),
            acquire(1, (2010, 2020), 12),
            refresh(1, 12, (2300, 2310), written(13)),
            release(1, 12, (2500, 2510), written(14)),
        ];
        assert_eq!(properties(&check(&ops)), Vec::<&str>::new());
    }

    #[test]
    fn overlapping_holds_are_lock_exclusion() {
        let ops = vec![
            acquire(1, (0, 10), 5),
            release(1, 5, (1000, 1010), written(6)),
            acquire(2, (400, 500), 9),
            release(2, 9, (800, 810), written(10)),
        ];
        assert_eq!(properties(&check(&ops)), ["lock exclusion"]);
    }

    #[test]
    fn holders_of_different_locks_may_overlap() {
        let other = |op: Op| Op { call: Call::LockAcquire { lock: "/locks/other".into(), ttl: 3 }, ..op };
        let ops = vec![
            acquire(1, (0, 10), 5),
            release(1, 5, (1000, 1010), written(6)),
            other(acquire(2, (400, 500), 9)),
            Op {
                call: Call::LockRelease { lock: "/locks/other".into(), token: 9, prev_index: 9 },
                ..release(2, 9, (800, 810), written(10))
            },
        ];
        assert_eq!(properties(&check(&ops)), Vec::<&str>::new());
    }

    #[test]
    fn hold_starts_when_the_acquisition_returns() {
        // Client 2 asked while client 1 held the lock, but got it only after client 1 let go.
        let ops = vec![
            acquire(1, (0, 10), 5),
            release(1, 5, (1000, 1010), written(6)),
            acquire(2, (100, 1100), 9),
            release(2, 9, (1500, 1510), written(10)),
        ];
        assert_eq!(properties(&check(&ops)), Vec::<&str>::new());
    }

    #[test]
    fn hold_is_proven_only_until_the_last_proof_was_sent() {
        // Client 1's refresh was sent at 1000 and answered at 2000: it proves the hold up to 1000
        // only, so client 2 holding from 1510 is no overlap.
        let ops = vec![
            acquire(1, (0, 10), 5),
            refresh(1, 5, (1000, 2000), written(6)),
            acquire(2, (1500, 1510), 9),
            release(2, 9, (2500, 2510), written(10)),
        ];
        assert_eq!(properties(&check(&ops)), Vec::<&str>::new());
    }

    #[test]
    fn hold_is_proven_until_the_latest_successful_proof() {
        // The refresh at 1200 proves client 1 still held the lock when client 2 had it.
        let ops = vec![
            acquire(1, (0, 10), 5),
            refresh(1, 5, (1200, 1210), written(7)),
            refresh(1, 5, (300, 310), written(6)),
            acquire(2, (500, 510), 9),
            release(2, 9, (900, 910), written(10)),
        ];
        assert_eq!(properties(&check(&ops)), ["lock exclusion"]);
    }

    #[test]
    fn refreshes_and_releases_that_did_not_succeed_prove_nothing() {
        let ops = vec![
            acquire(1, (0, 10), 5),
            refresh(1, 5, (400, 410), written(6)),
            refresh(1, 5, (1000, 1010), refused()),
            refresh(1, 5, (1100, 1110), failed()),
            release(1, 5, (1200, 1210), unknown()),
            acquire(2, (600, 610), 9),
            release(2, 9, (1300, 1310), written(10)),
        ];
        assert_eq!(properties(&check(&ops)), Vec::<&str>::new());
    }

    #[test]
    fn acquisition_without_a_later_proof_is_not_judged_for_exclusion() {
        let ops = vec![acquire(1, (0, 10), 5), acquire(2, (100, 110), 9), release(2, 9, (500, 510), written(10))];
        assert_eq!(properties(&check(&ops)), Vec::<&str>::new());
    }

    #[test]
    fn one_token_for_two_clients_is_lock_fencing() {
        let ops = vec![acquire(1, (0, 10), 5), acquire(2, (2000, 2010), 5)];
        assert_eq!(properties(&check(&ops)), ["lock fencing"]);
    }

    #[test]
    fn later_holder_with_smaller_token_is_lock_fencing() {
        let ops = vec![
            acquire(1, (0, 10), 9),
            release(1, 9, (500, 510), written(10)),
            acquire(2, (1000, 1010), 5),
            release(2, 5, (1500, 1510), written(6)),
        ];
        assert_eq!(properties(&check(&ops)), ["lock fencing"]);
    }
}
