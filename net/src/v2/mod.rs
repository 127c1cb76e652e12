//! etcd's v2 API: the keys API (`/v2/keys`) as a view over the one MVCC key space, and beside
//! it the v2 members ([`members`]) and stats ([`stats`]) endpoints.
//!
//! A pure handler layer: [`handle`] takes a parsed HTTP request ([`V2Request`]) and answers
//! with status, headers and a JSON body ([`V2Response`]), talking to the member only through
//! [`Backend`]. The HTTP server routes `/v2/keys/*` here; a `wait=true` request simply awaits
//! its watch inside [`handle`], and dropping the future (the client went away) cancels it.
//!
//! # Mapping
//! - The v2 path `/a/b` is the key `/a/b`; paths are normalized as etcd does (leading `/`,
//!   no empty, `.` or `..` segments, no trailing `/`).
//! - A directory is a key prefix; an explicitly created empty directory is a marker key, the
//!   path plus `/` with an empty value, never listed itself. The root always exists. A key at
//!   a path makes it a file even if keys exist below it (possible only through v3; see
//!   [`path`]). Keys not starting with `/` are invisible to v2.
//! - `modifiedIndex`/`createdIndex` are mod/create revisions (a directory's are its marker's,
//!   or else the newest mod / oldest create revision under it, see [`tree`]). `X-Etcd-Index`
//!   is the revision the answer reflects.
//! - Every write (PUT, POST, DELETE) is one replicated command that the member decides and
//!   applies atomically, TTL lease included ([`keel_core::state::v2`]): a key with `ttl` gets a lease
//!   of its own, keys without one inherit their nearest TTL directory's lease, and `POST`
//!   makes in-order keys named by their zero-padded revision.
//! - `wait=true` is a watch (see [`wait`]).
//!
//! Modules: [`params`] (request options and their validation), [`path`] (paths ↔ keys),
//! [`tree`] (keys → nodes), [`json`] (etcd's JSON bytes), [`error`] (codes, messages,
//! statuses), [`store`] (backend calls), and one per kind of request: [`get`], [`mod@write`],
//! [`wait`]; [`stats`] counts the requests for `/v2/stats/store`.

pub mod credentials;
pub mod error;
pub mod get;
pub mod json;
pub mod members;
pub mod params;
pub mod path;
pub mod stats;
pub mod store;
pub mod tree;
pub mod wait;
pub mod write;

use crate::backend::Backend;
use error::V2Error;
use json::Event;
use params::{Method, StoreOp};
use store::Store;

/// A request for `/v2/keys...`, as the HTTP layer hands it over.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct V2Request {
    pub method: String,
    /// The path after `/v2/keys`, percent-decoded: `/foo/bar`, `/` or empty.
    pub path: String,
    /// The query string's fields, in order.
    pub query: Vec<(String, String)>,
    /// The fields of an `application/x-www-form-urlencoded` body, in order.
    pub form: Vec<(String, String)>,
}

/// The answer: HTTP status, headers and body (JSON, except for a 405).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct V2Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The store operation the request was, for `/v2/stats/store` (`None` when the request
    /// never reached the store: a watch, or one refused while being parsed).
    pub op: Option<StoreOp>,
}

impl V2Response {
    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A successful answer before it becomes a response.
#[derive(Clone, Debug)]
pub struct Success {
    pub status: u16,
    /// The revision the answer reflects (`X-Etcd-Index`).
    pub index: i64,
    pub event: Event,
}

/// Serve one v2 keys request.
pub async fn handle<B: Backend>(backend: &B, req: V2Request) -> V2Response {
    let Some(method) = Method::parse(&req.method) else {
        return method_not_allowed(backend);
    };
    let kr = match params::parse(method, &req.path, &req.query, &req.form) {
        Ok(kr) => kr,
        Err(e) => return error_response(backend, &e),
    };
    let mut st = Store::new(backend);
    let op = kr.store_op();
    let result = match kr.method {
        Method::Get | Method::Head if kr.wait => wait::wait(&mut st, &kr).await,
        Method::Get | Method::Head => get::get(&mut st, &kr).await,
        Method::Put | Method::Post | Method::Delete => write::write(&mut st, &kr).await,
    };
    let response = match result {
        Ok(reply) => success_response(backend, reply, kr.no_value_on_success),
        Err(e) => error_response(backend, &e),
    };
    V2Response { op, ..response }
}

/// The headers etcd puts on every keys answer.
fn headers<B: Backend>(backend: &B, index: i64) -> Vec<(String, String)> {
    let s = backend.status();
    vec![
        ("Content-Type".into(), "application/json".into()),
        ("X-Etcd-Cluster-Id".into(), format!("{:x}", s.cluster_id)),
        ("X-Etcd-Index".into(), index.max(0).to_string()),
        ("X-Raft-Index".into(), s.commit_index.to_string()),
        ("X-Raft-Term".into(), s.term.to_string()),
    ]
}

fn success_response<B: Backend>(backend: &B, mut reply: Success, no_value_on_success: bool) -> V2Response {
    // etcd leaves out both nodes of a successful write when asked not to echo the value.
    if no_value_on_success && matches!(reply.event.action, "set" | "create" | "update" | "compareAndSwap") {
        reply.event.node = None;
        reply.event.prev_node = None;
    }
    V2Response { status: reply.status, headers: headers(backend, reply.index), body: reply.event.encode(), op: None }
}

/// The answer to a request refused with `e`: its status, etcd's headers and the error body.
pub fn error_response<B: Backend>(backend: &B, e: &V2Error) -> V2Response {
    V2Response { status: e.status(), headers: headers(backend, e.index), body: e.body(), op: None }
}

/// etcd's answer to a method the keys API does not serve.
fn method_not_allowed<B: Backend>(backend: &B) -> V2Response {
    let s = backend.status();
    V2Response {
        status: 405,
        headers: vec![
            ("Allow".into(), "HEAD,GET,PUT,POST,DELETE".into()),
            ("Content-Type".into(), "text/plain; charset=utf-8".into()),
            ("X-Content-Type-Options".into(), "nosniff".into()),
            ("X-Etcd-Cluster-Id".into(), format!("{:x}", s.cluster_id)),
        ],
        body: b"Method Not Allowed\n".to_vec(),
        op: None,
    }
}
