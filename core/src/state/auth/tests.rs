use super::*;
use crate::api::auth::PermissionType;

fn apply(store: &mut AuthStore, request: AuthRequest) -> Result<AuthResponse> {
    store.apply(&request)
}

fn user_add(name: &str) -> AuthRequest {
    AuthRequest::UserAdd { name: name.into(), password_hash: format!("hash-of-{name}"), no_password: false }
}

fn grant(user: &str, role: &str) -> AuthRequest {
    AuthRequest::UserGrantRole { user: user.into(), role: role.into() }
}

fn permit(role: &str, kind: PermissionType, key: &str, range_end: &str) -> AuthRequest {
    let permission = Permission { kind, key: key.into(), range_end: range_end.into() };
    AuthRequest::RoleGrantPermission { role: role.into(), permission }
}

/// root with the root role, alice with role `app` (readwrite on /app/a/), auth on.
fn enabled_store() -> AuthStore {
    let mut store = AuthStore::default();
    for request in [
        user_add(ROOT),
        grant(ROOT, ROOT),
        user_add("alice"),
        AuthRequest::RoleAdd { role: "app".into() },
        permit("app", PermissionType::ReadWrite, "/app/a/", "/app/a0"),
        grant("alice", "app"),
        AuthRequest::Enable,
    ] {
        apply(&mut store, request).unwrap();
    }
    store
}

fn as_user(store: &AuthStore, user: &str) -> AuthInfo {
    AuthInfo { user: user.into(), revision: store.revision() }
}

#[test]
fn enable_needs_root_with_the_root_role() {
    let mut store = AuthStore::default();
    assert_eq!(apply(&mut store, AuthRequest::Enable), Err(Error::RootUserNotExist));
    apply(&mut store, user_add(ROOT)).unwrap();
    assert_eq!(apply(&mut store, AuthRequest::Enable), Err(Error::RootRoleNotExist));
    apply(&mut store, grant(ROOT, ROOT)).unwrap();
    apply(&mut store, AuthRequest::Enable).unwrap();
    assert!(store.is_enabled());
    let status = apply(&mut store, AuthRequest::Status).unwrap();
    assert_eq!((status.enabled, status.auth_revision), (true, 3), "user add, grant, enable");
}

#[test]
fn root_is_protected_only_while_auth_is_on() {
    let mut store = enabled_store();
    assert_eq!(apply(&mut store, AuthRequest::UserDelete { name: ROOT.into() }), Err(Error::InvalidAuthMgmt));
    let revoke = AuthRequest::UserRevokeRole { user: ROOT.into(), role: ROOT.into() };
    assert_eq!(apply(&mut store, revoke.clone()), Err(Error::InvalidAuthMgmt));
    assert_eq!(apply(&mut store, AuthRequest::RoleDelete { role: ROOT.into() }), Err(Error::InvalidAuthMgmt));
    apply(&mut store, AuthRequest::Disable).unwrap();
    apply(&mut store, revoke).unwrap();
    apply(&mut store, AuthRequest::UserDelete { name: ROOT.into() }).unwrap();
}

#[test]
fn management_errors_are_etcds() {
    let mut store = enabled_store();
    assert_eq!(apply(&mut store, user_add("alice")), Err(Error::UserAlreadyExist));
    assert_eq!(apply(&mut store, user_add("")), Err(Error::UserEmpty));
    assert_eq!(apply(&mut store, AuthRequest::RoleAdd { role: "app".into() }), Err(Error::RoleAlreadyExist));
    assert_eq!(apply(&mut store, AuthRequest::RoleAdd { role: "".into() }), Err(Error::RoleEmpty));
    assert_eq!(apply(&mut store, grant("bob", "app")), Err(Error::UserNotFound));
    assert_eq!(apply(&mut store, grant("alice", "nope")), Err(Error::RoleNotFound));
    let revoke = AuthRequest::UserRevokeRole { user: "alice".into(), role: "other".into() };
    assert_eq!(apply(&mut store, revoke), Err(Error::RoleNotGranted));
    let revoke = AuthRequest::RoleRevokePermission { role: "app".into(), key: b"/x".to_vec(), range_end: vec![] };
    assert_eq!(apply(&mut store, revoke), Err(Error::PermissionNotGranted));
    assert_eq!(apply(&mut store, AuthRequest::UserGet { name: "bob".into() }), Err(Error::UserNotFound));
    assert_eq!(apply(&mut store, AuthRequest::RoleGet { role: "nope".into() }), Err(Error::RoleNotFound));
}

#[test]
fn every_change_bumps_the_revision_and_reads_do_not() {
    let mut store = enabled_store();
    let before = store.revision();
    apply(&mut store, AuthRequest::UserList).unwrap();
    apply(&mut store, AuthRequest::RoleGet { role: "app".into() }).unwrap();
    apply(&mut store, grant("alice", "app")).unwrap();
    assert_eq!(store.revision(), before, "reads and a grant already held change nothing");
    let change = AuthRequest::UserChangePassword { name: "alice".into(), password_hash: "new".into() };
    apply(&mut store, change).unwrap();
    assert_eq!(store.revision(), before + 1);
    assert_eq!(store.user("alice").unwrap().password_hash, "new");
}

#[test]
fn listings_are_sorted_and_permissions_replace_by_range() {
    let mut store = enabled_store();
    apply(&mut store, user_add("bob")).unwrap();
    apply(&mut store, permit("app", PermissionType::Read, "/q", "\0")).unwrap();
    apply(&mut store, permit("app", PermissionType::Read, "/app/a/", "/app/a0")).unwrap();
    let users = apply(&mut store, AuthRequest::UserList).unwrap().users;
    assert_eq!(users, ["alice", "bob", "root"]);
    let perms = apply(&mut store, AuthRequest::RoleGet { role: "app".into() }).unwrap().permissions;
    let listed: Vec<_> = perms.iter().map(|p| (p.kind, p.key.as_slice())).collect();
    assert_eq!(listed, [(PermissionType::Read, &b"/app/a/"[..]), (PermissionType::Read, &b"/q"[..])]);
    apply(&mut store, AuthRequest::RoleDelete { role: "app".into() }).unwrap();
    assert!(apply(&mut store, AuthRequest::UserGet { name: "alice".into() }).unwrap().roles.is_empty());
}

#[test]
fn checks_follow_roles_ranges_and_the_revision() {
    let mut store = enabled_store();
    let alice = as_user(&store, "alice");
    assert_eq!(store.check(&alice, Access::Read, b"/app/a/x", b""), Ok(()));
    assert_eq!(store.check(&alice, Access::Write, b"/app/a/", b"/app/a0"), Ok(()));
    assert_eq!(store.check(&alice, Access::Read, b"/app/b/x", b""), Err(Error::PermissionDenied));
    assert_eq!(store.check(&AuthInfo::default(), Access::Read, b"/app/a/x", b""), Err(Error::UserEmpty));
    assert_eq!(store.check(&as_user(&store, ROOT), Access::Write, b"/anything", b"\0"), Ok(()));
    assert_eq!(store.check(&as_user(&store, "ghost"), Access::Read, b"/x", b""), Err(Error::PermissionDenied));
    apply(&mut store, permit("app", PermissionType::Read, "/ro", "")).unwrap();
    assert_eq!(store.check(&alice, Access::Read, b"/ro", b""), Err(Error::AuthOldRevision), "credentials of before");
    let alice = as_user(&store, "alice");
    assert_eq!(store.check(&alice, Access::Read, b"/ro", b""), Ok(()));
    assert_eq!(store.check(&alice, Access::Write, b"/ro", b""), Err(Error::PermissionDenied));
    assert_eq!(store.check_admin(&alice), Err(Error::PermissionDenied));
    assert_eq!(store.check_admin(&as_user(&store, ROOT)), Ok(()));
    assert_eq!(store.check_admin(&AuthInfo::default()), Err(Error::UserEmpty));
    apply(&mut store, AuthRequest::Disable).unwrap();
    assert_eq!(store.check(&AuthInfo::default(), Access::Write, b"/x", b""), Ok(()), "off: no checks");
}
