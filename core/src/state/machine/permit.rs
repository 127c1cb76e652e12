//! Whether the caller of a command admitted while auth was on may make it, decided when the
//! command is applied against the auth store as it is then (etcd's `authApplierV3`): every key
//! a command reads needs read permission, every key it writes needs write permission, a
//! transaction needs both for its compares and both branches, a lease's keys need write
//! permission to be revoked or to gain a key, a v2 write needs write on its node (and on what
//! is under it, for directories), and managing users and roles needs `root`.

use super::StateMachine;
use crate::api::auth::{Access, AuthInfo, AuthRequest};
use crate::api::command::Command;
use crate::api::error::Result;
use crate::api::kv::prefix_range_end;
use crate::api::request::{DeleteRangeRequest, PutRequest, RequestOp, TxnRequest};

impl StateMachine {
    /// Whether `who` may make `command` now; the error is etcd's when not.
    pub(super) fn permit(&self, who: &AuthInfo, command: &Command) -> Result<()> {
        let auth = &self.auth;
        match command {
            Command::Put(req) => self.permit_put(who, req),
            Command::PutInOrder(req) => {
                auth.check(who, Access::Write, &req.prefix, &prefix_range_end(&req.prefix))?;
                self.permit_lease_keys(who, req.lease)
            }
            Command::DeleteRange(req) => self.permit_delete(who, req),
            Command::Txn(txn) => self.permit_txn(who, txn),
            Command::LeaseRevoke(req) => self.permit_lease_keys(who, req.id),
            // A user may read itself and its roles (etcd checks no revision for these).
            Command::Auth(AuthRequest::UserGet { name }) if *name == who.user => Ok(()),
            Command::Auth(AuthRequest::RoleGet { role }) if auth.has_role(who, role) => Ok(()),
            Command::Auth(AuthRequest::Authenticate { .. } | AuthRequest::Status) => Ok(()),
            Command::Auth(_) => auth.check_admin(who),
            // A v2 write needs write on its node's key, and on everything under it when it may
            // touch a directory's contents (a directory, a recursive delete, an in-order create).
            Command::V2Write(req) => {
                auth.check(who, Access::Write, req.path.as_bytes(), b"")?;
                if req.dir || req.recursive || req.in_order {
                    let inside = format!("{}/", req.path.trim_end_matches('/'));
                    auth.check(who, Access::Write, inside.as_bytes(), &prefix_range_end(inside.as_bytes()))?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A put needs write on its key (read too with `prev_kv`) and on its lease's keys.
    fn permit_put(&self, who: &AuthInfo, req: &PutRequest) -> Result<()> {
        self.auth.check(who, Access::Write, &req.key, b"")?;
        if req.prev_kv {
            self.auth.check(who, Access::Read, &req.key, b"")?;
        }
        self.permit_lease_keys(who, req.lease)
    }

    /// A delete needs write on its range (read too with `prev_kv`).
    fn permit_delete(&self, who: &AuthInfo, req: &DeleteRangeRequest) -> Result<()> {
        self.auth.check(who, Access::Write, &req.key, &req.range_end)?;
        match req.prev_kv {
            true => self.auth.check(who, Access::Read, &req.key, &req.range_end),
            false => Ok(()),
        }
    }

    /// Compares need read permission, ranges read, puts and deletes write, in both branches.
    fn permit_txn(&self, who: &AuthInfo, txn: &TxnRequest) -> Result<()> {
        for compare in &txn.compare {
            self.auth.check(who, Access::Read, &compare.key, &compare.range_end)?;
        }
        for op in txn.success.iter().chain(&txn.failure) {
            match op {
                RequestOp::Range(r) => self.auth.check(who, Access::Read, &r.key, &r.range_end)?,
                RequestOp::Put(p) => self.permit_put(who, p)?,
                RequestOp::DeleteRange(d) => self.permit_delete(who, d)?,
                RequestOp::Txn(t) => self.permit_txn(who, t)?,
            }
        }
        Ok(())
    }

    /// Write permission on every key attached to lease `id` (none for lease 0 or a missing one).
    fn permit_lease_keys(&self, who: &AuthInfo, id: i64) -> Result<()> {
        if id == 0 {
            return Ok(());
        }
        for key in self.lessor.keys(id) {
            self.auth.check(who, Access::Write, key, b"")?;
        }
        Ok(())
    }
}

/// Whether applying `command` from a client, unwrapped, while auth is on must be refused: it was
/// admitted before auth was enabled, so nobody vouched for it (etcd: "user name is empty").
pub(super) fn needs_caller(command: &Command) -> bool {
    match command {
        Command::Put(_)
        | Command::PutInOrder(_)
        | Command::DeleteRange(_)
        | Command::Txn(_)
        | Command::LeaseRevoke(_)
        | Command::V2Write(_) => true,
        Command::Auth(req) => req.needs_admin(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::{Permission, PermissionType};
    use crate::api::error::Error;
    use crate::api::request::{Compare, DeleteRangeRequest, LeaseGrantRequest, PutRequest, RangeRequest};
    use crate::state::auth::ROOT;

    fn auth(sm: &mut StateMachine, request: AuthRequest) {
        let applied = sm.apply(&Command::Auth(request), None);
        applied.response.unwrap().unwrap();
    }

    /// Auth on; alice may read and write `/a/`, bob only read it.
    fn machine() -> StateMachine {
        let mut sm = StateMachine::new(vec![], 1);
        let perm = |kind| Permission { kind, key: b"/a/".to_vec(), range_end: b"/a0".to_vec() };
        for (user, role, kind) in [("alice", "rw", PermissionType::ReadWrite), ("bob", "ro", PermissionType::Read)] {
            auth(&mut sm, AuthRequest::UserAdd { name: user.into(), password_hash: "h".into(), no_password: false });
            auth(&mut sm, AuthRequest::RoleAdd { role: role.into() });
            auth(&mut sm, AuthRequest::RoleGrantPermission { role: role.into(), permission: perm(kind) });
            auth(&mut sm, AuthRequest::UserGrantRole { user: user.into(), role: role.into() });
        }
        auth(&mut sm, AuthRequest::UserAdd { name: ROOT.into(), password_hash: "h".into(), no_password: false });
        auth(&mut sm, AuthRequest::UserGrantRole { user: ROOT.into(), role: ROOT.into() });
        auth(&mut sm, AuthRequest::Enable);
        sm
    }

    fn who(sm: &StateMachine, user: &str) -> AuthInfo {
        AuthInfo { user: user.into(), revision: sm.auth().revision() }
    }

    fn put(key: &str) -> PutRequest {
        PutRequest { key: key.into(), value: b"v".to_vec(), ..Default::default() }
    }

    #[test]
    fn writes_need_write_and_prev_kv_needs_read() {
        let sm = machine();
        let (alice, bob) = (who(&sm, "alice"), who(&sm, "bob"));
        assert_eq!(sm.permit(&alice, &Command::Put(put("/a/x"))), Ok(()));
        assert_eq!(sm.permit(&alice, &Command::Put(put("/b/x"))), Err(Error::PermissionDenied));
        assert_eq!(sm.permit(&bob, &Command::Put(put("/a/x"))), Err(Error::PermissionDenied));
        let delete = DeleteRangeRequest { key: b"/a/".to_vec(), range_end: b"/a0".to_vec(), prev_kv: true };
        assert_eq!(sm.permit(&alice, &Command::DeleteRange(delete.clone())), Ok(()));
        assert_eq!(sm.permit(&bob, &Command::DeleteRange(delete)), Err(Error::PermissionDenied));
    }

    #[test]
    fn a_txn_is_checked_in_its_compares_and_both_branches() {
        let sm = machine();
        let alice = who(&sm, "alice");
        let compare = |key: &str| Compare {
            result: Default::default(),
            target: crate::api::request::CompareTarget::Version(0),
            key: key.into(),
            range_end: vec![],
        };
        let txn = |compare, failure| TxnRequest { compare: vec![compare], success: vec![], failure: vec![failure] };
        let ok = txn(compare("/a/1"), RequestOp::Put(put("/a/2")));
        assert_eq!(sm.permit(&alice, &Command::Txn(ok)), Ok(()));
        let forbidden_compare = txn(compare("/b/1"), RequestOp::Put(put("/a/2")));
        assert_eq!(sm.permit(&alice, &Command::Txn(forbidden_compare)), Err(Error::PermissionDenied));
        let range = RangeRequest { key: b"/b/".to_vec(), ..Default::default() };
        let forbidden_failure = txn(compare("/a/1"), RequestOp::Range(range));
        assert_eq!(sm.permit(&alice, &Command::Txn(forbidden_failure)), Err(Error::PermissionDenied));
    }

    #[test]
    fn a_lease_with_a_forbidden_key_cannot_be_revoked_or_extended() {
        let mut sm = machine();
        sm.apply(&Command::LeaseGrant(LeaseGrantRequest { id: 7, ttl: 60 }), None);
        let root = who(&sm, ROOT);
        let attach = Command::Put(PutRequest { lease: 7, ..put("/b/secret") });
        sm.apply(&Command::Authed { caller: root, command: Box::new(attach) }, None).response.unwrap().unwrap();
        let alice = who(&sm, "alice");
        let revoke = Command::LeaseRevoke(crate::api::request::LeaseRevokeRequest { id: 7 });
        assert_eq!(sm.permit(&alice, &revoke), Err(Error::PermissionDenied));
        let join = Command::Put(PutRequest { lease: 7, ..put("/a/x") });
        assert_eq!(sm.permit(&alice, &join), Err(Error::PermissionDenied));
    }

    #[test]
    fn managing_needs_root_but_users_read_themselves() {
        let sm = machine();
        let alice = who(&sm, "alice");
        let get = |name: &str| Command::Auth(AuthRequest::UserGet { name: name.into() });
        let role = |role: &str| Command::Auth(AuthRequest::RoleGet { role: role.into() });
        assert_eq!(sm.permit(&alice, &get("alice")), Ok(()));
        assert_eq!(sm.permit(&alice, &get("bob")), Err(Error::PermissionDenied));
        assert_eq!(sm.permit(&alice, &role("rw")), Ok(()));
        assert_eq!(sm.permit(&alice, &role(ROOT)), Err(Error::PermissionDenied));
        assert_eq!(sm.permit(&alice, &Command::Auth(AuthRequest::UserList)), Err(Error::PermissionDenied));
        assert_eq!(sm.permit(&who(&sm, ROOT), &Command::Auth(AuthRequest::UserList)), Ok(()));
    }

    #[test]
    fn a_permission_revoked_in_flight_is_honoured() {
        let mut sm = machine();
        let alice = who(&sm, "alice");
        let write = Command::Authed { caller: alice, command: Box::new(Command::Put(put("/a/x"))) };
        let revoke = AuthRequest::UserRevokeRole { user: "alice".into(), role: "rw".into() };
        sm.apply(&Command::Authed { caller: who(&sm, ROOT), command: Box::new(Command::Auth(revoke)) }, None);
        let applied = sm.apply(&write, None);
        assert_eq!(applied.response.unwrap().unwrap_err(), Error::AuthOldRevision);
        assert!(applied.events.is_empty());
    }
}
