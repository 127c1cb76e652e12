//! Every scenario of the seed (../shared/seed/SCENARIOS.md) as a curl session against real
//! `keel` processes: service discovery with TTL heartbeats, config and directory watches,
//! locks, queues, leader election, and a conditional queue with an atomic counter.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use keel_tests::{curl, curl_background, finish, json, ProcessCluster};

fn key(c: &ProcessCluster, i: usize, path: &str) -> String {
    format!("{}/v2/keys{}", c.url(i), path)
}

#[test]
fn service_registration_lives_while_heartbeats_come_and_expires_when_they_stop() {
    let c = ProcessCluster::start(1);
    let svc = key(&c, 0, "/services/web/10.0.0.1");
    let (code, body) = curl(&["-X", "PUT", &svc, "-d", "value=10.0.0.1:8080", "-d", "ttl=2"]);
    assert_eq!(code, 201, "{body}");
    let node = &json(&body)["node"];
    assert_eq!(node["ttl"], 2);
    assert!(node["expiration"].is_string());
    // Heartbeats (refresh) keep it alive well past its TTL.
    for _ in 0..4 {
        sleep(Duration::from_millis(900));
        let (code, body) = curl(&["-X", "PUT", &svc, "-d", "ttl=2", "-d", "refresh=true", "-d", "prevExist=true"]);
        assert_eq!(code, 200, "{body}");
    }
    let (code, body) = curl(&[&key(&c, 0, "/services/web")]);
    assert_eq!(code, 200);
    assert_eq!(json(&body)["node"]["nodes"][0]["value"], "10.0.0.1:8080");
    // No heartbeat: gone within TTL plus the leader's expiry granularity.
    let started = Instant::now();
    while curl(&[&svc]).0 == 200 {
        assert!(started.elapsed() < Duration::from_secs(6), "the service never expired");
        sleep(Duration::from_millis(100));
    }
    assert!(started.elapsed() >= Duration::from_millis(1000), "expired too early");
}

#[test]
fn a_config_watcher_is_told_of_the_next_change() {
    let c = ProcessCluster::start(1);
    curl(&["-X", "PUT", &key(&c, 0, "/config/db"), "-d", "value=v1"]);
    let watch = curl_background(&[&format!("{}?wait=true", key(&c, 0, "/config/db"))]);
    sleep(Duration::from_millis(300));
    curl(&["-X", "PUT", &key(&c, 0, "/config/db"), "-d", "value=v2"]);
    let (code, body) = finish(watch);
    assert_eq!(code, 200, "{body}");
    let event = json(&body);
    assert_eq!(event["action"], "set");
    assert_eq!(event["node"]["value"], "v2");
    assert_eq!(event["prevNode"]["value"], "v1");
}

#[test]
fn a_recursive_watcher_sees_changes_anywhere_under_its_directory_and_past_ones_by_index() {
    let c = ProcessCluster::start(1);
    let (_, body) = curl(&["-X", "PUT", &key(&c, 0, "/logs/app/10.0.0.1"), "-d", "value=up"]);
    let index = json(&body)["node"]["modifiedIndex"].as_i64().unwrap();
    // From a past index: the event is replayed at once.
    let (code, body) = curl(&[&format!("{}?wait=true&recursive=true&waitIndex={index}", key(&c, 0, "/logs"))]);
    assert_eq!(code, 200);
    assert_eq!(json(&body)["node"]["key"], "/logs/app/10.0.0.1");
    // Live: a new machine under a nested directory.
    let watch = curl_background(&[&format!("{}?wait=true&recursive=true", key(&c, 0, "/logs"))]);
    sleep(Duration::from_millis(300));
    curl(&["-X", "PUT", &key(&c, 0, "/logs/app/10.0.0.2"), "-d", "value=up"]);
    let (code, body) = finish(watch);
    assert_eq!(code, 200);
    assert_eq!(json(&body)["node"]["key"], "/logs/app/10.0.0.2");
}

#[test]
fn an_exclusive_lock_has_exactly_one_winner_among_concurrent_clients() {
    let c = ProcessCluster::start(3);
    let lock = key(&c, 0, "/locks/job");
    let attempts: Vec<_> = (0..10)
        .map(|i| {
            let lock = lock.clone();
            thread::spawn(move || {
                curl(&["-X", "PUT", &format!("{lock}?prevExist=false"), "-d", &format!("value=client{i}")])
            })
        })
        .collect();
    let results: Vec<(u16, String)> = attempts.into_iter().map(|t| t.join().unwrap()).collect();
    let winners = results.iter().filter(|(code, _)| *code == 201).count();
    assert_eq!(winners, 1, "{results:?}");
    for (code, body) in results.iter().filter(|(code, _)| *code != 201) {
        assert_eq!(*code, 412);
        assert_eq!(json(body)["errorCode"], 105);
    }
}

#[test]
fn in_order_keys_give_a_fair_lock_queue_in_creation_order() {
    let c = ProcessCluster::start(3);
    let mut created = Vec::new();
    for i in 0..5 {
        let member = i % 3;
        let (code, body) = curl(&["-X", "POST", &key(&c, member, "/queue"), "-d", &format!("value=job{i}")]);
        assert_eq!(code, 201, "{body}");
        let node = &json(&body)["node"];
        assert_eq!(json(&body)["action"], "create");
        created.push(node["key"].as_str().unwrap().to_string());
    }
    let (_, body) = curl(&[&format!("{}?sorted=true&quorum=true", key(&c, 1, "/queue"))]);
    let listed: Vec<String> = json(&body)["node"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, created);
    let values: Vec<String> = json(&body)["node"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["value"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(values, vec!["job0", "job1", "job2", "job3", "job4"]);
}

#[test]
fn leader_election_by_compare_and_swap_elects_one_and_fails_over_on_expiry() {
    let c = ProcessCluster::start(1);
    let leader = key(&c, 0, "/election/indexer");
    let (code, _) = curl(&["-X", "PUT", &format!("{leader}?prevExist=false"), "-d", "value=node-a", "-d", "ttl=2"]);
    assert_eq!(code, 201);
    let (code, body) = curl(&["-X", "PUT", &format!("{leader}?prevExist=false"), "-d", "value=node-b", "-d", "ttl=2"]);
    assert_eq!((code, json(&body)["errorCode"].clone()), (412, serde_json::json!(105)));
    // The leader renews by compare-and-swap on its own value; a usurper's CAS fails.
    let (code, _) = curl(&["-X", "PUT", &format!("{leader}?prevValue=node-a"), "-d", "value=node-a", "-d", "ttl=2"]);
    assert_eq!(code, 200);
    let (code, body) = curl(&["-X", "PUT", &format!("{leader}?prevValue=node-x"), "-d", "value=node-b"]);
    assert_eq!(code, 412);
    assert_eq!(json(&body)["errorCode"], 101);
    // node-a stops renewing: node-b takes over once the key expires.
    let started = Instant::now();
    loop {
        let (code, _) = curl(&["-X", "PUT", &format!("{leader}?prevExist=false"), "-d", "value=node-b", "-d", "ttl=2"]);
        if code == 201 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(8), "node-b never took over");
        sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_conditional_queue_counts_ready_subtasks_atomically() {
    let c = ProcessCluster::start(3);
    let counter = key(&c, 0, "/queue/condition");
    curl(&["-X", "PUT", &counter, "-d", "value=0"]);
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let member_url = key(&c, w % 3, "/queue/condition");
            thread::spawn(move || {
                for _ in 0..5 {
                    // Read-modify-write with prevIndex: retried until it wins.
                    loop {
                        let (_, body) = curl(&[&format!("{member_url}?quorum=true")]);
                        let node = &json(&body)["node"];
                        let n: u64 = node["value"].as_str().unwrap().parse().unwrap();
                        let index = node["modifiedIndex"].as_i64().unwrap();
                        let (code, _) = curl(&[
                            "-X",
                            "PUT",
                            &format!("{member_url}?prevIndex={index}"),
                            "-d",
                            &format!("value={}", n + 1),
                        ]);
                        if code == 200 {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let (_, body) = curl(&[&format!("{counter}?quorum=true")]);
    assert_eq!(json(&body)["node"]["value"], "20", "lost or doubled increments");
}
