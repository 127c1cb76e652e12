//! PUT, POST and DELETE: each is one [`V2WriteRequest`] that the member decides and applies
//! atomically (see [`keel_core::v2`]); this module only translates the request and dresses
//! the outcome in etcd's JSON, status and error codes.

use keel_core::request::{Request, Response};
use keel_core::v2::{V2Action, V2Node, V2Outcome, V2WriteRequest};

use super::error::{self, V2Error};
use super::json::{Event, Node};
use super::params::{KeyRequest, Method, StoreOp};
use super::store::Store;
use super::Reply;
use crate::backend::Backend;

/// The write a request is, as etcd's v2 applier dispatches it (`None` for a read).
fn action(req: &KeyRequest) -> Option<V2Action> {
    Some(match req.store_op()? {
        StoreOp::Set => V2Action::Set,
        StoreOp::Create => V2Action::Create,
        StoreOp::Update => V2Action::Update,
        StoreOp::CompareAndSwap => V2Action::CompareAndSwap,
        StoreOp::Delete => V2Action::Delete,
        StoreOp::CompareAndDelete => V2Action::CompareAndDelete,
        StoreOp::Get => return None,
    })
}

/// The replicated form of a write request.
fn command(req: &KeyRequest, action: V2Action) -> V2WriteRequest {
    V2WriteRequest {
        action,
        in_order: req.method == Method::Post,
        path: req.path.clone(),
        value: req.value.clone(),
        dir: req.dir,
        recursive: req.recursive,
        refresh: req.refresh,
        ttl: req.ttl.map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
        prev_value: req.prev_value.clone(),
        prev_index: req.prev_index,
        lease: 0,
    }
}

/// Carry out a PUT, POST or DELETE.
pub async fn write<B: Backend>(st: &mut Store<'_, B>, req: &KeyRequest) -> Result<Reply, V2Error> {
    let Some(action) = action(req) else {
        return Err(V2Error::new(error::RAFT_INTERNAL, "etcdserver: not a write", 0));
    };
    let answer = match st.backend().call(Request::V2Write(command(req, action))).await? {
        Response::V2Write(answer) => answer,
        _ => return Err(V2Error::new(error::RAFT_INTERNAL, "etcdserver: unexpected response to a v2 write", 0)),
    };
    let written = match answer.outcome {
        V2Outcome::Written(written) => written,
        V2Outcome::Refused(r) => return Err(V2Error::new(r.code.code(), r.cause, answer.header.revision)),
    };
    let prev_node = written.prev_node.map(|n| shown(st, n));
    let mut event = Event::new(action.as_str(), shown(st, written.node), prev_node);
    st.fill_ttls(&mut event).await;
    let status = if written.created { 201 } else { 200 };
    Ok(Reply { status, index: written.index, event })
}

/// A node as etcd shows it. A TTL the member knew exactly is shown as is (rounded up to a
/// second, as etcd shows a live key); one it did not is left to [`Store::fill_ttls`].
fn shown<B: Backend>(st: &Store<'_, B>, n: V2Node) -> Node {
    let mut out = match (n.dir, n.value) {
        (true, _) => Node::dir(&n.path, n.modified, n.created, n.lease),
        (false, Some(value)) => Node::file(&n.path, value, n.modified, n.created, n.lease),
        (false, None) => Node::bare(&n.path, false, n.modified, n.created),
    };
    if let (Some(ttl), true) = (n.ttl, n.lease != 0) {
        let ttl = ttl.max(1);
        out.ttl = ttl;
        out.expiration = Some(st.expiration(ttl));
        out.lease = 0;
    }
    out
}
