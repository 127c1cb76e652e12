//! The driver, storage and peer transport together, in one process: members talk over real
//! loopback TCP and persist to in-memory storage; clients use the `Backend` handle.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use std::time::Duration;

use keel_core::api::request::*;
use keel_core::config::NodeConfig;
use keel_core::node::Node;
use keel_core::state::watch::WatchCreate;
use keel_net::backend::Backend;
use keel_net::metrics::Metrics;
use keel_net::peer::PeerTransport;
use keel_server::clock::Clock;
use keel_server::driver::{Driver, Handle, Identity, Wiring};
use keel_server::storage::{MemStorage, Storage};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Small watch streams, so a test fills one with a few writes.
const WATCH_BUFFER: usize = 8;

async fn start(n: u64) -> Vec<(Handle, JoinHandle<()>)> {
    let mut listeners = Vec::new();
    for _ in 0..n {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let members: Vec<Member> = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| Member {
            id: i as u64 + 1,
            name: format!("m{i}"),
            peer_urls: vec![format!("http://{}", l.local_addr().unwrap())],
            ..Default::default()
        })
        .collect();
    let mut out = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let id = i as u64 + 1;
        let mut config = NodeConfig::new(id, members.clone());
        config.tick_ms = 20;
        config.seed = 100 + id;
        config.cluster_id = 7;
        let storage = MemStorage::new();
        let node = Node::new(config, storage.engine()).unwrap();
        let (tx, peers) = tokio::sync::mpsc::channel(1024);
        let transport = PeerTransport::new(id, 7, tx);
        transport.serve(listener);
        let wiring = Wiring {
            transport,
            peers,
            identity: Identity { name: format!("m{i}"), client_urls: vec![format!("http://client{i}")] },
            metrics: Metrics::new(),
            tick: Duration::from_millis(20),
            request_timeout: Duration::from_secs(5),
            clock: Clock::new(),
            watch_buffer: WATCH_BUFFER,
        };
        let (driver, handle) = Driver::new(node, storage, wiring);
        let task = tokio::spawn(async move {
            let _ = driver.run().await;
        });
        out.push((handle, task));
    }
    out
}

async fn wait_for_leader(handles: &[&Handle]) -> u64 {
    for _ in 0..200 {
        if let Some(h) = handles.iter().find(|h| h.status().leader != 0) {
            return h.status().leader;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no leader");
}

fn put(key: &str, value: &str) -> Request {
    Request::Put(PutRequest { key: key.into(), value: value.into(), ..Default::default() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_drivers_elect_replicate_forward_and_survive_a_member_loss() {
    let members = start(3).await;
    let handles: Vec<&Handle> = members.iter().map(|(h, _)| h).collect();
    let leader = wait_for_leader(&handles).await;
    // Writes through every member, reads (linearizable) through every member.
    for (i, h) in handles.iter().enumerate() {
        h.call(put(&format!("k{i}"), "v")).await.unwrap();
    }
    for h in &handles {
        let Ok(Response::Range(r)) = h
            .call(Request::Range(RangeRequest { key: b"k".to_vec(), range_end: b"l".to_vec(), ..Default::default() }))
            .await
        else {
            panic!()
        };
        assert_eq!(r.count, 3);
    }
    // Leader-only requests are forwarded from followers.
    let follower = handles.iter().find(|h| h.status().id != leader).unwrap();
    let Ok(Response::LeaseGrant(g)) = follower.call(Request::LeaseGrant(LeaseGrantRequest { ttl: 10, id: 0 })).await
    else {
        panic!()
    };
    let Ok(Response::LeaseKeepAlive(k)) =
        follower.call(Request::LeaseKeepAlive(LeaseKeepAliveRequest { id: g.id })).await
    else {
        panic!()
    };
    assert_eq!(k.ttl, 10);
    // Members publish their names and client URLs.
    for _ in 0..100 {
        if handles[0].status().members.iter().all(|m| !m.name.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(handles[0].status().members.iter().all(|m| m.client_urls.len() == 1), "{:?}", handles[0].status().members);
    // A watch on a follower sees a write made through the leader.
    let mut watch = follower.watch(WatchCreate { key: b"w".to_vec(), ..Default::default() }).await.unwrap();
    assert!(watch.events.recv().await.unwrap().created);
    let leader_handle = handles.iter().find(|h| h.status().id == leader).unwrap();
    leader_handle.call(put("w", "1")).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), watch.events.recv()).await.unwrap().unwrap();
    assert_eq!(event.events[0].kv.value, b"1");
    // The leader's driver stops; the others elect a new leader and keep serving.
    let (_, leader_task) = members.iter().find(|(h, _)| h.status().id == leader).unwrap();
    leader_task.abort();
    let survivors: Vec<&Handle> = handles.iter().copied().filter(|h| h.status().id != leader).collect();
    let mut written = false;
    for _ in 0..100 {
        if survivors[0].call(put("after", "loss")).await.is_ok() {
            written = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(written, "no write succeeded after the leader stopped");
    let Ok(Response::Range(r)) =
        survivors[1].call(Request::Range(RangeRequest { key: b"after".to_vec(), ..Default::default() })).await
    else {
        panic!()
    };
    assert_eq!(r.kvs[0].value, b"loss");
}

/// A watcher whose client stops reading fills its stream, is held back on the member and is
/// caught up from history once it reads again: every revision once, in order, and never
/// canceled (a stopped stream used to be all it got).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_watcher_is_caught_up_from_history_not_dropped() {
    let members = start(1).await;
    let h = &members[0].0;
    wait_for_leader(&[h]).await;
    let mut watch = h.watch(WatchCreate { key: b"s".to_vec(), ..Default::default() }).await.unwrap();
    assert!(watch.events.recv().await.unwrap().created);
    // Many more revisions than the stream holds, while the client reads nothing.
    let mut expected = Vec::new();
    for i in 0..(WATCH_BUFFER * 12) {
        let Ok(Response::Put(p)) = h.call(put("s", &i.to_string())).await else { panic!() };
        expected.push(p.header.revision);
    }
    let mut seen = Vec::new();
    while seen.len() < expected.len() {
        let resp = tokio::time::timeout(Duration::from_secs(5), watch.events.recv())
            .await
            .expect("the watcher was left without events")
            .expect("the watch stream ended");
        assert!(!resp.canceled, "{resp:?}");
        seen.extend(resp.events.iter().map(|e| e.kv.mod_revision));
    }
    assert_eq!(seen, expected);
}
