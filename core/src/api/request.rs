//! Protocol-neutral requests and responses, field for field etcd's `etcdserverpb` messages, so the
//! v2, v3 gRPC and v3 JSON layers translate into one vocabulary and the core serves them all.
//! Write requests are replicated through Raft as they are (see [`crate::api::command`]).

use serde::{Deserialize, Serialize};

use crate::api::alarm::{AlarmRequest, AlarmResponse};
use crate::api::auth::{AuthRequest, AuthResponse};
use crate::api::kv::KeyValue;
use crate::api::v2::{V2WriteRequest, V2WriteResponse};

/// Filled into every response: which cluster and member answered, at which revision and term.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseHeader {
    pub cluster_id: u64,
    pub member_id: u64,
    pub revision: i64,
    pub raft_term: u64,
}

/// Order of a Range's results (etcd's `RangeRequest.SortOrder`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortOrder {
    #[default]
    None,
    Ascend,
    Descend,
}

/// Field a Range sorts on (etcd's `RangeRequest.SortTarget`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortTarget {
    #[default]
    Key,
    Version,
    Create,
    Mod,
    Value,
}

/// Read keys: one key, `[key, range_end)`, or every key `>= key` when `range_end` is `[0]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRequest {
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    /// At most this many keys; 0 means no limit.
    pub limit: i64,
    /// Read at this revision; 0 means the current one.
    pub revision: i64,
    pub sort_order: SortOrder,
    pub sort_target: SortTarget,
    /// Served from the local member without a ReadIndex round (may be stale).
    pub serializable: bool,
    pub keys_only: bool,
    pub count_only: bool,
    pub min_mod_revision: i64,
    pub max_mod_revision: i64,
    pub min_create_revision: i64,
    pub max_create_revision: i64,
}

/// The keys found; `count` is the number in the range before `limit` and the min/max filters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeResponse {
    pub header: ResponseHeader,
    pub kvs: Vec<KeyValue>,
    pub more: bool,
    pub count: i64,
}

/// Write one key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutRequest {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// Attach the key to this lease; 0 for none.
    pub lease: i64,
    pub prev_kv: bool,
    /// Keep the current value (the key must exist).
    pub ignore_value: bool,
    /// Keep the current lease (the key must exist).
    pub ignore_lease: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutResponse {
    pub header: ResponseHeader,
    pub prev_kv: Option<KeyValue>,
}

/// Create a key named `prefix` + the write's revision, zero-padded to 20 digits (the v2 API's
/// in-order keys, `POST /v2/keys/queue`). Only the applying state machine knows the revision,
/// so the name is chosen there; names therefore increase strictly in commit order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutInOrderRequest {
    pub prefix: Vec<u8>,
    pub value: Vec<u8>,
    pub lease: i64,
}

/// The key that was created, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutInOrderResponse {
    pub header: ResponseHeader,
    pub kv: KeyValue,
}

/// Delete one key or a range (same range conventions as [`RangeRequest`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRangeRequest {
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    pub prev_kv: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRangeResponse {
    pub header: ResponseHeader,
    pub deleted: i64,
    pub prev_kvs: Vec<KeyValue>,
}

/// How a [`Compare`] relates the key's field to the given value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareResult {
    #[default]
    Equal,
    Greater,
    Less,
    NotEqual,
}

/// The field a [`Compare`] reads, with the value to compare it against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareTarget {
    Version(i64),
    CreateRevision(i64),
    ModRevision(i64),
    Value(Vec<u8>),
    Lease(i64),
}

/// One guard of a [`TxnRequest`]; over a range, every key in it must satisfy the guard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    pub result: CompareResult,
    pub target: CompareTarget,
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
}

/// One operation inside a transaction branch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestOp {
    Range(RangeRequest),
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
}

/// The result of one [`RequestOp`], in the same position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseOp {
    Range(RangeResponse),
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
}

/// If every compare holds, run `success`, else `failure`; atomically, at one revision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRequest {
    pub compare: Vec<Compare>,
    pub success: Vec<RequestOp>,
    pub failure: Vec<RequestOp>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResponse {
    pub header: ResponseHeader,
    pub succeeded: bool,
    pub responses: Vec<ResponseOp>,
}

/// Discard history before `revision` (reads and watches from earlier revisions then fail).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionRequest {
    pub revision: i64,
    pub physical: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionResponse {
    pub header: ResponseHeader,
}

/// The largest TTL a lease may be granted, in seconds (etcd's `MaxLeaseTTL`); larger requests
/// fail with [`Error::LeaseTtlTooLarge`](crate::api::error::Error::LeaseTtlTooLarge).
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// Create a lease of `ttl` seconds; `id` 0 lets the cluster choose one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrantRequest {
    pub ttl: i64,
    pub id: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrantResponse {
    pub header: ResponseHeader,
    pub id: i64,
    /// The TTL granted, which may be raised to the cluster's minimum.
    pub ttl: i64,
}

/// End a lease now, deleting every key attached to it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRevokeRequest {
    pub id: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRevokeResponse {
    pub header: ResponseHeader,
}

/// Reset a lease's countdown to its full TTL (one keep-alive).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseKeepAliveRequest {
    pub id: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseKeepAliveResponse {
    pub header: ResponseHeader,
    pub id: i64,
    pub ttl: i64,
}

/// Ask how long a lease has left, optionally with the keys attached to it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseTimeToLiveRequest {
    pub id: i64,
    pub keys: bool,
}

/// `ttl` is -1 for a lease that does not exist (etcd answers so rather than failing).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseTimeToLiveResponse {
    pub header: ResponseHeader,
    pub id: i64,
    pub ttl: i64,
    pub granted_ttl: i64,
    pub keys: Vec<Vec<u8>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseLeasesResponse {
    pub header: ResponseHeader,
    pub leases: Vec<i64>,
}

/// A cluster member as the membership table keeps it (etcd's `Member`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: u64,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

/// Add a voting member, or a learner that replicates without voting; `id` 0 lets the core choose.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAddRequest {
    pub id: u64,
    pub peer_urls: Vec<String>,
    pub is_learner: bool,
}

/// Answer of every membership change: the member concerned (if any) and the new member list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberResponse {
    pub header: ResponseHeader,
    pub member: Option<Member>,
    pub members: Vec<Member>,
}

/// A change of membership, replicated as a Raft ConfChangeV2 entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberChange {
    Add(MemberAddRequest),
    Remove {
        id: u64,
    },
    Promote {
        id: u64,
    },
    /// New peer URLs for a member (no Raft configuration change, but replicated).
    Update {
        id: u64,
        peer_urls: Vec<String>,
    },
    /// A member announces its name and client URLs once it runs (etcd's "publish"), so every
    /// member can list where clients reach it.
    Publish {
        id: u64,
        name: String,
        client_urls: Vec<String>,
    },
}

/// Every request a client can make of a member, whatever API it arrived through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Range(RangeRequest),
    Put(PutRequest),
    PutInOrder(PutInOrderRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
    Compact(CompactionRequest),
    LeaseGrant(LeaseGrantRequest),
    LeaseRevoke(LeaseRevokeRequest),
    LeaseKeepAlive(LeaseKeepAliveRequest),
    LeaseTimeToLive(LeaseTimeToLiveRequest),
    LeaseLeases,
    MemberChange(MemberChange),
    MemberList,
    /// Hand leadership to another voter (etcd's MoveLeader); answered on the current leader.
    MoveLeader {
        target: u64,
    },
    /// A digest of this member's replicated state (etcd's Maintenance Hash), answered locally:
    /// members that applied the same entries give the same hash, which is how divergence shows.
    Hash,
    /// A digest of the key space's versions up to `revision` (0: the current one), etcd's
    /// HashKV: members agree on it at one revision whatever they applied since.
    HashKv {
        revision: i64,
    },
    /// This member's whole replicated state as bytes (etcd's Maintenance Snapshot), answered
    /// locally: the backup `etcdctl snapshot save` writes.
    Snapshot,
    /// List, raise or clear alarms (etcd's Maintenance.Alarm).
    Alarm(AlarmRequest),
    /// One v2 keys write (set, create, update, compare-and-swap/delete, delete, POST, refresh).
    V2Write(V2WriteRequest),
    /// Manage or read users, roles and permissions, or issue a token (etcd's Auth service).
    Auth(AuthRequest),
    /// The password hash of user `name`, answered locally, for the shell to check a password
    /// against before it asks for a token: fails with etcd's "authentication failed" for an
    /// unknown user or one without a password, and "not enabled" while auth is off.
    PasswordHash {
        name: String,
    },
}

impl Request {
    /// Whether only the leader can answer it: lease deadlines, learners' progress and the handing
    /// over of leadership live there alone. The one place this is decided: a shell forwards
    /// these to the leader, and a node that does not lead refuses them.
    pub fn needs_leader(&self) -> bool {
        matches!(
            self,
            Request::LeaseKeepAlive(_)
                | Request::LeaseTimeToLive(_)
                | Request::LeaseLeases
                | Request::MoveLeader { .. }
                | Request::MemberChange(MemberChange::Promote { .. })
        )
    }
}

/// The answer to a [`Request`], in the matching variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Range(RangeResponse),
    Put(PutResponse),
    PutInOrder(PutInOrderResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    Compact(CompactionResponse),
    LeaseGrant(LeaseGrantResponse),
    LeaseRevoke(LeaseRevokeResponse),
    LeaseKeepAlive(LeaseKeepAliveResponse),
    LeaseTimeToLive(LeaseTimeToLiveResponse),
    LeaseLeases(LeaseLeasesResponse),
    Member(MemberResponse),
    MoveLeader(ResponseHeader),
    Hash(HashResponse),
    HashKv(HashKvResponse),
    Snapshot(SnapshotResponse),
    Alarm(AlarmResponse),
    V2Write(V2WriteResponse),
    Auth(AuthResponse),
    PasswordHash(PasswordHashResponse),
}

/// A member's state digest and the log position it reflects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashResponse {
    pub header: ResponseHeader,
    pub hash: u64,
    /// The last log index applied to the state the hash covers.
    pub applied_index: u64,
}

/// The key space's digest at a revision, and the revision history is compacted to (the digest
/// covers only what compaction kept, so members compare it at equal compaction).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashKvResponse {
    pub header: ResponseHeader,
    pub hash: u32,
    pub compact_revision: i64,
}

/// A member's state, encoded as a Raft snapshot is, and the log index it reflects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotResponse {
    pub header: ResponseHeader,
    pub data: Vec<u8>,
    pub applied_index: u64,
}

/// A user's stored password hash, for the shell to check a password against (never sent to a
/// client).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordHashResponse {
    pub header: ResponseHeader,
    pub hash: String,
}

impl Response {
    /// The header of whichever response this is, so the node can stamp ids and term once.
    pub fn header_mut(&mut self) -> &mut ResponseHeader {
        match self {
            Response::Range(r) => &mut r.header,
            Response::Put(r) => &mut r.header,
            Response::PutInOrder(r) => &mut r.header,
            Response::DeleteRange(r) => &mut r.header,
            Response::Txn(r) => &mut r.header,
            Response::Compact(r) => &mut r.header,
            Response::LeaseGrant(r) => &mut r.header,
            Response::LeaseRevoke(r) => &mut r.header,
            Response::LeaseKeepAlive(r) => &mut r.header,
            Response::LeaseTimeToLive(r) => &mut r.header,
            Response::LeaseLeases(r) => &mut r.header,
            Response::Member(r) => &mut r.header,
            Response::MoveLeader(h) => h,
            Response::Hash(r) => &mut r.header,
            Response::HashKv(r) => &mut r.header,
            Response::Snapshot(r) => &mut r.header,
            Response::Alarm(r) => &mut r.header,
            Response::V2Write(r) => &mut r.header,
            Response::Auth(r) => &mut r.header,
            Response::PasswordHash(r) => &mut r.header,
        }
    }
}
