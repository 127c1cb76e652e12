//! Builders for the small hand-written histories the checkers' tests judge.

use super::Violation;
use crate::history::{Call, Op, Outcome, Return};

/// `client`'s `call`, invoked and completed at `at` = (invoke, complete) ms, ending in `outcome`.
pub fn op(client: u64, call: Call, at: (u64, u64), outcome: Outcome) -> Op {
    Op { client, member: 0, call, invoke_ms: at.0, complete_ms: at.1, outcome }
}

pub fn get(key: &str) -> Call {
    Call::Get { key: key.into() }
}

pub fn put(key: &str, value: &str) -> Call {
    Call::Put { key: key.into(), value: value.into() }
}

pub fn cas(key: &str, expected: Option<&str>, value: &str) -> Call {
    Call::Cas { key: key.into(), expected: expected.map(Into::into), value: value.into() }
}

/// A read that saw `value` (`None`: absent) at `index`.
pub fn value(value: Option<&str>, index: u64) -> Outcome {
    Outcome::Ok(Return::Value { value: value.map(Into::into), index })
}

pub fn written(index: u64) -> Outcome {
    Outcome::Ok(Return::Written { index })
}

pub fn refused() -> Outcome {
    Outcome::Ok(Return::Refused)
}

pub fn failed() -> Outcome {
    Outcome::Failed("connection refused".into())
}

pub fn unknown() -> Outcome {
    Outcome::Unknown("timed out".into())
}

/// Which properties `violations` name, in order.
pub fn properties(violations: &[Violation]) -> Vec<&'static str> {
    violations.iter().map(|v| v.property).collect()
}
