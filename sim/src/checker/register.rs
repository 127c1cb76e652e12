//! The register workload's history, judged by the linearizability checker: every read sees the
//! latest write, no acknowledged write is lost, no compare-and-swap succeeds on a stale value.

use std::time::Duration;

use super::linearizability::{check as check_linearizable, KvInput, KvModel, KvOutput, Operation, Verdict};
use super::Violation;
use crate::history::{Call, Op, Outcome, Return};

/// How long the search may take before it gives up undecided (far above what runs need).
const BUDGET: Duration = Duration::from_secs(60);

/// The register operations of `ops` as the linearizability checker's operations. Operations
/// that certainly did not happen (and failed reads) are left out; unknown ones may or may not
/// have happened.
pub fn to_operations(ops: &[Op]) -> Vec<Operation<KvInput, KvOutput>> {
    ops.iter().filter_map(to_operation).collect()
}

fn to_operation(op: &Op) -> Option<Operation<KvInput, KvOutput>> {
    let input = match &op.call {
        Call::Get { key } => KvInput::Get { key: key.clone() },
        Call::Put { key, value } => KvInput::Put { key: key.clone(), value: value.clone() },
        Call::Cas { key, expected, value } => {
            KvInput::Cas { key: key.clone(), expected: expected.clone(), value: value.clone() }
        }
        _ => return None,
    };
    let output = match &op.outcome {
        Outcome::Failed(_) => return None,
        Outcome::Unknown(_) if matches!(input, KvInput::Get { .. }) => return None,
        Outcome::Unknown(_) => None,
        Outcome::Ok(Return::Value { value, .. }) => Some(KvOutput::Value(value.clone())),
        Outcome::Ok(Return::Written { .. }) => Some(KvOutput::Written),
        Outcome::Ok(Return::Refused) => Some(KvOutput::CasFailed),
        Outcome::Ok(Return::Acquired { .. } | Return::Items(_)) => return None,
    };
    let complete = output.as_ref().map(|_| op.complete_ms);
    Some(Operation { client: op.client, input, invoke: op.invoke_ms, output, complete })
}

/// Check the register history.
pub fn check(ops: &[Op]) -> Vec<Violation> {
    match check_linearizable(&KvModel, &to_operations(ops), BUDGET) {
        Verdict::Ok => vec![],
        Verdict::Illegal(counterexample) => vec![Violation::new("linearizability", counterexample.to_string())],
        Verdict::Timeout => vec![Violation::new("linearizability", format!("undecided after {BUDGET:?}"))],
    }
}

#[cfg(test)]
mod tests {
    use super::check;
    use crate::checker::testing::{cas, failed, get, op, properties, put, refused, unknown, value, written};
    use crate::history::Op;

    const K: &str = "/r/k0";

    fn judge(ops: &[Op]) -> Vec<&'static str> {
        properties(&check(ops))
    }

    fn read(at: (u64, u64), seen: Option<&str>) -> Op {
        op(9, get(K), at, value(seen, 1))
    }

    #[test]
    fn linearizable_history_passes() {
        let ops = [
            read((0, 5), None),
            op(1, put(K, "a"), (10, 20), written(2)),
            read((30, 40), Some("a")),
            op(2, cas(K, Some("a"), "b"), (50, 60), written(3)),
            op(3, cas(K, Some("a"), "c"), (70, 80), refused()),
            op(3, cas(K, None, "d"), (70, 80), refused()),
            read((90, 100), Some("b")),
            // Reads that failed or were lost say nothing.
            op(4, get(K), (110, 120), failed()),
            op(4, get(K), (110, 120), unknown()),
            op(5, cas("/r/k1", None, "x"), (0, 10), written(4)),
            op(5, get("/r/k1"), (20, 30), value(Some("x"), 4)),
        ];
        assert_eq!(judge(&ops), Vec::<&str>::new());
    }

    #[test]
    fn concurrent_read_may_see_either_value() {
        let before = [op(1, put(K, "a"), (0, 100), written(2)), read((10, 20), None)];
        assert_eq!(judge(&before), Vec::<&str>::new());
        let after = [op(1, put(K, "a"), (0, 100), written(2)), read((10, 20), Some("a"))];
        assert_eq!(judge(&after), Vec::<&str>::new());
    }

    #[test]
    fn stale_read_after_a_completed_write_is_linearizability() {
        let ops = [
            op(1, put(K, "a"), (0, 10), written(2)),
            op(1, put(K, "b"), (20, 30), written(3)),
            read((40, 50), Some("a")),
        ];
        assert_eq!(judge(&ops), ["linearizability"]);
    }

    #[test]
    fn read_of_a_value_nobody_wrote_is_linearizability() {
        assert_eq!(
            judge(&[op(1, put(K, "a"), (0, 10), written(2)), read((20, 30), Some("ghost"))]),
            ["linearizability"]
        );
    }

    #[test]
    fn unknown_write_may_or_may_not_take_effect_even_late() {
        let write = || [op(1, put(K, "a"), (0, 10), written(2)), op(2, put(K, "b"), (20, 30), unknown())];
        let not_yet = [read((40, 50), Some("a"))];
        let late = [read((40, 50), Some("a")), read((60, 70), Some("b"))];
        for reads in [&not_yet[..], &late[..], &[read((40, 50), Some("b"))][..]] {
            let ops: Vec<Op> = write().into_iter().chain(reads.iter().cloned()).collect();
            assert_eq!(judge(&ops), Vec::<&str>::new(), "{reads:?}");
        }
    }

    #[test]
    fn unknown_write_takes_effect_at_most_once() {
        let ops = [
            op(1, put(K, "a"), (0, 10), written(2)),
            op(2, put(K, "b"), (20, 30), unknown()),
            read((40, 50), Some("b")),
            op(1, put(K, "c"), (60, 70), written(4)),
            read((80, 90), Some("b")),
        ];
        assert_eq!(judge(&ops), ["linearizability"]);
    }

    #[test]
    fn failed_write_never_takes_effect() {
        let ops = [
            op(1, put(K, "a"), (0, 10), written(2)),
            op(2, put(K, "b"), (20, 30), failed()),
            read((40, 50), Some("b")),
        ];
        assert_eq!(judge(&ops), ["linearizability"]);
    }

    #[test]
    fn cas_succeeding_on_a_stale_value_is_linearizability() {
        let ops = [
            op(1, put(K, "a"), (0, 10), written(2)),
            op(1, put(K, "b"), (20, 30), written(3)),
            op(2, cas(K, Some("a"), "c"), (40, 50), written(4)),
        ];
        assert_eq!(judge(&ops), ["linearizability"]);
    }

    #[test]
    fn cas_refused_although_its_condition_held_is_linearizability() {
        let ops = [op(1, put(K, "a"), (0, 10), written(2)), op(2, cas(K, Some("a"), "b"), (20, 30), refused())];
        assert_eq!(judge(&ops), ["linearizability"]);
    }
}
