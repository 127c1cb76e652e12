//! The auth store: users, roles, their key-range permissions, whether auth is on, and the auth
//! revision, changed only by applied [`AuthRequest`]s so every member holds the same store.
//! It is small (people and roles, not data), so it lives in memory and is stored whole as one
//! record beside the membership, and shipped whole in snapshots.
//!
//! The rules are etcd 3.4's: auth can be enabled only once `root` exists with the `root` role;
//! while it is on, `root` cannot be deleted or lose that role, and the `root` role cannot be
//! deleted; every change bumps the revision, so credentials checked at an older revision are
//! refused ([`Error::AuthOldRevision`]) and the client authenticates again.

mod ranges;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::api::auth::{Access, AuthInfo, AuthRequest, AuthResponse, Permission};
use crate::api::error::{Error, Result};

/// The user every cluster with auth on has, and the role that lets it do everything.
pub const ROOT: &str = "root";

/// One user: a bcrypt hash made by the shell (empty for a user without a password) and roles.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub password_hash: String,
    pub no_password: bool,
    pub roles: BTreeSet<String>,
}

/// Users, roles and permissions, the enabled flag and the revision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthStore {
    enabled: bool,
    revision: u64,
    users: BTreeMap<String, User>,
    /// Each role's permissions, sorted by key then range end (the order etcd lists them in).
    roles: BTreeMap<String, Vec<Permission>>,
}

impl AuthStore {
    /// Whether requests are checked at all.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The auth revision: bumped by every change, so credentials can name the store they saw.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Whether nothing was ever stored (a snapshot or hash need not mention auth then).
    pub fn is_pristine(&self) -> bool {
        *self == AuthStore::default()
    }

    /// A role's permissions, sorted by key then range end, if the role exists.
    pub fn role(&self, name: &str) -> Option<&[Permission]> {
        self.roles.get(name).map(Vec::as_slice)
    }

    /// A user, if present (the shell checks a password against its hash).
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// Apply one auth request, with etcd's rules and errors. Reads (get, list, status) change
    /// nothing; every change bumps the revision.
    pub fn apply(&mut self, request: &AuthRequest) -> Result<AuthResponse> {
        let mut resp = AuthResponse::default();
        let changed = match request {
            AuthRequest::Enable => self.enable()?,
            AuthRequest::Disable => std::mem::replace(&mut self.enabled, false),
            AuthRequest::Status => {
                resp.enabled = self.enabled;
                resp.auth_revision = self.revision;
                false
            }
            AuthRequest::Authenticate { name, password_hash, token } => {
                if !self.enabled {
                    return Err(Error::AuthNotEnabled);
                }
                let user = self.users.get(name).filter(|u| !u.no_password && u.password_hash == *password_hash);
                user.ok_or(Error::AuthFailed)?;
                resp.token = token.clone();
                false
            }
            AuthRequest::UserAdd { name, password_hash, no_password } => {
                if name.is_empty() {
                    return Err(Error::UserEmpty);
                }
                if self.users.contains_key(name) {
                    return Err(Error::UserAlreadyExist);
                }
                let user =
                    User { password_hash: password_hash.clone(), no_password: *no_password, roles: BTreeSet::new() };
                self.users.insert(name.clone(), user);
                true
            }
            AuthRequest::UserGet { name } => {
                resp.roles = self.user_or_err(name)?.roles.iter().cloned().collect();
                false
            }
            AuthRequest::UserList => {
                resp.users = self.users.keys().cloned().collect();
                false
            }
            AuthRequest::UserDelete { name } => {
                if self.enabled && name == ROOT {
                    return Err(Error::InvalidAuthMgmt);
                }
                self.users.remove(name).ok_or(Error::UserNotFound)?;
                true
            }
            AuthRequest::UserChangePassword { name, password_hash } => {
                let user = self.users.get_mut(name).ok_or(Error::UserNotFound)?;
                user.password_hash = password_hash.clone();
                true
            }
            AuthRequest::UserGrantRole { user, role } => {
                if role != ROOT && !self.roles.contains_key(role) {
                    self.user_or_err(user)?;
                    return Err(Error::RoleNotFound);
                }
                // Granting a role the user has is no change (etcd ignores it too).
                self.users.get_mut(user).ok_or(Error::UserNotFound)?.roles.insert(role.clone())
            }
            AuthRequest::UserRevokeRole { user, role } => {
                if self.enabled && user == ROOT && role == ROOT {
                    return Err(Error::InvalidAuthMgmt);
                }
                let found = self.users.get_mut(user).ok_or(Error::UserNotFound)?;
                found.roles.remove(role).then_some(true).ok_or(Error::RoleNotGranted)?
            }
            AuthRequest::RoleAdd { role } => {
                if role.is_empty() {
                    return Err(Error::RoleEmpty);
                }
                if self.roles.contains_key(role) {
                    return Err(Error::RoleAlreadyExist);
                }
                self.roles.insert(role.clone(), Vec::new());
                true
            }
            AuthRequest::RoleGet { role } => {
                resp.permissions = self.roles.get(role).ok_or(Error::RoleNotFound)?.clone();
                false
            }
            AuthRequest::RoleList => {
                resp.roles = self.roles.keys().cloned().collect();
                false
            }
            AuthRequest::RoleDelete { role } => {
                if self.enabled && role == ROOT {
                    return Err(Error::InvalidAuthMgmt);
                }
                self.roles.remove(role).ok_or(Error::RoleNotFound)?;
                for user in self.users.values_mut() {
                    user.roles.remove(role);
                }
                true
            }
            AuthRequest::RoleGrantPermission { role, permission } => {
                let perms = self.roles.get_mut(role).ok_or(Error::RoleNotFound)?;
                let at =
                    perms.binary_search_by(|p| (&p.key, &p.range_end).cmp(&(&permission.key, &permission.range_end)));
                match at {
                    Ok(i) => perms[i].kind = permission.kind,
                    Err(i) => perms.insert(i, permission.clone()),
                }
                true
            }
            AuthRequest::RoleRevokePermission { role, key, range_end } => {
                let perms = self.roles.get_mut(role).ok_or(Error::RoleNotFound)?;
                let at = perms.iter().position(|p| &p.key == key && &p.range_end == range_end);
                perms.remove(at.ok_or(Error::PermissionNotGranted)?);
                true
            }
        };
        if changed {
            self.revision += 1;
        }
        Ok(resp)
    }

    fn user_or_err(&self, name: &str) -> Result<&User> {
        self.users.get(name).ok_or(Error::UserNotFound)
    }

    /// Turn auth on, if `root` exists with the `root` role; returns whether it was off.
    fn enable(&mut self) -> Result<bool> {
        if self.enabled {
            return Ok(false);
        }
        let root = self.users.get(ROOT).ok_or(Error::RootUserNotExist)?;
        if !root.roles.contains(ROOT) {
            return Err(Error::RootRoleNotExist);
        }
        self.enabled = true;
        Ok(true)
    }

    /// Whether `who` may read or write `[key, range_end)` (Range conventions), as etcd decides
    /// it: anything while auth is off; with it on, credentials are needed, must be of the
    /// current revision, and the user's roles must cover the whole range (root covers all).
    pub fn check(&self, who: &AuthInfo, access: Access, key: &[u8], range_end: &[u8]) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let user = self.current_user(who)?.ok_or(Error::PermissionDenied)?;
        if user.roles.contains(ROOT) {
            return Ok(());
        }
        let granted = user
            .roles
            .iter()
            .filter_map(|r| self.roles.get(r))
            .flatten()
            .filter(|p| p.kind.allows(access))
            .map(|p| (p.key.as_slice(), p.range_end.as_slice()));
        match ranges::covers(granted, key, range_end) {
            true => Ok(()),
            false => Err(Error::PermissionDenied),
        }
    }

    /// Whether `who` may manage the cluster (auth, members, maintenance): with auth on, only
    /// a user with the `root` role. As in etcd, the revision is not checked here.
    pub fn check_admin(&self, who: &AuthInfo) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        if who.user.is_empty() {
            return Err(Error::UserEmpty);
        }
        let user = self.users.get(&who.user).ok_or(Error::UserNotFound)?;
        match user.roles.contains(ROOT) {
            true => Ok(()),
            false => Err(Error::PermissionDenied),
        }
    }

    /// Whether `who` holds `role` (a user may read its own roles without being root).
    pub fn has_role(&self, who: &AuthInfo, role: &str) -> bool {
        self.users.get(&who.user).is_some_and(|u| u.roles.contains(role))
    }

    /// The user `who` names, if its credentials are current: none at all is
    /// [`Error::UserEmpty`], an older revision [`Error::AuthOldRevision`].
    fn current_user(&self, who: &AuthInfo) -> Result<Option<&User>> {
        if who.revision == 0 {
            return Err(Error::UserEmpty);
        }
        if who.revision < self.revision {
            return Err(Error::AuthOldRevision);
        }
        Ok(self.users.get(&who.user))
    }
}
