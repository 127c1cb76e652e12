//! PUT, POST and DELETE: each is one [`V2WriteRequest`] that the member decides and applies
//! atomically (see [`keel_core::state::v2`]); this module only translates the request and dresses
//! the outcome in etcd's JSON, status and error codes.

use keel_core::api::request::{Request, Response};
use keel_core::api::v2::{V2Action, V2Node, V2Outcome, V2WriteRequest, V2Written};

use super::error::{self, V2Error};
use super::json::{Event, Node};
use super::params::{KeyRequest, Method, StoreOp};
use super::store::Store;
use super::Success;
use crate::backend::Backend;

/// The write a request is, as etcd's v2 applier dispatches it (`None` for a read).
fn action(req: &KeyRequest) -> Option<V2Action> {
    match req.store_op()? {
        StoreOp::Write(action) => Some(action),
        StoreOp::Get => None,
    }
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
        no_keep_alive: false,
    }
}

/// Carry out a PUT, POST or DELETE.
pub async fn write<B: Backend>(st: &mut Store<'_, B>, req: &KeyRequest) -> Result<Success, V2Error> {
    let Some(action) = action(req) else {
        return Err(V2Error::new(error::RAFT_INTERNAL, "etcdserver: not a write", 0));
    };
    let mut command = command(req, action);
    let written = match submit(st, &command).await? {
        Done::Written(written) => written,
        Done::KeepAlive(lease, written) => {
            let mut event = event(st, action, written.clone());
            // The TTL before the renewal, for `prevNode`.
            st.fill_ttls(&mut event).await;
            if let Some(ttl) = st.keep_alive(lease).await? {
                if let Some(node) = event.node.as_mut() {
                    node.ttl = ttl.max(1);
                    node.expiration = Some(st.expiration(node.ttl));
                }
                return Ok(Success { status: 200, index: written.index, event });
            }
            // Expired on its way: the write moves the node to a fresh lease instead.
            command.no_keep_alive = true;
            match submit(st, &command).await? {
                Done::Written(written) => written,
                Done::KeepAlive(..) => return Err(unexpected()),
            }
        }
    };
    let mut event = event(st, action, written.clone());
    st.fill_ttls(&mut event).await;
    let status = if written.created { 201 } else { 200 };
    Ok(Success { status, index: written.index, event })
}

fn unexpected() -> V2Error {
    V2Error::new(error::RAFT_INTERNAL, "etcdserver: unexpected response to a v2 write", 0)
}

/// What the member did with a write it did not refuse.
enum Done {
    Written(V2Written),
    /// A keep-alive of the lease, for the leader to renew ([`V2Outcome::KeepAlive`]).
    KeepAlive(i64, V2Written),
}

/// Propose the write and wait for its outcome; a refusal comes back as etcd's error, at the
/// revision it was decided at.
async fn submit<B: Backend>(st: &Store<'_, B>, command: &V2WriteRequest) -> Result<Done, V2Error> {
    let Response::V2Write(answer) = st.backend().call(Request::V2Write(command.clone())).await? else {
        return Err(unexpected());
    };
    match answer.outcome {
        V2Outcome::Written(written) => Ok(Done::Written(written)),
        V2Outcome::KeepAlive { lease, written } => Ok(Done::KeepAlive(lease, written)),
        V2Outcome::Refused(r) => Err(V2Error::new(r.code.code(), r.cause, answer.header.revision)),
    }
}

/// The answer's body: the node as the write left it and the one before.
fn event<B: Backend>(st: &Store<'_, B>, action: V2Action, written: V2Written) -> Event {
    let prev_node = written.prev_node.map(|n| shown(st, n));
    Event::new(action.as_str(), shown(st, written.node), prev_node)
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
