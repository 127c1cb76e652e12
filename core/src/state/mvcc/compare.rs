//! Evaluation of a transaction's guards ([`Compare`]) against the key space at one revision.

use std::cmp::Ordering;

use super::key_history::Live;
use super::view::View;
use crate::api::error::Result;
use crate::api::request::{Compare, CompareResult, CompareTarget};

/// Whether `cmp` holds at the current revision: for every live key in its range; with no live
/// key, a Value compare is false and the others compare against a zero key-value (etcd's rules).
pub(crate) fn holds(view: View<'_>, cmp: &Compare) -> Result<bool> {
    let mut any = false;
    let mut all = true;
    view.for_each_latest(&cmp.key, &cmp.range_end, &mut |_, rev, live| {
        any = true;
        all = satisfied(cmp, Some((rev.main, &live)));
        Ok(all)
    })?;
    Ok(if any { all } else { satisfied(cmp, None) })
}

/// One key-value (or its absence) against the compare.
fn satisfied(cmp: &Compare, kv: Option<(i64, &Live)>) -> bool {
    let ordering = match (&cmp.target, kv) {
        (CompareTarget::Value(_), None) => return false,
        (CompareTarget::Value(want), Some((_, live))) => live.value.as_slice().cmp(want.as_slice()),
        (CompareTarget::Version(want), kv) => kv.map_or(0, |(_, l)| l.version).cmp(want),
        (CompareTarget::CreateRevision(want), kv) => kv.map_or(0, |(_, l)| l.create_revision).cmp(want),
        (CompareTarget::ModRevision(want), kv) => kv.map_or(0, |(m, _)| m).cmp(want),
        (CompareTarget::Lease(want), kv) => kv.map_or(0, |(_, l)| l.lease).cmp(want),
    };
    match cmp.result {
        CompareResult::Equal => ordering == Ordering::Equal,
        CompareResult::NotEqual => ordering != Ordering::Equal,
        CompareResult::Greater => ordering == Ordering::Greater,
        CompareResult::Less => ordering == Ordering::Less,
    }
}
