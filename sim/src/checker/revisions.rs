//! Revisions never go backwards in real time: an operation that starts after another finished
//! must not observe (or produce) a smaller index. Only linearizable operations count, and only
//! those whose index is a revision they read at or wrote (keep-alives and deletes report the
//! key's older index).

use super::Violation;
use crate::history::{Call, Op, Return};

fn revision(op: &Op) -> Option<u64> {
    let counted = matches!(
        op.call,
        Call::Get { .. }
            | Call::Lookup { .. }
            | Call::Put { .. }
            | Call::Cas { .. }
            | Call::LockAcquire { .. }
            | Call::Register { .. }
    );
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
            if highest.is_none_or(|(_, h)| prev_index > h) {
                highest = Some((prev, prev_index));
            }
            done += 1;
        }
        if let Some((before, before_index)) = highest {
            if index < before_index && out.len() < 5 {
                out.push(Violation::new(
                    "revisions",
                    format!("index {index} observed by\n  {op}\nafter index {before_index} from\n  {before}"),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::check;
    use crate::checker::testing::{get, op, properties, put, value, written};
    use crate::history::{Call, Op, Outcome, Return};

    fn judge(ops: &[Op]) -> Vec<&'static str> {
        properties(&check(ops))
    }

    /// A read at `index` over `at`.
    fn read(at: (u64, u64), index: u64) -> Op {
        op(2, get("/r/k0"), at, value(Some("a"), index))
    }

    #[test]
    fn indexes_rising_in_real_time_pass() {
        let ops = [
            op(1, put("/r/k0", "a"), (0, 10), written(5)),
            read((20, 30), 6),
            op(1, put("/r/k1", "b"), (100, 200), written(10)),
            // Concurrent with the write of index 10, so it may read before it.
            read((150, 160), 7),
            read((300, 310), 10),
        ];
        assert_eq!(judge(&ops), Vec::<&str>::new());
    }

    #[test]
    fn read_below_an_earlier_write_is_revisions() {
        let ops = [op(1, put("/r/k0", "a"), (0, 10), written(10)), read((20, 30), 5)];
        assert_eq!(judge(&ops), ["revisions"]);
    }

    #[test]
    fn real_time_order_not_list_order_decides() {
        let ops = [read((20, 30), 5), op(1, put("/r/k0", "a"), (0, 10), written(10))];
        assert_eq!(judge(&ops), ["revisions"]);
    }

    #[test]
    fn operation_sent_as_another_returns_is_concurrent_with_it() {
        let ops = [op(1, put("/r/k0", "a"), (0, 10), written(10)), read((10, 20), 5)];
        assert_eq!(judge(&ops), Vec::<&str>::new());
    }

    #[test]
    fn lock_tokens_registrations_and_lookups_count() {
        let write = || op(1, put("/r/k0", "a"), (0, 10), written(10));
        let acquire = op(
            2,
            Call::LockAcquire { lock: "/locks/l".into(), ttl: 3 },
            (20, 30),
            Outcome::Ok(Return::Acquired { token: 4 }),
        );
        assert_eq!(judge(&[write(), acquire]), ["revisions"]);
        let register = op(2, Call::Register { key: "/svc/c2".into(), ttl: 3 }, (20, 30), written(4));
        assert_eq!(judge(&[write(), register]), ["revisions"]);
        let lookup = op(2, Call::Lookup { key: "/svc/c2".into() }, (20, 30), value(None, 4));
        assert_eq!(judge(&[write(), lookup]), ["revisions"]);
    }

    #[test]
    fn keep_alives_deletes_and_queue_operations_do_not_count() {
        let (lock, key, queue) = ("/locks/l".to_string(), "/svc/c2".to_string(), "/q".to_string());
        let ops = [
            op(1, put("/r/k0", "a"), (0, 10), written(10)),
            op(2, Call::Heartbeat { key, ttl: 3 }, (20, 30), written(3)),
            op(2, Call::LockRefresh { lock: lock.clone(), token: 2, prev_index: 2 }, (20, 30), written(2)),
            op(2, Call::LockRelease { lock, token: 2, prev_index: 2 }, (40, 50), written(2)),
            op(2, Call::Dequeue { queue: queue.clone() }, (20, 30), value(Some("x"), 1)),
            op(2, Call::Enqueue { queue, value: "y".into() }, (20, 30), written(1)),
        ];
        assert_eq!(judge(&ops), Vec::<&str>::new());
    }
}
