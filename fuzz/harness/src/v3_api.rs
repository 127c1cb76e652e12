//! Target `v3_api`: the v3 API's request decoding, over gRPC and over the JSON gateway, for
//! every call, against a one-member cluster. A gRPC call's body is a message in gRPC's framing
//! (or raw bytes, which must be refused as a framing error); a gateway call's body is JSON.
//! Every call ends in a well-formed answer: gRPC with a valid `grpc-status` (in the headers or
//! the trailers) and intact framing, the gateway with a real status and, for an error,
//! grpc-gateway's `{"error","code","message"}` body.

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full};
use keel_core::api::auth::Caller;
use keel_net::local::LocalBackend;
use keel_net::v3::gateway;
use keel_net::v3::router::Services;

use crate::exec::Exec;

/// Calls per input.
const MAX_CALLS: usize = 16;

/// Every gRPC method Keel serves, and one service it does not.
pub const GRPC_METHODS: &[&str] = &[
    "/etcdserverpb.KV/Range",
    "/etcdserverpb.KV/Put",
    "/etcdserverpb.KV/DeleteRange",
    "/etcdserverpb.KV/Txn",
    "/etcdserverpb.KV/Compact",
    "/etcdserverpb.Watch/Watch",
    "/etcdserverpb.Lease/LeaseGrant",
    "/etcdserverpb.Lease/LeaseRevoke",
    "/etcdserverpb.Lease/LeaseKeepAlive",
    "/etcdserverpb.Lease/LeaseTimeToLive",
    "/etcdserverpb.Lease/LeaseLeases",
    "/etcdserverpb.Cluster/MemberAdd",
    "/etcdserverpb.Cluster/MemberRemove",
    "/etcdserverpb.Cluster/MemberUpdate",
    "/etcdserverpb.Cluster/MemberList",
    "/etcdserverpb.Cluster/MemberPromote",
    "/etcdserverpb.Maintenance/Alarm",
    "/etcdserverpb.Maintenance/Status",
    "/etcdserverpb.Maintenance/Defragment",
    "/etcdserverpb.Maintenance/Hash",
    "/etcdserverpb.Maintenance/HashKV",
    "/etcdserverpb.Maintenance/Snapshot",
    "/etcdserverpb.Maintenance/MoveLeader",
    "/v3lockpb.Lock/Lock",
    "/v3lockpb.Lock/Unlock",
    "/v3electionpb.Election/Campaign",
    "/v3electionpb.Election/Proclaim",
    "/v3electionpb.Election/Leader",
    "/v3electionpb.Election/Observe",
    "/v3electionpb.Election/Resign",
    "/etcdserverpb.Auth/AuthEnable",
];

/// Every gateway call (the path after `/v3/`), and one that does not exist.
pub const GATEWAY_CALLS: &[&str] = &[
    "kv/range",
    "kv/put",
    "kv/deleterange",
    "kv/txn",
    "kv/compaction",
    "watch",
    "lease/grant",
    "lease/revoke",
    "lease/keepalive",
    "lease/timetolive",
    "lease/leases",
    "cluster/member/add",
    "cluster/member/remove",
    "cluster/member/update",
    "cluster/member/list",
    "cluster/member/promote",
    "maintenance/alarm",
    "maintenance/status",
    "maintenance/defragment",
    "maintenance/hash",
    "maintenance/snapshot",
    "maintenance/transfer-leadership",
    "lock/lock",
    "lock/unlock",
    "election/campaign",
    "election/proclaim",
    "election/leader",
    "election/observe",
    "election/resign",
    "auth/enable",
    "nothing/here",
];

/// The target's body. The input is a sequence of calls, each `[kind][which][length: u16 BE]`
/// and `length` bytes: kind 0 is a gRPC call with those bytes as its one message (framed
/// here), 1 a gRPC call with those bytes as its whole body (any framing), 2 a gateway call
/// with those bytes as its JSON body; `which` picks the method from [`GRPC_METHODS`] or the
/// call from [`GATEWAY_CALLS`]. A short last record takes what is left.
pub fn run(data: &[u8]) {
    let services = Services::new(LocalBackend::new(), "etcd-cluster".into());
    let exec = Exec::new();
    let mut rest = data;
    for _ in 0..MAX_CALLS {
        let [kind, which, hi, lo, tail @ ..] = rest else { break };
        let len = (usize::from(*hi) << 8 | usize::from(*lo)).min(tail.len());
        let (payload, next) = tail.split_at(len);
        rest = next;
        match kind % 3 {
            0 => grpc(&exec, &services, *which, frame(payload)),
            1 => grpc(&exec, &services, *which, payload.to_vec()),
            _ => gateway_call(&exec, &services, GATEWAY_CALLS[*which as usize % GATEWAY_CALLS.len()], payload),
        }
    }
}

/// One message in gRPC's framing: uncompressed flag, big-endian length, message.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

fn grpc(exec: &Exec, services: &Services<LocalBackend>, method: u8, body: Vec<u8>) {
    let path = GRPC_METHODS[method as usize % GRPC_METHODS.len()];
    let request = hyper::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from(body)))
        .expect("a well-formed request");
    let Some(response) = exec.settle(services.call(request)) else { return };
    assert_eq!(response.status(), 200, "{path}: gRPC answers travel with HTTP status 200");
    let header_status = grpc_status(response.headers());
    // A streaming answer may go on for as long as the call lasts: what arrived is checked.
    let Some(collected) = exec.settle(response.into_body().collect()) else { return };
    let Ok(collected) = collected else { return };
    let trailer_status = collected.trailers().and_then(grpc_status);
    let status = header_status.or(trailer_status).unwrap_or_else(|| panic!("{path}: an answer without grpc-status"));
    assert!(status <= 16, "{path}: grpc-status {status}");
    let mut body = collected.to_bytes();
    while body.has_remaining() {
        assert!(body.remaining() >= 5, "{path}: a truncated frame header");
        assert_eq!(body.get_u8(), 0, "{path}: answers are not compressed");
        let len = body.get_u32() as usize;
        assert!(body.remaining() >= len, "{path}: a truncated message");
        body.advance(len);
    }
}

fn grpc_status(headers: &hyper::HeaderMap) -> Option<u32> {
    let value = headers.get("grpc-status")?;
    Some(
        value
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("a grpc-status that is not a number: {value:?}")),
    )
}

fn gateway_call(exec: &Exec, services: &Services<LocalBackend>, name: &str, body: &[u8]) {
    let Some(response) = exec.settle(gateway::handle(services, name, &Caller::Anonymous, body)) else { return };
    let status = response.status().as_u16();
    let Some(collected) = exec.settle(response.into_body().collect()) else { return };
    let Ok(collected) = collected else { return };
    let bytes = collected.to_bytes();
    if status == 404 && &bytes[..] == b"Not Found\n" {
        // grpc-gateway's answer for a path that is no call
    } else if status >= 400 {
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{name}: error body is not JSON ({e}): {bytes:?}"));
        assert!(json["code"].is_u64() && json["message"].is_string() && json["error"].is_string(), "{name}: {json}");
    } else {
        assert_eq!(status, 200, "{name}");
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let json: Result<serde_json::Value, _> = serde_json::from_slice(line);
            assert!(json.is_ok_and(|j| j.is_object()), "{name}: an answer line that is not a JSON object: {line:?}");
        }
    }
}
