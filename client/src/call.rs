//! One request and its answer, as the tools build and read them.

use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::Method;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

/// One request: method, path with query, and a body with its content type.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: Method,
    /// The path and query (`/v2/keys/a?recursive=true`).
    pub target: String,
    /// Content type and body.
    pub body: Option<(&'static str, String)>,
    /// A long poll (`wait=true`): no answer timeout applies.
    pub wait: bool,
    /// The `Authorization` header to send, if any (the client adds its credentials here).
    pub authorization: Option<String>,
}

impl Call {
    /// A request without a body.
    pub fn new(method: Method, target: String) -> Call {
        Call { method, target, body: None, wait: false, authorization: None }
    }

    /// A request with an `application/x-www-form-urlencoded` body of `pairs`.
    pub fn form<V: AsRef<str>>(method: Method, target: String, pairs: &[(&str, V)]) -> Call {
        Call { body: Some(("application/x-www-form-urlencoded", encode_pairs(pairs))), ..Call::new(method, target) }
    }

    /// A request with a JSON body (a v3 gateway call, `/v2/members`).
    pub fn json(method: Method, target: String, value: &Value) -> Call {
        Call { body: Some(("application/json", value.to_string())), ..Call::new(method, target) }
    }
}

/// An answer: status, headers and the whole body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as JSON, or a sentence saying it is not.
    pub fn require_json(&self) -> Result<Value, String> {
        self.json().ok_or_else(|| format!("the server answered with something not JSON: {}", self.text().trim()))
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// etcd's `X-Etcd-Index` (0 when absent): the store index a v2 answer was given at.
    pub fn etcd_index(&self) -> u64 {
        self.header("x-etcd-index").and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

/// Every byte but RFC 3986's unreserved ones (letters, digits, `-._~`) is escaped.
const RESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The same, keeping `/` (a path's separators).
const RESERVED_BUT_SLASH: &AsciiSet = &RESERVED.remove(b'/');

/// Percent-encode `text`: every byte but unreserved ones, and `/` when `keep_slash` (a path).
pub fn escape(text: &str, keep_slash: bool) -> String {
    let set = if keep_slash { RESERVED_BUT_SLASH } else { RESERVED };
    utf8_percent_encode(text, set).to_string()
}

/// `name=value&...`, percent-encoded (a form body or a query string).
pub fn encode_pairs<V: AsRef<str>>(pairs: &[(&str, V)]) -> String {
    let pair = |(k, v): &(&str, V)| format!("{}={}", escape(k, false), escape(v.as_ref(), false));
    pairs.iter().map(pair).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_escape_everything_but_unreserved_bytes() {
        assert_eq!(encode_pairs(&[("value", "a b&c=d/é"), ("ttl", "5")]), "value=a%20b%26c%3Dd%2F%C3%A9&ttl=5");
        assert_eq!(escape("/a b/c", true), "/a%20b/c");
    }
}
