//! etcd v2's error codes, messages and HTTP statuses, and the JSON error body.

use keel_core::api::error::{Error as CoreError, ErrorClass};

use super::json;

pub const KEY_NOT_FOUND: u32 = 100;
pub const TEST_FAILED: u32 = 101;
pub const NOT_FILE: u32 = 102;
pub const NOT_DIR: u32 = 104;
pub const NODE_EXIST: u32 = 105;
pub const ROOT_READ_ONLY: u32 = 107;
pub const DIR_NOT_EMPTY: u32 = 108;
pub const PREV_VALUE_REQUIRED: u32 = 201;
pub const TTL_NAN: u32 = 202;
pub const INDEX_NAN: u32 = 203;
pub const INVALID_FIELD: u32 = 209;
pub const INVALID_FORM: u32 = 210;
pub const REFRESH_VALUE: u32 = 211;
pub const REFRESH_TTL_REQUIRED: u32 = 212;
pub const UNAUTHORIZED: u32 = 110;
pub const RAFT_INTERNAL: u32 = 300;
pub const WATCHER_CLEARED: u32 = 400;
pub const EVENT_INDEX_CLEARED: u32 = 401;

/// A v2 error: etcd's code, a cause (usually the path concerned) and the index it happened at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V2Error {
    pub code: u32,
    pub cause: String,
    pub index: i64,
}

impl V2Error {
    pub fn new(code: u32, cause: impl Into<String>, index: i64) -> V2Error {
        V2Error { code, cause: cause.into(), index }
    }

    /// An error found while parsing the request (etcd reports these at index 0).
    pub fn request(code: u32, cause: impl Into<String>) -> V2Error {
        V2Error::new(code, cause, 0)
    }

    /// etcd's message for the code.
    pub fn message(&self) -> &'static str {
        match self.code {
            KEY_NOT_FOUND => "Key not found",
            TEST_FAILED => "Compare failed",
            NOT_FILE => "Not a file",
            103 => "Reached the max number of peers in the cluster",
            NOT_DIR => "Not a directory",
            NODE_EXIST => "Key already exists",
            106 => "The prefix of given key is a keyword in etcd",
            ROOT_READ_ONLY => "Root is read only",
            DIR_NOT_EMPTY => "Directory not empty",
            109 => "Peer address has existed",
            UNAUTHORIZED => "The request requires user authentication",
            200 => "Value is Required in POST form",
            PREV_VALUE_REQUIRED => "PrevValue is Required in POST form",
            TTL_NAN => "The given TTL in POST form is not a number",
            INDEX_NAN => "The given index in POST form is not a number",
            204 => "Value or TTL is required in POST form",
            205 => "The given timeout in POST form is not a number",
            206 => "Name is required in POST form",
            207 => "Index or value is required",
            208 => "Index and value cannot both be specified",
            INVALID_FIELD => "Invalid field",
            INVALID_FORM => "Invalid POST form",
            REFRESH_VALUE => "Value provided on refresh",
            REFRESH_TTL_REQUIRED => "A TTL must be provided on refresh",
            RAFT_INTERNAL => "Raft Internal Error",
            301 => "During Leader Election",
            WATCHER_CLEARED => "watcher is cleared due to etcd recovery",
            EVENT_INDEX_CLEARED => "The event in requested index is outdated and cleared",
            402 => "Standby Internal Error",
            403 => "Invalid active size",
            404 => "Standby remove delay",
            500 => "Client Internal Error",
            _ => "",
        }
    }

    /// The HTTP status etcd answers the code with (400 unless listed).
    pub fn status(&self) -> u16 {
        match self.code {
            KEY_NOT_FOUND => 404,
            NOT_FILE | DIR_NOT_EMPTY => 403,
            UNAUTHORIZED => 401,
            TEST_FAILED | NODE_EXIST => 412,
            RAFT_INTERNAL | 301 => 500,
            _ => 400,
        }
    }

    /// The JSON body, newline-terminated as etcd writes it.
    pub fn body(&self) -> Vec<u8> {
        let mut out = String::new();
        out.push_str("{\"errorCode\":");
        out.push_str(&self.code.to_string());
        out.push_str(",\"message\":");
        json::write_str(&mut out, self.message());
        if !self.cause.is_empty() {
            out.push_str(",\"cause\":");
            json::write_str(&mut out, &self.cause);
        }
        out.push_str(",\"index\":");
        out.push_str(&self.index.max(0).to_string());
        out.push_str("}\n");
        out.into_bytes()
    }
}

/// A failure of the core (timeout, no leader, too large, ...): etcd v2 reports every such
/// error as 300 "Raft Internal Error" with the error's text as cause, at index 0. A request
/// auth refused is etcd's 110 "Insufficient credentials" (401).
impl From<CoreError> for V2Error {
    fn from(e: CoreError) -> V2Error {
        match e.class() {
            ErrorClass::PermissionDenied | ErrorClass::Unauthenticated => V2Error::new(UNAUTHORIZED, CREDENTIALS, 0),
            _ if matches!(e, CoreError::UserEmpty | CoreError::AuthOldRevision) => {
                V2Error::new(UNAUTHORIZED, CREDENTIALS, 0)
            }
            _ => V2Error::new(RAFT_INTERNAL, e.to_string(), 0),
        }
    }
}

/// The cause etcd gives a v2 request auth refused.
const CREDENTIALS: &str = "Insufficient credentials";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_etcds_table() {
        let s = |code| V2Error::new(code, "", 0).status();
        assert_eq!(s(100), 404);
        assert_eq!(s(101), 412);
        assert_eq!(s(102), 403);
        assert_eq!(s(104), 400);
        assert_eq!(s(105), 412);
        assert_eq!(s(107), 400);
        assert_eq!(s(108), 403);
        assert_eq!(s(202), 400);
        assert_eq!(s(209), 400);
        assert_eq!(s(300), 500);
        assert_eq!(s(401), 400);
    }

    #[test]
    fn body_omits_empty_cause() {
        assert_eq!(
            String::from_utf8(V2Error::new(100, "/foo", 7).body()).unwrap(),
            "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/foo\",\"index\":7}\n"
        );
        assert_eq!(
            String::from_utf8(V2Error::new(107, "", 3).body()).unwrap(),
            "{\"errorCode\":107,\"message\":\"Root is read only\",\"index\":3}\n"
        );
        let e: V2Error = CoreError::Timeout.into();
        assert_eq!((e.code, e.cause.as_str(), e.index), (300, "etcdserver: request timed out", 0));
    }
}
