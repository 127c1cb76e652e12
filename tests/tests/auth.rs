//! Authentication and RBAC through the real clients: etcdctl 3.4's `user`, `role` and `auth`
//! commands and per-user requests, compared line by line with etcd 3.4 itself, and the JSON
//! gateway's authenticate-then-call with curl.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use keel_tests::{curl, etcdctl, json, ProcessCluster, ReferenceEtcd, Run};

/// One etcdctl run as a transcript line: arguments, exit code, output and the last error line
/// (of a client log line, only its error: the rest holds times and ports).
fn line(args: &[&str], r: &Run) -> String {
    let last = r.stderr.lines().last().unwrap_or("");
    let last = match serde_json::from_str::<serde_json::Value>(last) {
        Ok(logged) => logged["error"].as_str().unwrap_or("").to_string(),
        Err(_) => last.to_string(),
    };
    format!("{args:?} -> {} {:?} {last:?}", r.code, r.stdout)
}

/// What an operator sees setting up auth on `endpoint` and using it: users and roles, enabling,
/// per-prefix grants, forbidden reads, writes, compares and lease revokes, management by a
/// non-root user, the errors of bad management, and disabling. Lease ids read as `<lease>`.
fn transcript(endpoint: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut run = |args: &[&str], input: &str| {
        let r = etcdctl(endpoint, args, input);
        seen.push(line(args, &r));
        r
    };
    let root = "--user=root:rootpw";
    let alice = "--user=alice:alicepw";
    for args in [
        &["user", "add", "root", "--new-user-password=rootpw"][..],
        &["user", "add", "alice", "--new-user-password=alicepw"],
        &["user", "add", "alice", "--new-user-password=again"],
        &["role", "add", "app"],
        &["role", "add", "app"],
        &["role", "grant-permission", "app", "readwrite", "/app/a/", "--prefix"],
        &["role", "grant-permission", "app", "read", "/q", "--from-key"],
        &["role", "grant-permission", "app", "read", "/x"],
        &["role", "grant-permission", "app", "write", "/y", "/z"],
        &["user", "grant-role", "alice", "app"],
        &["user", "grant-role", "alice", "nope"],
        &["user", "grant-role", "bob", "app"],
        &["role", "get", "app"],
        &["user", "get", "alice"],
        // etcd answers "root user does not have root role"; etcdctl then makes the role and retries.
        &["auth", "enable"],
        &["put", "/app/a/k", "v"],
        &["--user=alice:wrong", "get", "/app/a/k"],
        &[alice, "put", "/app/a/k", "v1"],
        &[alice, "get", "/app/a/k", "--print-value-only"],
        &[alice, "get", "/app/b/k"],
        &[alice, "put", "/app/b/k", "v"],
        &[alice, "get", "/q/anything"],
        &[alice, "put", "/q/anything", "v"],
        &[alice, "put", "/y/1", "v"],
        &[alice, "get", "/y/1"],
        &[alice, "del", "/app/a/", "--prefix"],
        // A watch on a range alice may not read is refused when it is created.
        &[alice, "watch", "/app/b/", "--prefix"],
        &[alice, "user", "list"],
        &[alice, "user", "get", "alice"],
        &[alice, "user", "get", "root"],
        &[alice, "role", "get", "app"],
        &[alice, "role", "get", "root"],
        &[alice, "auth", "disable"],
        &[root, "user", "list"],
        &[root, "role", "list"],
        &[root, "user", "delete", "root"],
        &[root, "user", "revoke-role", "root", "root"],
        &[root, "user", "revoke-role", "alice", "root"],
        &[root, "role", "revoke-permission", "app", "/nope"],
        &[root, "role", "revoke-permission", "app", "/x"],
        &[root, "role", "revoke-permission", "app", "/app/a/", "--prefix"],
        &[alice, "get", "/app/a/k"],
    ] {
        run(args, "");
    }
    // A compare on a forbidden key fails the whole txn, whichever branch would run.
    run(&[root, "role", "grant-permission", "app", "readwrite", "/app/a/", "--prefix"], "");
    run(&[alice, "txn"], "value(\"/app/b/k\") = \"v\"\n\nput /app/a/t yes\n\n\n");
    run(&[alice, "txn"], "value(\"/app/a/k\") = \"v1\"\n\nput /app/a/t yes\n\nget /app/b/k\n\n");
    // A lease holding a key alice may not write cannot be revoked by her.
    let granted = etcdctl(endpoint, &[root, "lease", "grant", "60"], "");
    let lease = granted.stdout.split_whitespace().nth(1).unwrap_or("").to_string();
    run(&[root, "put", "/secret", "s", &format!("--lease={lease}")], "");
    run(&[alice, "lease", "revoke", &lease], "");
    run(&[alice, "lease", "timetolive", &lease, "--keys"], "");
    // The lock service runs its puts and reads as the caller.
    run(&[alice, "lock", "/app/a/lock", "echo", "held"], "");
    run(&[alice, "lock", "/other/lock", "echo", "held"], "");
    run(&[root, "lease", "revoke", &lease], "");
    run(&[root, "auth", "disable"], "");
    run(&["get", "/app/a/k", "--print-value-only"], "");
    seen.iter().map(|l| without_remaining_ttl(&l.replace(&lease, "<lease>"))).collect()
}

/// `remaining(59s)` as `remaining(<s>)`: the second it is read in differs from run to run.
fn without_remaining_ttl(line: &str) -> String {
    match line.split_once("remaining(") {
        Some((before, after)) => format!("{before}remaining(<s>){}", after.split_once(')').map_or("", |(_, a)| a)),
        None => line.to_string(),
    }
}

#[test]
fn etcdctl_user_role_and_auth_commands_match_etcd() {
    let keel = ProcessCluster::start(1);
    let etcd = ReferenceEtcd::start();
    let on_keel = transcript(keel.url(0));
    let on_etcd = transcript(&etcd.client_url);
    for (k, e) in on_keel.iter().zip(&on_etcd) {
        assert_eq!(k, e, "left: Keel, right: etcd");
    }
    assert_eq!(on_keel.len(), on_etcd.len());
    let denied = on_keel.iter().filter(|l| l.contains("etcdserver: permission denied")).count();
    assert!(denied >= 8, "the forbidden calls were refused: {on_keel:#?}");
}

fn post(url: &str, call: &str, token: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let target = format!("{url}/v3/{call}");
    let header = token.map(|t| format!("Authorization: {t}"));
    let mut args = vec!["-X", "POST", &target, "-d", body];
    if let Some(h) = &header {
        args.extend(["-H", h.as_str()]);
    }
    let (code, answer) = curl(&args);
    (code, json(&answer))
}

/// The gateway as etcd's documentation drives it: authenticate, then call with the token.
fn gateway_transcript(u: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for (call, body) in [
        ("auth/user/add", r#"{"name":"root","password":"pw"}"#),
        ("auth/user/grant", r#"{"user":"root","role":"root"}"#),
        ("auth/enable", "{}"),
        ("kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#),
        ("auth/authenticate", r#"{"name":"root","password":"wrong"}"#),
    ] {
        let (code, answer) = post(u, call, None, body);
        seen.push(format!("{call} -> {code} {}", answer.get("error").unwrap_or(&serde_json::Value::Null)));
    }
    let (code, auth) = post(u, "auth/authenticate", None, r#"{"name":"root","password":"pw"}"#);
    let token = auth["token"].as_str().unwrap_or("").to_string();
    seen.push(format!("auth/authenticate -> {code} token given: {}", !token.is_empty()));
    let (code, put) = post(u, "kv/put", Some(&token), r#"{"key":"Zm9v","value":"YmFy"}"#);
    seen.push(format!("kv/put with token -> {code} {}", put.get("error").is_none()));
    let (code, bad) = post(u, "kv/put", Some("bogus.1"), r#"{"key":"Zm9v","value":"YmFy"}"#);
    seen.push(format!("kv/put with a bogus token -> {code} {}", bad["error"]));
    let (code, _) = post(u, "auth/disable", Some(&token), "{}");
    seen.push(format!("auth/disable -> {code}"));
    seen
}

#[test]
fn the_gateway_authenticates_and_takes_the_token_as_etcds() {
    let keel = ProcessCluster::start(1);
    let etcd = ReferenceEtcd::start();
    let on_keel = gateway_transcript(keel.url(0));
    assert_eq!(on_keel, gateway_transcript(&etcd.client_url), "left: Keel, right: etcd");
    assert!(on_keel.contains(&"kv/put with token -> 200 true".to_string()), "{on_keel:#?}");
}

/// etcd 3.4 keeps v2's keys and auth apart from v3's; Keel has one key space and one set of
/// users, so the v2 API takes HTTP basic auth with v3's users and their grants, and answers
/// requests without credentials as etcd's v2 auth does (110, "Insufficient credentials").
#[test]
fn the_v2_api_takes_basic_auth_with_the_same_users_and_grants() {
    let keel = ProcessCluster::start(1);
    let e = keel.url(0);
    for args in [
        &["user", "add", "root", "--new-user-password=pw"][..],
        &["user", "grant-role", "root", "root"],
        &["user", "add", "alice", "--new-user-password=apw"],
        &["role", "add", "app"],
        // A v2 directory's read covers its own key too: grant the prefix without the slash.
        &["role", "grant-permission", "app", "readwrite", "/app", "--prefix"],
        &["user", "grant-role", "alice", "app"],
        &["auth", "enable"],
    ] {
        assert_eq!(etcdctl(e, args, "").code, 0, "{args:?}");
    }
    let v2 = |user: Option<&str>, args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if let Some(u) = user {
            all.extend(["-u".to_string(), u.to_string()]);
        }
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let (code, body) = curl(&refs);
        (code, json(&body))
    };
    let key = |k: &str| format!("{e}/v2/keys{k}");
    let refused = |(code, body): (u16, serde_json::Value)| {
        assert_eq!((code, &body["errorCode"], &body["cause"]), (401, &110.into(), &"Insufficient credentials".into()));
    };
    refused(v2(None, &["-X", "PUT", &key("/app/x"), "-d", "value=1"]));
    refused(v2(None, &[&key("/app/x")]));
    refused(v2(Some("alice:wrong"), &[&key("/app/x")]));
    assert_eq!(v2(Some("alice:apw"), &["-X", "PUT", &key("/app/x"), "-d", "value=1"]).0, 201);
    let (code, got) = v2(Some("alice:apw"), &[&key("/app/x")]);
    assert_eq!((code, &got["node"]["value"]), (200, &"1".into()));
    let (code, listed) = v2(Some("alice:apw"), &[&format!("{}?recursive=true", key("/app"))]);
    assert_eq!((code, &listed["node"]["nodes"][0]["key"]), (200, &"/app/x".into()), "{listed}");
    refused(v2(Some("alice:apw"), &["-X", "PUT", &key("/other"), "-d", "value=1"]));
    refused(v2(Some("alice:apw"), &[&key("/other")]));
    assert_eq!(v2(Some("root:pw"), &["-X", "PUT", &key("/other"), "-d", "value=1"]).0, 201);
    assert_eq!(etcdctl(e, &["--user=root:pw", "auth", "disable"], "").code, 0);
    assert_eq!(v2(None, &["-X", "PUT", &key("/other"), "-d", "value=2"]).0, 200, "auth off: open again");
}
