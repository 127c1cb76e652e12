//! Crashes and bad input against real processes: a leader killed with SIGKILL, every member
//! restarted, malformed requests, oversized bodies, clients vanishing mid-watch.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use keel_tests::{curl, json, write_file, ProcessCluster};

#[test]
fn killing_the_leader_loses_no_acknowledged_write_and_the_cluster_carries_on() {
    let mut c = ProcessCluster::start(3);
    let leader = c.leader().expect("a leader");
    for i in 0..20 {
        let (code, body) = curl(&["-X", "PUT", &format!("{}/v2/keys/k{i}", c.url(i % 3)), "-d", &format!("value={i}")]);
        assert!(code == 200 || code == 201, "{code} {body}");
    }
    c.kill(leader);
    let other = (leader + 1) % 3;
    // Writes continue once the survivors elect a leader.
    let mut wrote = false;
    for _ in 0..100 {
        let (code, _) = curl(&["-X", "PUT", &format!("{}/v2/keys/after", c.url(other)), "-d", "value=kill"]);
        if code == 200 || code == 201 {
            wrote = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(wrote, "no write succeeded after the leader was killed");
    for i in 0..20 {
        let (code, body) = curl(&[&format!("{}/v2/keys/k{i}?quorum=true", c.url(other))]);
        assert_eq!((code, json(&body)["node"]["value"].clone()), (200, serde_json::json!(i.to_string())));
    }
    c.restart(leader);
    c.wait_healthy(Duration::from_secs(20));
    let (code, body) = curl(&[&format!("{}/v2/keys/after?quorum=true", c.url(leader))]);
    assert_eq!((code, json(&body)["node"]["value"].clone()), (200, serde_json::json!("kill")));
}

#[test]
fn restarting_every_member_keeps_every_acknowledged_write() {
    let mut c = ProcessCluster::start_with(3, &["--snapshot-count", "50"]);
    for i in 0..120 {
        let (code, _) =
            curl(&["-X", "PUT", &format!("{}/v2/keys/data/{i:03}", c.url(i % 3)), "-d", &format!("value={i}")]);
        assert!(code == 200 || code == 201);
    }
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.restart(i);
    }
    c.wait_healthy(Duration::from_secs(30));
    let (code, body) = curl(&[&format!("{}/v2/keys/data?quorum=true&sorted=true", c.url(1))]);
    assert_eq!(code, 200, "{body}");
    let nodes = json(&body)["node"]["nodes"].as_array().cloned().unwrap();
    assert_eq!(nodes.len(), 120);
    assert_eq!(nodes[119]["value"], "119");
}

#[test]
fn bad_input_gets_etcds_errors_not_crashes() {
    let mut c = ProcessCluster::start(1);
    let k = format!("{}/v2/keys/bad", c.url(0));
    // etcd's codes: 202 "The given TTL in POST form is not a number", 203 for an index.
    let (code, body) = curl(&["-X", "PUT", &k, "-d", "value=x", "-d", "ttl=soon"]);
    assert_eq!(code, 400, "{body}");
    assert_eq!(json(&body)["errorCode"], 202);
    let (code, body) = curl(&["-X", "PUT", &format!("{k}?prevIndex=abc"), "-d", "value=x"]);
    assert_eq!(code, 400);
    assert_eq!(json(&body)["errorCode"], 203);
    let (code, body) = curl(&[&format!("{k}?wait=true&waitIndex=-"), "--max-time", "3"]);
    assert_eq!(code, 400, "{body}");
    let (code, body) = curl(&[&format!("{}/v2/keys/missing", c.url(0))]);
    assert_eq!((code, json(&body)["errorCode"].clone()), (404, serde_json::json!(100)));
    let (code, _) = curl(&[&format!("{}/v2/keys/%zz%", c.url(0))]);
    assert!(code == 404 || code == 400, "a malformed escape is an error, got {code}");
    // etcd answers codes outside its short status table (like 107) with 400.
    let (code, body) = curl(&["-X", "PUT", &format!("{}/v2/keys/", c.url(0)), "-d", "value=x"]);
    assert_eq!(code, 400);
    assert_eq!(json(&body)["errorCode"], 107);
    // A body over the limit is refused, and the member lives on.
    let dir = tempfile::tempdir().unwrap();
    let mut big = b"value=".to_vec();
    big.extend(std::iter::repeat_n(b'x', 3 * 1024 * 1024));
    let file = write_file(dir.path(), "big", &big);
    let (code, _) = curl(&[
        "-X",
        "PUT",
        &k,
        "--data-binary",
        &format!("@{}", file.display()),
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
    ]);
    assert!(code == 413 || code == 400, "oversized body answered {code}");
    // A client that opens a watch and vanishes, and one that sends garbage.
    for _ in 0..20 {
        let mut s = TcpStream::connect(c.url(0).trim_start_matches("http://")).unwrap();
        s.write_all(b"GET /v2/keys/bad?wait=true HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        drop(s);
    }
    let mut s = TcpStream::connect(c.url(0).trim_start_matches("http://")).unwrap();
    s.write_all(b"\x00\x01 not http at all\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.read_to_end(&mut buf);
    assert!(c.members[0].running(), "the member died on bad input:\n{}", c.members[0].log());
    let (code, _) = curl(&["-X", "PUT", &k, "-d", "value=still-here"]);
    assert!(code == 200 || code == 201);
    let (_, metrics) = curl(&[&format!("{}/metrics", c.url(0))]);
    assert!(
        metrics.contains("keel_mvcc_watchers 0"),
        "abandoned watches leaked:\n{}",
        metrics.lines().filter(|l| l.contains("watchers")).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn a_member_added_through_v2_members_joins_catches_up_and_a_removed_one_stops() {
    let mut c = ProcessCluster::start(3);
    for i in 0..30 {
        curl(&["-X", "PUT", &format!("{}/v2/keys/before/{i}", c.url(0)), "-d", "value=v"]);
    }
    let new = c.add_member();
    c.wait_healthy(Duration::from_secs(30));
    let (code, body) = curl(&[&format!("{}/v2/keys/before?quorum=true", c.url(new))]);
    assert_eq!(code, 200, "{body}\n{}", c.members[new].log());
    assert_eq!(json(&body)["node"]["nodes"].as_array().map(|n| n.len()), Some(30));
    let (_, body) = curl(&[&format!("{}/v2/members", c.url(new))]);
    let members = json(&body)["members"].as_array().cloned().unwrap();
    assert_eq!(members.len(), 4);
    // Remove member 1: it stops by itself; the other three carry on.
    let id = members.iter().find(|m| m["name"] == "m1").unwrap()["id"].as_str().unwrap().to_string();
    let (code, body) = curl(&["-X", "DELETE", &format!("{}/v2/members/{id}", c.url(0))]);
    assert_eq!(code, 204, "{body}");
    let mut stopped = false;
    for _ in 0..100 {
        if !c.members[1].running() {
            stopped = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(stopped, "the removed member kept running");
    // If the removed member was the leader, the rest elect a new one first.
    let wrote = (0..50).any(|_| {
        let (code, _) =
            curl(&["-X", "PUT", &format!("{}/v2/keys/after", c.url(new)), "-d", "value=remove", "--max-time", "3"]);
        std::thread::sleep(Duration::from_millis(100));
        code == 200 || code == 201
    });
    assert!(wrote, "the remaining members never accepted a write\n{}", c.members[new].log());
}

/// Found by the partition suite (`scripts/jepsen --scenario membership --seed 1`): a member
/// removed and added back at the same peer URL used to get the same id, replayed its own
/// removal from the leader's log and stopped for good; and once it had a new id, it forgot it
/// on its next restart.
#[test]
fn a_removed_member_added_back_at_its_old_address_serves_again() {
    let mut c = ProcessCluster::start(3);
    let (_, body) = curl(&[&format!("{}/v2/members", c.url(0))]);
    let members = json(&body)["members"].as_array().cloned().unwrap();
    let id = members.iter().find(|m| m["name"] == "m2").unwrap()["id"].as_str().unwrap().to_string();
    let (code, body) = curl(&["-X", "DELETE", &format!("{}/v2/members/{id}", c.url(0))]);
    assert_eq!(code, 204, "{body}");
    let wrote = (0..50).any(|_| {
        let (code, _) =
            curl(&["-X", "PUT", &format!("{}/v2/keys/while-out", c.url(0)), "-d", "value=x", "--max-time", "3"]);
        std::thread::sleep(Duration::from_millis(100));
        code == 200 || code == 201
    });
    assert!(wrote, "the remaining members never accepted a write");
    c.add_back(2);
    c.wait_healthy(Duration::from_secs(30));
    let (code, body) = curl(&[&format!("{}/v2/keys/while-out?quorum=true", c.url(2))]);
    assert_eq!(code, 200, "{body}\n{}", c.members[2].log());
    let (_, body) = curl(&[&format!("{}/v2/members", c.url(2))]);
    let ids: Vec<String> =
        json(&body)["members"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 3, "{body}");
    assert!(!ids.contains(&id), "the member came back with its old id {id}: {body}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(c.members[2].running(), "the member added back stopped\n{}", c.members[2].log());
    c.restart(2);
    c.wait_healthy(Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    assert!(c.members[2].running(), "the member added back stopped after a restart\n{}", c.members[2].log());
}

#[test]
fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let c = ProcessCluster::start(1);
    let mut slow = TcpStream::connect(c.url(0).trim_start_matches("http://")).unwrap();
    slow.write_all(b"GET /v2/keys/x HTTP/1.1\r\nHost: x\r\n").unwrap(); // and never the blank line
    slow.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(10), "a stuck client held its connection for {waited:?}");
    let (code, _) = curl(&[&format!("{}/health", c.url(0))]);
    assert_eq!(code, 200);
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_write() {
    let mut c = ProcessCluster::start(3);
    let urls: Vec<String> = (0..3).map(|i| c.url(i).to_string()).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let urls = urls.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let key = format!("load/w{w}-{n}");
                    let url = &urls[n % 3];
                    let (code, _) =
                        curl(&["-X", "PUT", &format!("{url}/v2/keys/{key}"), "-d", "value=x", "--max-time", "3"]);
                    if code == 200 || code == 201 {
                        acked.push(key);
                    }
                    n += 1;
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    let leader = c.leader().expect("a leader");
    c.kill(leader);
    std::thread::sleep(Duration::from_millis(1500));
    c.restart(leader);
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked: Vec<String> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    assert!(acked.len() > 20, "too few writes to mean anything: {}", acked.len());
    c.wait_healthy(Duration::from_secs(30));
    for i in 0..3 {
        let (code, body) = curl(&[&format!("{}/v2/keys/load?quorum=true&recursive=true", c.url(i))]);
        assert_eq!(code, 200);
        let present: std::collections::BTreeSet<String> = json(&body)["node"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["key"].as_str().unwrap().trim_start_matches("/load/").to_string())
            .collect();
        let lost: Vec<&String> = acked.iter().filter(|k| !present.contains(k.trim_start_matches("load/"))).collect();
        assert!(
            lost.is_empty(),
            "member {i} lost {} acknowledged writes: {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
    }
}

#[test]
fn a_member_far_behind_catches_up_from_a_snapshot_streamed_by_the_leader() {
    let mut c =
        ProcessCluster::start_with(3, &["--snapshot-count", "40", "--experimental-snapshot-catchup-entries", "5"]);
    let leader = c.leader().expect("a leader");
    let lagging = (leader + 1) % 3;
    c.kill(lagging);
    let big = "v".repeat(2000);
    for i in 0..200 {
        let (code, _) =
            curl(&["-X", "PUT", &format!("{}/v2/keys/snap/{i:03}", c.url(leader)), "-d", &format!("value={big}")]);
        assert!(code == 200 || code == 201);
    }
    c.restart(lagging);
    c.wait_healthy(Duration::from_secs(30));
    let (code, body) = curl(&[&format!("{}/v2/keys/snap/199?quorum=true", c.url(lagging))]);
    assert_eq!(code, 200, "{body}");
    let (_, body) = curl(&[&format!("{}/v2/keys/snap", c.url(lagging))]);
    assert_eq!(json(&body)["node"]["nodes"].as_array().map(|n| n.len()), Some(200), "serializable read after catch-up");
    let log = c.members[lagging].log();
    assert!(log.contains("installing a snapshot from the leader"), "the member did not log a snapshot install:\n{log}");
    let log = c.members[leader].log();
    assert!(
        log.contains("bytes for a follower in"),
        "the leader did not build the snapshot off the apply path:\n{log}"
    );
}

/// A follower that missed 100 MB of writes catches up from a snapshot the leader builds from a
/// frozen view of its state while it goes on taking writes: the log after the snapshot is kept
/// until the follower has it, so it continues from the log instead of needing another one.
#[test]
fn a_follower_100_mb_behind_catches_up_from_a_snapshot_while_writes_go_on() {
    const KEYS: usize = 6_400;
    let mut c =
        ProcessCluster::start_with(3, &["--snapshot-count", "1000", "--experimental-snapshot-catchup-entries", "100"]);
    let leader = c.leader().expect("a leader");
    let lagging = (leader + 1) % 3;
    c.kill(lagging);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let leader_url = c.url(leader).to_string();
    let value = "v".repeat(16 * 1024);
    runtime.block_on(async {
        let client = etcd_client::Client::connect([leader_url.as_str()], None).await.expect("connects");
        let writers: Vec<_> = (0..32)
            .map(|w| {
                let (mut client, value) = (client.clone(), value.clone());
                tokio::spawn(async move {
                    for i in (w..KEYS).step_by(32) {
                        client
                            .put(format!("big/{i:05}"), value.as_str(), None)
                            .await
                            .expect("a put on a healthy majority");
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
    });
    // Writes go on while the follower catches up, so the log moves past the snapshot.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, url) = (stop.clone(), leader_url.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let mut client = etcd_client::Client::connect([url.as_str()], None).await.expect("connects");
                // A put that times out on this loaded machine may still be applied: only the
                // acknowledged ones are checked.
                let (mut n, mut acknowledged) = (0u64, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let key = format!("after/{n:06}");
                    if client.put(key.as_str(), "x", None).await.is_ok() {
                        acknowledged.push(key);
                    }
                    n += 1;
                }
                acknowledged
            })
        })
    };
    c.restart(lagging);
    let lagging_url = c.url(lagging).to_string();
    let count_on_follower = |prefix: &str| {
        runtime.block_on(async {
            let Ok(mut client) = etcd_client::Client::connect([lagging_url.as_str()], None).await else { return 0 };
            let options = etcd_client::GetOptions::new().with_prefix().with_count_only().with_serializable();
            client.get(prefix, Some(options)).await.map(|r| r.count()).unwrap_or(0)
        })
    };
    let caught_up = keel_tests::wait_until(Duration::from_secs(120), || count_on_follower("big/") == KEYS as i64);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acknowledged = writer.join().unwrap();
    let logs = || (0..3).map(|i| format!("--- member {i}:\n{}", c.members[i].log())).collect::<String>();
    assert!(caught_up, "the follower holds {} of {KEYS} keys after 120 s\n{}", count_on_follower("big/"), logs());
    assert!(!acknowledged.is_empty(), "no write went on during the catch-up");
    let missing = || {
        let held: std::collections::BTreeSet<String> = runtime.block_on(async {
            let Ok(mut client) = etcd_client::Client::connect([lagging_url.as_str()], None).await else {
                return Default::default();
            };
            let options = etcd_client::GetOptions::new().with_prefix().with_keys_only().with_serializable();
            let kvs = client.get("after/", Some(options)).await.map(|r| r.kvs().to_vec()).unwrap_or_default();
            kvs.iter().map(|kv| kv.key_str().unwrap_or_default().to_string()).collect()
        });
        acknowledged.iter().filter(|k| !held.contains(*k)).count()
    };
    let all_after = keel_tests::wait_until(Duration::from_secs(30), || missing() == 0);
    assert!(
        all_after,
        "the follower misses {} of the {} writes acknowledged during its catch-up",
        missing(),
        acknowledged.len()
    );
    let log = c.members[lagging].log();
    assert!(log.contains("installing a snapshot from the leader"), "caught up without a snapshot:\n{}", logs());
}

/// The applied state lives on disk beside the log: with the log compacted every 40 entries and
/// the history compacted as writes go on, `kill -9` each member in turn while the others take
/// writes, and every acknowledged write is still there, on every member.
#[test]
fn acknowledged_writes_survive_log_and_history_compaction_and_a_kill_of_each_member() {
    let mut c =
        ProcessCluster::start_with(3, &["--snapshot-count", "40", "--experimental-snapshot-catchup-entries", "10"]);
    let mut acknowledged: Vec<(usize, String)> = Vec::new();
    /// 60 writes spread over `members`, then a compaction of the history.
    fn write_round(c: &ProcessCluster, members: &[usize], round: usize, acknowledged: &mut Vec<(usize, String)>) {
        for i in 0..60 {
            let key = round * 1000 + i;
            let url = c.url(members[i % members.len()]);
            let (code, _) =
                curl(&["-X", "PUT", &format!("{url}/v2/keys/data/{key:05}"), "-d", &format!("value=v{key}")]);
            if code == 200 || code == 201 {
                acknowledged.push((key, format!("v{key}")));
            }
        }
        // Compact the history up to a little before the current revision, as a client would.
        let (_, body) = curl(&[
            "-X",
            "POST",
            &format!("{}/v3/kv/range", c.url(members[0])),
            "-d",
            r#"{"key":"AA==","serializable":true}"#,
        ]);
        let revision: i64 = json(&body)["header"]["revision"].as_str().and_then(|r| r.parse().ok()).unwrap_or(0);
        let compact = format!(r#"{{"revision":"{}"}}"#, revision - 20);
        let (code, body) = curl(&["-X", "POST", &format!("{}/v3/kv/compaction", c.url(members[0])), "-d", &compact]);
        assert_eq!(code, 200, "compaction at {}: {body}", revision - 20);
    }
    write_round(&c, &[0, 1, 2], 0, &mut acknowledged);
    for victim in 0..3 {
        c.kill(victim);
        let others: Vec<usize> = (0..3).filter(|i| *i != victim).collect();
        write_round(&c, &others, victim + 1, &mut acknowledged);
        c.restart(victim);
        c.wait_healthy(Duration::from_secs(30));
    }
    assert!(acknowledged.len() >= 200, "only {} writes were acknowledged", acknowledged.len());
    for member in 0..3 {
        // Each member serves the keys from its own state once it has caught up.
        let caught_up = keel_tests::wait_until(Duration::from_secs(20), || {
            let (code, body) = curl(&[&format!("{}/v2/keys/data?sorted=true", c.url(member))]);
            code == 200 && json(&body)["node"]["nodes"].as_array().is_some_and(|n| n.len() == acknowledged.len())
        });
        assert!(caught_up, "member {member} does not hold all {} acknowledged writes", acknowledged.len());
        let (_, body) = curl(&[&format!("{}/v2/keys/data?sorted=true", c.url(member))]);
        let nodes = json(&body)["node"]["nodes"].as_array().cloned().unwrap_or_default();
        for ((key, value), node) in acknowledged.iter().zip(&nodes) {
            assert_eq!(node["key"], format!("/data/{key:05}"), "member {member}");
            assert_eq!(node["value"], value.as_str(), "member {member}");
        }
    }
}
