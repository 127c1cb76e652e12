//! What travels through the Raft log: a client's write (or an internal one, such as a lease
//! expiry decided by the leader) tagged with the member and request it came from, so that the
//! member that proposed it can answer its client once the entry is applied.

use serde::{Deserialize, Serialize};

use crate::api::alarm::AlarmRequest;
use crate::api::auth::{AuthInfo, AuthRequest};
use crate::api::error::{Error, Result};
use crate::api::request::{
    CompactionRequest, DeleteRangeRequest, LeaseGrantRequest, LeaseRevokeRequest, MemberChange, PutInOrderRequest,
    PutRequest, TxnRequest,
};
use crate::api::v2::V2WriteRequest;
use crate::format::{decode_whole, Format};

/// A replicated state-machine command. Applying one is deterministic on every member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Put(PutRequest),
    PutInOrder(PutInOrderRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
    Compact(CompactionRequest),
    LeaseGrant(LeaseGrantRequest),
    LeaseRevoke(LeaseRevokeRequest),
    /// Remaining TTLs of leases, recorded by the leader so a new leader does not restart them.
    LeaseCheckpoint(Vec<(i64, i64)>),
    /// A membership change; carried in a ConfChangeV2 entry's context (or a normal entry for
    /// URL updates, which change no Raft configuration).
    Member(MemberChange),
    /// List, raise or clear alarms (etcd replicates even the listing).
    Alarm(AlarmRequest),
    /// Member `member_id` found that a write would exceed the space quota: raise its NOSPACE
    /// alarm and refuse the write (etcd raises the alarm before answering "database space
    /// exceeded", so a client that then lists alarms sees it).
    QuotaExceeded {
        member_id: u64,
    },
    /// A v2 keys write, decided and applied in one step (see [`crate::api::v2`]).
    V2Write(V2WriteRequest),
    /// A change to (or read of) users, roles and permissions.
    Auth(AuthRequest),
    /// A client's command made while auth was on, with who made it and the auth revision it
    /// was admitted at: it is checked when applied, so a permission revoked while it was in
    /// flight is honoured (etcd's request header `username` and `auth_revision`).
    Authed {
        caller: AuthInfo,
        command: Box<Command>,
    },
}

/// A command with its origin. `origin` 0 marks a command the cluster made for itself (lease
/// expiry, checkpoints): nobody waits for its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub origin: u64,
    /// The proposing member's run (see `Node`): after a restart, request ids start over, and
    /// an entry proposed by an earlier run must not answer a new request with the same id.
    pub incarnation: u64,
    pub request_id: u64,
    pub command: Command,
}

/// How a proposal is stored in a Raft entry: a version byte, then the postcard body. Version 1
/// is the first versioned one; releases before it wrote the bare body (see [`Proposal::decode_unversioned`]).
pub const PROPOSAL_FORMAT: Format = Format { name: "log entry", tag: b"", version: 1 };

impl Proposal {
    /// The bytes stored in the Raft entry.
    pub fn encode(&self) -> Vec<u8> {
        PROPOSAL_FORMAT.encode(self)
    }

    /// Read a proposal back from an entry; bytes of another format, or corrupt ones, are an
    /// error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        PROPOSAL_FORMAT.decode(bytes).map_err(Error::Internal)
    }

    /// Read a proposal as releases before [`PROPOSAL_FORMAT`] stored it (the bare body): only
    /// the storage's upgrade of an old data directory reads these.
    pub fn decode_unversioned(bytes: &[u8]) -> Result<Self> {
        decode_whole(PROPOSAL_FORMAT.name, bytes).map_err(Error::Internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposals_round_trip_and_garbage_is_an_error() {
        let p = Proposal {
            origin: 3,
            incarnation: 1,
            request_id: 9,
            command: Command::Put(PutRequest { key: b"k".to_vec(), ..Default::default() }),
        };
        assert_eq!(Proposal::decode(&p.encode()).unwrap(), p);
        assert!(Proposal::decode(&[0xff, 0xff, 0xff]).is_err());
        assert!(Proposal::decode(&[]).is_err());
    }

    /// The stored bytes of a proposal, pinned: a change to them is a new format version.
    #[test]
    fn golden_bytes_of_a_put_proposal() {
        let p = Proposal {
            origin: 3,
            incarnation: 1,
            request_id: 9,
            command: Command::Put(PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), ..Default::default() }),
        };
        let golden = b"\x01\x03\x01\x09\x00\x01k\x01v\x00\x00\x00\x00";
        assert_eq!(p.encode(), golden.to_vec());
        assert_eq!(Proposal::decode(golden).unwrap(), p);
        let refused = Proposal::decode(&golden[1..]).unwrap_err().to_string();
        assert!(
            refused.ends_with("a keel log entry in format 3; this keel reads format 1"),
            "the unversioned body is refused: {refused}"
        );
        assert_eq!(Proposal::decode_unversioned(&golden[1..]).unwrap(), p);
    }
}
