//! The v3 JSON gateway driven with curl, as etcd's documentation shows it: base64 keys and
//! values, int64 as strings, grpc-gateway's error bodies, and a streamed watch.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use keel_tests::{curl, curl_background, finish, json, ProcessCluster};

fn post(url: &str, call: &str, body: &str) -> (u16, serde_json::Value) {
    let (code, answer) = curl(&["-X", "POST", &format!("{url}/v3/{call}"), "-d", body]);
    (code, json(&answer))
}

#[test]
fn kv_calls_speak_proto3_json() {
    let c = ProcessCluster::start(1);
    let u = c.url(0);
    // etcd's documented example: key "foo", value "bar".
    let (code, put) = post(u, "kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#);
    assert_eq!(code, 200);
    assert_eq!(put["header"]["revision"], "2", "int64 as a string: {put}");
    let (_, got) = post(u, "kv/range", r#"{"key":"Zm9v"}"#);
    assert_eq!(got["kvs"][0]["value"], "YmFy");
    assert_eq!(got["kvs"][0]["create_revision"], "2");
    assert_eq!(got["count"], "1");
    // Every key, counted only (range_end "\0" is all keys).
    let (_, counted) = post(u, "kv/range", r#"{"key":"AA==","range_end":"AA==","count_only":true}"#);
    assert_eq!(counted["count"], "1");
    assert!(counted.get("kvs").is_none(), "{counted}");
    let (_, txn) = post(
        u,
        "kv/txn",
        r#"{"compare":[{"key":"Zm9v","result":"EQUAL","target":"VALUE","value":"YmFy"}],"success":[{"request_put":{"key":"Zm9v","value":"YmF6"}}]}"#,
    );
    assert_eq!(txn["succeeded"], true, "{txn}");
    let (_, deleted) = post(u, "kv/deleterange", r#"{"key":"Zm9v","prev_kv":true}"#);
    assert_eq!(deleted["deleted"], "1");
    assert_eq!(deleted["prev_kvs"][0]["value"], "YmF6");
    // The beta prefix serves the same calls.
    let (code, _) = post(u, "../v3beta/kv/range", r#"{"key":"Zm9v"}"#);
    assert_eq!(code, 200);
}

#[test]
fn errors_carry_grpc_codes_and_etcds_texts() {
    let c = ProcessCluster::start(1);
    let u = c.url(0);
    let (code, err) = post(u, "kv/range", r#"{"key":"Zm9v","revision":"99"}"#);
    assert_eq!(code, 400);
    assert_eq!(err["code"], 11, "OUT_OF_RANGE: {err}");
    assert_eq!(err["error"], "etcdserver: mvcc: required revision is a future revision");
    let (code, err) = post(u, "kv/put", r#"{"key":"","value":"eA=="}"#);
    assert_eq!((code, err["error"].as_str()), (400, Some("etcdserver: key is not provided")));
    let (code, err) = post(u, "lease/revoke", r#"{"ID":"5"}"#);
    assert_eq!((code, err["error"].as_str()), (404, Some("etcdserver: requested lease not found")));
    // An empty operation, at any depth of a txn, is refused as etcd refuses it.
    for txn in [r#"{"success":[{}]}"#, r#"{"success":[{"request_txn":{"failure":[{}]}}]}"#] {
        let (code, err) = post(u, "kv/txn", txn);
        assert_eq!(
            (code, err["error"].as_str(), err["code"].as_i64()),
            (400, Some("etcdserver: key not found"), Some(3)),
            "{txn}"
        );
    }
    let (code, err) = post(u, "kv/range", "{not json");
    assert_eq!((code, err["code"].as_i64()), (400, Some(3)));
    let (code, _) = curl(&["-X", "POST", &format!("{u}/v3/no/such/call"), "-d", "{}"]);
    assert_eq!(code, 404);
}

#[test]
fn keep_alive_answers_each_request_and_ends() {
    let c = ProcessCluster::start(1);
    let u = c.url(0);
    let (_, granted) = post(u, "lease/grant", r#"{"TTL":30}"#);
    let id = granted["ID"].as_str().expect("lease id").to_string();
    // As on etcd, the call ends once the body's keep-alives are answered (one result line per
    // request), well before curl's --max-time would end it.
    let started = std::time::Instant::now();
    let (code, body) = curl(&[
        "--max-time",
        "20",
        "-X",
        "POST",
        &format!("{u}/v3/lease/keepalive"),
        "-d",
        &format!(r#"{{"ID":"{id}"}} {{"ID":"{id}"}}"#),
    ]);
    assert!(started.elapsed() < std::time::Duration::from_secs(19), "the keep-alive call stayed open");
    assert_eq!(code, 200);
    let lines: Vec<serde_json::Value> = body.lines().map(json).collect();
    assert_eq!(lines.len(), 2, "{body}");
    assert_eq!(lines[1]["result"]["ID"], id.as_str());
    assert_eq!(lines[1]["result"]["TTL"], "30");
}

#[test]
fn watch_streams_results_while_another_client_writes() {
    let c = ProcessCluster::start(1);
    let u = c.url(0).to_string();
    let requests = r#"{"create_request":{"key":"Zm9v"}} {"cancel_request":{"watch_id":"7"}}"#;
    let watch = curl_background(&["-N", "--max-time", "3", "-X", "POST", &format!("{u}/v3/watch"), "-d", requests]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    post(&u, "kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#);
    let (_, body) = finish(watch);
    // Canceling a watcher the stream does not have answers nothing (as etcd): only two lines.

    let lines: Vec<serde_json::Value> = body.lines().map(json).collect();
    assert_eq!(lines[0]["result"]["created"], true, "{body}");
    assert_eq!(lines.len(), 2, "{body}");
    let event = &lines[1]["result"]["events"][0];
    assert_eq!(event["kv"]["key"], "Zm9v");
    assert_eq!(event["kv"]["value"], "YmFy");
}

#[test]
fn leases_and_maintenance_answer_over_json() {
    let c = ProcessCluster::start(1);
    let u = c.url(0);
    let (_, grant) = post(u, "lease/grant", r#"{"TTL":"30"}"#);
    let id = grant["ID"].as_str().expect("lease id as string").to_string();
    assert_eq!(grant["TTL"], "30");
    let (_, ttl) = post(u, "kv/lease/timetolive", &format!(r#"{{"ID":"{id}"}}"#));
    assert_eq!(ttl["grantedTTL"], "30");
    let (_, status) = post(u, "maintenance/status", "");
    assert_eq!(status["version"], "3.4.0");
    assert_eq!(status["leader"], status["header"]["member_id"]);
    let (_, members) = post(u, "cluster/member/list", "{}");
    assert_eq!(members["members"][0]["clientURLs"][0], u);
}

#[test]
fn lock_and_election_services_queue_contenders_in_creation_order() {
    let c = ProcessCluster::start(1);
    let u = c.url(0).to_string();
    let lease = |u: &str| post(u, "lease/grant", r#"{"TTL":"30"}"#).1["ID"].as_str().unwrap().to_string();
    let (a, b) = (lease(&u), lease(&u));
    // "job" in base64 is "am9i".
    let (_, held) = post(&u, "lock/lock", &format!(r#"{{"name":"am9i","lease":"{a}"}}"#));
    let key_a = held["key"].as_str().expect("lock key").to_string();
    let waiter = curl_background(&[
        "--max-time",
        "10",
        "-X",
        "POST",
        &format!("{u}/v3/lock/lock"),
        "-d",
        &format!(r#"{{"name":"am9i","lease":"{b}"}}"#),
    ]);
    std::thread::sleep(std::time::Duration::from_millis(700));
    let (code, _) = post(&u, "lock/unlock", &format!(r#"{{"key":"{key_a}"}}"#));
    assert_eq!(code, 200);
    let (code, body) = finish(waiter);
    assert_eq!(code, 200, "{body}");
    let key_b = json(&body)["key"].as_str().unwrap().to_string();
    assert_ne!(key_a, key_b);

    // Elections: "ldr" is "bGRy"; values "a" = "YQ==", "b" = "Yg==".
    let (_, won) = post(&u, "election/campaign", &format!(r#"{{"name":"bGRy","lease":"{a}","value":"YQ=="}}"#));
    let leader = won["leader"].clone();
    let (_, now) = post(&u, "election/leader", r#"{"name":"bGRy"}"#);
    assert_eq!(now["kv"]["value"], "YQ==");
    let proclaim = serde_json::json!({"leader": leader, "value": "Yg=="}).to_string();
    assert_eq!(post(&u, "election/proclaim", &proclaim).0, 200);
    assert_eq!(post(&u, "election/leader", r#"{"name":"bGRy"}"#).1["kv"]["value"], "Yg==");
    let resign = serde_json::json!({"leader": leader}).to_string();
    assert_eq!(post(&u, "election/resign", &resign).0, 200);
    let (code, err) = post(&u, "election/leader", r#"{"name":"bGRy"}"#);
    assert_eq!((code, err["error"].as_str()), (404, Some("election: no leader")));
    let (code, err) = post(&u, "election/proclaim", &proclaim);
    assert_eq!((code, err["error"].as_str()), (400, Some("election: not leader")));
}
