//! etcd's v3 API: the gRPC services (tonic's generated servers, served on Keel's own hyper
//! connections by [`router`]) and the JSON gateway ([`gateway`]). Each service translates
//! messages with [`convert`] and carries requests to the member through the
//! [`Backend`], so every API reaches the same core.

/// The closure for [`call`] that takes one response variant apart.
macro_rules! pick {
    ($variant:path) => {
        |r| match r {
            $variant(x) => Some(x),
            _ => None,
        }
    };
}

pub mod auth;
pub mod cluster;
pub mod convert;
pub mod election;
pub mod gateway;
pub mod kv;
pub mod lease;
pub mod lock;
pub mod maintenance;
pub mod pb;
pub mod recipe;
pub mod router;
pub mod watch;

use std::pin::Pin;

use futures_util::Stream;
use keel_core::api::error::{Error, ErrorClass};
use keel_core::api::request::{Request, Response, ResponseHeader};
use tokio::sync::mpsc;
use tonic::{Code, Status};

use crate::backend::{Backend, MemberStatus};

/// A server-streamed reply, as the generated service traits take it.
pub type ReplyStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Stream whatever a task sends on `rx`; the stream ends when every sender is gone.
pub fn channel_stream<T: Send + 'static>(rx: mpsc::Receiver<Result<T, Status>>) -> ReplyStream<T> {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }))
}

/// The gRPC status etcd answers a core error with: the class etcd's `rpctypes` gives it and
/// etcd's exact text, which clients match on.
pub fn status(e: Error) -> Status {
    let code = match e.class() {
        ErrorClass::InvalidArgument => Code::InvalidArgument,
        ErrorClass::NotFound => Code::NotFound,
        ErrorClass::FailedPrecondition => Code::FailedPrecondition,
        ErrorClass::OutOfRange => Code::OutOfRange,
        ErrorClass::ResourceExhausted => Code::ResourceExhausted,
        ErrorClass::Unavailable => Code::Unavailable,
        ErrorClass::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorClass::Internal => Code::Internal,
        ErrorClass::PermissionDenied => Code::PermissionDenied,
        ErrorClass::Unauthenticated => Code::Unauthenticated,
    };
    Status::new(code, e.to_string())
}

/// Carry `request` to the member and take its answer apart with `pick`, which names the
/// response variant the request gets (any other is an internal error).
pub async fn call<B: Backend, T>(
    backend: &B,
    request: Request,
    pick: impl FnOnce(Response) -> Option<T>,
) -> Result<T, Status> {
    let response = backend.call(request).await.map_err(status)?;
    pick(response).ok_or_else(|| Status::internal("etcdserver: unexpected response"))
}

/// A header for answers the API layer gives from the member's status alone.
pub fn local_header(s: &MemberStatus) -> ResponseHeader {
    ResponseHeader { cluster_id: s.cluster_id, member_id: s.id, revision: s.revision, raft_term: s.term }
}
