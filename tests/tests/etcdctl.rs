//! The real `etcdctl` 3.4 against real `keel` processes over the v3 gRPC API: every command
//! family the v3 issue lists, with deterministic outputs compared against etcd 3.4 itself.
//! Needs etcdctl and etcd installed (`./scripts/deps`) and the keel binary built.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use keel_tests::{etcdctl, etcdctl_command, json, wait_until, ProcessCluster, Processes, ReferenceEtcd, Run};

/// Run etcdctl and insist that it succeeded; returns its stdout.
#[test]
fn periodic_auto_compaction_keeps_only_the_retention_and_logs_as_etcd() {
    let c = ProcessCluster::start_with(1, &["--auto-compaction-mode", "periodic", "--auto-compaction-retention", "2s"]);
    let e = c.url(0);
    for i in 0..20 {
        ok(e, &["put", "k", &i.to_string()]);
    }
    // The leader compacts once a retention has passed, at the revision it saw one retention ago.
    let compacted = wait_until(Duration::from_secs(20), || {
        let r = etcdctl(e, &["get", "k", "--rev=2"], "");
        r.stderr.contains("etcdserver: mvcc: required revision has been compacted")
    });
    assert!(compacted, "revision 2 is still readable");
    assert_eq!(ok(e, &["get", "k", "--print-value-only"]), "19\n");
    let logs: String = c.members.iter().map(|m| m.log()).collect();
    assert!(logs.contains("Starting auto-compaction at revision"), "{logs}");
    assert!(logs.contains("(retention: 2s)"), "{logs}");
    assert!(logs.contains("Finished auto-compaction at revision"), "{logs}");
}

fn ok(endpoints: &str, args: &[&str]) -> String {
    let r = etcdctl(endpoints, args, "");
    assert_eq!(r.code, 0, "etcdctl {args:?} failed: {}{}", r.stdout, r.stderr);
    r.stdout
}

/// Run etcdctl and insist that it failed; returns its stderr.
fn fails(endpoints: &str, args: &[&str]) -> String {
    let r = etcdctl(endpoints, args, "");
    assert_ne!(r.code, 0, "etcdctl {args:?} should fail: {}", r.stdout);
    r.stderr
}

/// A long-running etcdctl (watch, lock, elect) whose output lines arrive on a channel.
struct Background {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Background {
    fn start(endpoints: &str, args: &[&str]) -> Background {
        let mut child = etcdctl_command(endpoints)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcdctl starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Background { child, lines }
    }

    /// The next `n` lines, failing after `timeout`.
    fn lines(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        (0..n)
            .map(|i| {
                let left = deadline.saturating_duration_since(Instant::now());
                self.lines.recv_timeout(left).unwrap_or_else(|_| panic!("line {i} of {n} did not arrive"))
            })
            .collect()
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Interrupt it as Ctrl-C would (etcdctl then releases what it holds) and wait for its exit.
    fn interrupt(mut self) {
        let _ = Command::new("kill").args(["-s", "INT", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

#[test]
fn get_honours_prefix_from_key_limit_sort_rev_keys_only_count_only_and_json() {
    let c = ProcessCluster::start(1);
    let e = c.url(0);
    for (k, v) in [("a", "1"), ("b/x", "2"), ("b/y", "3"), ("c", "4")] {
        assert_eq!(ok(e, &["put", k, v]), "OK\n");
    }
    ok(e, &["put", "a", "10"]);
    assert_eq!(ok(e, &["get", "b/", "--prefix"]), "b/x\n2\nb/y\n3\n");
    assert_eq!(ok(e, &["get", "b", "--from-key", "--keys-only"]), "b/x\n\nb/y\n\nc\n\n");
    assert_eq!(ok(e, &["get", "", "--prefix", "--limit=2"]), "a\n10\nb/x\n2\n");
    assert_eq!(
        ok(e, &["get", "", "--prefix", "--sort-by=MODIFY", "--order=DESCEND", "--print-value-only"]),
        "10\n4\n3\n2\n"
    );
    assert_eq!(ok(e, &["get", "a", "--rev=2"]), "a\n1\n");
    // etcdctl 3.4 has no --count-only; the JSON gateway test covers count_only.
    let fields = ok(e, &["get", "b/", "--prefix", "--keys-only", "-w", "fields"]);
    assert!(fields.contains("\"Count\" : 2\n"), "{fields}");
    let got = json(&ok(e, &["get", "a", "-w", "json"]));
    assert_eq!(got["kvs"][0]["key"], "YQ==");
    assert_eq!(got["kvs"][0]["value"], "MTA=");
    assert_eq!(got["kvs"][0]["version"], 2);
    assert_eq!(got["kvs"][0]["create_revision"], 2);
    assert_eq!(got["kvs"][0]["mod_revision"], 6);
    assert_eq!(got["header"]["revision"], 6);
    assert!(got["header"]["cluster_id"].as_u64().unwrap() != 0 && got["header"]["member_id"].as_u64().unwrap() != 0);
}

#[test]
fn del_txn_and_compaction() {
    let c = ProcessCluster::start(1);
    let e = c.url(0);
    ok(e, &["put", "k1", "v1"]);
    ok(e, &["put", "k2", "v2"]);
    assert_eq!(ok(e, &["del", "k", "--prefix", "--prev-kv"]), "2\nk1\nv1\nk2\nv2\n");
    ok(e, &["put", "flag", "on"]);
    let txn = "value(\"flag\") = \"on\"\n\nput result yes\nget flag\n\nput result no\n\n";
    let r = etcdctl(e, &["txn"], txn);
    assert_eq!(r.stdout, "SUCCESS\n\nOK\n\nflag\non\n", "{}", r.stderr);
    let r = etcdctl(e, &["txn"], "value(\"flag\") = \"off\"\n\nput result yes\n\nput result no\n\n");
    assert_eq!(r.stdout, "FAILURE\n\nOK\n");
    assert_eq!(ok(e, &["get", "result", "--print-value-only"]), "no\n");
    let rev = json(&ok(e, &["get", "result", "-w", "json"]))["header"]["revision"].as_i64().unwrap();
    assert_eq!(ok(e, &["compaction", &rev.to_string()]), format!("compacted revision {rev}\n"));
    let err = fails(e, &["get", "result", "--rev=2"]);
    assert!(err.contains("etcdserver: mvcc: required revision has been compacted"), "{err}");
    let err = fails(e, &["get", "result", "--rev=1000"]);
    assert!(err.contains("etcdserver: mvcc: required revision is a future revision"), "{err}");
}

#[test]
fn watch_follows_a_prefix_and_replays_from_a_revision_while_another_client_writes() {
    let c = ProcessCluster::start(3);
    let writer = c.url(1);
    let watcher = Background::start(c.url(0), &["watch", "cfg/", "--prefix"]);
    thread::sleep(Duration::from_millis(500));
    ok(writer, &["put", "cfg/a", "1"]);
    ok(writer, &["put", "other", "x"]);
    ok(writer, &["del", "cfg/a"]);
    assert_eq!(watcher.lines(5, Duration::from_secs(10)), ["PUT", "cfg/a", "1", "DELETE", "cfg/a"]);
    watcher.stop();
    let replay = Background::start(c.url(2), &["watch", "cfg/a", "--rev=1", "-w", "json"]);
    let first = json(&replay.lines(1, Duration::from_secs(10))[0]);
    let events = first["Events"].as_array().expect("events");
    assert_eq!(events.len(), 2, "{first}");
    assert_eq!(events[1]["type"], 1, "the second is the delete");
    replay.stop();
}

#[test]
fn leases_grant_keep_alive_report_and_revoke() {
    let c = ProcessCluster::start(1);
    let e = c.url(0);
    let granted = ok(e, &["lease", "grant", "10"]);
    let id = granted.split_whitespace().nth(1).expect("lease id").to_string();
    assert_eq!(granted, format!("lease {id} granted with TTL(10s)\n"));
    ok(e, &["put", "svc", "addr", &format!("--lease={id}")]);
    let keeper = Background::start(e, &["lease", "keep-alive", &id]);
    assert_eq!(keeper.lines(1, Duration::from_secs(10)), [format!("lease {id} keepalived with TTL(10)")]);
    keeper.stop();
    let ttl = ok(e, &["lease", "timetolive", &id, "--keys"]);
    assert!(
        ttl.starts_with(&format!("lease {id} granted with TTL(10s), remaining("))
            && ttl.ends_with("attached keys([svc])\n"),
        "{ttl}"
    );
    assert!(ok(e, &["lease", "list"]).contains(&id));
    assert_eq!(ok(e, &["lease", "revoke", &id]), format!("lease {id} revoked\n"));
    assert_eq!(ok(e, &["get", "svc"]), "");
    assert_eq!(ok(e, &["lease", "timetolive", &id]), format!("lease {id} already expired\n"));
    let err = fails(e, &["put", "k", "v", &format!("--lease={id}")]);
    assert!(err.contains("etcdserver: requested lease not found"), "{err}");
}

/// Two contending clients of `etcdctl <verb> <name> [<value>]`: the second waits while the
/// first holds, and takes over within a second of the first's exit (Ctrl-C, which makes
/// etcdctl give up its session).
fn contend(verb: &str, second_value: Option<&str>, first_value: Option<&str>) {
    let c = ProcessCluster::start(3);
    let args = |value: Option<&str>| -> Vec<String> {
        let mut a = vec![verb.to_string(), "job".to_string()];
        a.extend(value.map(str::to_string));
        a
    };
    let first_args = args(first_value);
    let first = Background::start(c.url(0), &first_args.iter().map(String::as_str).collect::<Vec<_>>());
    let held = first.lines(1, Duration::from_secs(10));
    assert!(held[0].starts_with("job/"), "{held:?}");
    let second_args = args(second_value);
    let second = Background::start(c.url(1), &second_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(second.lines.recv_timeout(Duration::from_millis(1500)).is_err(), "the second must wait");
    first.interrupt();
    let released = Instant::now();
    let got = second.lines(1, Duration::from_secs(10));
    let waited = released.elapsed();
    assert!(got[0].starts_with("job/") && got[0] != held[0], "{got:?}");
    assert!(waited < Duration::from_secs(1), "took over after {waited:?}");
    second.stop();
}

#[test]
fn lock_waiter_takes_over_within_a_second_of_the_holders_exit() {
    contend("lock", None, None);
}

#[test]
fn elect_candidate_takes_over_within_a_second_of_the_leaders_exit() {
    contend("elect", Some("bob"), Some("alice"));
}

#[test]
fn members_list_add_learner_promote_refusal_and_remove() {
    let c = ProcessCluster::start(3);
    let e = c.url(0);
    let list = ok(e, &["member", "list"]);
    assert_eq!(list.lines().count(), 3, "{list}");
    assert!(list.lines().all(|l| l.ends_with(", false") && l.contains(", started, m")), "{list}");
    let added = ok(e, &["member", "add", "m9", "--peer-urls=http://127.0.0.1:1", "--learner"]);
    // "Member %16x added to cluster %16x": ids are space-padded to 16 columns.
    let first_line = added.lines().next().unwrap_or("");
    let (padded_id, cluster) =
        first_line.trim_start_matches("Member ").split_once(" added to cluster ").expect("member add output");
    let id = padded_id.trim().to_string();
    let list = ok(c.url(1), &["member", "list", "-w", "json"]);
    let members = json(&list)["members"].as_array().expect("members").clone();
    assert_eq!(members.len(), 4);
    assert!(members.iter().any(|m| m["isLearner"] == true && m["peerURLs"][0] == "http://127.0.0.1:1"), "{list}");
    let err = fails(e, &["member", "promote", &id]);
    assert!(err.contains("etcdserver: can only promote a learner member which is in sync with leader"), "{err}");
    assert_eq!(ok(e, &["member", "remove", &id]), format!("Member {padded_id} removed from cluster {cluster}\n"));
    assert_eq!(ok(e, &["member", "list"]).lines().count(), 3);
    let err = fails(e, &["member", "remove", &id]);
    assert!(err.contains("etcdserver: member not found"), "{err}");
}

#[test]
fn endpoints_report_health_status_and_equal_hashes() {
    let c = ProcessCluster::start(3);
    // With schemes: etcdctl sends these endpoints as HTTP/2 `:authority` (see `authority.rs`).
    let all = (0..3).map(|i| c.url(i)).collect::<Vec<_>>().join(",");
    for i in 0..20 {
        ok(c.url(0), &["put", &format!("k{i}"), "v"]);
    }
    let health = etcdctl(&all, &["endpoint", "health"], "");
    assert_eq!(health.code, 0, "{}", health.stderr);
    assert_eq!(format!("{}{}", health.stdout, health.stderr).matches("is healthy").count(), 3);
    let status = json(&ok(&all, &["endpoint", "status", "-w", "json"]));
    let status = status.as_array().expect("one per endpoint");
    let leaders: Vec<_> = status.iter().map(|s| s["Status"]["leader"].clone()).collect();
    assert!(leaders.iter().all(|l| *l == leaders[0] && l.as_u64().unwrap() != 0), "{leaders:?}");
    assert!(status.iter().all(|s| s["Status"]["version"] == "3.4.0"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let hashes = json(&ok(&all, &["endpoint", "hashkv", "-w", "json"]));
        let hashes: Vec<_> = hashes.as_array().unwrap().iter().map(|h| h["HashKV"]["hash"].clone()).collect();
        if hashes.iter().all(|h| *h == hashes[0]) {
            break;
        }
        assert!(Instant::now() < deadline, "members disagree: {hashes:?}");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn snapshot_save_writes_a_verified_backup() {
    let c = ProcessCluster::start(1);
    ok(c.url(0), &["put", "k", "v"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup.db");
    let r = etcdctl(c.url(0), &["snapshot", "save", path.to_str().unwrap()], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("Snapshot saved at {}\n", path.display()));
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(size % 512, 32, "whole pages and their SHA-256: {size}");
    let log = c.members[0].log();
    assert!(log.contains("bytes for a backup in"), "the backup was not built off the apply path:\n{log}");
}

#[test]
fn a_saved_snapshot_restores_as_a_new_three_member_cluster() {
    let old = ProcessCluster::start(1);
    for i in 0..20 {
        ok(old.url(0), &["put", &format!("k{i:02}"), &format!("v{i}")]);
    }
    let lease = ok(old.url(0), &["lease", "grant", "600"]);
    let lease = lease.split_whitespace().nth(1).unwrap().to_string();
    ok(old.url(0), &["put", "leased", "x", &format!("--lease={lease}")]);
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup.db");
    ok(old.url(0), &["snapshot", "save", backup.to_str().unwrap()]);
    drop(old);

    let ports: Vec<(u16, u16)> = (0..3).map(|_| (keel_tests::free_port(), keel_tests::free_port())).collect();
    let cluster: Vec<String> =
        ports.iter().enumerate().map(|(i, (_, p))| format!("r{i}=http://127.0.0.1:{p}")).collect();
    let mut members = Processes(Vec::new());
    let mut urls = Vec::new();
    for (i, (c, p)) in ports.iter().enumerate() {
        let (name, data) = (format!("r{i}"), dir.path().join(format!("r{i}.keel")));
        let (peer, client) = (format!("http://127.0.0.1:{p}"), format!("http://127.0.0.1:{c}"));
        let common = [
            "--name",
            &name,
            "--initial-cluster",
            &cluster.join(","),
            "--initial-cluster-token",
            "restored",
            "--initial-advertise-peer-urls",
            &peer,
        ];
        let restore = Command::new(keel_tests::keelctl_binary())
            .args(["snapshot", "restore", backup.to_str().unwrap(), "--data-dir", data.to_str().unwrap()])
            .args(common)
            .output()
            .unwrap();
        assert!(restore.status.success(), "{}", String::from_utf8_lossy(&restore.stderr));
        assert!(
            String::from_utf8_lossy(&restore.stdout).contains("(revision 22)"),
            "{}",
            String::from_utf8_lossy(&restore.stdout)
        );
        let again = Command::new(keel_tests::keelctl_binary())
            .args(["snapshot", "restore", backup.to_str().unwrap(), "--data-dir", data.to_str().unwrap()])
            .args(common)
            .output()
            .unwrap();
        assert!(
            !again.status.success() && String::from_utf8_lossy(&again.stderr).contains("exists"),
            "a data directory is never overwritten"
        );
        let member = Command::new(keel_tests::keel_binary())
            .args([
                "--data-dir",
                data.to_str().unwrap(),
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
                "--listen-peer-urls",
                &peer,
            ])
            .args(common)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        members.0.push(member);
        urls.push(client);
    }
    let all = urls.join(",");
    assert!(
        wait_until(Duration::from_secs(20), || etcdctl(&all, &["endpoint", "health"], "").code == 0),
        "the restored cluster did not become healthy"
    );
    assert_eq!(ok(&all, &["get", "k", "--prefix", "--keys-only"]).lines().filter(|l| !l.is_empty()).count(), 20);
    assert_eq!(ok(&all, &["get", "leased", "--print-value-only"]), "x\n");
    assert!(ok(&all, &["lease", "list"]).contains(&lease), "the lease came back too");
    let listed = ok(&all, &["member", "list"]);
    assert_eq!(listed.lines().count(), 3, "only the new members: {listed}");
    ok(&all, &["put", "after", "restore"]);
    // Every member reaches the next revision (a follower may take a moment).
    let at_23 = || {
        json(&ok(&all, &["endpoint", "status", "-w", "json"]))
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["Status"]["header"]["revision"] == 23)
    };
    assert!(wait_until(Duration::from_secs(5), at_23), "not every member reached revision 23");
}

#[test]
fn check_perf_small_load_passes() {
    let c = ProcessCluster::start(3);
    let all = [c.url(0), c.url(1), c.url(2)].join(",");
    let r = etcdctl(&all, &["check", "perf", "--load=s"], "");
    assert!(r.stdout.contains("PASS: Throughput"), "{}{}", r.stdout, r.stderr);
    assert_eq!(r.code, 0, "{}", r.stdout);
}

/// Commands whose output does not depend on ids or timing, run against Keel and etcd 3.4.
#[test]
fn deterministic_outputs_match_etcd() {
    let keel = ProcessCluster::start(1);
    let etcd = ReferenceEtcd::start();
    let script: &[(&[&str], &str)] = &[
        (&["put", "a", "1"], ""),
        (&["put", "b/x", "2", "--prev-kv"], ""),
        (&["put", "b/x", "3", "--prev-kv"], ""),
        (&["put", "b/y", "4"], ""),
        (&["get", "b/", "--prefix"], ""),
        (&["get", "", "--prefix", "--keys-only", "--limit=2"], ""),
        (&["get", "", "--prefix", "--sort-by=VALUE", "--order=DESCEND"], ""),
        (&["get", "a", "--rev=2", "--print-value-only"], ""),
        (&["get", "", "--from-key", "--keys-only"], ""),
        (&["put", "a", "5", "--ignore-value"], ""),
        (&["put", "missing", "--ignore-value"], ""),
        (&["txn"], "mod(\"a\") > \"0\"\n\nput t yes\ndel b/y\n\nput t no\n\n"),
        (&["txn"], "create(\"nope\") = \"5\"\n\nput t yes\n\nget t\n\n"),
        (&["del", "b/", "--prefix", "--prev-kv"], ""),
        (&["get", "a", "--rev=100"], ""),
        (&["compaction", "3"], ""),
        (&["get", "a", "--rev=2"], ""),
        (&["watch", "a", "--rev=2"], ""),
        (&["lease", "revoke", "123"], ""),
        (&["lease", "timetolive", "123"], ""),
        (&["member", "promote", "1"], ""),
    ];
    for (args, input) in script {
        // `watch --rev` on a compacted revision prints its error and exits (no hang).
        let on_keel = etcdctl(keel.url(0), args, input);
        let on_etcd = etcdctl(&etcd.client_url, args, input);
        let last_line = |r: &Run| r.stderr.lines().last().unwrap_or("").to_string();
        assert_eq!(
            (on_keel.code, &on_keel.stdout, last_line(&on_keel)),
            (on_etcd.code, &on_etcd.stdout, last_line(&on_etcd)),
            "etcdctl {args:?} differs (left: Keel, right: etcd)"
        );
    }
}

/// One etcdctl run as a transcript line: arguments, exit code, output and the last error line.
fn transcript_line(args: &[&str], r: &Run) -> String {
    format!("{args:?} -> {} {:?} {:?}", r.code, r.stdout, r.stderr.lines().last().unwrap_or(""))
}

/// What an operator sees of the space quota on `endpoint`: writes until one is refused, then
/// the alarm, what is refused and what is not while it is up, and the way out (delete,
/// compact, defragment, disarm). Member ids read as `<id>`.
fn quota_transcript(endpoint: &str) -> Vec<String> {
    let status = json(&ok(endpoint, &["endpoint", "status", "-w", "json"]));
    let id = status[0]["Status"]["header"]["member_id"].to_string();
    let big = "v".repeat(100_000);
    let refused = (0..40)
        .map(|i| etcdctl(endpoint, &["put", &format!("k{i}"), &big], ""))
        .find(|r| r.code != 0)
        .expect("the quota refused a put");
    let mut seen = vec![transcript_line(&["put", "k<n>", "<100 000 bytes>"], &refused)];
    let while_full: &[&[&str]] =
        &[&["alarm", "list"], &["put", "small", "x"], &["lease", "grant", "60"], &["get", "k0", "--keys-only"]];
    for args in while_full {
        seen.push(transcript_line(args, &etcdctl(endpoint, args, "")));
    }
    let deleted = json(&ok(endpoint, &["del", "k", "--prefix", "-w", "json"]));
    let status = json(&ok(endpoint, &["endpoint", "status", "-w", "json"]));
    seen.push(format!("status errors: {}", status[0]["Status"]["errors"]));
    ok(endpoint, &["compaction", &deleted["header"]["revision"].to_string(), "--physical"]);
    ok(endpoint, &["defrag"]);
    let way_out: &[&[&str]] = &[&["alarm", "disarm"], &["alarm", "list"], &["put", "small", "x"]];
    for args in way_out {
        seen.push(transcript_line(args, &etcdctl(endpoint, args, "")));
    }
    seen.iter().map(|line| line.replace(&id, "<id>")).collect()
}

#[test]
fn the_space_quota_raises_nospace_as_etcd_does() {
    let quota = ["--quota-backend-bytes", "1048576"];
    let keel = ProcessCluster::start_with(1, &quota);
    let etcd = ReferenceEtcd::start_with(&quota);
    let on_keel = quota_transcript(keel.url(0));
    let on_etcd = quota_transcript(&etcd.client_url);
    assert_eq!(on_keel, on_etcd, "left: Keel, right: etcd");
    assert!(on_keel[1].contains("memberID:<id> alarm:NOSPACE"), "{on_keel:?}");
}

/// A data directory the release before versioned formats wrote (`tests/fixtures/README.md`
/// says how it was made) opens: its log is rewritten once, its keys, history and lease are all
/// there, and a member added afterwards applies the rewritten log from its first entry.
#[test]
fn a_data_directory_of_the_release_before_versioned_formats_is_upgraded_and_replicated() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/format2-member.tar.gz");
    let mut c = ProcessCluster::adopt(&fixture, "m0", 23801, "format2");
    assert!(
        c.members[0].log().contains("from storage format 2 to 3 (12 log entries rewritten)"),
        "{}",
        c.members[0].log()
    );
    let keys = |endpoint: &str| ok(endpoint, &["get", "--prefix", "", "--consistency=s"]);
    let expected = "key1\nvalue1b\nkey2\nvalue2b\nleased\nv\n";
    assert_eq!(keys(c.url(0)), expected);
    assert_eq!(ok(c.url(0), &["get", "key2", "--rev=3"]), "key2\nvalue2\n", "history above the compaction");
    assert!(fails(c.url(0), &["get", "key2", "--rev=2"]).contains("required revision has been compacted"));
    assert!(ok(c.url(0), &["lease", "list"]).contains("25b1e9c7474c6b74"));
    ok(c.url(0), &["put", "after", "upgrade"]);

    let joiner = c.add_member();
    c.wait_healthy(Duration::from_secs(30));
    assert!(
        wait_until(Duration::from_secs(10), || keys(c.url(joiner)).contains("after")),
        "{}",
        c.members[joiner].log()
    );
    assert_eq!(keys(c.url(joiner)), format!("after\nupgrade\n{expected}"));
    assert!(!c.members[joiner].log().contains("must stop"), "{}", c.members[joiner].log());

    c.restart(0);
    c.wait_healthy(Duration::from_secs(30));
    assert_eq!(c.members[0].log().matches("from storage format 2 to 3").count(), 1, "upgraded once");
}
