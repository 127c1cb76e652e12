//! Whole-cluster behaviour of the core, on the in-process harness: elections, replication,
//! failures, partitions, snapshots, membership and leases across leader changes.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use keel_core::api::error::Error;
use keel_core::api::request::*;
use keel_core::cluster::LocalCluster;
use keel_core::state::watch::WatchCreate;

fn put(key: &str, value: &str) -> Request {
    Request::Put(PutRequest { key: key.into(), value: value.into(), ..Default::default() })
}

fn get(key: &str, serializable: bool) -> Request {
    Request::Range(RangeRequest { key: key.into(), serializable, ..Default::default() })
}

fn value_of(resp: Result<Response, Error>) -> Option<Vec<u8>> {
    match resp {
        Ok(Response::Range(r)) => r.kvs.first().map(|kv| kv.value.clone()),
        other => panic!("expected a range response, got {other:?}"),
    }
}

fn followers(c: &LocalCluster, leader: u64) -> Vec<u64> {
    c.running().into_iter().filter(|id| *id != leader).collect()
}

fn assert_converged(c: &mut LocalCluster) {
    c.tick_until(50, |c| {
        let ids = c.running();
        let applied: Vec<u64> = ids.iter().map(|id| c.node(*id).applied_index()).collect();
        applied.iter().all(|a| *a == applied[0])
    });
    let hashes: Vec<u64> = c.running().iter().map(|id| c.node(*id).state().hash()).collect();
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "members diverged: {hashes:?}");
}

#[test]
fn a_single_member_elects_itself_and_serves_reads_and_writes() {
    let mut c = LocalCluster::new(1, 1);
    assert_eq!(c.wait_for_leader(), 1);
    let resp = c.call(1, put("a", "1")).unwrap();
    let Response::Put(p) = resp else { panic!() };
    assert_eq!(p.header.revision, 2, "etcd's first write is revision 2");
    assert_eq!(p.header.member_id, 1);
    assert!(p.header.raft_term >= 2);
    assert_eq!(value_of(c.call(1, get("a", false))), Some(b"1".to_vec()));
}

#[test]
fn three_members_replicate_and_answer_linearizable_reads_on_followers() {
    let mut c = LocalCluster::new(3, 7);
    let leader = c.wait_for_leader();
    let follower = followers(&c, leader)[0];
    c.call(follower, put("k", "via-follower")).expect("followers forward writes");
    // A linearizable read on any member sees the acknowledged write.
    for id in c.running() {
        assert_eq!(value_of(c.call(id, get("k", false))), Some(b"via-follower".to_vec()));
    }
    assert_converged(&mut c);
}

#[test]
fn many_concurrent_reads_share_read_index_rounds() {
    let mut c = LocalCluster::new(3, 3);
    let leader = c.wait_for_leader();
    c.call(leader, put("k", "v")).unwrap();
    let follower = followers(&c, leader)[0];
    // Submitted together, without time passing: they must share one ReadIndex round.
    let before = c.delivered;
    let ids: Vec<_> = (0..200).map(|_| c.submit(follower, get("k", false))).collect();
    c.settle();
    for id in ids {
        assert_eq!(value_of(c.response(follower, id).expect("answered without a tick")), Some(b"v".to_vec()));
    }
    // One round from a follower: ReadIndex to the leader, its heartbeat round to two
    // followers and their answers, and the ReadIndex response — a handful of messages.
    let messages = c.delivered - before;
    assert!(messages <= 8, "{messages} messages for 200 reads: reads were not batched");
}

#[test]
fn losing_the_leader_elects_another_and_keeps_every_acknowledged_write() {
    let mut c = LocalCluster::new(5, 11);
    let leader = c.wait_for_leader();
    for i in 0..20 {
        c.call(leader, put(&format!("k{i}"), "v")).unwrap();
    }
    c.crash(leader);
    let new_leader = c.wait_for_leader();
    assert_ne!(new_leader, leader);
    for i in 0..20 {
        assert_eq!(value_of(c.call(new_leader, get(&format!("k{i}"), false))), Some(b"v".to_vec()));
    }
    c.call(new_leader, put("after", "crash")).unwrap();
    c.restart(leader);
    assert_eq!(value_of(c.call(leader, get("after", false))), Some(b"crash".to_vec()));
    assert_converged(&mut c);
}

#[test]
fn a_minority_cannot_commit_or_serve_stale_linearizable_reads() {
    let mut c = LocalCluster::new(5, 5);
    let old = c.wait_for_leader();
    c.call(old, put("x", "1")).unwrap();
    let others = followers(&c, old);
    let minority = [old, others[0]];
    let majority = [others[1], others[2], others[3]];
    c.partition(&[&minority, &majority]);
    let w = c.request(old, put("x", "minority"));
    let r = c.request(others[0], get("x", false));
    // The majority elects a leader and moves on.
    assert!(c.tick_until(100, |c| majority.iter().any(|id| c.node(*id).is_leader())));
    let new = majority.into_iter().find(|id| c.node(*id).is_leader()).unwrap();
    c.call(new, put("x", "majority")).unwrap();
    // The minority's write and read never succeed: they time out.
    c.tick_until(100, |_| false);
    assert_eq!(c.response(old, w), Some(Err(Error::Timeout)));
    assert_eq!(c.response(others[0], r), Some(Err(Error::Timeout)));
    assert!(!c.node(old).is_leader(), "check-quorum must depose an isolated leader");
    c.heal();
    assert_eq!(value_of(c.call(old, get("x", false))), Some(b"majority".to_vec()));
    assert_converged(&mut c);
}

#[test]
fn a_lagging_member_catches_up_from_a_snapshot() {
    let mut c = LocalCluster::with_config(3, 2, |cfg| {
        cfg.snapshot_count = 50;
        cfg.snapshot_catchup_entries = 10;
    });
    let leader = c.wait_for_leader();
    let lagging = followers(&c, leader)[0];
    c.crash(lagging);
    for i in 0..200 {
        c.call(leader, put(&format!("k{i:03}"), &i.to_string())).unwrap();
    }
    assert!(c.disk(leader).stored.snapshot.as_ref().is_some_and(|s| s.index > 100), "leader took snapshots");
    c.restart(lagging);
    c.tick_until(50, |c| c.node(lagging).applied_index() == c.node(leader).applied_index());
    assert!(c.disk(lagging).stored.snapshot.as_ref().is_some_and(|s| s.index > 100), "caught up by snapshot");
    let all = Request::Range(RangeRequest {
        key: b"k".to_vec(),
        range_end: b"l".to_vec(),
        serializable: true,
        ..Default::default()
    });
    let Ok(Response::Range(r)) = c.call(lagging, all) else { panic!() };
    assert_eq!(r.count, 200);
    assert_converged(&mut c);
}

#[test]
fn restarting_every_member_keeps_all_acknowledged_data() {
    let mut c = LocalCluster::with_config(3, 4, |cfg| cfg.snapshot_count = 30);
    let leader = c.wait_for_leader();
    for i in 0..100 {
        c.call(leader, put(&format!("k{i}"), &i.to_string())).unwrap();
    }
    for id in [1, 2, 3] {
        c.crash(id);
    }
    for id in [1, 2, 3] {
        c.restart(id);
    }
    let leader = c.wait_for_leader();
    for i in 0..100 {
        assert_eq!(value_of(c.call(leader, get(&format!("k{i}"), false))), Some(i.to_string().into_bytes()));
    }
    assert_converged(&mut c);
}

#[test]
fn members_are_added_as_learners_promoted_removed_and_leadership_moves() {
    let mut c = LocalCluster::new(3, 9);
    let leader = c.wait_for_leader();
    c.call(leader, put("before", "join")).unwrap();
    let add = MemberChange::Add(MemberAddRequest { id: 4, peer_urls: vec!["http://m4:2380".into()], is_learner: true });
    let Ok(Response::Member(r)) = c.call(leader, Request::MemberChange(add)) else { panic!() };
    assert!(r.member.as_ref().is_some_and(|m| m.is_learner && m.id == 4));
    assert_eq!(r.members.len(), 4);
    c.join(4, |_| {});
    assert!(c.tick_until(50, |c| c.node(4).applied_index() == c.node(leader).applied_index()));
    assert_eq!(value_of(c.call(4, get("before", true))), Some(b"join".to_vec()));
    // A learner cannot be made leader; a promoted one can.
    assert_eq!(c.call(leader, Request::MoveLeader { target: 4 }), Err(Error::BadLeaderTransferee));
    let promote = Request::MemberChange(MemberChange::Promote { id: 4 });
    // Only the leader knows whether the learner caught up: a follower must not propose it
    // unchecked (found by etcdctl's `member promote` against a follower).
    let follower = followers(&c, leader)[0];
    assert_eq!(c.call(follower, promote.clone()), Err(Error::NotLeader));
    c.call(leader, promote.clone()).unwrap();
    assert_eq!(c.call(leader, promote), Err(Error::MemberNotLearner));
    c.call(leader, Request::MoveLeader { target: 4 }).unwrap();
    assert_eq!(c.leader(), Some(4));
    let gone = followers(&c, 4)[0];
    c.call(4, Request::MemberChange(MemberChange::Remove { id: gone })).unwrap();
    assert!(c.node(gone).is_removed() || c.tick_until(20, |c| c.node(gone).is_removed()));
    c.crash(gone);
    c.call(4, put("after", "remove")).unwrap();
    let Ok(Response::Member(list)) = c.call(4, Request::MemberList) else { panic!() };
    assert_eq!(list.members.iter().map(|m| m.id).collect::<Vec<_>>().len(), 3);
    assert!(list.members.iter().all(|m| m.id != gone && !m.is_learner));
    assert_eq!(c.call(4, Request::MemberChange(MemberChange::Remove { id: gone })), Err(Error::MemberNotFound));
    assert_converged(&mut c);
}

#[test]
fn an_expired_lease_deletes_its_keys_in_one_revision_on_every_member() {
    let mut c = LocalCluster::new(3, 12);
    let leader = c.wait_for_leader();
    let Ok(Response::LeaseGrant(g)) = c.call(leader, Request::LeaseGrant(LeaseGrantRequest { ttl: 3, id: 0 })) else {
        panic!()
    };
    assert!(g.id > 0);
    for k in ["svc/a", "svc/b"] {
        let req = PutRequest { key: k.into(), value: b"up".to_vec(), lease: g.id, ..Default::default() };
        c.call(leader, Request::Put(req)).unwrap();
    }
    let rev_before = c.node(leader).state().store().current_revision();
    let watcher =
        c.watch(leader, WatchCreate { key: b"svc/".to_vec(), range_end: b"svc0".to_vec(), ..Default::default() });
    c.take_watch_responses(leader);
    // Alive before the TTL, gone after it.
    c.tick_until(20, |_| false);
    assert_eq!(value_of(c.call(leader, get("svc/a", false))), Some(b"up".to_vec()));
    assert!(c.tick_until(30, |c| c.node(leader).state().store().current_revision() > rev_before));
    let events: Vec<_> =
        c.take_watch_responses(leader).into_iter().filter(|r| r.watch_id == watcher).flat_map(|r| r.events).collect();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.kv.mod_revision == rev_before + 1), "both keys go in one revision");
    assert_converged(&mut c);
    for id in c.running() {
        assert_eq!(value_of(c.call(id, get("svc/a", true))), None);
    }
}

#[test]
fn a_leader_change_does_not_restart_a_checkpointed_lease() {
    let mut c = LocalCluster::with_config(3, 13, |cfg| cfg.lease_checkpoint_ms = 1000);
    let leader = c.wait_for_leader();
    let grant = Request::LeaseGrant(LeaseGrantRequest { ttl: 10, id: 77 });
    c.call(leader, grant).unwrap();
    let granted_at = c.now_ms();
    let put = PutRequest { key: b"lock".to_vec(), lease: 77, ..Default::default() };
    c.call(leader, Request::Put(put)).unwrap();
    // 6 s into the 10 s lease, the leader dies.
    c.tick_until(60, |_| false);
    c.crash(leader);
    let new = c.wait_for_leader();
    let gone = |c: &LocalCluster| {
        c.node(new)
            .state()
            .store()
            .range(&RangeRequest { key: b"lock".to_vec(), ..Default::default() })
            .is_ok_and(|r| r.count == 0)
    };
    assert!(c.tick_until(200, gone));
    let expired_after = c.now_ms() - granted_at;
    // Remaining ~4 s (+ at most 1 s checkpoint staleness + the 1 s election extension), well
    // before a restarted countdown (6 s + 10 s).
    assert!(expired_after < 14_000, "lease restarted its countdown: expired after {expired_after} ms");
    assert!(expired_after >= 10_000, "lease expired early: {expired_after} ms");
}

#[test]
fn keep_alives_hold_a_lease_and_time_to_live_reports_it() {
    let mut c = LocalCluster::new(3, 21);
    let leader = c.wait_for_leader();
    c.call(leader, Request::LeaseGrant(LeaseGrantRequest { ttl: 2, id: 5 })).unwrap();
    c.call(leader, Request::Put(PutRequest { key: b"hb".to_vec(), lease: 5, ..Default::default() })).unwrap();
    for _ in 0..10 {
        c.tick_until(10, |_| false);
        let Ok(Response::LeaseKeepAlive(k)) = c.call(leader, Request::LeaseKeepAlive(LeaseKeepAliveRequest { id: 5 }))
        else {
            panic!()
        };
        assert_eq!(k.ttl, 2);
    }
    let Ok(Response::LeaseTimeToLive(t)) =
        c.call(leader, Request::LeaseTimeToLive(LeaseTimeToLiveRequest { id: 5, keys: true }))
    else {
        panic!()
    };
    assert_eq!((t.granted_ttl, t.keys.clone()), (2, vec![b"hb".to_vec()]));
    assert!(t.ttl >= 1 && t.ttl <= 2);
    let follower = followers(&c, leader)[0];
    assert_eq!(c.call(follower, Request::LeaseLeases), Err(Error::NotLeader));
    let Ok(Response::LeaseLeases(l)) = c.call(leader, Request::LeaseLeases) else { panic!() };
    assert_eq!(l.leases, vec![5]);
}

/// The requests `Request::needs_leader` names are refused by a follower (the server forwards
/// them) and carried out by the leader; the others a follower takes itself.
#[test]
fn a_follower_refuses_exactly_the_leader_only_requests() {
    let mut c = LocalCluster::new(3, 23);
    let leader = c.wait_for_leader();
    c.call(leader, Request::LeaseGrant(LeaseGrantRequest { ttl: 30, id: 9 })).unwrap();
    let follower = followers(&c, leader)[0];
    let leader_only = [
        Request::LeaseKeepAlive(LeaseKeepAliveRequest { id: 9 }),
        Request::LeaseTimeToLive(LeaseTimeToLiveRequest { id: 9, keys: false }),
        Request::LeaseLeases,
        Request::MoveLeader { target: leader },
        Request::MemberChange(MemberChange::Promote { id: follower }),
    ];
    for request in leader_only {
        assert!(request.needs_leader(), "{request:?}");
        assert_eq!(c.call(follower, request.clone()), Err(Error::NotLeader), "{request:?}");
        assert_ne!(c.call(leader, request.clone()), Err(Error::NotLeader), "{request:?}");
    }
    let anywhere = Request::Put(PutRequest { key: b"k".to_vec(), ..Default::default() });
    assert!(!anywhere.needs_leader());
    assert!(c.call(follower, anywhere).is_ok());
}

#[test]
fn bad_requests_get_etcds_errors() {
    let mut c = LocalCluster::with_config(1, 1, |cfg| {
        cfg.max_request_bytes = 1024;
        cfg.max_txn_ops = 4;
    });
    c.wait_for_leader();
    let big = Request::Put(PutRequest { key: b"k".to_vec(), value: vec![0; 2048], ..Default::default() });
    assert_eq!(c.call(1, big), Err(Error::RequestTooLarge));
    assert_eq!(c.call(1, put("", "v")), Err(Error::EmptyKey));
    let ops = (0..5).map(|i| RequestOp::Put(PutRequest { key: vec![b'a' + i], ..Default::default() })).collect();
    assert_eq!(c.call(1, Request::Txn(TxnRequest { success: ops, ..Default::default() })), Err(Error::TooManyOps));
    assert_eq!(c.call(1, Request::LeaseRevoke(LeaseRevokeRequest { id: 42 })), Err(Error::LeaseNotFound));
    c.call(1, Request::LeaseGrant(LeaseGrantRequest { ttl: 5, id: 42 })).unwrap();
    assert_eq!(c.call(1, Request::LeaseGrant(LeaseGrantRequest { ttl: 5, id: 42 })), Err(Error::LeaseExists));
    let with_lease = PutRequest { key: b"k".to_vec(), lease: 999, ..Default::default() };
    assert_eq!(c.call(1, Request::Put(with_lease)), Err(Error::LeaseNotFound));
    c.call(1, put("k", "1")).unwrap();
    c.call(1, put("k", "2")).unwrap();
    c.call(1, Request::Compact(CompactionRequest { revision: 3, physical: false })).unwrap();
    let old = Request::Range(RangeRequest { key: b"k".to_vec(), revision: 2, ..Default::default() });
    assert_eq!(c.call(1, old), Err(Error::Compacted));
    let future = Request::Range(RangeRequest { key: b"k".to_vec(), revision: 99, ..Default::default() });
    assert_eq!(c.call(1, future), Err(Error::FutureRevision));
    assert!(c.node_mut(1).step(b"\xff\xff garbage").is_err());
}

#[test]
fn watchers_on_followers_see_every_event_in_order_including_replays() {
    let mut c = LocalCluster::new(3, 31);
    let leader = c.wait_for_leader();
    let follower = followers(&c, leader)[0];
    c.call(leader, put("cfg/a", "1")).unwrap();
    let live = c.watch(
        follower,
        WatchCreate { key: b"cfg/".to_vec(), range_end: b"cfg0".to_vec(), prev_kv: true, ..Default::default() },
    );
    let replay = c.watch(
        follower,
        WatchCreate { key: b"cfg/".to_vec(), range_end: b"cfg0".to_vec(), start_revision: 1, ..Default::default() },
    );
    c.call(leader, put("cfg/a", "2")).unwrap();
    c.call(leader, Request::DeleteRange(DeleteRangeRequest { key: b"cfg/a".to_vec(), ..Default::default() })).unwrap();
    c.tick_until(5, |_| false);
    let out = c.take_watch_responses(follower);
    let revs = |id| {
        out.iter()
            .filter(|r| r.watch_id == id)
            .flat_map(|r| r.events.iter().map(|e| e.kv.mod_revision))
            .collect::<Vec<_>>()
    };
    assert_eq!(revs(live), vec![3, 4]);
    assert_eq!(revs(replay), vec![2, 3, 4]);
    let prev = out.iter().filter(|r| r.watch_id == live).flat_map(|r| &r.events).next().unwrap();
    assert_eq!(prev.prev_kv.as_ref().map(|kv| kv.value.clone()), Some(b"1".to_vec()));
}

#[test]
fn in_order_keys_are_named_by_their_revision_and_increase() {
    let mut c = LocalCluster::new(3, 41);
    let leader = c.wait_for_leader();
    let follower = followers(&c, leader)[0];
    let mut names = Vec::new();
    for (i, node) in [leader, follower, leader].into_iter().enumerate() {
        let req = PutInOrderRequest { prefix: b"/queue/".to_vec(), value: vec![b'0' + i as u8], lease: 0 };
        let Ok(Response::PutInOrder(r)) = c.call(node, Request::PutInOrder(req)) else { panic!() };
        assert_eq!(r.kv.key, format!("/queue/{:020}", r.kv.mod_revision).into_bytes());
        assert_eq!(r.header.revision, r.kv.mod_revision);
        names.push(r.kv.key);
    }
    assert!(names.windows(2).all(|w| w[0] < w[1]), "in-order keys must sort in creation order");
}

#[test]
fn commit_index_only_writes_need_no_fsync_but_entries_always_do() {
    // Disk::write asserts that entries and snapshots are always marked must_sync.
    let mut c = LocalCluster::new(3, 51);
    let leader = c.wait_for_leader();
    for i in 0..10 {
        c.call(leader, put(&format!("k{i}"), "v")).unwrap();
    }
    let follower = followers(&c, leader)[0];
    assert!(c.disk(follower).lazy_writes > 0, "commit-only hard states were fsynced");
}

#[test]
fn watchers_that_asked_for_progress_get_it_on_request() {
    let mut c = LocalCluster::new(1, 61);
    c.wait_for_leader();
    c.call(1, put("a", "1")).unwrap();
    let quiet = c.watch(1, WatchCreate { key: b"a".to_vec(), ..Default::default() });
    let asked = c.watch(1, WatchCreate { key: b"a".to_vec(), progress_notify: true, ..Default::default() });
    c.take_watch_responses(1);
    c.node_mut(1).request_progress();
    c.settle();
    let out = c.take_watch_responses(1);
    assert!(out.iter().all(|r| r.watch_id != quiet), "a watcher that did not ask got progress");
    let progress: Vec<_> = out.iter().filter(|r| r.watch_id == asked).collect();
    assert_eq!(progress.len(), 1);
    assert!(progress[0].events.is_empty());
    assert_eq!(progress[0].revision, c.node(1).state().store().current_revision());
}
