//! The v2 keys API against a real (in-process, one-member) Keel cluster: shapes, codes,
//! headers, TTLs and watches, compared with what etcd v2 answers.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

mod deletes;
mod errors;
mod reads;
mod stats;
mod ttl;
mod watch;
mod writes;

pub use keel_net::local::LocalBackend;
use keel_net::v2::{self, V2Request};
use serde_json::Value;

/// A response, decoded for assertions.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no header {name} in {:?}", self.headers))
    }

    /// `X-Etcd-Index`.
    pub fn index(&self) -> i64 {
        self.header("X-Etcd-Index").parse().expect("numeric X-Etcd-Index")
    }

    /// The error code of an error body.
    pub fn code(&self) -> i64 {
        self.json["errorCode"].as_i64().unwrap_or_else(|| panic!("not an error: {}", self.body))
    }
}

/// Send one request: `query` and `form` are url-encoded strings.
pub async fn req(b: &LocalBackend, method: &str, path: &str, query: &str, form: &str) -> Resp {
    let r = v2::handle(
        b,
        V2Request {
            method: method.into(),
            path: path.into(),
            query: keel_net::http::parse_pairs(query.as_bytes()),
            form: keel_net::http::parse_pairs(form.as_bytes()),
        },
    )
    .await;
    let body = String::from_utf8(r.body).expect("utf-8 body");
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    Resp { status: r.status, headers: r.headers, body, json }
}

pub async fn get(b: &LocalBackend, path: &str, query: &str) -> Resp {
    req(b, "GET", path, query, "").await
}

pub async fn put(b: &LocalBackend, path: &str, form: &str) -> Resp {
    req(b, "PUT", path, "", form).await
}

pub async fn post(b: &LocalBackend, path: &str, form: &str) -> Resp {
    req(b, "POST", path, "", form).await
}

pub async fn delete(b: &LocalBackend, path: &str, query: &str) -> Resp {
    req(b, "DELETE", path, query, "").await
}

/// Assert status and exact body.
#[track_caller]
pub fn expect(r: &Resp, status: u16, body: &str) {
    assert_eq!((r.status, r.body.as_str()), (status, body), "unexpected answer");
}
