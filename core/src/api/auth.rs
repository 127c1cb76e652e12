//! Authentication and role-based access, as etcd 3.4 has them: the requests that manage users,
//! roles and key-range permissions (each replicated as [`crate::api::command::Command::Auth`]),
//! their answer, and who a request runs as ([`AuthInfo`]). Passwords never reach the core in
//! the clear: the shell hashes them (bcrypt is slow on purpose, and needs randomness for its
//! salt) and the core keeps the hash.

use serde::{Deserialize, Serialize};

use crate::api::request::ResponseHeader;

/// Which access a permission grants (etcd's `authpb.Permission.Type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PermissionType {
    #[default]
    Read,
    Write,
    ReadWrite,
}

impl PermissionType {
    /// Whether this grant allows `access`.
    pub fn allows(self, access: Access) -> bool {
        matches!(
            (self, access),
            (PermissionType::ReadWrite, _)
                | (PermissionType::Read, Access::Read)
                | (PermissionType::Write, Access::Write)
        )
    }
}

/// What a request does with the keys it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// Access to one key (`range_end` empty), to `[key, range_end)`, or to every key from `key` on
/// (`range_end` `[0]`), the same conventions as a Range request's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    pub kind: PermissionType,
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
}

/// Who a request runs as: the user and the auth revision their credentials were checked at.
/// Revision 0 means no credentials (etcd's empty `AuthInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthInfo {
    pub user: String,
    pub revision: u64,
}

/// Who makes a request, as the shell learned it from the connection: nobody in particular, the
/// holder of a token (gRPC metadata, the gateway's `Authorization` header), a user the shell
/// has already authenticated (a TLS client certificate's common name), or the member itself
/// (its own publication of its name), which is never checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Caller {
    #[default]
    Anonymous,
    Token(String),
    User(String),
    Member,
}

/// One auth request (etcd's `Auth` service). Names and hashes arrive checked for emptiness
/// by the store, which answers with etcd's errors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthRequest {
    Enable,
    Disable,
    /// Whether auth is on and the auth revision.
    Status,
    /// Issue `token` to `name`, whose password the shell found to match `password_hash`: the
    /// issue fails if the user's hash changed meanwhile. The node picks the token (a shell
    /// sends it empty), so every member records the same one.
    Authenticate {
        name: String,
        password_hash: String,
        token: String,
    },
    /// Add a user with a password hash, or (`no_password`) one that can only be a TLS common name.
    UserAdd {
        name: String,
        password_hash: String,
        no_password: bool,
    },
    UserGet {
        name: String,
    },
    UserList,
    UserDelete {
        name: String,
    },
    UserChangePassword {
        name: String,
        password_hash: String,
    },
    UserGrantRole {
        user: String,
        role: String,
    },
    UserRevokeRole {
        user: String,
        role: String,
    },
    RoleAdd {
        role: String,
    },
    RoleGet {
        role: String,
    },
    RoleList,
    RoleDelete {
        role: String,
    },
    /// Grant `permission` to `role`; a grant on the same key and range end replaces its type.
    RoleGrantPermission {
        role: String,
        permission: Permission,
    },
    RoleRevokePermission {
        role: String,
        key: Vec<u8>,
        range_end: Vec<u8>,
    },
}

/// The answer to any [`AuthRequest`]: the fields its etcd response has, the others empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthResponse {
    pub header: ResponseHeader,
    /// UserGet: the user's roles, sorted. RoleList: every role, sorted.
    pub roles: Vec<String>,
    /// UserList: every user, sorted.
    pub users: Vec<String>,
    /// RoleGet: the role's permissions, sorted by key.
    pub permissions: Vec<Permission>,
    /// Status: whether auth is on, and the auth revision.
    pub enabled: bool,
    pub auth_revision: u64,
    /// Authenticate: the token issued.
    pub token: String,
}

impl AuthRequest {
    /// Whether only a user with the `root` role may make it (etcd's `needAdminPermission`);
    /// a user may read itself and its own roles, and anyone may authenticate.
    pub fn needs_admin(&self) -> bool {
        !matches!(
            self,
            AuthRequest::Authenticate { .. }
                | AuthRequest::Status
                | AuthRequest::UserGet { .. }
                | AuthRequest::RoleGet { .. }
        )
    }
}
