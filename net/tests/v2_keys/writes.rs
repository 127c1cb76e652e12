//! PUT and POST: create, update, compare-and-swap, in-order keys, noValueOnSuccess.

use keel_core::api::request::Request;

use crate::{expect, get, post, put, req, LocalBackend};

#[tokio::test]
async fn create_only_if_absent() {
    let b = LocalBackend::new();
    let r = put(&b, "/lock", "value=me&prevExist=false").await;
    expect(&r, 201, "{\"action\":\"create\",\"node\":{\"key\":\"/lock\",\"value\":\"me\",\"modifiedIndex\":2,\"createdIndex\":2}}\n");
    let r = put(&b, "/lock", "value=you&prevExist=false").await;
    expect(&r, 412, "{\"errorCode\":105,\"message\":\"Key already exists\",\"cause\":\"/lock\",\"index\":2}\n");
    assert_eq!(r.index(), 2);
    assert_eq!(get(&b, "/lock", "").await.json["node"]["value"], "me");
    // Directories too.
    put(&b, "/d/x", "value=1").await;
    assert_eq!(put(&b, "/d", "dir=true&prevExist=false").await.code(), 105);
    let r = put(&b, "/e", "dir=true&prevExist=false").await;
    assert_eq!(
        (r.status, r.json["action"].as_str(), r.json["node"]["dir"].as_bool()),
        (201, Some("create"), Some(true))
    );
    // The root.
    assert_eq!(put(&b, "/", "value=1&prevExist=false").await.code(), 107);
}

#[tokio::test]
async fn concurrent_creates_have_one_winner() {
    let b = LocalBackend::new();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move { put(&b, "/lock", &format!("value={i}&prevExist=false")).await.status }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 412).count(), 7, "{statuses:?}");
}

#[tokio::test]
async fn update_requires_existence() {
    let b = LocalBackend::new();
    let r = put(&b, "/u", "value=1&prevExist=true").await;
    expect(&r, 404, "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/u\",\"index\":1}\n");
    put(&b, "/u", "value=1").await; // 2
    let r = put(&b, "/u", "value=2&prevExist=true").await;
    expect(&r, 200, "{\"action\":\"update\",\"node\":{\"key\":\"/u\",\"value\":\"2\",\"modifiedIndex\":3,\"createdIndex\":2},\"prevNode\":{\"key\":\"/u\",\"value\":\"1\",\"modifiedIndex\":2,\"createdIndex\":2}}\n");
    // A directory can be updated, but not given a value.
    put(&b, "/d/x", "value=1").await; // 4
    assert_eq!(put(&b, "/d", "value=v&prevExist=true").await.code(), 102);
    let r = put(&b, "/d", "dir=true&prevExist=true").await;
    assert_eq!(
        (r.status, r.json["action"].as_str(), r.json["node"]["dir"].as_bool()),
        (200, Some("update"), Some(true))
    );
    assert_eq!(get(&b, "/d/x", "").await.json["node"]["value"], "1");
}

#[tokio::test]
async fn compare_and_swap() {
    let b = LocalBackend::new();
    put(&b, "/k", "value=one").await; // 2
    let r = put(&b, "/k", "value=x&prevValue=two").await;
    expect(&r, 412, "{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":\"[two != one]\",\"index\":2}\n");
    let r = put(&b, "/k", "value=x&prevIndex=7").await;
    expect(&r, 412, "{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":\"[7 != 2]\",\"index\":2}\n");
    let r = put(&b, "/k", "value=x&prevIndex=7&prevValue=two").await;
    assert_eq!(r.json["cause"], "[two != one] [7 != 2]");
    let r = put(&b, "/k", "value=three&prevIndex=2&prevValue=one").await;
    expect(&r, 200, "{\"action\":\"compareAndSwap\",\"node\":{\"key\":\"/k\",\"value\":\"three\",\"modifiedIndex\":3,\"createdIndex\":2},\"prevNode\":{\"key\":\"/k\",\"value\":\"one\",\"modifiedIndex\":2,\"createdIndex\":2}}\n");
    // prevExist=true with a compare field is a compare-and-swap as well.
    let r = put(&b, "/k", "value=four&prevExist=true&prevValue=three").await;
    assert_eq!((r.status, r.json["action"].as_str()), (200, Some("compareAndSwap")));
    // Missing keys, directories, the root.
    assert_eq!(put(&b, "/none", "value=x&prevValue=a").await.code(), 100);
    put(&b, "/dir/a", "value=1").await;
    assert_eq!(put(&b, "/dir", "value=x&prevValue=a").await.code(), 102);
    assert_eq!(put(&b, "/", "value=x&prevValue=a").await.code(), 107);
}

#[tokio::test]
async fn no_value_on_success_leaves_out_the_nodes() {
    let b = LocalBackend::new();
    expect(&put(&b, "/n", "value=1&noValueOnSuccess=true").await, 201, "{\"action\":\"set\"}\n");
    expect(&put(&b, "/n", "value=2&noValueOnSuccess=true").await, 200, "{\"action\":\"set\"}\n");
    // Not on reads, nor on failures.
    assert_eq!(get(&b, "/n", "noValueOnSuccess=true").await.json["node"]["value"], "2");
    assert_eq!(put(&b, "/n", "value=3&prevValue=x&noValueOnSuccess=true").await.code(), 101);
}

#[tokio::test]
async fn in_order_keys_are_named_by_revision() {
    let b = LocalBackend::new();
    let r = post(&b, "/queue", "value=a").await;
    expect(&r, 201, "{\"action\":\"create\",\"node\":{\"key\":\"/queue/00000000000000000002\",\"value\":\"a\",\"modifiedIndex\":2,\"createdIndex\":2}}\n");
    put(&b, "/other", "value=x").await; // 3
    let r = post(&b, "/queue", "value=b").await;
    assert_eq!(r.json["node"]["key"], "/queue/00000000000000000004");
    let r = get(&b, "/queue", "sorted=true").await;
    let values: Vec<&str> =
        r.json["node"]["nodes"].as_array().unwrap().iter().map(|n| n["value"].as_str().unwrap()).collect();
    assert_eq!(values, vec!["a", "b"]);
    // In-order directories, and in the root.
    let r = post(&b, "/queue", "dir=true").await;
    assert_eq!((r.status, r.json["node"]["dir"].as_bool()), (201, Some(true)));
    let key = r.json["node"]["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("/queue/0000000000000000000"), "{key}");
    assert_eq!(get(&b, &key, "").await.json["node"]["dir"], true);
    let r = post(&b, "/", "value=top").await;
    assert_eq!(r.json["node"]["key"].as_str().unwrap().len(), 21);
}

#[tokio::test]
async fn set_dir_replaces_a_file_and_methods_are_checked() {
    let b = LocalBackend::new();
    put(&b, "/x", "value=1").await; // 2
    let r = put(&b, "/x", "dir=true").await;
    assert_eq!(
        (r.status, r.json["node"]["dir"].as_bool(), r.json["prevNode"]["value"].as_str()),
        (200, Some(true), Some("1"))
    );
    assert_eq!(get(&b, "/x", "").await.json["node"]["dir"], true);
    // Setting an existing directory fails.
    assert_eq!(put(&b, "/x", "dir=true").await.code(), 102);
    let r = req(&b, "PATCH", "/x", "", "").await;
    assert_eq!(
        (r.status, r.body.as_str(), r.header("Allow")),
        (405, "Method Not Allowed\n", "HEAD,GET,PUT,POST,DELETE")
    );
    let r = req(&b, "HEAD", "/x", "", "").await;
    assert_eq!(r.status, 200);
}

/// Every write, with or without TTL, refused or carried out, is one replicated request: no
/// read, guard, lease grant or revoke of its own, so nothing can be left half done. A refresh
/// that keeps the TTL adds only the leader's keep-alive of the node's lease.
#[tokio::test]
async fn every_write_is_one_replicated_request() {
    let b = LocalBackend::new();
    let writes = [
        ("PUT", "/k", "value=1&ttl=30", false),
        ("PUT", "/k", "value=2&ttl=40", false),
        ("PUT", "/k", "ttl=40&refresh=true&prevExist=true", true),
        ("PUT", "/k", "value=3&prevExist=false", false),
        ("PUT", "/k", "value=3&prevValue=x", false),
        ("PUT", "/k/x", "value=2", false),
        ("POST", "/q", "value=job&ttl=5", false),
        ("PUT", "/d", "dir=true&ttl=60", false),
        ("DELETE", "/d", "dir=true", false),
        ("DELETE", "/k", "prevValue=2", false),
    ];
    for (method, path, form, keep_alive) in writes {
        let (query, form) = if method == "DELETE" { (form, "") } else { ("", form) };
        let r = req(&b, method, path, query, form).await;
        let log = b.take_log();
        let sent: Vec<_> = log.iter().filter(|r| !matches!(r, Request::LeaseTimeToLive(_))).collect();
        let ok = match sent.as_slice() {
            [Request::V2Write(_)] => !keep_alive,
            [Request::V2Write(_), Request::LeaseKeepAlive(_)] => keep_alive,
            _ => false,
        };
        assert!(ok, "{method} {path} {form} ({}): {log:?}", r.status);
    }
}

/// A PUT with a TTL is one Raft entry and leaves exactly one lease, however often the key's
/// TTL changes: the lease the key left goes in the same entry.
#[tokio::test]
async fn a_ttl_write_is_one_entry_and_leaves_one_lease() {
    let b = LocalBackend::new();
    let first = put(&b, "/k", "value=1&ttl=30").await;
    let second = put(&b, "/k", "value=2&ttl=40").await;
    let raft_index = |r: &crate::Resp| r.header("X-Raft-Index").parse::<u64>().unwrap();
    assert_eq!(raft_index(&second), raft_index(&first) + 1, "one entry per write");
    assert_eq!((second.json["node"]["ttl"].as_i64(), second.json["prevNode"]["ttl"].as_i64()), (Some(40), Some(30)));
    let leases = |b: &LocalBackend| match b.core(Request::LeaseLeases).unwrap() {
        keel_core::api::request::Response::LeaseLeases(l) => l.leases.len(),
        other => panic!("{other:?}"),
    };
    assert_eq!(leases(&b), 1, "the first lease went with the second write");
    put(&b, "/k", "value=3").await;
    assert_eq!(leases(&b), 0, "a key that loses its TTL leaves no lease behind");
}
