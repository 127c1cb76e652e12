//! Target `auth`: a structured sequence of auth requests — users and roles added, deleted,
//! granted and revoked, key-range permissions with arbitrary keys and range ends, auth enabled
//! and disabled, logins with right and wrong passwords, bogus tokens — interleaved with puts and
//! reads made as those users, on a real member (a one-member cluster of the core).
//!
//! Checked after every step: nothing panics; while auth is on, root exists with the root role;
//! the auth revision never goes back; and every put and read is allowed exactly when the
//! permissions in force allow it, by an oracle of its own (the requested interval cut at every
//! grant's ends, each piece inside some grant), not the store's merging of grants.

use arbitrary::{Arbitrary, Unstructured};
use keel_core::api::auth::{AuthRequest, Caller, Permission, PermissionType};
use keel_core::api::error::Error;
use keel_core::api::request::{PutRequest, RangeRequest, Request, Response};
use keel_core::cluster::LocalCluster;
use keel_core::state::auth::{AuthStore, ROOT};

/// Operations per input.
const MAX_OPS: usize = 40;
/// The users and roles operations name (index by a byte); root first.
const NAMES: [&str; 4] = [ROOT, "alice", "bob", ""];
const ROLES: [&str; 4] = [ROOT, "r1", "r2", ""];

fn user(i: u8) -> &'static str {
    NAMES[usize::from(i) % NAMES.len()]
}

fn role(i: u8) -> &'static str {
    ROLES[usize::from(i) % ROLES.len()]
}

/// Keys from a small alphabet with short lengths, so grants and requests overlap.
fn key(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().take(3).map(|b| b"ab\0\xffc"[usize::from(*b) % 5]).collect()
}

/// One step.
#[derive(Arbitrary, Debug)]
enum Op {
    UserAdd {
        user: u8,
        password: u8,
        no_password: bool,
    },
    UserDelete {
        user: u8,
    },
    ChangePassword {
        user: u8,
        password: u8,
    },
    GrantRole {
        user: u8,
        role: u8,
    },
    RevokeRole {
        user: u8,
        role: u8,
    },
    RoleAdd {
        role: u8,
    },
    RoleDelete {
        role: u8,
    },
    Permit {
        role: u8,
        kind: u8,
        key: Vec<u8>,
        range_end: Vec<u8>,
    },
    Unpermit {
        role: u8,
        key: Vec<u8>,
        range_end: Vec<u8>,
    },
    Enable,
    Disable,
    Login {
        user: u8,
        password: u8,
    },
    Put {
        user: u8,
        key: Vec<u8>,
    },
    Get {
        user: u8,
        key: Vec<u8>,
        range_end: Vec<u8>,
    },
    /// A name or token no one made: arbitrary text.
    Strange {
        name: String,
        token: String,
    },
}

struct Run {
    cluster: LocalCluster,
    /// The last token each user got (by index into NAMES).
    tokens: [Option<String>; 4],
    revision: u64,
}

/// The body: apply the operations and check each step.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut cluster = LocalCluster::new(1, 5);
    cluster.wait_for_leader();
    let mut run = Run { cluster, tokens: Default::default(), revision: 0 };
    // Start where the interesting cases are: auth on, root, alice (role r1) and bob (role r2)
    // logged in, each role with one grant; the input changes it from there.
    let prelude = [
        Op::UserAdd { user: 0, password: 0, no_password: false },
        Op::GrantRole { user: 0, role: 0 },
        Op::UserAdd { user: 1, password: 1, no_password: false },
        Op::UserAdd { user: 2, password: 2, no_password: false },
        Op::RoleAdd { role: 1 },
        Op::RoleAdd { role: 2 },
        Op::Permit { role: 1, kind: 2, key: vec![0], range_end: vec![4] },
        Op::Permit { role: 2, kind: 0, key: vec![1, 0], range_end: vec![] },
        Op::GrantRole { user: 1, role: 1 },
        Op::GrantRole { user: 2, role: 2 },
        Op::Enable,
        Op::Login { user: 0, password: 0 },
        Op::Login { user: 1, password: 1 },
        Op::Login { user: 2, password: 2 },
    ];
    for op in prelude {
        run.apply(op);
    }
    assert!(run.store().is_enabled() && run.tokens[..3].iter().all(Option::is_some), "the prelude set auth up");
    for _ in 0..MAX_OPS {
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        run.apply(op);
        run.check_invariants();
    }
}

impl Run {
    fn store(&self) -> &AuthStore {
        self.cluster.node(1).state().auth()
    }

    /// Who manages: root's token once auth is on (it may have none: then management fails).
    fn admin(&self) -> Caller {
        self.caller(0)
    }

    fn caller(&self, user: u8) -> Caller {
        let i = usize::from(user) % NAMES.len();
        self.tokens[i].clone().map_or(Caller::Anonymous, Caller::Token)
    }

    fn manage(&mut self, request: AuthRequest) -> Result<Response, Error> {
        let admin = self.admin();
        self.cluster.call_as(1, admin, Request::Auth(request))
    }

    fn apply(&mut self, op: Op) {
        let password = |p: u8| format!("pw{}", p % 3);
        match op {
            Op::UserAdd { user: u, password: p, no_password } => {
                let password_hash = if no_password { String::new() } else { password(p) };
                let _ = self.manage(AuthRequest::UserAdd { name: user(u).into(), password_hash, no_password });
            }
            Op::UserDelete { user: u } => {
                if self.manage(AuthRequest::UserDelete { name: user(u).into() }).is_ok() {
                    self.tokens[usize::from(u) % NAMES.len()] = None;
                }
            }
            Op::ChangePassword { user: u, password: p } => {
                let change = AuthRequest::UserChangePassword { name: user(u).into(), password_hash: password(p) };
                if self.manage(change).is_ok() {
                    let caller = self.caller(u);
                    let Caller::Token(_) = caller else { return };
                    let used = self.cluster.call_as(1, caller, get(b"a", b""));
                    assert!(!self.store().is_enabled() || used == Err(Error::InvalidAuthToken), "{used:?}");
                    self.tokens[usize::from(u) % NAMES.len()] = None;
                }
            }
            Op::GrantRole { user: u, role: r } => {
                let _ = self.manage(AuthRequest::UserGrantRole { user: user(u).into(), role: role(r).into() });
            }
            Op::RevokeRole { user: u, role: r } => {
                let _ = self.manage(AuthRequest::UserRevokeRole { user: user(u).into(), role: role(r).into() });
            }
            Op::RoleAdd { role: r } => drop(self.manage(AuthRequest::RoleAdd { role: role(r).into() })),
            Op::RoleDelete { role: r } => drop(self.manage(AuthRequest::RoleDelete { role: role(r).into() })),
            Op::Permit { role: r, kind, key: k, range_end } => {
                let kind =
                    [PermissionType::Read, PermissionType::Write, PermissionType::ReadWrite][usize::from(kind % 3)];
                let permission = Permission { kind, key: key(&k), range_end: key(&range_end) };
                let _ = self.manage(AuthRequest::RoleGrantPermission { role: role(r).into(), permission });
            }
            Op::Unpermit { role: r, key: k, range_end } => {
                let revoke = AuthRequest::RoleRevokePermission {
                    role: role(r).into(),
                    key: key(&k),
                    range_end: key(&range_end),
                };
                let _ = self.manage(revoke);
            }
            Op::Enable => drop(self.manage(AuthRequest::Enable)),
            Op::Disable => {
                if self.manage(AuthRequest::Disable).is_ok() {
                    self.tokens = Default::default();
                }
            }
            Op::Login { user: u, password: p } => self.login(u, &password(p)),
            Op::Put { user: u, key: k } => {
                let k = key(&k);
                let expected = self.allowed(u, false, &k, b"");
                let put = Request::Put(PutRequest { key: k.clone(), value: b"v".to_vec(), ..Default::default() });
                let result = self.cluster.call_as(1, self.caller(u), put);
                self.check_decision("put", &k, b"", expected, &result);
            }
            Op::Get { user: u, key: k, range_end } => {
                let (k, end) = (key(&k), key(&range_end));
                let expected = self.allowed(u, true, &k, &end);
                let result = self.cluster.call_as(1, self.caller(u), get(&k, &end));
                self.check_decision("get", &k, &end, expected, &result);
            }
            Op::Strange { name, token } => {
                let _ = self.manage(AuthRequest::UserAdd {
                    name: name.clone(),
                    password_hash: name.clone(),
                    no_password: false,
                });
                let _ = self.manage(AuthRequest::RoleAdd { role: name.clone() });
                let _ = self.cluster.call(1, Request::PasswordHash { name });
                let result = self.cluster.call_as(1, Caller::Token(token), get(b"a", b""));
                if self.store().is_enabled() {
                    assert!(result.is_err(), "a made-up token was let in");
                }
            }
        }
    }

    /// What a shell does: look up the hash, compare (the "hash" here is the password), get a token.
    fn login(&mut self, u: u8, password: &str) {
        let i = usize::from(u) % NAMES.len();
        let Ok(Response::PasswordHash(stored)) = self.cluster.call(1, Request::PasswordHash { name: NAMES[i].into() })
        else {
            return;
        };
        if stored.hash != password {
            return;
        }
        let issue =
            AuthRequest::Authenticate { name: NAMES[i].into(), password_hash: stored.hash, token: String::new() };
        if let Ok(Response::Auth(r)) = self.cluster.call(1, Request::Auth(issue)) {
            self.tokens[i] = Some(r.token);
        }
    }

    /// Whether user `u` (with the token it holds, if any) may read or write `[key, range_end)`
    /// now, by the oracle. `None`: the answer may be either (credentials the oracle does not judge).
    fn allowed(&self, u: u8, read: bool, key: &[u8], range_end: &[u8]) -> Option<bool> {
        let store = self.store();
        if !store.is_enabled() {
            return Some(true);
        }
        let i = usize::from(u) % NAMES.len();
        let Some(_) = &self.tokens[i] else { return Some(false) };
        let user = store.user(NAMES[i])?;
        if user.roles.contains(ROOT) {
            return Some(true);
        }
        let wanted = if read {
            [PermissionType::Read, PermissionType::ReadWrite]
        } else {
            [PermissionType::Write, PermissionType::ReadWrite]
        };
        let grants: Vec<(Vec<u8>, Option<Vec<u8>>)> = user
            .roles
            .iter()
            .filter_map(|r| store.role(r))
            .flatten()
            .filter(|p| wanted.contains(&p.kind))
            .map(|p| interval(&p.key, &p.range_end))
            .collect();
        Some(covered(&interval(key, range_end), &grants))
    }

    fn check_decision(
        &self,
        what: &str,
        key: &[u8],
        end: &[u8],
        expected: Option<bool>,
        result: &Result<Response, Error>,
    ) {
        let refused = matches!(
            result,
            Err(Error::PermissionDenied | Error::UserEmpty | Error::InvalidAuthToken | Error::AuthOldRevision)
        );
        // A request that is invalid whoever makes it (an empty key) is refused before auth is asked.
        if result.is_err() && !refused {
            return;
        }
        match expected {
            Some(true) => assert!(!refused, "{what} {key:?}..{end:?} should be allowed: {result:?}"),
            Some(false) => assert!(refused, "{what} {key:?}..{end:?} should be refused: {result:?}"),
            None => {}
        }
    }

    fn check_invariants(&mut self) {
        let store = self.store();
        if store.is_enabled() {
            let root = store.user(ROOT).expect("auth is on without a root user");
            assert!(root.roles.contains(ROOT), "auth is on and root lost the root role");
        }
        assert!(store.revision() >= self.revision, "the auth revision went back");
        self.revision = store.revision();
    }
}

fn get(key: &[u8], range_end: &[u8]) -> Request {
    Request::Range(RangeRequest { key: key.to_vec(), range_end: range_end.to_vec(), ..Default::default() })
}

/// A (key, range_end) pair as a half-open interval; `None` is no end.
fn interval(key: &[u8], range_end: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    match range_end {
        [] => (key.to_vec(), Some([key, &[0]].concat())),
        [0] => (key.to_vec(), None),
        end => (key.to_vec(), Some(end.to_vec())),
    }
}

/// Whether `grants` cover `wanted`: cut `wanted` at every grant's start and end, and find each
/// piece inside one grant. An empty request is allowed when there is any grant at all.
fn covered(wanted: &(Vec<u8>, Option<Vec<u8>>), grants: &[(Vec<u8>, Option<Vec<u8>>)]) -> bool {
    let (start, end) = wanted;
    let below_end = |p: &[u8]| end.as_deref().is_none_or(|e| p < e);
    let grants: Vec<_> = grants.iter().filter(|(s, e)| e.as_deref().is_none_or(|e| s.as_slice() < e)).collect();
    if !below_end(start) {
        return !grants.is_empty();
    }
    let mut cuts: Vec<&[u8]> = vec![start.as_slice()];
    for (s, e) in &grants {
        for p in [Some(s.as_slice()), e.as_deref()].into_iter().flatten() {
            if p > start.as_slice() && below_end(p) {
                cuts.push(p);
            }
        }
    }
    cuts.sort();
    cuts.dedup();
    cuts.iter().enumerate().all(|(i, from)| {
        let to = cuts.get(i + 1).copied().or(end.as_deref());
        grants.iter().any(|(s, e)| {
            s.as_slice() <= *from
                && match (e.as_deref(), to) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(e), Some(to)) => to <= e,
                }
        })
    })
}
