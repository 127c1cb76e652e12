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
        let lost: Vec<&(&str, &Op)> =
            acked.iter().filter(|(v, _)| !taken.contains_key(v) && !seen.contains(v)).collect();
        if lost.len() > maybe_taken {
            for (v, op) in lost.iter().take(3) {
                out.push(Violation::new(
                    "queue",
                    format!("acknowledged item {v} is neither taken nor in the queue:\n  {op}"),
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
    use crate::checker::testing::{failed, op, refused, unknown, value, written};
    use crate::history::{Call, Op, Outcome, Return};

    const QUEUE: &str = "/q";

    fn enqueue(item: &str, outcome: Outcome) -> Op {
        op(1, Call::Enqueue { queue: QUEUE.into(), value: item.into() }, (0, 10), outcome)
    }

    /// A dequeue that ended in `outcome`; `took(item)` for one that took `item`.
    fn dequeue(outcome: Outcome) -> Op {
        op(2, Call::Dequeue { queue: QUEUE.into() }, (20, 30), outcome)
    }

    fn took(item: &str) -> Op {
        dequeue(value(Some(item), 7))
    }

    fn left(items: &[&str]) -> Op {
        op(
            3,
            Call::ListQueue { queue: QUEUE.into() },
            (40, 50),
            Outcome::Ok(Return::Items(items.iter().map(|i| i.to_string()).collect())),
        )
    }

    /// Each violation's detail; every one must be a "queue" violation.
    fn judge(ops: &[Op]) -> Vec<String> {
        let found = check(ops);
        assert!(found.iter().all(|v| v.property == "queue"), "{found:?}");
        found.into_iter().map(|v| v.detail).collect()
    }

    fn assert_one(ops: &[Op], says: &str) {
        let details = judge(ops);
        assert!(details.len() == 1 && details[0].contains(says), "expected one \"{says}\", got {details:?}");
    }

    #[test]
    fn every_item_taken_once_or_left_passes() {
        let ops = [
            enqueue("a", written(5)),
            enqueue("b", written(6)),
            enqueue("c", written(7)),
            enqueue("maybe", unknown()),
            enqueue("never", failed()),
            took("a"),
            took("b"),
            dequeue(value(None, 8)),
            dequeue(refused()),
            left(&["c"]),
        ];
        assert_eq!(judge(&ops), Vec::<String>::new());
    }

    #[test]
    fn item_enqueued_with_unknown_outcome_may_be_taken_or_left() {
        let ops = [enqueue("u1", unknown()), enqueue("u2", unknown()), took("u1"), left(&["u2"])];
        assert_eq!(judge(&ops), Vec::<String>::new());
    }

    #[test]
    fn item_taken_twice() {
        assert_one(&[enqueue("a", written(5)), took("a"), took("a")], "taken twice");
    }

    #[test]
    fn item_taken_but_never_enqueued() {
        assert_one(&[took("ghost")], "taken but never enqueued");
        // An enqueue that certainly failed enqueued nothing.
        assert_one(&[enqueue("a", failed()), took("a")], "taken but never enqueued");
    }

    #[test]
    fn item_in_the_queue_twice() {
        assert_one(&[enqueue("a", written(5)), left(&["a", "a"])], "in the queue twice");
    }

    #[test]
    fn item_in_the_queue_but_never_enqueued() {
        assert_one(&[enqueue("a", failed()), left(&["a"])], "in the queue but was never enqueued");
    }

    #[test]
    fn item_still_in_the_queue_after_it_was_taken() {
        assert_one(&[enqueue("a", written(5)), took("a"), left(&["a"])], "still in the queue after it was taken");
    }

    #[test]
    fn acknowledged_item_lost() {
        assert_one(
            &[enqueue("a", written(5)), enqueue("b", written(6)), took("b"), left(&[])],
            "acknowledged item a is neither taken nor in the queue",
        );
    }

    #[test]
    fn dequeue_with_lost_answer_excuses_one_missing_item() {
        let one = [enqueue("a", written(5)), enqueue("b", written(6)), dequeue(unknown()), left(&["b"])];
        assert_eq!(judge(&one), Vec::<String>::new());
        let two = [enqueue("a", written(5)), enqueue("b", written(6)), dequeue(unknown()), left(&[])];
        let details = judge(&two);
        assert_eq!(details.len(), 2, "{details:?}");
        assert!(details.iter().all(|d| d.contains("neither taken nor in the queue")), "{details:?}");
    }

    #[test]
    fn dequeues_that_failed_or_were_refused_excuse_nothing() {
        assert_one(
            &[enqueue("a", written(5)), dequeue(failed()), dequeue(refused()), left(&[])],
            "neither taken nor in the queue",
        );
    }

    #[test]
    fn losses_are_judged_only_against_a_final_listing() {
        assert_eq!(judge(&[enqueue("a", written(5)), enqueue("b", written(6))]), Vec::<String>::new());
    }
}
