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
        Call::Cas { key, expected, value } => KvInput::Cas { key: key.clone(), expected: expected.clone(), value: value.clone() },
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
