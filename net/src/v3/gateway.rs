//! The v3 JSON gateway (`/v3/...`, also `/v3beta/...`), as etcd's grpc-gateway serves it: a
//! POST body is the request message in proto3 JSON (proto field names, int64 as strings, bytes
//! as base64), the answer is the response message likewise; streaming calls answer with one
//! `{"result": ...}` object per line. Errors are `{"error", "code", "message"}` with the HTTP
//! status grpc-gateway gives each gRPC code. Each call runs the same service code as gRPC.

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use futures_util::{stream, Stream, StreamExt};
use http_body_util::StreamBody;
use hyper::body::Frame;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;
use tonic::body::Body;
use tonic::{Code, Status};

use keel_core::api::auth::Caller;

use super::auth::CertificateUser;
use super::lease::keep_alive_stream;
use super::pb::etcdserverpb::auth_server::Auth;
use super::pb::etcdserverpb::cluster_server::Cluster;
use super::pb::etcdserverpb::kv_server::Kv;
use super::pb::etcdserverpb::lease_server::Lease;
use super::pb::etcdserverpb::maintenance_server::Maintenance;
use super::pb::v3electionpb::election_server::Election;
use super::pb::v3lockpb::lock_server::Lock;
use super::router::Services;
use super::{channel_stream, watch, ReplyStream};
use crate::backend::{AsCaller, Backend};

/// Whether `path` is a gateway path; the rest of it names the call.
pub fn call_name(path: &str) -> Option<&str> {
    path.strip_prefix("/v3/").or_else(|| path.strip_prefix("/v3beta/"))
}

/// Answer one gateway call (`name` is the path after `/v3/`) with the member's services, on
/// behalf of `caller` (the token in the Authorization header, or a certificate's user).
pub async fn handle<B: Backend>(
    services: &Services<B>,
    name: &str,
    caller: &Caller,
    body: &[u8],
) -> hyper::Response<Body> {
    let Services { kv, watch, lease, cluster, maintenance, lock, election, auth } = services;
    match name {
        "kv/range" => unary(body, caller, |r| kv.range(r)).await,
        "kv/put" => unary(body, caller, |r| kv.put(r)).await,
        "kv/deleterange" => unary(body, caller, |r| kv.delete_range(r)).await,
        "kv/txn" => unary(body, caller, |r| kv.txn(r)).await,
        "kv/compaction" => unary(body, caller, |r| kv.compact(r)).await,
        "watch" => match requests(body, StaysOpen::UntilClientLeaves) {
            Ok(incoming) => {
                let (tx, rx) = mpsc::channel(64);
                let backend = AsCaller { backend: watch.backend.clone(), caller: caller.clone() };
                tokio::spawn(watch::serve_stream(backend, incoming, tx));
                streamed(channel_stream(rx))
            }
            Err(e) => error(e),
        },
        "lease/grant" => unary(body, caller, |r| lease.lease_grant(r)).await,
        "lease/revoke" | "kv/lease/revoke" => unary(body, caller, |r| lease.lease_revoke(r)).await,
        "lease/keepalive" => match requests(body, StaysOpen::UntilAnswered) {
            Ok(incoming) => {
                let (tx, rx) = mpsc::channel(16);
                tokio::spawn(keep_alive_stream(lease.backend.clone(), incoming, tx));
                streamed(channel_stream(rx))
            }
            Err(e) => error(e),
        },
        "lease/timetolive" | "kv/lease/timetolive" => unary(body, caller, |r| lease.lease_time_to_live(r)).await,
        "lease/leases" | "kv/lease/leases" => unary(body, caller, |r| lease.lease_leases(r)).await,
        "cluster/member/add" => unary(body, caller, |r| cluster.member_add(r)).await,
        "cluster/member/remove" => unary(body, caller, |r| cluster.member_remove(r)).await,
        "cluster/member/update" => unary(body, caller, |r| cluster.member_update(r)).await,
        "cluster/member/list" => unary(body, caller, |r| cluster.member_list(r)).await,
        "cluster/member/promote" => unary(body, caller, |r| cluster.member_promote(r)).await,
        "maintenance/alarm" => unary(body, caller, |r| maintenance.alarm(r)).await,
        "maintenance/status" => unary(body, caller, |r| maintenance.status(r)).await,
        "maintenance/defragment" => unary(body, caller, |r| maintenance.defragment(r)).await,
        // etcd registers Hash and HashKV on this one path, and the later (HashKV) wins.
        "maintenance/hash" => unary(body, caller, |r| maintenance.hash_kv(r)).await,
        "maintenance/snapshot" => server_streamed(body, caller, |r| maintenance.snapshot(r)).await,
        "maintenance/transfer-leadership" => unary(body, caller, |r| maintenance.move_leader(r)).await,
        "lock/lock" => unary(body, caller, |r| lock.lock(r)).await,
        "lock/unlock" => unary(body, caller, |r| lock.unlock(r)).await,
        "election/campaign" => unary(body, caller, |r| election.campaign(r)).await,
        "election/proclaim" => unary(body, caller, |r| election.proclaim(r)).await,
        "election/leader" => unary(body, caller, |r| election.leader(r)).await,
        "election/observe" => server_streamed(body, caller, |r| election.observe(r)).await,
        "election/resign" => unary(body, caller, |r| election.resign(r)).await,
        "auth/enable" => unary(body, caller, |r| auth.auth_enable(r)).await,
        "auth/disable" => unary(body, caller, |r| auth.auth_disable(r)).await,
        "auth/authenticate" => unary(body, caller, |r| auth.authenticate(r)).await,
        "auth/user/add" => unary(body, caller, |r| auth.user_add(r)).await,
        "auth/user/get" => unary(body, caller, |r| auth.user_get(r)).await,
        "auth/user/list" => unary(body, caller, |r| auth.user_list(r)).await,
        "auth/user/delete" => unary(body, caller, |r| auth.user_delete(r)).await,
        "auth/user/changepw" => unary(body, caller, |r| auth.user_change_password(r)).await,
        "auth/user/grant" => unary(body, caller, |r| auth.user_grant_role(r)).await,
        "auth/user/revoke" => unary(body, caller, |r| auth.user_revoke_role(r)).await,
        "auth/role/add" => unary(body, caller, |r| auth.role_add(r)).await,
        "auth/role/get" => unary(body, caller, |r| auth.role_get(r)).await,
        "auth/role/list" => unary(body, caller, |r| auth.role_list(r)).await,
        "auth/role/delete" => unary(body, caller, |r| auth.role_delete(r)).await,
        "auth/role/grant" => unary(body, caller, |r| auth.role_grant_permission(r)).await,
        "auth/role/revoke" => unary(body, caller, |r| auth.role_revoke_permission(r)).await,
        _ => not_found(),
    }
}

/// Decode the request message (an empty body is the empty message, as grpc-gateway reads it).
fn decode<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, Status> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| Status::invalid_argument(e.to_string()))
}

/// How long a gateway call's request stream lasts once the body's messages are read. etcd's
/// watch keeps streaming events until the client leaves, while its lease keep-alive ends the
/// call once every keep-alive in the body is answered (so `curl` returns, as on etcd).
#[derive(Clone, Copy, PartialEq, Eq)]
enum StaysOpen {
    UntilClientLeaves,
    UntilAnswered,
}

/// The request messages of a client-streaming call: the JSON objects of the body, one after
/// another, then (for a watch) a stream that never ends, since ending it would end the call.
fn requests<T: DeserializeOwned + Send + 'static>(
    body: &[u8],
    open: StaysOpen,
) -> Result<impl Stream<Item = Result<T, Status>> + Unpin + Send, Status> {
    let messages: Result<Vec<T>, _> = serde_json::Deserializer::from_slice(body).into_iter().collect();
    let messages = messages.map_err(|e| Status::invalid_argument(e.to_string()))?;
    let rest = if open == StaysOpen::UntilClientLeaves {
        stream::pending().left_stream()
    } else {
        stream::empty().right_stream()
    };
    Ok(stream::iter(messages.into_iter().map(Ok)).chain(rest))
}

/// The gRPC request a gateway call stands for: its message, with its caller where a gRPC call
/// carries it (a token as metadata, a certificate's user as an extension).
fn call_of<Req>(message: Req, caller: &Caller) -> tonic::Request<Req> {
    let mut request = tonic::Request::new(message);
    match caller {
        Caller::Token(token) => {
            if let Ok(value) = tonic::metadata::MetadataValue::try_from(token.as_str()) {
                request.metadata_mut().insert("token", value);
            }
        }
        Caller::User(name) => {
            request.extensions_mut().insert(CertificateUser(name.clone()));
        }
        Caller::Anonymous | Caller::Member => {}
    }
    request
}

async fn unary<Req, Resp, F, Fut>(body: &[u8], caller: &Caller, call: F) -> hyper::Response<Body>
where
    Req: DeserializeOwned + Default,
    Resp: Serialize,
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
{
    let request = match decode(body) {
        Ok(r) => r,
        Err(e) => return error(e),
    };
    match call(call_of(request, caller)).await {
        Ok(reply) => json(200, serde_json::to_vec(reply.get_ref()).unwrap_or_default()),
        Err(e) => error(e),
    }
}

async fn server_streamed<Req, Resp, F, Fut>(body: &[u8], caller: &Caller, call: F) -> hyper::Response<Body>
where
    Req: DeserializeOwned + Default,
    Resp: Serialize + Send + 'static,
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<ReplyStream<Resp>>, Status>>,
{
    let request = match decode(body) {
        Ok(r) => r,
        Err(e) => return error(e),
    };
    match call(call_of(request, caller)).await {
        Ok(reply) => streamed(reply.into_inner()),
        Err(e) => error(e),
    }
}

/// A streamed answer: one JSON object per line, `{"result": message}` or, when the call fails,
/// `{"error": {...}}` as its last line.
fn streamed<Resp: Serialize + Send + 'static>(messages: ReplyStream<Resp>) -> hyper::Response<Body> {
    let lines = messages.map(|item| {
        let value = match item {
            Ok(message) => serde_json::json!({ "result": message }),
            Err(e) => serde_json::json!({ "error": {
                "grpc_code": e.code() as i32,
                "http_code": http_status(e.code()),
                "message": e.message(),
                "http_status": hyper::StatusCode::from_u16(http_status(e.code())).map(|s| s.to_string()).unwrap_or_default(),
            }}),
        };
        let mut line = serde_json::to_vec(&value).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, Infallible>(Frame::data(Bytes::from(line)))
    });
    let mut response = hyper::Response::new(Body::new(StreamBody::new(lines)));
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}

/// The HTTP status grpc-gateway answers each gRPC code with.
pub fn http_status(code: Code) -> u16 {
    match code {
        Code::Ok => 200,
        Code::Cancelled => 408,
        Code::Unknown | Code::Internal | Code::DataLoss => 500,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
        Code::DeadlineExceeded => 504,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::PermissionDenied => 403,
        Code::Unauthenticated => 401,
        Code::ResourceExhausted => 429,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
    }
}

/// grpc-gateway's error body.
fn error(e: Status) -> hyper::Response<Body> {
    let body = serde_json::json!({ "error": e.message(), "code": e.code() as i32, "message": e.message() });
    json(http_status(e.code()), serde_json::to_vec(&body).unwrap_or_default())
}

fn not_found() -> hyper::Response<Body> {
    let mut response = hyper::Response::new(Body::new(http_body_util::Full::new(Bytes::from_static(b"Not Found\n"))));
    *response.status_mut() = hyper::StatusCode::NOT_FOUND;
    response
}

fn json(status: u16, body: Vec<u8>) -> hyper::Response<Body> {
    let mut response = hyper::Response::new(Body::new(http_body_util::Full::new(Bytes::from(body))));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}
