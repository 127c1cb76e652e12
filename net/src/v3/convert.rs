//! Field-for-field translation between the generated etcd messages and the core's requests and
//! responses. Enum values outside etcd's ranges fall back to etcd's defaults, as etcd's own
//! server treats unknown values.

use keel_core::api::alarm::{AlarmAction, AlarmMember, AlarmRequest, AlarmType};
use keel_core::api::error::Error;
use keel_core::api::kv::{Event as CoreEvent, EventType, KeyValue as CoreKv};
use keel_core::api::request as core;
use keel_core::state::watch::{WatchCreate, WatchFilter, WatchResponse as CoreWatchResponse};

use super::pb::etcdserverpb as pb;
use super::pb::mvccpb;

/// The core's header as etcd's.
pub fn header(h: &core::ResponseHeader) -> Option<pb::ResponseHeader> {
    Some(pb::ResponseHeader {
        cluster_id: h.cluster_id,
        member_id: h.member_id,
        revision: h.revision,
        raft_term: h.raft_term,
    })
}

/// etcd's alarm request as the core's; unknown actions and types read as GET and NONE.
pub fn alarm_request(r: pb::AlarmRequest) -> AlarmRequest {
    let action = match pb::alarm_request::AlarmAction::try_from(r.action) {
        Ok(pb::alarm_request::AlarmAction::Activate) => AlarmAction::Activate,
        Ok(pb::alarm_request::AlarmAction::Deactivate) => AlarmAction::Deactivate,
        _ => AlarmAction::Get,
    };
    let alarm = match pb::AlarmType::try_from(r.alarm) {
        Ok(pb::AlarmType::Nospace) => AlarmType::Nospace,
        Ok(pb::AlarmType::Corrupt) => AlarmType::Corrupt,
        _ => AlarmType::None,
    };
    AlarmRequest { action, member_id: r.member_id, alarm }
}

/// The core's alarm type as etcd's.
fn alarm_type(a: AlarmType) -> pb::AlarmType {
    match a {
        AlarmType::None => pb::AlarmType::None,
        AlarmType::Nospace => pb::AlarmType::Nospace,
        AlarmType::Corrupt => pb::AlarmType::Corrupt,
    }
}

/// A raised alarm as etcd's `AlarmMember`.
pub fn alarm_member(a: AlarmMember) -> pb::AlarmMember {
    pb::AlarmMember { member_id: a.member_id, alarm: alarm_type(a.alarm) as i32 }
}

/// A raised alarm as etcd's Status lists it in `errors` (the message's text form, trailing
/// space included: `memberID:10276657743932975437 alarm:NOSPACE `).
pub fn alarm_error(a: AlarmMember) -> String {
    format!("memberID:{} alarm:{} ", a.member_id, alarm_type(a.alarm).as_str_name())
}

/// A stored key-value as etcd's `mvccpb.KeyValue`.
pub fn kv(kv: CoreKv) -> mvccpb::KeyValue {
    mvccpb::KeyValue {
        key: kv.key,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value,
        lease: kv.lease,
    }
}

/// An event as etcd's `mvccpb.Event`.
pub fn event(ev: CoreEvent) -> mvccpb::Event {
    let kind = match ev.kind {
        EventType::Put => mvccpb::event::EventType::Put,
        EventType::Delete => mvccpb::event::EventType::Delete,
    };
    mvccpb::Event { r#type: kind as i32, kv: Some(kv(ev.kv)), prev_kv: ev.prev_kv.map(kv) }
}

pub fn range_request(r: pb::RangeRequest) -> core::RangeRequest {
    use pb::range_request::{SortOrder, SortTarget};
    let sort_order = match SortOrder::try_from(r.sort_order).unwrap_or(SortOrder::None) {
        SortOrder::None => core::SortOrder::None,
        SortOrder::Ascend => core::SortOrder::Ascend,
        SortOrder::Descend => core::SortOrder::Descend,
    };
    let sort_target = match SortTarget::try_from(r.sort_target).unwrap_or(SortTarget::Key) {
        SortTarget::Key => core::SortTarget::Key,
        SortTarget::Version => core::SortTarget::Version,
        SortTarget::Create => core::SortTarget::Create,
        SortTarget::Mod => core::SortTarget::Mod,
        SortTarget::Value => core::SortTarget::Value,
    };
    core::RangeRequest {
        key: r.key,
        range_end: r.range_end,
        limit: r.limit,
        revision: r.revision,
        sort_order,
        sort_target,
        serializable: r.serializable,
        keys_only: r.keys_only,
        count_only: r.count_only,
        min_mod_revision: r.min_mod_revision,
        max_mod_revision: r.max_mod_revision,
        min_create_revision: r.min_create_revision,
        max_create_revision: r.max_create_revision,
    }
}

pub fn range_response(r: core::RangeResponse) -> pb::RangeResponse {
    pb::RangeResponse {
        header: header(&r.header),
        kvs: r.kvs.into_iter().map(kv).collect(),
        more: r.more,
        count: r.count,
    }
}

pub fn put_request(r: pb::PutRequest) -> core::PutRequest {
    core::PutRequest {
        key: r.key,
        value: r.value,
        lease: r.lease,
        prev_kv: r.prev_kv,
        ignore_value: r.ignore_value,
        ignore_lease: r.ignore_lease,
    }
}

pub fn put_response(r: core::PutResponse) -> pb::PutResponse {
    pb::PutResponse { header: header(&r.header), prev_kv: r.prev_kv.map(kv) }
}

pub fn delete_request(r: pb::DeleteRangeRequest) -> core::DeleteRangeRequest {
    core::DeleteRangeRequest { key: r.key, range_end: r.range_end, prev_kv: r.prev_kv }
}

pub fn delete_response(r: core::DeleteRangeResponse) -> pb::DeleteRangeResponse {
    pb::DeleteRangeResponse {
        header: header(&r.header),
        deleted: r.deleted,
        prev_kvs: r.prev_kvs.into_iter().map(kv).collect(),
    }
}

fn compare(c: pb::Compare) -> core::Compare {
    use pb::compare::{CompareResult, CompareTarget, TargetUnion};
    let result = match CompareResult::try_from(c.result).unwrap_or(CompareResult::Equal) {
        CompareResult::Equal => core::CompareResult::Equal,
        CompareResult::Greater => core::CompareResult::Greater,
        CompareResult::Less => core::CompareResult::Less,
        CompareResult::NotEqual => core::CompareResult::NotEqual,
    };
    let number = match &c.target_union {
        Some(
            TargetUnion::Version(n)
            | TargetUnion::CreateRevision(n)
            | TargetUnion::ModRevision(n)
            | TargetUnion::Lease(n),
        ) => *n,
        _ => 0,
    };
    let target = match CompareTarget::try_from(c.target).unwrap_or(CompareTarget::Version) {
        CompareTarget::Version => core::CompareTarget::Version(number),
        CompareTarget::Create => core::CompareTarget::CreateRevision(number),
        CompareTarget::Mod => core::CompareTarget::ModRevision(number),
        CompareTarget::Lease => core::CompareTarget::Lease(number),
        CompareTarget::Value => match c.target_union {
            Some(TargetUnion::Value(v)) => core::CompareTarget::Value(v),
            _ => core::CompareTarget::Value(Vec::new()),
        },
    };
    core::Compare { result, target, key: c.key, range_end: c.range_end }
}

/// A transaction branch's operation. An empty `RequestOp` (no operation set), at any depth, is
/// refused with etcd's answer to it: "key not found", as an invalid argument.
fn request_op(op: pb::RequestOp) -> Result<core::RequestOp, Error> {
    use pb::request_op::Request;
    Ok(match op.request.ok_or(Error::KeyNotFound)? {
        Request::RequestRange(r) => core::RequestOp::Range(range_request(r)),
        Request::RequestPut(r) => core::RequestOp::Put(put_request(r)),
        Request::RequestDeleteRange(r) => core::RequestOp::DeleteRange(delete_request(r)),
        Request::RequestTxn(r) => core::RequestOp::Txn(txn_request(r)?),
    })
}

pub fn txn_request(r: pb::TxnRequest) -> Result<core::TxnRequest, Error> {
    Ok(core::TxnRequest {
        compare: r.compare.into_iter().map(compare).collect(),
        success: r.success.into_iter().map(request_op).collect::<Result<_, _>>()?,
        failure: r.failure.into_iter().map(request_op).collect::<Result<_, _>>()?,
    })
}

pub fn txn_response(r: core::TxnResponse) -> pb::TxnResponse {
    use pb::response_op::Response;
    let responses = r
        .responses
        .into_iter()
        .map(|op| pb::ResponseOp {
            response: Some(match op {
                core::ResponseOp::Range(r) => Response::ResponseRange(range_response(r)),
                core::ResponseOp::Put(r) => Response::ResponsePut(put_response(r)),
                core::ResponseOp::DeleteRange(r) => Response::ResponseDeleteRange(delete_response(r)),
                core::ResponseOp::Txn(r) => Response::ResponseTxn(txn_response(r)),
            }),
        })
        .collect();
    pb::TxnResponse { header: header(&r.header), succeeded: r.succeeded, responses }
}

pub fn member(m: core::Member) -> pb::Member {
    pb::Member {
        id: m.id,
        name: m.name,
        peer_ur_ls: m.peer_urls,
        client_ur_ls: m.client_urls,
        is_learner: m.is_learner,
    }
}

pub fn members(ms: Vec<core::Member>) -> Vec<pb::Member> {
    ms.into_iter().map(member).collect()
}

pub fn watch_create(r: pb::WatchCreateRequest) -> WatchCreate {
    use pb::watch_create_request::FilterType;
    let filters = r
        .filters
        .iter()
        .filter_map(|f| match FilterType::try_from(*f).ok()? {
            FilterType::Noput => Some(WatchFilter::NoPut),
            FilterType::Nodelete => Some(WatchFilter::NoDelete),
        })
        .collect();
    WatchCreate {
        key: r.key,
        range_end: r.range_end,
        start_revision: r.start_revision,
        progress_notify: r.progress_notify,
        filters,
        prev_kv: r.prev_kv,
        fragment: r.fragment,
    }
}

/// A watcher's response, under the stream's own `watch_id` and with the member's header.
pub fn watch_response(r: CoreWatchResponse, watch_id: i64, mut head: core::ResponseHeader) -> pb::WatchResponse {
    head.revision = r.revision;
    pb::WatchResponse {
        header: header(&head),
        watch_id,
        created: r.created,
        canceled: r.canceled,
        compact_revision: r.compact_revision,
        cancel_reason: r.cancel_reason,
        fragment: false,
        events: r.events.into_iter().map(event).collect(),
    }
}
