//! Alarms and the space quota (etcd's Maintenance.Alarm and `--quota-backend-bytes`). A member
//! that finds a write would take the key space past the quota raises a NOSPACE alarm through the
//! log; while any NOSPACE alarm is active every member refuses writes that add data (puts, txns
//! with puts, lease grants) but still serves reads, deletes and compactions, until an operator
//! frees space and disarms the alarm. Both the alarm set and the refusal are replicated state, so
//! every member answers the same way.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::api::alarm::{AlarmAction, AlarmMember, AlarmRequest, AlarmResponse, AlarmType};
use crate::api::command::Command;
use crate::api::request::{RequestOp, ResponseHeader, TxnRequest};
use crate::api::v2::{V2Action, V2WriteRequest};

/// The cluster's active alarms, part of the replicated state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarms {
    active: BTreeSet<AlarmMember>,
}

impl Alarms {
    /// Carry out `req` as etcd does: raising an active alarm or clearing an inactive one changes
    /// nothing and answers with no alarms.
    pub fn apply(&mut self, req: &AlarmRequest) -> AlarmResponse {
        let named = AlarmMember { member_id: req.member_id, alarm: req.alarm };
        let alarms = match req.action {
            AlarmAction::Get => {
                self.active.iter().filter(|a| req.alarm == AlarmType::None || a.alarm == req.alarm).copied().collect()
            }
            AlarmAction::Activate if req.alarm != AlarmType::None && self.active.insert(named) => vec![named],
            AlarmAction::Deactivate if self.active.remove(&named) => vec![named],
            AlarmAction::Activate | AlarmAction::Deactivate => vec![],
        };
        AlarmResponse { header: ResponseHeader::default(), alarms }
    }

    /// Whether writes that add data are refused: some member raised NOSPACE.
    pub fn out_of_space(&self) -> bool {
        self.active.iter().any(|a| a.alarm == AlarmType::Nospace)
    }

    /// Every active alarm, ordered by member and type.
    pub fn list(&self) -> Vec<AlarmMember> {
        self.active.iter().copied().collect()
    }

    /// Rebuild from [`Alarms::list`]'s output.
    pub fn restore(alarms: Vec<AlarmMember>) -> Self {
        Alarms { active: alarms.into_iter().collect() }
    }
}

/// Bytes a command would add to the key space, for the quota check; `None` for commands the
/// quota does not apply to — the same ones a NOSPACE alarm lets through. As in etcd, puts
/// (alone, in order, or in a txn) and lease grants count; txns without puts, deletes, reads and
/// compactions pass, so a full store can still be read and cleaned up.
pub(crate) fn quota_cost(command: &Command) -> Option<u64> {
    match command {
        Command::Put(req) => Some(put_cost(&req.key, &req.value)),
        Command::PutInOrder(req) => Some(put_cost(&req.prefix, &req.value) + IN_ORDER_NAME_BYTES),
        Command::Txn(req) => Some(txn_cost(req)).filter(|cost| *cost > 0),
        Command::LeaseGrant(_) => Some(LEASE_COST),
        Command::V2Write(req) => v2_write_cost(req),
        Command::Authed { command, .. } => quota_cost(command),
        _ => None,
    }
}

/// What a v2 write may add: a node's key and value, its in-order name and its lease. Deletes
/// pass, as v3 deletes do.
fn v2_write_cost(req: &V2WriteRequest) -> Option<u64> {
    if matches!(req.action, V2Action::Delete | V2Action::CompareAndDelete) {
        return None;
    }
    let name = if req.in_order { IN_ORDER_NAME_BYTES } else { 0 };
    let lease = if req.ttl.is_some() { LEASE_COST } else { 0 };
    Some(put_cost(req.path.as_bytes(), req.value.as_bytes()) + name + lease)
}

/// What a lease grant counts (etcd's backend stores a small record per lease).
const LEASE_COST: u64 = 64;

/// The revision an in-order key's name gets after its prefix (20 digits).
const IN_ORDER_NAME_BYTES: u64 = 20;

/// A put's count: its key and value plus the per-revision allowance the store counts.
fn put_cost(key: &[u8], value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64 + crate::state::mvcc::REVISION_OVERHEAD
}

/// The larger branch's puts, nested txns included.
fn txn_cost(txn: &TxnRequest) -> u64 {
    let branch = |ops: &[RequestOp]| -> u64 {
        ops.iter()
            .map(|op| match op {
                RequestOp::Put(p) => put_cost(&p.key, &p.value),
                RequestOp::Txn(t) => txn_cost(t),
                RequestOp::Range(_) | RequestOp::DeleteRange(_) => 0,
            })
            .sum()
    };
    branch(&txn.success).max(branch(&txn.failure))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::request::{DeleteRangeRequest, PutRequest};

    fn req(action: AlarmAction, member_id: u64, alarm: AlarmType) -> AlarmRequest {
        AlarmRequest { action, member_id, alarm }
    }

    #[test]
    fn alarms_are_raised_once_listed_and_cleared_as_etcd_does() {
        let mut a = Alarms::default();
        let nospace = AlarmMember { member_id: 7, alarm: AlarmType::Nospace };
        assert_eq!(a.apply(&req(AlarmAction::Activate, 7, AlarmType::Nospace)).alarms, vec![nospace]);
        assert!(a.apply(&req(AlarmAction::Activate, 7, AlarmType::Nospace)).alarms.is_empty(), "already active");
        assert!(a.apply(&req(AlarmAction::Activate, 7, AlarmType::None)).alarms.is_empty(), "NONE is no alarm");
        a.apply(&req(AlarmAction::Activate, 9, AlarmType::Corrupt));
        assert!(a.out_of_space());
        assert_eq!(a.apply(&req(AlarmAction::Get, 0, AlarmType::None)).alarms.len(), 2);
        assert_eq!(a.apply(&req(AlarmAction::Get, 0, AlarmType::Nospace)).alarms, vec![nospace]);
        assert_eq!(a.apply(&req(AlarmAction::Deactivate, 7, AlarmType::Nospace)).alarms, vec![nospace]);
        assert!(a.apply(&req(AlarmAction::Deactivate, 7, AlarmType::Nospace)).alarms.is_empty());
        assert!(!a.out_of_space());
        assert_eq!(Alarms::restore(a.list()), a);
    }

    #[test]
    fn the_quota_weighs_what_a_command_adds() {
        let put =
            |k: &str, v: &str| RequestOp::Put(PutRequest { key: k.into(), value: v.into(), ..Default::default() });
        let del = RequestOp::DeleteRange(DeleteRangeRequest { key: b"k".to_vec(), ..Default::default() });
        assert_eq!(
            quota_cost(&Command::Put(PutRequest { key: b"k".to_vec(), value: b"vv".to_vec(), ..Default::default() })),
            Some(67)
        );
        let nested = TxnRequest { success: vec![put("a", "")], ..Default::default() };
        let txn = TxnRequest {
            success: vec![put("k", "v"), del.clone()],
            failure: vec![RequestOp::Txn(nested.clone()), put("b", "")],
            ..Default::default()
        };
        assert_eq!(quota_cost(&Command::Txn(txn)), Some(65 + 65), "the larger branch: the failure one");
        let deletes = TxnRequest { success: vec![del], ..Default::default() };
        assert_eq!(quota_cost(&Command::Txn(deletes)), None);
        assert_eq!(quota_cost(&Command::DeleteRange(DeleteRangeRequest::default())), None);
    }
}
