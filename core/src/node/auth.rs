//! Who a request runs as: the caller the shell saw, resolved against the token table and the
//! auth store when the request is admitted, and the commands vouched for with it so the state
//! machine checks their permissions when they are applied (see `state::machine::permit`).

use rand::Rng;

use super::{Node, RequestId};
use crate::api::auth::{Access, AuthInfo, AuthRequest, AuthResponse, Caller};
use crate::api::command::Command;
use crate::api::error::{Error, Result};
use crate::api::request::{PasswordHashResponse, Response};

/// Letters of a simple token's random part, as etcd's.
const TOKEN_LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Length of a simple token's random part (etcd's 16).
const TOKEN_RANDOM_LEN: usize = 16;

impl Node {
    /// Who `caller` is, when auth is on: `None` means nothing is checked (auth off, or the
    /// member itself). A token that is unknown or expired is etcd's "invalid auth token"; a
    /// token given while auth is off is ignored, as etcd ignores it.
    pub(super) fn resolve(&mut self, caller: &Caller) -> Result<Option<AuthInfo>> {
        let auth = self.sm.auth();
        if !auth.is_enabled() {
            return Ok(None);
        }
        let revision = auth.revision();
        match caller {
            Caller::Member => Ok(None),
            Caller::Anonymous => Ok(Some(AuthInfo::default())),
            Caller::User(user) => Ok(Some(AuthInfo { user: user.clone(), revision })),
            Caller::Token(token) => match self.tokens.user(token, self.now_ms) {
                Some(user) => Ok(Some(AuthInfo { user: user.to_string(), revision })),
                None => Err(Error::InvalidAuthToken),
            },
        }
    }

    /// `command` as the log carries it: with its caller when there is one to check.
    pub(super) fn vouch(who: Option<AuthInfo>, command: Command) -> Command {
        match who {
            Some(caller) => Command::Authed { caller, command: Box::new(command) },
            None => command,
        }
    }

    /// Fail unless `who` may manage the cluster (with auth on: the `root` role).
    pub(super) fn require_admin(&self, who: &Option<AuthInfo>) -> Result<()> {
        who.as_ref().map_or(Ok(()), |who| self.sm.auth().check_admin(who))
    }

    /// Fail unless `who` may read `[key, range_end)` now.
    pub(super) fn require_read(&self, who: &Option<AuthInfo>, key: &[u8], range_end: &[u8]) -> Result<()> {
        who.as_ref().map_or(Ok(()), |who| self.sm.auth().check(who, Access::Read, key, range_end))
    }

    /// An auth request: status is answered here, an authentication gets its token here (so the
    /// log carries the same token to every member), everything else is proposed.
    pub(super) fn start_auth(&mut self, id: RequestId, who: Option<AuthInfo>, request: AuthRequest) -> Result<()> {
        match request {
            AuthRequest::Status => {
                let auth = self.sm.auth();
                let resp =
                    AuthResponse { enabled: auth.is_enabled(), auth_revision: auth.revision(), ..Default::default() };
                self.respond(id, Ok(Response::Auth(resp)));
                Ok(())
            }
            AuthRequest::Authenticate { name, password_hash, .. } => {
                let token = format!("{}.{}", self.random_token(), self.raw.raft.raft_log.last_index() + 1);
                self.propose(id, Command::Auth(AuthRequest::Authenticate { name, password_hash, token }))
            }
            request => self.propose(id, Node::vouch(who, Command::Auth(request))),
        }
    }

    /// The stored password hash of `name`, for the shell to check a password against.
    pub(super) fn password_hash(&mut self, id: RequestId, name: &str) -> Result<()> {
        let auth = self.sm.auth();
        if !auth.is_enabled() {
            return Err(Error::AuthNotEnabled);
        }
        let user = auth.user(name).filter(|u| !u.no_password).ok_or(Error::AuthFailed)?;
        let resp = PasswordHashResponse { hash: user.password_hash.clone(), ..Default::default() };
        self.respond(id, Ok(Response::PasswordHash(resp)));
        Ok(())
    }

    fn random_token(&mut self) -> String {
        let letters = (0..TOKEN_RANDOM_LEN).map(|_| TOKEN_LETTERS[self.rng.gen_range(0..TOKEN_LETTERS.len())]);
        letters.map(char::from).collect()
    }

    /// Keep the token table in step with an applied auth change: a token issued, a user whose
    /// password changed or who was deleted loses its tokens, and disabling auth forgets them all.
    pub(super) fn track_tokens(&mut self, command: &Command, ok: bool) {
        let request = match command {
            Command::Auth(request) => request,
            Command::Authed { command, .. } => return self.track_tokens(command, ok),
            _ => return,
        };
        if !ok {
            return;
        }
        match request {
            AuthRequest::Authenticate { name, token, .. } => {
                self.tokens.issue(token.clone(), name.clone(), self.now_ms)
            }
            AuthRequest::UserDelete { name } | AuthRequest::UserChangePassword { name, .. } => {
                self.tokens.revoke_user(name)
            }
            AuthRequest::Disable => self.tokens.clear(),
            _ => {}
        }
    }
}
