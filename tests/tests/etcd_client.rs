//! A second, independent v3 client: the Rust `etcd-client` crate (tonic's own HTTP/2 client,
//! not Go's) drives a 3-member Keel through every service an application uses — KV with txns
//! and compaction, watches, leases with keep-alive, locks, elections, cluster and maintenance —
//! and gets etcd's errors where etcd gives them.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use std::time::Duration;

use etcd_client::{
    AlarmAction, AlarmType, Client, Compare, CompareOp, EventType, GetOptions, LockOptions, PutOptions, Txn, TxnOp,
    WatchOptions,
};
use keel_tests::ProcessCluster;

#[test]
fn the_rust_etcd_client_works_against_a_three_member_cluster() {
    let cluster = ProcessCluster::start(3);
    let endpoints: Vec<String> = (0..3).map(|i| cluster.url(i).to_string()).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut client = Client::connect(&endpoints, None).await.expect("connects");
        key_value(&mut client).await;
        watch(&mut client).await;
        leases(&mut client).await;
        lock_and_election(&mut client, &endpoints).await;
        cluster_and_maintenance(&mut client).await;
    });
}

async fn key_value(client: &mut Client) {
    client.put("/svc/a", "10.0.0.1", None).await.unwrap();
    let put = client.put("/svc/b", "10.0.0.2", None).await.unwrap();
    let written = put.header().unwrap().revision();
    let got = client.get("/svc/", Some(GetOptions::new().with_prefix())).await.unwrap();
    let values: Vec<&str> = got.kvs().iter().map(|kv| kv.value_str().unwrap()).collect();
    assert_eq!(values, ["10.0.0.1", "10.0.0.2"]);

    // Compare-and-swap: the first txn wins, the second sees the changed value.
    let cas = |expected: &str, new: &str| {
        Txn::new()
            .when([Compare::value("/svc/a", CompareOp::Equal, expected)])
            .and_then([TxnOp::put("/svc/a", new, None)])
            .or_else([TxnOp::get("/svc/a", None)])
    };
    assert!(client.txn(cas("10.0.0.1", "10.0.0.9")).await.unwrap().succeeded());
    assert!(!client.txn(cas("10.0.0.1", "10.0.0.7")).await.unwrap().succeeded());

    let before = client.get("/svc/a", Some(GetOptions::new().with_revision(written))).await.unwrap();
    assert_eq!(before.kvs()[0].value_str().unwrap(), "10.0.0.1", "reads at a past revision");
    client.compact(written + 1, None).await.unwrap();
    let err = client.get("/svc/a", Some(GetOptions::new().with_revision(written))).await.unwrap_err();
    assert!(err.to_string().contains("etcdserver: mvcc: required revision has been compacted"), "{err}");
    let deleted = client.delete("/svc/", Some(etcd_client::DeleteOptions::new().with_prefix())).await.unwrap();
    assert_eq!(deleted.deleted(), 2);
}

async fn watch(client: &mut Client) {
    let mut watch = client.watch("/cfg/", Some(WatchOptions::new().with_prefix().with_prev_key())).await.unwrap();
    let mut writer = client.clone();
    writer.put("/cfg/db", "one", None).await.unwrap();
    writer.put("/cfg/db", "two", None).await.unwrap();
    writer.delete("/cfg/db", None).await.unwrap();
    let mut seen = Vec::new();
    let mut watch_id = None;
    while seen.len() < 3 {
        let message = tokio::time::timeout(Duration::from_secs(10), watch.message()).await.expect("events in time");
        let response = message.unwrap().expect("the stream stays open");
        watch_id = Some(response.watch_id());
        for event in response.events() {
            let value = event.kv().map(|kv| kv.value_str().unwrap().to_string()).unwrap_or_default();
            let prev = event.prev_kv().map(|kv| kv.value_str().unwrap().to_string());
            seen.push((event.event_type(), value, prev));
        }
    }
    assert_eq!(
        seen,
        [
            (EventType::Put, "one".to_string(), None),
            (EventType::Put, "two".to_string(), Some("one".to_string())),
            (EventType::Delete, String::new(), Some("two".to_string())),
        ]
    );
    watch.cancel(watch_id.unwrap()).await.unwrap();
    let canceled = tokio::time::timeout(Duration::from_secs(10), watch.message()).await.expect("an answer in time");
    assert!(canceled.unwrap().expect("the cancel is answered").canceled());
}

async fn leases(client: &mut Client) {
    let lease = client.lease_grant(60, None).await.unwrap();
    client.put("/hb/node-a", "up", Some(PutOptions::new().with_lease(lease.id()))).await.unwrap();
    let (mut keeper, mut stream) = client.lease_keep_alive(lease.id()).await.unwrap();
    keeper.keep_alive().await.unwrap();
    let kept = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("an answer in time")
        .unwrap()
        .expect("a keep-alive answer");
    assert_eq!((kept.id(), kept.ttl()), (lease.id(), 60));
    let ttl = client
        .lease_time_to_live(lease.id(), Some(etcd_client::LeaseTimeToLiveOptions::new().with_keys()))
        .await
        .unwrap();
    assert_eq!(ttl.keys(), [b"/hb/node-a".to_vec()]);
    assert!(client.leases().await.unwrap().leases().iter().any(|l| l.id() == lease.id()));
    client.lease_revoke(lease.id()).await.unwrap();
    assert!(client.get("/hb/node-a", None).await.unwrap().kvs().is_empty(), "revoking deletes the lease's keys");
    let err = client.lease_revoke(lease.id()).await.unwrap_err();
    assert!(err.to_string().contains("etcdserver: requested lease not found"), "{err}");
}

async fn lock_and_election(client: &mut Client, endpoints: &[String]) {
    let lease = client.lease_grant(30, None).await.unwrap().id();
    let held = client.lock("/locks/job", Some(LockOptions::new().with_lease(lease))).await.unwrap();
    // A second client's lock waits while the first holds it, and gets it once it is unlocked.
    let mut other = Client::connect(endpoints, None).await.unwrap();
    let other_lease = other.lease_grant(30, None).await.unwrap().id();
    let waiting =
        tokio::spawn(async move { other.lock("/locks/job", Some(LockOptions::new().with_lease(other_lease))).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "the second locker waits for the holder");
    client.unlock(held.key()).await.unwrap();
    let second =
        tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("taken over in time").unwrap().unwrap();
    assert!(second.key().starts_with(b"/locks/job/"));

    let campaign = client.campaign("/election/indexer", "node-a", lease).await.unwrap();
    let leader = client.leader("/election/indexer").await.unwrap();
    assert_eq!(leader.kv().unwrap().value_str().unwrap(), "node-a");
    let key = campaign.leader().unwrap().clone();
    client.proclaim("node-a2", Some(etcd_client::ProclaimOptions::new().with_leader(key.clone()))).await.unwrap();
    assert_eq!(client.leader("/election/indexer").await.unwrap().kv().unwrap().value_str().unwrap(), "node-a2");
    client.resign(Some(etcd_client::ResignOptions::new().with_leader(key))).await.unwrap();
    let err = client.leader("/election/indexer").await.unwrap_err();
    assert!(err.to_string().contains("election: no leader"), "{err}");
}

async fn cluster_and_maintenance(client: &mut Client) {
    let members = client.member_list().await.unwrap();
    assert_eq!(members.members().len(), 3);
    let status = client.status().await.unwrap();
    assert!(status.leader() != 0 && status.errors().is_empty(), "{status:?}");
    let alarms = client.alarm(AlarmAction::Get, AlarmType::None, None).await.unwrap();
    assert!(alarms.alarms().is_empty());
    let hash = client.hash_kv(0).await.unwrap();
    assert!(hash.compact_version() > 0, "HashKV reports the compaction done earlier");
}
