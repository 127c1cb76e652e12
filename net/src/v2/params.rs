//! Turning a v2 keys request into its options, with etcd's validation and error texts
//! (etcd's `parseKeyRequest`). Values are taken as Go's `Request.Form` holds them: for PUT and
//! POST the body's fields come before the query's, other methods read only the query; where a
//! field is given twice the first value counts.

use keel_core::api::v2::V2Action;

use super::error::{self, V2Error};
use super::path;

/// The HTTP methods the keys API serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Put,
    Post,
    Delete,
}

impl Method {
    /// The method of a request, `None` for the ones etcd refuses with 405.
    pub fn parse(m: &str) -> Option<Method> {
        match m {
            "GET" => Some(Method::Get),
            "HEAD" => Some(Method::Head),
            "PUT" => Some(Method::Put),
            "POST" => Some(Method::Post),
            "DELETE" => Some(Method::Delete),
            _ => None,
        }
    }
}

/// What a keys request asks of the store, decided as etcd's v2 server decides it: `prevExist`
/// first, then the compare fields. One dispatch for the handlers and for `/v2/stats/store`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOp {
    Get,
    Write(V2Action),
}

/// Everything a keys request asks for, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRequest {
    pub method: Method,
    /// The normalized path (`/` for the root).
    pub path: String,
    /// `value` (empty when not given).
    pub value: String,
    pub dir: bool,
    pub recursive: bool,
    pub sorted: bool,
    pub wait: bool,
    pub quorum: bool,
    pub stream: bool,
    pub no_value_on_success: bool,
    /// `prevValue`, never empty when given.
    pub prev_value: Option<String>,
    /// `prevIndex`, 0 when not given.
    pub prev_index: u64,
    /// `waitIndex`, 0 when not given.
    pub wait_index: u64,
    /// `ttl` when given and not empty.
    pub ttl: Option<u64>,
    pub prev_exist: Option<bool>,
    pub refresh: bool,
}

impl KeyRequest {
    /// The store operation this request is; `None` for a watch (`wait=true`), which only waits.
    pub fn store_op(&self) -> Option<StoreOp> {
        let compares = self.prev_index > 0 || self.prev_value.is_some();
        Some(match self.method {
            Method::Get | Method::Head if self.wait => return None,
            Method::Get | Method::Head => StoreOp::Get,
            Method::Post => StoreOp::Write(V2Action::Create),
            Method::Put => match self.prev_exist {
                Some(true) if !compares => StoreOp::Write(V2Action::Update),
                Some(false) => StoreOp::Write(V2Action::Create),
                _ if compares => StoreOp::Write(V2Action::CompareAndSwap),
                _ => StoreOp::Write(V2Action::Set),
            },
            Method::Delete if compares => StoreOp::Write(V2Action::CompareAndDelete),
            Method::Delete => StoreOp::Write(V2Action::Delete),
        })
    }
}

/// The request's fields in Go's `Form` order.
struct Form<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Form<'a> {
    fn first(&self, name: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    /// Go's `FormValue`: the first value, or "" when absent.
    fn value(&self, name: &str) -> &'a str {
        self.first(name).unwrap_or("")
    }

    fn bool(&self, name: &str, cause: &str) -> Result<bool, V2Error> {
        match self.first(name) {
            None => Ok(false),
            Some(v) => parse_bool(v).ok_or_else(|| V2Error::request(error::INVALID_FIELD, cause)),
        }
    }

    fn uint(&self, name: &str, code: u32) -> Result<u64, V2Error> {
        match self.first(name) {
            None => Ok(0),
            Some(v) => parse_uint(v).ok_or_else(|| V2Error::request(code, format!("invalid value for \"{name}\""))),
        }
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseUint(v, 10, 64)`: ASCII digits only, no sign, no overflow.
pub fn parse_uint(v: &str) -> Option<u64> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// Validate a request as etcd does, in etcd's order of checks.
pub fn parse(
    method: Method,
    raw_path: &str,
    query: &[(String, String)],
    form: &[(String, String)],
) -> Result<KeyRequest, V2Error> {
    let body = matches!(method, Method::Put | Method::Post);
    let pairs = form.iter().filter(|_| body).chain(query.iter()).map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let f = Form { pairs };

    let prev_index = f.uint("prevIndex", error::INDEX_NAN)?;
    let wait_index = f.uint("waitIndex", error::INDEX_NAN)?;
    let recursive = f.bool("recursive", "invalid value for \"recursive\"")?;
    let sorted = f.bool("sorted", "invalid value for \"sorted\"")?;
    let wait = f.bool("wait", "invalid value for \"wait\"")?;
    let dir = f.bool("dir", "invalid value for \"dir\"")?;
    let quorum = f.bool("quorum", "invalid value for \"quorum\"")?;
    let stream = f.bool("stream", "invalid value for \"stream\"")?;
    if wait && method != Method::Get {
        return Err(V2Error::request(error::INVALID_FIELD, "\"wait\" can only be used with GET requests"));
    }
    let prev_value = match f.first("prevValue") {
        Some("") => {
            return Err(V2Error::request(error::PREV_VALUE_REQUIRED, "\"prevValue\" cannot be empty"));
        }
        Some(v) => Some(v.to_string()),
        None => None,
    };
    let no_value_on_success = f.bool("noValueOnSuccess", "invalid value for \"noValueOnSuccess\"")?;
    let ttl = if f.value("ttl").is_empty() { None } else { Some(f.uint("ttl", error::TTL_NAN)?) };
    let prev_exist = match f.first("prevExist") {
        None => None,
        Some(v) => {
            Some(parse_bool(v).ok_or_else(|| V2Error::request(error::INVALID_FIELD, "invalid value for prevExist"))?)
        }
    };
    let refresh = match f.first("refresh") {
        None => false,
        Some(v) => parse_bool(v).ok_or_else(|| V2Error::request(error::INVALID_FIELD, "invalid value for refresh"))?,
    };
    let value = f.value("value").to_string();
    if refresh {
        if !value.is_empty() {
            return Err(V2Error::request(error::REFRESH_VALUE, "A value was provided on a refresh"));
        }
        if ttl.is_none() {
            return Err(V2Error::request(error::REFRESH_TTL_REQUIRED, "No TTL value set"));
        }
    }
    Ok(KeyRequest {
        method,
        path: path::normalize(raw_path),
        value,
        dir,
        recursive,
        sorted,
        wait,
        quorum,
        stream,
        no_value_on_success,
        prev_value,
        prev_index,
        wait_index,
        ttl,
        prev_exist,
        refresh,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    fn p(method: Method, q: &[(&str, &str)], f: &[(&str, &str)]) -> Result<KeyRequest, V2Error> {
        parse(method, "/foo", &pairs(q), &pairs(f))
    }

    fn err(r: Result<KeyRequest, V2Error>) -> (u32, String) {
        let e = r.unwrap_err();
        assert_eq!(e.index, 0);
        (e.code, e.cause)
    }

    #[test]
    fn numbers_and_bools_follow_go() {
        assert_eq!(parse_uint("0"), Some(0));
        assert_eq!(parse_uint("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_uint("18446744073709551616"), None);
        assert_eq!(parse_uint("+1"), None);
        assert_eq!(parse_uint("-1"), None);
        assert_eq!(parse_uint(" 1"), None);
        assert_eq!(parse_uint(""), None);
        assert_eq!(parse_uint("١"), None);
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(parse_bool(""), None);
    }

    #[test]
    fn bad_fields_give_etcds_codes_and_causes() {
        let q = Method::Get;
        assert_eq!(err(p(q, &[("prevIndex", "x")], &[])), (203, "invalid value for \"prevIndex\"".into()));
        assert_eq!(err(p(q, &[("waitIndex", "-1")], &[])), (203, "invalid value for \"waitIndex\"".into()));
        assert_eq!(err(p(q, &[("recursive", "yes")], &[])), (209, "invalid value for \"recursive\"".into()));
        assert_eq!(err(p(q, &[("sorted", "")], &[])), (209, "invalid value for \"sorted\"".into()));
        assert_eq!(
            err(p(Method::Put, &[("wait", "true")], &[])),
            (209, "\"wait\" can only be used with GET requests".into())
        );
        assert_eq!(err(p(Method::Put, &[("prevValue", "")], &[])), (201, "\"prevValue\" cannot be empty".into()));
        assert_eq!(err(p(Method::Put, &[("ttl", "abc")], &[])), (202, "invalid value for \"ttl\"".into()));
        assert_eq!(err(p(Method::Put, &[("prevExist", "maybe")], &[])), (209, "invalid value for prevExist".into()));
        assert_eq!(err(p(Method::Put, &[("refresh", "x")], &[])), (209, "invalid value for refresh".into()));
        assert_eq!(
            err(p(Method::Put, &[("refresh", "true"), ("ttl", "5"), ("value", "v")], &[])),
            (211, "A value was provided on a refresh".into())
        );
        assert_eq!(err(p(Method::Put, &[("refresh", "true")], &[])), (212, "No TTL value set".into()));
        // Checked in etcd's order: the index comes before the booleans.
        assert_eq!(err(p(q, &[("recursive", "x"), ("prevIndex", "x")], &[])).0, 203);
    }

    #[test]
    fn body_comes_first_and_only_for_put_and_post() {
        let r = p(Method::Put, &[("value", "q")], &[("value", "f")]).unwrap();
        assert_eq!(r.value, "f");
        let r = p(Method::Delete, &[], &[("dir", "true")]).unwrap();
        assert!(!r.dir);
        let r = p(Method::Put, &[("ttl", "")], &[]).unwrap();
        assert_eq!(r.ttl, None);
        let r = p(Method::Put, &[("ttl", "7"), ("prevExist", "false"), ("prevValue", "a")], &[]).unwrap();
        assert_eq!((r.ttl, r.prev_exist, r.prev_value.as_deref()), (Some(7), Some(false), Some("a")));
        let r = p(Method::Put, &[("refresh", "true"), ("ttl", "5"), ("value", "")], &[]).unwrap();
        assert!(r.refresh);
    }
}
