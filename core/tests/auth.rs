//! Auth across a cluster on the in-process harness: tokens issued through the log work on every
//! member, permissions are enforced on reads and writes, a revoke or password change takes
//! effect at once, and the auth store survives restarts and reaches members by snapshot.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use keel_core::api::auth::{AuthRequest, Caller, Permission, PermissionType};
use keel_core::api::error::Error;
use keel_core::api::request::*;
use keel_core::cluster::LocalCluster;

fn put(key: &str) -> Request {
    Request::Put(PutRequest { key: key.into(), value: b"v".to_vec(), ..Default::default() })
}

fn get(key: &str, serializable: bool) -> Request {
    Request::Range(RangeRequest { key: key.into(), serializable, ..Default::default() })
}

fn auth(c: &mut LocalCluster, node: u64, caller: &Caller, request: AuthRequest) -> Result<Response, Error> {
    c.call_as(node, caller.clone(), Request::Auth(request))
}

/// What a shell does for Authenticate: fetch the hash, check the password against it (here the
/// "hash" is the password itself), then have the token issued.
fn login(c: &mut LocalCluster, node: u64, name: &str, password: &str) -> Result<Caller, Error> {
    let Response::PasswordHash(stored) = c.call(node, Request::PasswordHash { name: name.into() })? else { panic!() };
    if stored.hash != password {
        return Err(Error::AuthFailed);
    }
    let request = AuthRequest::Authenticate { name: name.into(), password_hash: stored.hash, token: String::new() };
    match auth(c, node, &Caller::Anonymous, request)? {
        Response::Auth(r) => Ok(Caller::Token(r.token)),
        other => panic!("{other:?}"),
    }
}

/// root, and alice with readwrite on `/app/a/`; auth on.
fn setup(c: &mut LocalCluster, node: u64) {
    let anyone = Caller::Anonymous;
    let requests = [
        AuthRequest::UserAdd { name: "root".into(), password_hash: "rootpw".into(), no_password: false },
        AuthRequest::UserGrantRole { user: "root".into(), role: "root".into() },
        AuthRequest::UserAdd { name: "alice".into(), password_hash: "alicepw".into(), no_password: false },
        AuthRequest::RoleAdd { role: "app".into() },
        AuthRequest::RoleGrantPermission {
            role: "app".into(),
            permission: Permission {
                kind: PermissionType::ReadWrite,
                key: b"/app/a/".to_vec(),
                range_end: b"/app/a0".to_vec(),
            },
        },
        AuthRequest::UserGrantRole { user: "alice".into(), role: "app".into() },
        AuthRequest::Enable,
    ];
    for request in requests {
        auth(c, node, &anyone, request).unwrap();
    }
}

#[test]
fn tokens_work_on_every_member_and_permissions_hold() {
    let mut c = LocalCluster::new(3, 7);
    let leader = c.wait_for_leader();
    setup(&mut c, leader);
    let follower = c.running().into_iter().find(|id| *id != leader).unwrap();
    assert_eq!(c.call(follower, put("/app/a/x")), Err(Error::UserEmpty), "no credentials");
    assert_eq!(login(&mut c, follower, "alice", "wrong").unwrap_err(), Error::AuthFailed);
    assert_eq!(c.call(leader, Request::PasswordHash { name: "bob".into() }).unwrap_err(), Error::AuthFailed);
    let alice = login(&mut c, follower, "alice", "alicepw").unwrap();
    for node in c.running() {
        c.call_as(node, alice.clone(), put("/app/a/x")).unwrap();
        c.call_as(node, alice.clone(), get("/app/a/x", false)).unwrap();
        c.call_as(node, alice.clone(), get("/app/a/x", true)).unwrap();
        assert_eq!(c.call_as(node, alice.clone(), put("/app/b/x")), Err(Error::PermissionDenied));
        assert_eq!(c.call_as(node, alice.clone(), get("/app/b/x", false)), Err(Error::PermissionDenied));
        let list = auth(&mut c, node, &alice, AuthRequest::UserList);
        assert_eq!(list, Err(Error::PermissionDenied), "managing users needs root");
    }
    let bogus = Caller::Token("nope.1".into());
    assert_eq!(c.call_as(leader, bogus, put("/app/a/x")), Err(Error::InvalidAuthToken));
}

#[test]
fn revokes_and_password_changes_take_effect_at_once() {
    let mut c = LocalCluster::new(3, 8);
    let leader = c.wait_for_leader();
    setup(&mut c, leader);
    let root = login(&mut c, leader, "root", "rootpw").unwrap();
    let alice = login(&mut c, leader, "alice", "alicepw").unwrap();
    c.call_as(leader, alice.clone(), put("/app/a/x")).unwrap();
    let revoke = AuthRequest::RoleRevokePermission {
        role: "app".into(),
        key: b"/app/a/".to_vec(),
        range_end: b"/app/a0".to_vec(),
    };
    auth(&mut c, leader, &root, revoke).unwrap();
    assert_eq!(c.call_as(leader, alice.clone(), put("/app/a/x")), Err(Error::PermissionDenied));
    let change = AuthRequest::UserChangePassword { name: "alice".into(), password_hash: "newpw".into() };
    auth(&mut c, leader, &root, change).unwrap();
    assert_eq!(
        c.call_as(leader, alice, get("/app/a/x", true)),
        Err(Error::InvalidAuthToken),
        "tokens die with the password"
    );
    assert!(login(&mut c, leader, "alice", "newpw").is_ok());
    auth(&mut c, leader, &root, AuthRequest::Disable).unwrap();
    c.call(leader, put("/anything")).unwrap();
}

#[test]
fn the_auth_store_survives_restarts_and_travels_in_snapshots() {
    let mut c = LocalCluster::with_config(3, 9, |cfg| {
        cfg.snapshot_count = 50;
        cfg.snapshot_catchup_entries = 10;
    });
    let leader = c.wait_for_leader();
    let lagging = c.running().into_iter().find(|id| *id != leader).unwrap();
    c.crash(lagging);
    setup(&mut c, leader);
    let root = login(&mut c, leader, "root", "rootpw").unwrap();
    for i in 0..200 {
        c.call_as(leader, root.clone(), put(&format!("/k{i}"))).unwrap();
    }
    c.restart(lagging);
    c.tick_until(50, |c| c.node(lagging).applied_index() == c.node(leader).applied_index());
    assert!(c.disk(lagging).stored.snapshot.as_ref().is_some_and(|s| s.index > 100), "caught up by snapshot");
    assert_eq!(c.call(lagging, put("/app/a/x")), Err(Error::UserEmpty), "auth is on there too");
    let alice = login(&mut c, lagging, "alice", "alicepw").unwrap();
    c.call_as(lagging, alice, put("/app/a/x")).unwrap();
    for id in [1, 2, 3] {
        c.crash(id);
    }
    for id in [1, 2, 3] {
        c.restart(id);
    }
    let leader = c.wait_for_leader();
    assert_eq!(c.call_as(leader, root, put("/x")), Err(Error::InvalidAuthToken), "tokens are volatile");
    let root = login(&mut c, leader, "root", "rootpw").unwrap();
    let Response::Auth(users) = auth(&mut c, leader, &root, AuthRequest::UserList).unwrap() else { panic!() };
    assert_eq!(users.users, ["alice", "root"]);
    c.tick_until(50, |c| {
        let applied: Vec<u64> = c.running().iter().map(|id| c.node(*id).applied_index()).collect();
        applied.iter().all(|a| *a == applied[0])
    });
    let hashes: Vec<u64> = c.running().iter().map(|id| c.node(*id).state().hash()).collect();
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "members diverged: {hashes:?}");
}
