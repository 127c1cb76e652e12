//! `keelctl` against real `keel` processes: put/get/del, prefixes, JSON output, etcd's error
//! lines and exit codes, endpoint fail-over, members, endpoint health and status, leases, and watch.
//! Needs both binaries built (`cargo build -p keel-server`).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use keel_tests::{curl, free_port, json, keelctl_binary, run, ProcessCluster, Run};

/// Run `keelctl --endpoints <endpoints> <args>` (with `KEELCTL_ENDPOINTS` cleared).
fn keelctl(endpoints: &str, args: &[&str]) -> Run {
    run(Command::new(keelctl_binary()).env_remove("KEELCTL_ENDPOINTS").arg("--endpoints").arg(endpoints).args(args))
}

/// Run `keelctl` and insist that it succeeded; returns its stdout.
fn ok(endpoints: &str, args: &[&str]) -> String {
    let r = keelctl(endpoints, args);
    assert_eq!(r.code, 0, "keelctl {args:?} failed: {}{}", r.stdout, r.stderr);
    r.stdout
}

/// An endpoint nothing listens on.
fn dead_endpoint() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

#[test]
fn put_then_get_prints_the_key_and_its_value() {
    let c = ProcessCluster::start(1);
    let e = c.url(0);
    assert_eq!(ok(e, &["put", "/greeting", "hello"]), "OK\n");
    assert_eq!(ok(e, &["get", "/greeting"]), "/greeting\nhello\n");
    // The leading slash is optional; --consistent reads through quorum.
    assert_eq!(ok(e, &["get", "greeting", "--consistent"]), "/greeting\nhello\n");
    // Keys and values are escaped: spaces, '+', '&', '=', '%', '?' and a leading '-'.
    assert_eq!(ok(e, &["put", "/odd key?%", "-a+b&c=d e"]), "OK\n");
    assert_eq!(ok(e, &["get", "/odd key?%"]), "/odd key?%\n-a+b&c=d e\n");
    let (_, body) = curl(&[&format!("{e}/v2/keys/odd%20key%3F%25")]);
    assert_eq!(json(&body)["node"]["value"], "-a+b&c=d e");
}

#[test]
fn json_output_is_the_servers_json_and_ttl_is_passed_on() {
    let c = ProcessCluster::start(1);
    let e = c.url(0);
    let put = json(&ok(e, &["-w", "json", "put", "/lease/me", "v", "--ttl", "30"]));
    assert_eq!(put["action"], "set");
    assert_eq!(put["node"]["ttl"], 30);
    let got = json(&ok(e, &["get", "/lease/me", "--write-out", "json"]));
    assert_eq!(got["action"], "get");
    assert_eq!(got["node"]["value"], "v");
    assert!(got["node"]["expiration"].is_string(), "{got}");
    assert_eq!(got["node"]["modifiedIndex"], put["node"]["modifiedIndex"]);
}

#[test]
fn get_prefix_lists_every_key_below_a_directory_in_key_order() {
    let c = ProcessCluster::start(1);
    let e = c.url(0);
    for (k, v) in [("/dir/b", "2"), ("/dir/sub/c", "3"), ("/dir/a", "1"), ("/other", "x")] {
        ok(e, &["put", k, v]);
    }
    assert_eq!(ok(e, &["get", "/dir", "--prefix"]), "/dir/a\n1\n/dir/b\n2\n/dir/sub/c\n3\n");
    // Without --prefix a directory lists only the keys right in it.
    assert_eq!(ok(e, &["get", "/dir"]), "/dir/a\n1\n/dir/b\n2\n");
    let everything = ok(e, &["get", "/", "--prefix"]);
    assert!(everything.ends_with("/other\nx\n"), "{everything}");
}

#[test]
fn del_removes_a_key_and_del_prefix_removes_a_whole_directory() {
    let c = ProcessCluster::start(1);
    let e = c.url(0);
    ok(e, &["put", "/k", "v"]);
    ok(e, &["put", "/jobs/1", "a"]);
    ok(e, &["put", "/jobs/deep/2", "b"]);
    assert_eq!(ok(e, &["del", "/k"]), "OK\n");
    assert_eq!(keelctl(e, &["get", "/k"]).code, 1);
    // A directory is not deleted without --prefix (etcd's 102), and stays whole.
    let refused = keelctl(e, &["del", "/jobs"]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.starts_with("Error:  102: Not a file (/jobs) ["), "{}", refused.stderr);
    assert_eq!(ok(e, &["get", "/jobs", "--prefix"]), "/jobs/1\na\n/jobs/deep/2\nb\n");
    assert_eq!(ok(e, &["del", "/jobs", "--prefix"]), "OK\n");
    assert_eq!(keelctl(e, &["get", "/jobs/deep/2"]).code, 1);
    assert_eq!(keelctl(e, &["get", "/jobs"]).code, 1);
}

#[test]
fn server_errors_print_etcds_error_line_and_exit_1() {
    let c = ProcessCluster::start(1);
    let e = c.url(0);
    ok(e, &["put", "/present", "v"]);
    let missing = keelctl(e, &["get", "/nope"]);
    assert_eq!(missing.code, 1);
    assert_eq!(missing.stdout, "");
    let line = missing.stderr.trim_end();
    assert!(line.starts_with("Error:  100: Key not found (/nope) ["), "{line}");
    assert!(line.ends_with(']') && !line.contains('\n'), "{line}");
    let index: u64 = line.rsplit('[').next().and_then(|i| i.trim_end_matches(']').parse().ok()).expect("an index");
    assert!(index >= 2, "{line}");
    // Under -w json the error is the server's JSON, on stderr.
    let as_json = keelctl(e, &["-w", "json", "del", "/nope"]);
    assert_eq!(as_json.code, 1);
    assert_eq!(json(&as_json.stderr)["errorCode"], 100);
    // Members API errors carry only a message.
    let unknown = keelctl(e, &["member", "remove", "abcdef"]);
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.starts_with("Error:  "), "{}", unknown.stderr);
}

#[test]
fn unreachable_endpoints_are_reported_with_exit_1() {
    let (a, b) = (dead_endpoint(), dead_endpoint());
    for args in [&["get", "/k"][..], &["put", "/k", "v"], &["member", "list"], &["watch", "/k"]] {
        let r = keelctl(&format!("{a},{b}"), args);
        assert_eq!(r.code, 1, "{args:?}");
        assert_eq!(r.stderr, format!("Error: could not connect to {a},{b}\n"), "{args:?}");
        assert_eq!(r.stdout, "");
    }
    let bad = keelctl("ftp://127.0.0.1:1", &["get", "/k"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.starts_with("Error: "), "{}", bad.stderr);
}

#[test]
fn endpoints_are_tried_in_order_until_one_answers_also_from_the_environment() {
    let c = ProcessCluster::start(1);
    let endpoints = format!("{},{}", dead_endpoint(), c.url(0));
    assert_eq!(ok(&endpoints, &["put", "/k", "v"]), "OK\n");
    let from_env = run(Command::new(keelctl_binary()).env("KEELCTL_ENDPOINTS", &endpoints).args(["get", "/k"]));
    assert_eq!((from_env.code, from_env.stdout.as_str()), (0, "/k\nv\n"), "{}", from_env.stderr);
}

#[test]
fn member_list_shows_every_members_id_name_and_urls() {
    let c = ProcessCluster::start(3);
    let listed = ok(c.url(1), &["member", "list"]);
    let (_, body) = curl(&[&format!("{}/v2/members", c.url(0))]);
    let members = json(&body)["members"].as_array().cloned().expect("members");
    assert_eq!(members.len(), 3);
    let lines: Vec<&str> = listed.lines().collect();
    assert!(lines[1].contains("ID") && lines[1].contains("NAME") && lines[1].contains("PEER ADDRS"), "{listed}");
    for m in &c.members {
        let id = members
            .iter()
            .find(|j| j["name"] == m.name.as_str())
            .map(|j| j["id"].as_str().unwrap_or(""))
            .expect("listed by curl");
        let row = lines
            .iter()
            .find(|l| l.contains(&format!(" {} ", m.name)))
            .unwrap_or_else(|| panic!("{} missing:\n{listed}", m.name));
        for part in [id, "started", &m.peer_url, &m.client_url] {
            assert!(row.contains(part), "{part} not in {row}");
        }
    }
    let as_json = json(&ok(c.url(2), &["-w", "json", "member", "list"]));
    assert_eq!(as_json["members"].as_array().map(Vec::len), Some(3));
}

#[test]
fn member_add_then_remove_changes_the_member_list() {
    let c = ProcessCluster::start(3);
    let e = c.url(0);
    let peer = format!("http://127.0.0.1:{}", free_port());
    let added = ok(e, &["member", "add", "newbie", "--peer-urls", &peer]);
    let id = added
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("Member "))
        .and_then(|l| l.strip_suffix(" added"))
        .expect(&added)
        .to_string();
    assert!(added.contains("ETCD_NAME=\"newbie\""), "{added}");
    assert!(added.contains(&format!("newbie={peer}")) && added.contains("m0=http://"), "{added}");
    assert!(added.contains("ETCD_INITIAL_CLUSTER_STATE=\"existing\""), "{added}");
    let listed = ok(e, &["member", "list"]);
    let row = listed.lines().find(|l| l.contains(&id)).unwrap_or_else(|| panic!("{id} not in\n{listed}"));
    assert!(row.contains("unstarted") && row.contains(&peer), "{row}");
    assert_eq!(ok(e, &["member", "remove", &id]), format!("Member {id} removed\n"));
    assert!(!ok(e, &["member", "list"]).contains(&id));
}

#[test]
fn endpoint_health_reports_each_endpoint_and_fails_if_one_is_down() {
    let c = ProcessCluster::start(1);
    let live = c.url(0).to_string();
    let healthy = ok(&live, &["endpoint", "health"]);
    assert!(healthy.starts_with(&format!("{live} is healthy: ")), "{healthy}");
    let dead = dead_endpoint();
    let mixed = keelctl(&format!("{live},{dead}"), &["endpoint", "health"]);
    assert_eq!(mixed.code, 1);
    assert!(mixed.stdout.starts_with(&format!("{live} is healthy: ")), "{}", mixed.stdout);
    assert!(mixed.stderr.contains(&format!("{dead} is unhealthy")), "{}", mixed.stderr);
    assert!(mixed.stderr.ends_with("Error: unhealthy cluster\n"), "{}", mixed.stderr);
    let as_json = json(&keelctl(&format!("{live},{dead}"), &["-w", "json", "endpoint", "health"]).stdout);
    assert_eq!(as_json[0]["health"], true);
    assert_eq!(as_json[1]["health"], false);
}

#[test]
fn endpoint_status_shows_one_leader_with_raft_term_and_index() {
    let c = ProcessCluster::start(3);
    let statuses = json(&ok(c.url(0), &["-w", "json", "endpoint", "status", "--cluster"]));
    let statuses = statuses.as_array().cloned().expect("an array");
    assert_eq!(statuses.len(), 3);
    assert_eq!(statuses.iter().filter(|s| s["leader"] == true).count(), 1, "{statuses:?}");
    for s in &statuses {
        assert!(s["raftTerm"].as_u64() >= Some(1) && s["raftIndex"].as_u64() >= Some(1), "{s}");
        assert_eq!(s["id"], s["stats"]["id"]);
    }
    let leader = c.leader().expect("a leader");
    let table = ok(c.url(leader), &["endpoint", "status"]);
    let row = table.lines().find(|l| l.contains(c.url(leader))).unwrap_or_else(|| panic!("{table}"));
    let (_, stats) = curl(&[&format!("{}/v2/stats/self", c.url(leader))]);
    let id = json(&stats)["id"].as_str().map(String::from).expect("an id");
    let cells: Vec<&str> = row.split('|').map(str::trim).filter(|s| !s.is_empty()).collect();
    assert_eq!(cells[..4], [c.url(leader), id.as_str(), "3.4.0", "true"], "{table}");
    assert!(cells[4].parse::<u64>().is_ok_and(|t| t >= 1) && cells[5].parse::<u64>().is_ok_and(|i| i >= 1), "{table}");
}

/// Lines a child writes to stdout, as they come.
fn lines_of(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next `n` lines, failing the test after 15 s.
fn next_lines(rx: &Receiver<String>, n: usize) -> Vec<String> {
    (0..n).map(|_| rx.recv_timeout(Duration::from_secs(15)).expect("a watch line in time")).collect()
}

/// Start `keelctl watch` with stdout piped.
fn spawn_watch(endpoint: &str, args: &[&str]) -> Child {
    Command::new(keelctl_binary())
        .env_remove("KEELCTL_ENDPOINTS")
        .args(["--endpoints", endpoint, "watch"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("keelctl watch starts")
}

#[test]
fn watch_prefix_from_a_revision_prints_every_event_in_order() {
    let c = ProcessCluster::start(1);
    let e = c.url(0);
    let first = json(&ok(e, &["-w", "json", "put", "/jobs/a", "1"]));
    let rev = first["node"]["modifiedIndex"].as_u64().expect("an index").to_string();
    let mut watch = spawn_watch(e, &["/jobs", "--prefix", "--rev", &rev]);
    let rx = lines_of(&mut watch);
    ok(e, &["put", "/jobs/a", "2"]);
    ok(e, &["del", "/jobs/a"]);
    let seen = next_lines(&rx, 9);
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(seen, ["PUT", "/jobs/a", "1", "PUT", "/jobs/a", "2", "DELETE", "/jobs/a", ""]);
}

#[test]
fn watch_of_a_key_prints_its_next_change_until_killed() {
    let c = ProcessCluster::start(1);
    let e = c.url(0);
    let mut watch = spawn_watch(e, &["/config/db"]);
    let rx = lines_of(&mut watch);
    // The watch starts at the next change after it connects: write until it reports one.
    let started = Instant::now();
    let first = loop {
        ok(e, &["put", "/config/db", "v2"]);
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
            break line;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "the watch printed nothing");
    };
    let rest = next_lines(&rx, 2);
    assert_eq!([first.as_str(), &rest[0], &rest[1]], ["PUT", "/config/db", "v2"]);
    assert!(matches!(watch.try_wait(), Ok(None)), "the watch stopped by itself");
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn watch_moves_on_to_the_next_endpoint_when_its_member_dies() {
    let mut c = ProcessCluster::start(3);
    let first = json(&ok(c.url(0), &["-w", "json", "put", "/cfg", "1"]));
    let next_rev = (first["node"]["modifiedIndex"].as_u64().expect("an index") + 1).to_string();
    let endpoints = format!("{},{}", c.url(0), c.url(1));
    let mut watch = spawn_watch(&endpoints, &["/cfg", "--rev", &next_rev]);
    let rx = lines_of(&mut watch);
    thread::sleep(Duration::from_millis(300)); // let it connect to the first endpoint
    c.kill(0);
    // Writes may fail while a new leader is elected; the watch resumes at its revision.
    let started = Instant::now();
    while keelctl(c.url(1), &["put", "/cfg", "2"]).code != 0 {
        assert!(started.elapsed() < Duration::from_secs(15), "no write succeeded after the kill");
        thread::sleep(Duration::from_millis(100));
    }
    let seen = next_lines(&rx, 3);
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(seen, ["PUT", "/cfg", "2"]);
}

/// The hex id in etcdctl's `lease <id> granted with TTL(<n>s)` line.
fn granted_id(line: &str) -> String {
    let id = line.strip_prefix("lease ").and_then(|rest| rest.split(' ').next()).unwrap_or_else(|| panic!("{line}"));
    assert!(line.ends_with("granted with TTL(60s)\n"), "{line}");
    id.to_string()
}

#[test]
fn lease_commands_grant_attach_inspect_keep_alive_and_revoke() {
    let c = ProcessCluster::start(1);
    let e = c.url(0);
    let id = granted_id(&ok(e, &["lease", "grant", "60"]));
    assert_eq!(id.len(), 16, "ids print as 16 hex digits: {id}");
    // Attach a key through the gateway (keelctl's put speaks v2, which has no leases).
    let lease = i64::from_str_radix(&id, 16).unwrap();
    let body = format!(r#"{{"key":"c2VydmljZQ==","value":"dXA=","lease":"{lease}"}}"#);
    assert_eq!(curl(&["-X", "POST", &format!("{e}/v3/kv/put"), "-d", &body]).0, 200);

    assert_eq!(ok(e, &["lease", "list"]), format!("found 1 leases\n{id}\n"));
    let ttl = ok(e, &["lease", "timetolive", &id, "--keys"]);
    assert!(ttl.starts_with(&format!("lease {id} granted with TTL(60s), remaining(")), "{ttl}");
    assert!(ttl.ends_with("s), attached keys([service])\n"), "{ttl}");
    let kept = ok(e, &["lease", "keep-alive", "--once", &id]);
    assert_eq!(kept, format!("lease {id} keepalived with TTL(60)\n"));
    let granted = json(&ok(e, &["-w", "json", "lease", "grant", "60"]));
    assert_eq!(granted["TTL"], "60", "{granted}");

    assert_eq!(ok(e, &["lease", "revoke", &id]), format!("lease {id} revoked\n"));
    assert_eq!(ok(e, &["lease", "timetolive", &id]), format!("lease {id} already expired\n"));
    assert_eq!(ok(e, &["lease", "keep-alive", &id]), format!("lease {id} expired or revoked.\n"));
    let (_, body) = curl(&["-X", "POST", &format!("{e}/v3/kv/range"), "-d", r#"{"key":"c2VydmljZQ=="}"#]);
    assert!(json(&body).get("kvs").is_none(), "the revoked lease's key is gone: {body}");

    let gone = keelctl(e, &["lease", "revoke", &id]);
    assert_eq!((gone.code, gone.stderr.as_str()), (1, "Error: etcdserver: requested lease not found\n"));
    let once = keelctl(e, &["lease", "keep-alive", "--once", &id]);
    assert_eq!((once.code, once.stderr.as_str()), (1, "Error: etcdserver: requested lease not found\n"));
    let bad = keelctl(e, &["lease", "timetolive", "zz"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("expecting ID in Hex"), "{}", bad.stderr);
}

/// keelctl's `user`, `role` and `auth` commands print what etcdctl 3.4 prints for the same
/// commands (each pair runs against its own fresh member), and `--user` logs in for both the
/// v3 gateway (a token) and the v2 keys commands (basic auth).
#[test]
fn user_role_and_auth_commands_print_as_etcdctl() {
    let script: &[&[&str]] = &[
        &["user", "add", "root", "--new-user-password=pw"],
        &["user", "add", "alice", "--new-user-password=apw"],
        &["role", "add", "app"],
        &["role", "grant-permission", "app", "readwrite", "/app", "--prefix"],
        &["role", "grant-permission", "app", "read", "/q", "--from-key"],
        &["role", "grant-permission", "app", "read", "/x"],
        &["role", "grant-permission", "app", "write", "/y", "/z"],
        &["user", "grant-role", "alice", "app"],
        &["role", "get", "app"],
        &["user", "get", "alice"],
        &["auth", "enable"],
        &["--user=root:pw", "user", "list"],
        &["--user=root:pw", "role", "list"],
        &["--user=root:pw", "role", "revoke-permission", "app", "/x"],
        &["--user=root:pw", "role", "revoke-permission", "app", "/q", "--from-key"],
        &["--user=root:pw", "user", "revoke-role", "alice", "app"],
        &["--user=root:pw", "user", "delete", "alice"],
        &["--user=root:pw", "role", "delete", "app"],
        &["--user=root:pw", "auth", "disable"],
    ];
    let with_keelctl = ProcessCluster::start(1);
    let with_etcdctl = ProcessCluster::start(1);
    for args in script {
        let mine = keelctl(with_keelctl.url(0), args);
        let theirs = keel_tests::etcdctl(with_etcdctl.url(0), args, "");
        assert_eq!((mine.code, &mine.stdout), (theirs.code, &theirs.stdout), "{args:?}: {}", mine.stderr);
    }
    // --user for v2 keys commands: alice may write /app but not /other.
    let e = with_keelctl.url(0);
    for args in [
        &["user", "add", "alice", "--new-user-password=apw"][..],
        &["role", "add", "app"],
        &["role", "grant-permission", "app", "readwrite", "/app", "--prefix"],
        &["user", "grant-role", "alice", "app"],
        &["user", "grant-role", "root", "root"],
        &["auth", "enable"],
    ] {
        assert_eq!(keelctl(e, args).code, 0, "{args:?}");
    }
    assert_eq!(ok(e, &["--user=alice:apw", "put", "/app/k", "v"]), "OK\n");
    assert_eq!(ok(e, &["--user=alice:apw", "lease", "list"]), "found 0 leases\n");
    let refused = keelctl(e, &["--user=alice:apw", "put", "/other", "v"]);
    assert!(refused.stderr.contains("Insufficient credentials"), "{}", refused.stderr);
    let wrong = keelctl(e, &["--user=alice:nope", "get", "/app/k"]);
    assert_eq!(wrong.stderr.trim(), "Error: etcdserver: authentication failed, invalid user ID or password");
}
