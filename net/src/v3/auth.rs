//! The Auth service (users, roles, permissions, tokens), and who a call comes from: the token a
//! client sends as gRPC metadata `token` (or `authorization`), as etcd's clients send it.
//!
//! Passwords are hashed and checked with bcrypt off the async threads (`crate::password`).

use keel_core::api::auth::{AuthRequest, AuthResponse, Caller, Permission, PermissionType};
use keel_core::api::error::Error;
use keel_core::api::request::{Request, Response};
use tonic::{Request as Call, Response as Reply, Status};

use super::pb::{authpb, etcdserverpb as pb};
use super::{call, convert, status};
use crate::backend::{AsCaller, Backend};
use crate::password;

/// The user a verified TLS client certificate names (its common name), put on each request of
/// the connection by the HTTP layer; never taken from anything the client sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateUser(pub String);

/// Who made a call: the holder of the token in its metadata, else the user its connection's
/// client certificate names, else nobody in particular (etcd's order).
pub fn caller<T>(req: &Call<T>) -> Caller {
    let metadata = req.metadata();
    let token = metadata.get("token").or_else(|| metadata.get("authorization"));
    caller_of(token.and_then(|v| v.to_str().ok()), req.extensions().get::<CertificateUser>())
}

/// [`caller`] from its parts: a token, and the connection's certificate user.
pub fn caller_of(token: Option<&str>, certificate: Option<&CertificateUser>) -> Caller {
    match (token, certificate) {
        (Some(token), _) if !token.is_empty() => Caller::Token(token.to_string()),
        (_, Some(CertificateUser(name))) => Caller::User(name.clone()),
        _ => Caller::Anonymous,
    }
}

/// `backend` as `req`'s caller sees it.
pub fn as_caller<B: Backend, T>(backend: &B, req: &Call<T>) -> AsCaller<B> {
    AsCaller { backend: backend.clone(), caller: caller(req) }
}

/// etcd's `Auth` service over a member.
pub struct AuthService<B> {
    pub backend: B,
    /// The bcrypt cost new password hashes are made with.
    pub bcrypt_cost: u32,
}

impl<B: Backend> AuthService<B> {
    /// Carry out one auth request as `req`'s caller.
    async fn auth<T>(&self, req: &Call<T>, request: AuthRequest) -> Result<AuthResponse, Status> {
        call(&as_caller(&self.backend, req), Request::Auth(request), pick!(Response::Auth)).await
    }

    /// Carry out a management request whose answer is only a header.
    async fn header_of<T>(&self, req: &Call<T>, request: AuthRequest) -> Result<Option<pb::ResponseHeader>, Status> {
        Ok(convert::header(&self.auth(req, request).await?.header))
    }

    /// The bcrypt hash of `password` (empty for a user without one).
    async fn hash(&self, password: String, no_password: bool) -> Result<String, Status> {
        match no_password {
            true => Ok(String::new()),
            false => password::hash(password, self.bcrypt_cost).await.map_err(status),
        }
    }
}

fn permission_type(kind: PermissionType) -> i32 {
    let kind = match kind {
        PermissionType::Read => authpb::permission::Type::Read,
        PermissionType::Write => authpb::permission::Type::Write,
        PermissionType::ReadWrite => authpb::permission::Type::Readwrite,
    };
    kind as i32
}

fn permission_kind(kind: i32) -> Result<PermissionType, Status> {
    match authpb::permission::Type::try_from(kind) {
        Ok(authpb::permission::Type::Read) => Ok(PermissionType::Read),
        Ok(authpb::permission::Type::Write) => Ok(PermissionType::Write),
        Ok(authpb::permission::Type::Readwrite) => Ok(PermissionType::ReadWrite),
        Err(_) => Err(Status::invalid_argument(format!("etcdserver: invalid permission type {kind}"))),
    }
}

#[tonic::async_trait]
impl<B: Backend> pb::auth_server::Auth for AuthService<B> {
    async fn auth_enable(&self, req: Call<pb::AuthEnableRequest>) -> Result<Reply<pb::AuthEnableResponse>, Status> {
        Ok(Reply::new(pb::AuthEnableResponse { header: self.header_of(&req, AuthRequest::Enable).await? }))
    }

    async fn auth_disable(&self, req: Call<pb::AuthDisableRequest>) -> Result<Reply<pb::AuthDisableResponse>, Status> {
        Ok(Reply::new(pb::AuthDisableResponse { header: self.header_of(&req, AuthRequest::Disable).await? }))
    }

    async fn user_delete(
        &self,
        req: Call<pb::AuthUserDeleteRequest>,
    ) -> Result<Reply<pb::AuthUserDeleteResponse>, Status> {
        let r = req.get_ref().clone();
        Ok(Reply::new(pb::AuthUserDeleteResponse {
            header: self.header_of(&req, AuthRequest::UserDelete { name: r.name }).await?,
        }))
    }

    async fn user_grant_role(
        &self,
        req: Call<pb::AuthUserGrantRoleRequest>,
    ) -> Result<Reply<pb::AuthUserGrantRoleResponse>, Status> {
        let r = req.get_ref().clone();
        Ok(Reply::new(pb::AuthUserGrantRoleResponse {
            header: self.header_of(&req, AuthRequest::UserGrantRole { user: r.user, role: r.role }).await?,
        }))
    }

    async fn user_revoke_role(
        &self,
        req: Call<pb::AuthUserRevokeRoleRequest>,
    ) -> Result<Reply<pb::AuthUserRevokeRoleResponse>, Status> {
        let r = req.get_ref().clone();
        Ok(Reply::new(pb::AuthUserRevokeRoleResponse {
            header: self.header_of(&req, AuthRequest::UserRevokeRole { user: r.name, role: r.role }).await?,
        }))
    }

    async fn role_add(&self, req: Call<pb::AuthRoleAddRequest>) -> Result<Reply<pb::AuthRoleAddResponse>, Status> {
        let r = req.get_ref().clone();
        Ok(Reply::new(pb::AuthRoleAddResponse {
            header: self.header_of(&req, AuthRequest::RoleAdd { role: r.name }).await?,
        }))
    }

    async fn role_delete(
        &self,
        req: Call<pb::AuthRoleDeleteRequest>,
    ) -> Result<Reply<pb::AuthRoleDeleteResponse>, Status> {
        let r = req.get_ref().clone();
        Ok(Reply::new(pb::AuthRoleDeleteResponse {
            header: self.header_of(&req, AuthRequest::RoleDelete { role: r.role }).await?,
        }))
    }

    async fn role_revoke_permission(
        &self,
        req: Call<pb::AuthRoleRevokePermissionRequest>,
    ) -> Result<Reply<pb::AuthRoleRevokePermissionResponse>, Status> {
        let r = req.get_ref().clone();
        Ok(Reply::new(pb::AuthRoleRevokePermissionResponse {
            header: self
                .header_of(&req, AuthRequest::RoleRevokePermission { role: r.role, key: r.key, range_end: r.range_end })
                .await?,
        }))
    }

    async fn authenticate(
        &self,
        req: Call<pb::AuthenticateRequest>,
    ) -> Result<Reply<pb::AuthenticateResponse>, Status> {
        let pb::AuthenticateRequest { name, password } = req.into_inner();
        let password_hash = password::verify(&self.backend, &name, password).await.map_err(status)?;
        let issue = AuthRequest::Authenticate { name, password_hash, token: String::new() };
        let resp = call(&self.backend, Request::Auth(issue), pick!(Response::Auth)).await?;
        Ok(Reply::new(pb::AuthenticateResponse { header: convert::header(&resp.header), token: resp.token }))
    }

    async fn user_add(&self, req: Call<pb::AuthUserAddRequest>) -> Result<Reply<pb::AuthUserAddResponse>, Status> {
        let r = req.get_ref().clone();
        if r.name.is_empty() {
            return Err(status(Error::UserEmpty));
        }
        let no_password = r.options.is_some_and(|o| o.no_password);
        let password_hash = self.hash(r.password, no_password).await?;
        Ok(Reply::new(pb::AuthUserAddResponse {
            header: self.header_of(&req, AuthRequest::UserAdd { name: r.name, password_hash, no_password }).await?,
        }))
    }

    async fn user_get(&self, req: Call<pb::AuthUserGetRequest>) -> Result<Reply<pb::AuthUserGetResponse>, Status> {
        let name = req.get_ref().name.clone();
        let resp = self.auth(&req, AuthRequest::UserGet { name }).await?;
        Ok(Reply::new(pb::AuthUserGetResponse { header: convert::header(&resp.header), roles: resp.roles }))
    }

    async fn user_list(&self, req: Call<pb::AuthUserListRequest>) -> Result<Reply<pb::AuthUserListResponse>, Status> {
        let resp = self.auth(&req, AuthRequest::UserList).await?;
        Ok(Reply::new(pb::AuthUserListResponse { header: convert::header(&resp.header), users: resp.users }))
    }

    async fn user_change_password(
        &self,
        req: Call<pb::AuthUserChangePasswordRequest>,
    ) -> Result<Reply<pb::AuthUserChangePasswordResponse>, Status> {
        let r = req.get_ref().clone();
        let password_hash = self.hash(r.password, false).await?;
        Ok(Reply::new(pb::AuthUserChangePasswordResponse {
            header: self.header_of(&req, AuthRequest::UserChangePassword { name: r.name, password_hash }).await?,
        }))
    }

    async fn role_get(&self, req: Call<pb::AuthRoleGetRequest>) -> Result<Reply<pb::AuthRoleGetResponse>, Status> {
        let role = req.get_ref().role.clone();
        let resp = self.auth(&req, AuthRequest::RoleGet { role }).await?;
        let perm = resp
            .permissions
            .into_iter()
            .map(|p| authpb::Permission { perm_type: permission_type(p.kind), key: p.key, range_end: p.range_end })
            .collect();
        Ok(Reply::new(pb::AuthRoleGetResponse { header: convert::header(&resp.header), perm }))
    }

    async fn role_list(&self, req: Call<pb::AuthRoleListRequest>) -> Result<Reply<pb::AuthRoleListResponse>, Status> {
        let resp = self.auth(&req, AuthRequest::RoleList).await?;
        Ok(Reply::new(pb::AuthRoleListResponse { header: convert::header(&resp.header), roles: resp.roles }))
    }

    async fn role_grant_permission(
        &self,
        req: Call<pb::AuthRoleGrantPermissionRequest>,
    ) -> Result<Reply<pb::AuthRoleGrantPermissionResponse>, Status> {
        let r = req.get_ref().clone();
        let perm = r.perm.ok_or_else(|| Status::invalid_argument("etcdserver: permission not given"))?;
        let permission =
            Permission { kind: permission_kind(perm.perm_type)?, key: perm.key, range_end: perm.range_end };
        Ok(Reply::new(pb::AuthRoleGrantPermissionResponse {
            header: self.header_of(&req, AuthRequest::RoleGrantPermission { role: r.name, permission }).await?,
        }))
    }
}
