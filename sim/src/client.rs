//! The workloads' requests: one keel-client call each, on a connection of its own, through the
//! same hyper server and handlers users reach with curl. Over madsim's network in the
//! simulation, over real sockets in the partition suite.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::Method;
use keel_client::{Call, CallError, Connection, Endpoint};
use serde_json::Value;

/// How a request ended, before the workload interprets it.
#[derive(Debug)]
pub enum Reply {
    /// The member answered: status, its `X-Etcd-Index` (0 if absent) and JSON body (`Null` when
    /// the body is not JSON).
    Answered { status: u16, index: u64, body: Value },
    /// The connection could not be made: the request was never sent.
    NotSent(String),
    /// Sent, but no answer came (timeout, broken connection): it may or may not have happened.
    Lost(String),
}

/// One v2 HTTP request (a form body) with a deadline.
pub async fn request(addr: SocketAddr, method: &str, path: &str, form: &[(&str, &str)], timeout: Duration) -> Reply {
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Reply::NotSent(format!("bad method {method}"));
    };
    exchange(addr, Call::form(method, path.to_string(), form), timeout).await
}

/// One v3 gateway call (`call` is the path after `/v3/`, the body a JSON request message)
/// with a deadline.
pub async fn post_json(addr: SocketAddr, call: &str, body: &Value, timeout: Duration) -> Reply {
    exchange(addr, Call::json(Method::POST, format!("/v3/{call}"), body), timeout).await
}

async fn exchange(addr: SocketAddr, call: Call, timeout: Duration) -> Reply {
    let answer = match Connection::open(&Endpoint::plain(addr), timeout).await {
        Ok(mut conn) => conn.send(&call, timeout).await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(reply) => Reply::Answered {
            status: reply.status,
            index: reply.etcd_index(),
            body: reply.json().unwrap_or(Value::Null),
        },
        Err(CallError::NotSent(e)) => Reply::NotSent(e),
        Err(CallError::Lost(e)) => Reply::Lost(e),
    }
}
