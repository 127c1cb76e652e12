//! The v2 keys API's vocabulary: what a path is (`path`), the one replicated write every v2
//! set, create, update, compare-and-swap, delete, compare-and-delete, in-order create or
//! refresh is ([`V2WriteRequest`]), and what applying it answers ([`V2Outcome`]). The rules
//! that decide a write live with the state (`state::v2`).

pub mod path;

use serde::{Deserialize, Serialize};

use crate::api::request::ResponseHeader;

/// The deepest path a v2 write accepts: deciding a write reads two keys per ancestor while
/// the entry is applied, so the depth bounds the apply path's work (a longer path fails as a
/// too large transaction would).
pub const MAX_DEPTH: usize = 60;

/// Which v2 write a request is, as etcd's v2 applier dispatches PUT and DELETE (`prevExist`
/// first, then the compare fields); POST is a [`V2Action::Create`] with `in_order`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum V2Action {
    #[default]
    Set,
    Create,
    Update,
    CompareAndSwap,
    Delete,
    CompareAndDelete,
}

impl V2Action {
    /// The `action` etcd names a response of this write with.
    pub fn as_str(self) -> &'static str {
        match self {
            V2Action::Set => "set",
            V2Action::Create => "create",
            V2Action::Update => "update",
            V2Action::CompareAndSwap => "compareAndSwap",
            V2Action::Delete => "delete",
            V2Action::CompareAndDelete => "compareAndDelete",
        }
    }
}

/// One v2 write, with the options of etcd's keys request that writes read (already validated
/// by the API layer: a refresh has a TTL and no value, compare fields are not empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct V2WriteRequest {
    pub action: V2Action,
    /// POST: create a node named by its revision inside the directory at `path`.
    pub in_order: bool,
    /// The normalized path (`/` for the root).
    pub path: String,
    pub value: String,
    pub dir: bool,
    pub recursive: bool,
    /// Only reset the TTL (a keep-alive when it is unchanged), keeping the value.
    pub refresh: bool,
    /// The lease a refresh would keep alive turned out to be gone (expired while the
    /// keep-alive was on its way): move the node to a fresh lease instead.
    pub no_keep_alive: bool,
    /// `ttl` in seconds: the node gets a fresh lease of its own.
    pub ttl: Option<i64>,
    pub prev_value: Option<String>,
    /// `prevIndex`, 0 when not given.
    pub prev_index: u64,
    /// The id of the lease a write with `ttl` grants (chosen when the write is proposed, so
    /// every member grants the same one).
    pub lease: i64,
}

/// The answer to a [`V2WriteRequest`]: what it wrote, or why it wrote nothing (etcd's v2
/// error, a normal outcome of a write, not a failure of the member).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct V2WriteResponse {
    pub header: ResponseHeader,
    pub outcome: V2Outcome,
}

/// What a v2 write did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum V2Outcome {
    Written(V2Written),
    Refused(V2Refusal),
    /// A refresh with the TTL the node's own lease already has: nothing to write, the lease is
    /// to be kept alive (etcd's refresh notifies no watcher). Only the leader keeps lease clocks
    /// and only it can tell whether the lease expired meanwhile, so the API layer renews it
    /// with a `LeaseKeepAlive` and, if the lease is gone, sends the write again with
    /// [`V2WriteRequest::no_keep_alive`]. `written.node` is the node as it stays.
    KeepAlive {
        lease: i64,
        written: V2Written,
    },
}

/// A write that was carried out (or a refresh that only renewed its lease).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct V2Written {
    /// A node was created (201), not replaced, changed or deleted (200).
    pub created: bool,
    /// The revision the answer reflects (the write's, or the current one for a keep-alive).
    pub index: i64,
    pub node: V2Node,
    pub prev_node: Option<V2Node>,
}

/// A node as the write left it, or as it was before (`prevNode`), without children.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct V2Node {
    pub path: String,
    pub dir: bool,
    /// A file's value (`None` for directories and for the node of a delete).
    pub value: Option<String>,
    pub modified: i64,
    pub created: i64,
    /// The lease behind the node's TTL (0: none).
    pub lease: i64,
    /// Seconds left on that lease, when the applying member knows them exactly (a lease the
    /// write granted or renewed, or any lease on the leader, which alone keeps lease clocks);
    /// for a previous node, as it was before the write.
    pub ttl: Option<i64>,
}

/// etcd's v2 errors that a write can end with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum V2ErrorCode {
    KeyNotFound,
    TestFailed,
    NotFile,
    NotDir,
    NodeExist,
    RootReadOnly,
    DirNotEmpty,
}

impl V2ErrorCode {
    /// etcd's numeric error code.
    pub fn code(self) -> u32 {
        match self {
            V2ErrorCode::KeyNotFound => 100,
            V2ErrorCode::TestFailed => 101,
            V2ErrorCode::NotFile => 102,
            V2ErrorCode::NotDir => 104,
            V2ErrorCode::NodeExist => 105,
            V2ErrorCode::RootReadOnly => 107,
            V2ErrorCode::DirNotEmpty => 108,
        }
    }
}

/// A v2 write refused: the code and etcd's cause (usually the path concerned).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct V2Refusal {
    pub code: V2ErrorCode,
    pub cause: String,
}

impl V2Refusal {
    pub(crate) fn new(code: V2ErrorCode, cause: impl Into<String>) -> Self {
        V2Refusal { code, cause: cause.into() }
    }
}
