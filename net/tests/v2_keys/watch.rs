//! wait=true: past and future changes, recursion, hidden keys, compaction, cancellation.

use std::time::Duration;

use keel_core::api::request::{CompactionRequest, Request};

use crate::{delete, expect, get, put, LocalBackend};

/// Start a wait in the background.
fn spawn_wait(b: &LocalBackend, path: &str, query: &str) -> tokio::task::JoinHandle<crate::Resp> {
    let (b, path, query) = (b.clone(), path.to_string(), query.to_string());
    tokio::spawn(async move { get(&b, &path, &query).await })
}

/// Wait until the member has exactly `n` watches (spawned waits registered, finished ones
/// cancelled).
async fn watches(b: &LocalBackend, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while b.watch_count() != n {
        assert!(tokio::time::Instant::now() < deadline, "{} watches, expected {n}", b.watch_count());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Give running tasks a moment (to check that something does *not* happen).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

async fn answer(h: tokio::task::JoinHandle<crate::Resp>) -> crate::Resp {
    tokio::time::timeout(Duration::from_secs(10), h).await.expect("the wait answers").unwrap()
}

#[tokio::test]
async fn wait_index_in_the_past() {
    let b = LocalBackend::new();
    put(&b, "/w", "value=1").await; // 2
    put(&b, "/w", "value=2").await; // 3
    let r = get(&b, "/w", "wait=true&waitIndex=2").await;
    expect(
        &r,
        200,
        "{\"action\":\"create\",\"node\":{\"key\":\"/w\",\"value\":\"1\",\"modifiedIndex\":2,\"createdIndex\":2}}\n",
    );
    assert_eq!(r.index(), 3, "X-Etcd-Index is the index the watch started at");
    let r = get(&b, "/w", "wait=true&waitIndex=3").await;
    expect(&r, 200, "{\"action\":\"set\",\"node\":{\"key\":\"/w\",\"value\":\"2\",\"modifiedIndex\":3,\"createdIndex\":2},\"prevNode\":{\"key\":\"/w\",\"value\":\"1\",\"modifiedIndex\":2,\"createdIndex\":2}}\n");
}

#[tokio::test]
async fn wait_for_a_future_change() {
    let b = LocalBackend::new();
    put(&b, "/w", "value=1").await; // 2
    let h = spawn_wait(&b, "/w", "wait=true");
    watches(&b, 1).await;
    put(&b, "/other", "value=x").await; // 3
    put(&b, "/w!x", "value=x").await; // 4: in the watched interval, not the key
    assert!(!h.is_finished());
    delete(&b, "/w", "").await; // 5
    let r = answer(h).await;
    expect(&r, 200, "{\"action\":\"delete\",\"node\":{\"key\":\"/w\",\"modifiedIndex\":5,\"createdIndex\":2},\"prevNode\":{\"key\":\"/w\",\"value\":\"1\",\"modifiedIndex\":2,\"createdIndex\":2}}\n");
    assert_eq!(r.index(), 2);
    // A waitIndex ahead of the store waits for it.
    watches(&b, 0).await;
    let h = spawn_wait(&b, "/z", "wait=true&waitIndex=7");
    watches(&b, 1).await;
    put(&b, "/z", "value=early").await; // 6
    put(&b, "/z", "value=late").await; // 7
    assert_eq!(answer(h).await.json["node"]["value"], "late");
}

#[tokio::test]
async fn recursive_waits_and_hidden_keys() {
    let b = LocalBackend::new();
    let dir_only = spawn_wait(&b, "/dir", "wait=true");
    let rec = spawn_wait(&b, "/dir", "wait=true&recursive=true");
    let root = spawn_wait(&b, "/", "wait=true&recursive=true");
    watches(&b, 3).await;
    put(&b, "/_hidden", "value=h").await; // 2
    put(&b, "/dir/_h/x", "value=h").await; // 3
    put(&b, "/dir/sub/x", "value=1").await; // 4
    let r = answer(rec).await;
    assert_eq!((r.json["action"].as_str(), r.json["node"]["key"].as_str()), (Some("create"), Some("/dir/sub/x")));
    let r = answer(root).await;
    assert_eq!(r.json["node"]["key"], "/dir/sub/x");
    assert!(!dir_only.is_finished());
    put(&b, "/dir2", "value=no").await; // shares the prefix only
    settle().await;
    assert!(!dir_only.is_finished());
    // The directory itself: its marker.
    put(&b, "/dir", "dir=true&prevExist=true&ttl=60").await;
    let r = answer(dir_only).await;
    assert_eq!((r.json["node"]["key"].as_str(), r.json["node"]["dir"].as_bool()), (Some("/dir"), Some(true)));
    assert_eq!(r.json["node"]["ttl"], 60);
}

#[tokio::test]
async fn expiry_is_reported_as_expire() {
    let b = LocalBackend::new();
    put(&b, "/t", "value=x&ttl=3").await; // 2
    put(&b, "/u", "value=x&ttl=30").await; // 3
    let h = spawn_wait(&b, "/t", "wait=true");
    let u = spawn_wait(&b, "/u", "wait=true");
    watches(&b, 2).await;
    b.tick(40);
    let r = answer(h).await;
    assert_eq!(r.json["action"], "expire");
    assert_eq!(r.json["node"]["key"], "/t");
    assert_eq!(r.json["prevNode"]["value"], "x");
    delete(&b, "/u", "").await;
    assert_eq!(answer(u).await.json["action"], "delete");
}

#[tokio::test]
async fn compacted_wait_index_is_401() {
    let b = LocalBackend::new();
    for i in 0..4 {
        put(&b, "/c", &format!("value={i}")).await; // 2..=5
    }
    b.core(Request::Compact(CompactionRequest { revision: 4, physical: false })).unwrap();
    let r = get(&b, "/c", "wait=true&waitIndex=2").await;
    expect(&r, 400, "{\"errorCode\":401,\"message\":\"The event in requested index is outdated and cleared\",\"cause\":\"the requested history has been cleared [4/2]\",\"index\":5}\n");
    assert_eq!(r.index(), 5);
    let r = get(&b, "/c", "wait=true&waitIndex=4").await;
    assert_eq!(r.json["node"]["value"], "2");
    watches(&b, 0).await;
}

#[tokio::test]
async fn dropping_a_wait_cancels_its_watch() {
    let b = LocalBackend::new();
    let waited = tokio::time::timeout(Duration::from_millis(30), get(&b, "/never", "wait=true")).await;
    assert!(waited.is_err());
    watches(&b, 0).await;
    // Huge indexes are just far in the future.
    let waited =
        tokio::time::timeout(Duration::from_millis(30), get(&b, "/x", "wait=true&waitIndex=18446744073709551615"))
            .await;
    assert!(waited.is_err());
}
