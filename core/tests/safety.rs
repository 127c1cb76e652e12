//! Regression tests for safety bugs found in review: each reproduces the scenario that used
//! to lose an acknowledged write, serve a stale read, mis-answer a request or crash the node.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use keel_core::api::error::Error;
use keel_core::api::request::*;
use keel_core::cluster::LocalCluster;
use keel_core::config::NodeConfig;
use keel_core::node::Node;
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};

fn put(key: &str, value: &str) -> Request {
    Request::Put(PutRequest { key: key.into(), value: value.into(), ..Default::default() })
}

fn read(key: &str) -> Request {
    Request::Range(RangeRequest { key: key.into(), ..Default::default() })
}

fn others(c: &LocalCluster, leader: u64) -> Vec<u64> {
    c.running().into_iter().filter(|id| *id != leader).collect()
}

#[test]
fn a_write_is_not_acknowledged_while_only_the_leader_has_synced_it() {
    // Follower A's fsync stalls and follower B is down: the write is durable on one member
    // only. Heartbeats produce readies with nothing to write on A; acknowledging those used to
    // tell raft-rs A's unsynced append was durable, and the leader answered the client.
    let mut c = LocalCluster::new(3, 8);
    let leader = c.wait_for_leader();
    let [a, b] = others(&c, leader)[..] else { panic!() };
    c.crash(b);
    c.stall_disk(a);
    let id = c.request(leader, put("k", "v"));
    c.tick_until(30, |_| false);
    assert_eq!(c.response(leader, id), None, "acknowledged a write only the leader had synced");
    c.resume_disk(a);
    c.tick_until(10, |_| false);
    assert!(matches!(c.response(leader, id), Some(Ok(_))), "the write commits once a majority has synced it");
}

#[test]
fn a_crashed_members_unsynced_writes_are_lost_but_acknowledged_ones_survive() {
    let mut c = LocalCluster::new(3, 18);
    let leader = c.wait_for_leader();
    c.call(leader, put("before", "1")).unwrap();
    for id in c.running() {
        c.stall_disk(id);
    }
    let pending = c.request(leader, put("after", "2"));
    c.tick_until(5, |_| false);
    assert_eq!(c.response(leader, pending), None);
    for id in [1, 2, 3] {
        c.crash(id);
        c.restart(id);
    }
    let leader = c.wait_for_leader();
    let Ok(Response::Range(r)) = c.call(leader, read("before")) else { panic!() };
    assert_eq!(r.kvs[0].value, b"1");
}

#[test]
fn an_answer_to_an_earlier_runs_read_never_serves_a_new_read() {
    let mut c = LocalCluster::new(3, 23);
    let leader = c.wait_for_leader();
    let f = others(&c, leader)[0];
    c.call(leader, put("k", "old")).unwrap();
    // f's read round is answered by the leader, but the answer is delayed...
    c.hold_link(leader, f);
    c.submit(f, read("k"));
    c.settle();
    // ...while f restarts, and a write is acknowledged.
    c.crash(f);
    c.restart(f);
    c.call(leader, put("k", "new")).unwrap();
    // f's new read round is lost on the way; then the stale answer arrives.
    c.cut_link(f, leader);
    let id = c.submit(f, read("k"));
    c.settle();
    c.release_link(leader, f);
    if let Some(Ok(Response::Range(r))) = c.response(f, id) {
        assert_eq!(r.kvs[0].value, b"new", "a stale answer served a linearizable read");
    }
    c.heal();
    let Ok(Response::Range(r)) = c.call(f, read("k")) else { panic!() };
    assert_eq!(r.kvs[0].value, b"new");
}

#[test]
fn reads_from_two_members_at_once_are_not_confused_on_the_leader() {
    let mut c = LocalCluster::new(3, 29);
    let leader = c.wait_for_leader();
    let f = others(&c, leader)[0];
    let a = c.submit(leader, read("k"));
    let b = c.submit(f, read("k"));
    c.settle();
    assert!(c.response(leader, a).is_some_and(|r| r.is_ok()));
    assert!(c.response(f, b).is_some_and(|r| r.is_ok()), "the follower's read waited for a retry");
}

#[test]
fn a_restarted_member_does_not_answer_a_new_request_with_an_old_ones_result() {
    let mut c = LocalCluster::new(3, 31);
    let leader = c.wait_for_leader();
    let f = others(&c, leader)[0];
    // f proposes (request id N), its proposal reaches the leader, but f crashes before the
    // entry applies; after restart a different request reuses id N.
    c.hold_link(leader, f);
    let old = c.submit(f, put("x", "old"));
    c.settle();
    c.crash(f);
    c.restart(f);
    c.release_link(leader, f);
    c.node_mut(f).request(old, read("nothing-here"));
    c.tick_until(5, |_| false);
    match c.response(f, old) {
        Some(Ok(Response::Range(_))) | None => {}
        other => panic!("the new request got the old proposal's answer: {other:?}"),
    }
}

#[test]
fn recovery_accepts_a_snapshot_stored_ahead_of_the_hard_state() {
    let mut c = LocalCluster::with_config(3, 1, |cfg| {
        cfg.snapshot_count = 5;
        cfg.snapshot_catchup_entries = 2;
    });
    let l = c.wait_for_leader();
    for i in 0..12 {
        c.call(l, put(&format!("k{i}"), "v")).unwrap();
    }
    let f = others(&c, l)[0];
    let mut rec = c.disk(f).recovery();
    let snap = rec.snapshot.clone().expect("a snapshot");
    // A crash between storing the snapshot and the hard state that committed its entries.
    rec.hard_state.commit = snap.index - 1;
    let node = Node::recover(NodeConfig::new(f, vec![]), rec, Box::new(c.disk(f).engine.fork())).expect("recovers");
    assert!(node.applied_index() >= snap.index, "the state holds the snapshot's entries and maybe more");
    assert!(node.commit_index() >= node.applied_index(), "the commit index is raised to what was applied");
}

#[test]
fn removing_the_last_voter_is_refused_and_changes_nothing() {
    let mut c = LocalCluster::new(1, 1);
    let l = c.wait_for_leader();
    let r = c.call(l, Request::MemberChange(MemberChange::Remove { id: 1 }));
    assert!(matches!(r, Err(Error::Internal(ref m)) if m.contains("raft rejected")), "{r:?}");
    assert_eq!(c.node(1).state().members().len(), 1);
    assert!(!c.node(1).is_removed());
    c.call(l, put("still", "works")).unwrap();
}

fn message(kind: MessageType, from: u64, to: u64, term: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(kind);
    m.from = from;
    m.to = to;
    m.term = term;
    m
}

#[test]
fn malformed_peer_messages_are_refused_without_a_panic() {
    let mut c = LocalCluster::new(3, 37);
    let leader = c.wait_for_leader();
    let f = others(&c, leader)[0];
    let term = c.node(leader).term();
    let read_without_context = message(MessageType::MsgReadIndex, f, leader, term);
    assert!(c.node_mut(leader).step(&read_without_context.write_to_bytes().unwrap()).is_err());
    let mut huge_commit = message(MessageType::MsgHeartbeat, leader, f, term);
    huge_commit.commit = 1_000_000;
    assert!(c.node_mut(f).step(&huge_commit.write_to_bytes().unwrap()).is_err());
    let misaddressed = message(MessageType::MsgHeartbeat, leader, 99, term);
    assert!(c.node_mut(f).step(&misaddressed.write_to_bytes().unwrap()).is_err());
    let mut bad_snapshot = message(MessageType::MsgSnapshot, leader, f, term);
    bad_snapshot.mut_snapshot().mut_metadata().index = 1000;
    bad_snapshot.mut_snapshot().set_data(b"not a state machine".to_vec().into());
    assert!(c.node_mut(f).step(&bad_snapshot.write_to_bytes().unwrap()).is_err());
    // Found by the raft_messages fuzzer (fuzz/regressions/raft_messages/term-zero-heartbeat):
    // raft-rs steps a term-0 message as a local one, without any term check.
    let mut term_zero = message(MessageType::MsgHeartbeat, leader, f, 0);
    term_zero.commit = 1_000_000;
    assert!(c.node_mut(f).step(&term_zero.write_to_bytes().unwrap()).is_err());
    // Found by the raft_messages fuzzer (fuzz/regressions/raft_messages/transfer-to-follower):
    // a follower forwards these to the leader, and raft-rs panics sending one with a term.
    for kind in [MessageType::MsgTransferLeader, MessageType::MsgPropose, MessageType::MsgReadIndex] {
        let mut forwarded = message(kind, leader, f, term);
        forwarded.mut_entries().push(Default::default());
        assert!(c.node_mut(f).step(&forwarded.write_to_bytes().unwrap()).is_err(), "{kind:?}");
    }
    // Found by the raft_messages fuzzer (fuzz/regressions/raft_messages/append-out-of-sequence):
    // raft-rs commits up to the message's index plus its entry count, whatever their indexes,
    // and takes term 0 as a match for any index past its log.
    let mut gap = message(MessageType::MsgAppend, leader, f, term);
    gap.index = c.node(f).commit_index();
    gap.log_term = term;
    gap.commit = gap.index + 2;
    let mut far = raft::eraftpb::Entry { index: gap.index + 50, term, ..Default::default() };
    gap.mut_entries().push(far.clone());
    far.index = gap.index + 2;
    gap.mut_entries().push(far);
    assert!(c.node_mut(f).step(&gap.write_to_bytes().unwrap()).is_err());
    let mut past_the_log = message(MessageType::MsgAppend, leader, f, term);
    past_the_log.index = 1_000;
    past_the_log.commit = 1_001;
    past_the_log.mut_entries().push(raft::eraftpb::Entry { index: 1_001, term, ..Default::default() });
    assert!(c.node_mut(f).step(&past_the_log.write_to_bytes().unwrap()).is_err());
    // Found by the raft_messages fuzzer (fuzz/regressions/raft_messages/snapshot-without-term).
    let mut termless = message(MessageType::MsgSnapshot, leader, f, term);
    termless.mut_snapshot().mut_metadata().index = 1_000;
    termless.mut_snapshot().mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
    termless.mut_snapshot().set_data(c.node(f).state().snapshot().unwrap().into());
    assert!(c.node_mut(f).step(&termless.write_to_bytes().unwrap()).is_err());
    // Found by the raft_messages fuzzer (fuzz/regressions/raft_messages/snapshot-voter-twice).
    let mut twice = message(MessageType::MsgSnapshot, leader, f, term);
    twice.mut_snapshot().mut_metadata().index = 1_000;
    twice.mut_snapshot().mut_metadata().term = term;
    twice.mut_snapshot().mut_metadata().mut_conf_state().voters = vec![f, 0, 0];
    twice.mut_snapshot().set_data(c.node(f).state().snapshot().unwrap().into());
    assert!(c.node_mut(f).step(&twice.write_to_bytes().unwrap()).is_err());
    // Found by the raft_messages fuzzer (fuzz/regressions/raft_messages/empty-proposal).
    let empty_proposal = message(MessageType::MsgPropose, f, leader, term);
    assert!(c.node_mut(leader).step(&empty_proposal.write_to_bytes().unwrap()).is_err());
    c.call(leader, put("alive", "yes")).unwrap();
    assert!(c.tick_until(10, |c| c.node(f).applied_index() == c.node(leader).applied_index()));
}

#[test]
fn a_new_leader_renews_a_lease_only_after_applying_its_predecessors_revoke() {
    let mut c = LocalCluster::new(3, 43);
    let leader = c.wait_for_leader();
    c.call(leader, Request::LeaseGrant(LeaseGrantRequest { ttl: 30, id: 9 })).unwrap();
    c.call(leader, Request::LeaseRevoke(LeaseRevokeRequest { id: 9 })).unwrap();
    c.crash(leader);
    let new = c.wait_for_leader();
    let r = c.call(new, Request::LeaseKeepAlive(LeaseKeepAliveRequest { id: 9 }));
    assert_eq!(r, Err(Error::LeaseNotFound));
}

#[test]
fn a_state_stored_ahead_of_the_log_restarts_the_log_after_it() {
    let mut c = LocalCluster::new(3, 2);
    let l = c.wait_for_leader();
    for i in 0..12 {
        c.call(l, put(&format!("k{i}"), "v")).unwrap();
    }
    let f = others(&c, l)[0];
    // A crash after a snapshot from the leader reached the state store but before the log
    // restarted after it: the log still ends at the bootstrap entries.
    let mut rec = c.disk(f).recovery();
    rec.entries.truncate(3);
    rec.hard_state.commit = 3;
    let engine = c.disk(f).engine.fork();
    let applied = c.node(f).applied_index();
    assert!(applied > 3);
    let node = Node::recover(NodeConfig::new(f, vec![]), rec, Box::new(engine.fork())).expect("recovers");
    assert_eq!(node.applied_index(), applied);
    assert!(node.commit_index() >= applied);
    // A joiner whose log is empty altogether resumes from its state too.
    let node = Node::new(NodeConfig::new(f, vec![]), Box::new(engine)).expect("resumes");
    assert_eq!(node.applied_index(), applied);
}
