//! TTLs: node fields, expiry as time passes, refresh, clearing, TTL directories.

use keel_core::api::request::{Request, Response};

use crate::{get, put, req, LocalBackend};

fn leases(b: &LocalBackend) -> Vec<i64> {
    match b.core(Request::LeaseLeases).unwrap() {
        Response::LeaseLeases(l) => l.leases,
        other => panic!("{other:?}"),
    }
}

#[track_caller]
fn assert_expiration(v: &serde_json::Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("no expiration: {v}"));
    let b = s.as_bytes();
    assert!(s.len() >= 20 && s.ends_with('Z') && b[4] == b'-' && b[10] == b'T' && b[13] == b':', "{s}");
}

#[tokio::test]
async fn ttl_fields_and_expiry() {
    let b = LocalBackend::new();
    let r = put(&b, "/t", "value=x&ttl=5").await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json["node"]["ttl"], 5);
    assert_expiration(&r.json["node"]["expiration"]);
    // Field order as etcd writes it.
    assert!(r.body.contains("\"value\":\"x\",\"expiration\":\""), "{}", r.body);
    assert!(r.body.contains(",\"ttl\":5,\"modifiedIndex\":2,\"createdIndex\":2}"), "{}", r.body);
    b.tick(20);
    let r = get(&b, "/t", "").await;
    assert_eq!(r.json["node"]["ttl"], 3);
    assert_expiration(&r.json["node"]["expiration"]);
    b.tick(40);
    assert_eq!(get(&b, "/t", "").await.code(), 100);
    assert!(leases(&b).is_empty());
}

#[tokio::test]
async fn bad_ttls() {
    let b = LocalBackend::new();
    let r = put(&b, "/t", "value=x&ttl=abc").await;
    crate::expect(&r, 400, "{\"errorCode\":202,\"message\":\"The given TTL in POST form is not a number\",\"cause\":\"invalid value for \\\"ttl\\\"\",\"index\":0}\n");
    assert_eq!(put(&b, "/t", "value=x&ttl=-1").await.code(), 202);
    // Too large for a lease: the core refuses it.
    let r = put(&b, "/t", "value=x&ttl=18446744073709551615").await;
    assert_eq!((r.status, r.code()), (500, 300));
    assert_eq!(r.json["cause"], "etcdserver: too large lease TTL");
    assert_eq!(get(&b, "/t", "").await.code(), 100);
    assert!(leases(&b).is_empty());
}

#[tokio::test]
async fn refresh_keeps_value_and_index() {
    let b = LocalBackend::new();
    put(&b, "/r", "value=v&ttl=5").await; // 2
    b.tick(30);
    assert_eq!(get(&b, "/r", "").await.json["node"]["ttl"], 2);
    let r = put(&b, "/r", "refresh=true&ttl=5&prevExist=true").await;
    assert_eq!((r.status, r.json["action"].as_str()), (200, Some("update")));
    assert_eq!(r.json["node"]["value"], "v");
    assert_eq!(r.json["node"]["modifiedIndex"], 2);
    assert_eq!(r.json["node"]["ttl"], 5);
    assert_eq!(r.json["prevNode"]["ttl"], 2);
    assert_eq!(r.index(), 2, "a keep-alive writes nothing");
    b.tick(30); // 6 s after the key was made: it would have expired without the refresh
    assert_eq!(get(&b, "/r", "").await.json["node"]["value"], "v");

    // Another TTL: a fresh lease, the old one revoked.
    let r = put(&b, "/r", "refresh=true&ttl=10").await;
    assert_eq!((r.status, r.json["action"].as_str()), (200, Some("set")));
    assert_eq!((r.json["node"]["value"].as_str(), r.json["node"]["ttl"].as_i64()), (Some("v"), Some(10)));
    assert_eq!(r.json["node"]["modifiedIndex"], 3);
    assert_eq!(leases(&b).len(), 1);
    b.tick(60);
    assert_eq!(get(&b, "/r", "").await.json["node"]["value"], "v");

    let r = put(&b, "/r", "refresh=true&ttl=5&value=new").await;
    crate::expect(&r, 400, "{\"errorCode\":211,\"message\":\"Value provided on refresh\",\"cause\":\"A value was provided on a refresh\",\"index\":0}\n");
    assert_eq!(put(&b, "/r", "refresh=true").await.code(), 212);
    assert_eq!(put(&b, "/missing", "refresh=true&ttl=5").await.code(), 100);
    // A compare-and-swap refresh checks its compare first.
    assert_eq!(put(&b, "/r", "refresh=true&ttl=10&prevValue=nope").await.code(), 101);
    let r = put(&b, "/r", "refresh=true&ttl=10&prevValue=v").await;
    assert_eq!(
        (r.status, r.json["action"].as_str(), r.json["node"]["ttl"].as_i64()),
        (200, Some("compareAndSwap"), Some(10))
    );
}

#[tokio::test]
async fn empty_ttl_clears_it() {
    let b = LocalBackend::new();
    put(&b, "/c", "value=1&ttl=5").await;
    let r = req(&b, "PUT", "/c", "ttl=", "value=2").await;
    assert_eq!(r.status, 200);
    assert!(r.json["node"].get("ttl").is_none() && r.json["node"].get("expiration").is_none(), "{}", r.body);
    assert_eq!(r.json["prevNode"]["ttl"], 5);
    assert!(leases(&b).is_empty(), "the lease nothing uses is revoked");
    b.tick(80);
    assert_eq!(get(&b, "/c", "").await.json["node"]["value"], "2");
}

#[tokio::test]
async fn ttl_directories_take_their_contents_along() {
    let b = LocalBackend::new();
    let r = put(&b, "/d", "dir=true&ttl=5").await;
    assert_eq!(r.json["node"]["ttl"], 5);
    put(&b, "/d/x", "value=1").await;
    put(&b, "/d/sub/y", "value=2").await;
    assert_eq!(get(&b, "/d", "").await.json["node"]["ttl"], 5);
    b.tick(60);
    assert_eq!(get(&b, "/d", "").await.code(), 100);
    assert_eq!(get(&b, "/d/sub/y", "").await.code(), 100);

    // Changing a directory's TTL moves its contents along; removing it makes them permanent.
    put(&b, "/e", "dir=true&ttl=5").await;
    put(&b, "/e/x", "value=1").await;
    let r = put(&b, "/e", "dir=true&prevExist=true&ttl=100").await;
    assert_eq!(
        (r.status, r.json["node"]["ttl"].as_i64(), r.json["prevNode"]["ttl"].as_i64()),
        (200, Some(100), Some(5))
    );
    b.tick(60);
    assert_eq!(get(&b, "/e/x", "").await.json["node"]["value"], "1");
    let r = put(&b, "/e", "prevExist=true&dir=true").await;
    assert!(r.json["node"].get("ttl").is_none(), "{}", r.body);
    b.tick(1100);
    assert_eq!(get(&b, "/e/x", "").await.json["node"]["value"], "1");
    assert!(leases(&b).is_empty());
}
