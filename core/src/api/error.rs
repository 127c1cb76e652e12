//! Errors the core returns to clients. Texts are etcd's exactly, because etcd clients (etcdctl,
//! clientv3, Kubernetes) match on them; each error also names the gRPC status class etcd uses,
//! so the API layers need no table of their own.

use thiserror::Error;

/// The gRPC status class of an error, as etcd's `rpctypes` assigns it. Kept here (not as a
/// tonic type) so the core stays free of network crates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    InvalidArgument,
    NotFound,
    FailedPrecondition,
    OutOfRange,
    ResourceExhausted,
    Unavailable,
    DeadlineExceeded,
    Internal,
    PermissionDenied,
    Unauthenticated,
}

/// Every way a client request can fail inside the core.
#[derive(Clone, Debug, PartialEq, Eq, Error, serde::Serialize, serde::Deserialize)]
pub enum Error {
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: member ID already exist")]
    MemberExists,
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: can only promote a learner member")]
    MemberNotLearner,
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    #[error("etcdserver: re-configuration failed due to not enough started members")]
    NotEnoughStartedMembers,
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    #[error("etcdserver: no leader")]
    NoLeader,
    #[error("etcdserver: not leader")]
    NotLeader,
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    #[error("etcdserver: request timed out")]
    Timeout,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: {0}")]
    Internal(String),
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    #[error("etcdserver: root user does not exist")]
    RootUserNotExist,
    #[error("etcdserver: root user does not have root role")]
    RootRoleNotExist,
    #[error("etcdserver: user name already exists")]
    UserAlreadyExist,
    #[error("etcdserver: user name is empty")]
    UserEmpty,
    #[error("etcdserver: user name not found")]
    UserNotFound,
    #[error("etcdserver: role name already exists")]
    RoleAlreadyExist,
    #[error("etcdserver: role name not found")]
    RoleNotFound,
    #[error("etcdserver: role name is empty")]
    RoleEmpty,
    #[error("etcdserver: authentication failed, invalid user ID or password")]
    AuthFailed,
    #[error("etcdserver: permission denied")]
    PermissionDenied,
    #[error("etcdserver: role is not granted to the user")]
    RoleNotGranted,
    #[error("etcdserver: permission is not granted to the role")]
    PermissionNotGranted,
    #[error("etcdserver: authentication is not enabled")]
    AuthNotEnabled,
    #[error("etcdserver: invalid auth token")]
    InvalidAuthToken,
    #[error("etcdserver: invalid auth management")]
    InvalidAuthMgmt,
    #[error("etcdserver: revision of auth store is old")]
    AuthOldRevision,
}

impl Error {
    /// The gRPC status class etcd answers this error with.
    pub fn class(&self) -> ErrorClass {
        use Error::*;
        match self {
            EmptyKey | KeyNotFound | ValueProvided | LeaseProvided | TooManyOps | DuplicateKey | RequestTooLarge
            | LeaseTtlTooLarge | UserEmpty | RoleEmpty | AuthFailed | InvalidAuthMgmt | AuthOldRevision => {
                ErrorClass::InvalidArgument
            }
            Compacted | FutureRevision => ErrorClass::OutOfRange,
            LeaseNotFound | MemberNotFound => ErrorClass::NotFound,
            LeaseExists
            | MemberExists
            | MemberNotLearner
            | LearnerNotReady
            | NotEnoughStartedMembers
            | BadLeaderTransferee
            | RootUserNotExist
            | RootRoleNotExist
            | UserAlreadyExist
            | UserNotFound
            | RoleAlreadyExist
            | RoleNotFound
            | RoleNotGranted
            | PermissionNotGranted
            | AuthNotEnabled => ErrorClass::FailedPrecondition,
            PermissionDenied => ErrorClass::PermissionDenied,
            InvalidAuthToken => ErrorClass::Unauthenticated,
            NoLeader | NotLeader | LeaderChanged | Stopped => ErrorClass::Unavailable,
            Timeout => ErrorClass::DeadlineExceeded,
            Internal(_) => ErrorClass::Internal,
            NoSpace => ErrorClass::ResourceExhausted,
        }
    }
}

/// The core's result type.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_match_etcd() {
        assert_eq!(Error::Compacted.to_string(), "etcdserver: mvcc: required revision has been compacted");
        assert_eq!(Error::LeaseNotFound.to_string(), "etcdserver: requested lease not found");
        assert_eq!(Error::Compacted.class(), ErrorClass::OutOfRange);
        assert_eq!(Error::NoLeader.class(), ErrorClass::Unavailable);
    }
}
