//! Target `raft_messages`: Raft messages from peers, stepped into a member of a running
//! three-member cluster. Peers are trusted to speak Raft, but their bytes may be garbage, and a
//! message that would crash raft-rs (misaddressed, of a local type, claiming commits beyond the
//! member's log, carrying a snapshot that does not decode, ...) must be refused with an error.
//! Messages are built from structured input with terms and indexes near the member's own, so
//! mutations reach the interesting paths; raw bytes are mixed in for the decoder.

use arbitrary::{Arbitrary, Unstructured};
use keel_core::api::request::{PutRequest, Request};
use keel_core::cluster::LocalCluster;
use protobuf::{Message as _, ProtobufEnum};
use raft_proto::eraftpb::{Entry, EntryType, Message, MessageType, Snapshot};

/// Steps per input.
const MAX_STEPS: usize = 64;

#[derive(Arbitrary, Debug)]
enum Step {
    Message(Msg),
    Raw(Vec<u8>),
    /// Let the cluster run: `n` ticks (each delivering what was sent).
    Tick(u8),
}

/// A message, with terms and indexes relative to the receiving member's.
#[derive(Arbitrary, Debug)]
struct Msg {
    kind: u8,
    from: u8,
    misaddressed: bool,
    term: i8,
    log_term: i8,
    index: i8,
    commit: i8,
    entries: Vec<Ent>,
    reject: bool,
    reject_hint: i8,
    context: Vec<u8>,
    snapshot: Option<Snap>,
}

#[derive(Arbitrary, Debug)]
struct Ent {
    kind: u8,
    term: i8,
    index: i8,
    data: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Snap {
    index: i8,
    term: i8,
    /// The member's real state (so the install path runs) rather than `data`.
    real_state: bool,
    data: Vec<u8>,
    voters: Vec<u8>,
}

/// `base + delta`, never below zero.
fn near(base: u64, delta: i8) -> u64 {
    base.saturating_add_signed(delta as i64)
}

/// The target's body.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(target) = u.int_in_range(1..=3u64) else { return };
    let mut cluster = LocalCluster::new(3, 3);
    let leader = cluster.wait_for_leader();
    for i in 0..3u8 {
        let put = PutRequest { key: vec![b'k', i], value: vec![i], ..Default::default() };
        cluster.call(leader, Request::Put(put)).expect("a put on a healthy cluster");
    }
    for _ in 0..MAX_STEPS {
        let Ok(step) = Step::arbitrary(&mut u) else { break };
        match step {
            Step::Message(m) => {
                let bytes = build(&cluster, target, &m).write_to_bytes().expect("encoding a message");
                let _ = cluster.node_mut(target).step(&bytes);
            }
            Step::Raw(bytes) => {
                let _ = cluster.node_mut(target).step(&bytes);
            }
            Step::Tick(n) => {
                for _ in 0..n % 16 {
                    cluster.tick();
                }
            }
        }
        cluster.settle();
    }
    // Whatever happened, the members keep running.
    for _ in 0..30 {
        cluster.tick();
    }
}

fn build(cluster: &LocalCluster, target: u64, m: &Msg) -> Message {
    let node = cluster.node(target);
    let (term, commit) = (node.term(), node.commit_index());
    let mut msg = Message::default();
    msg.set_msg_type(MessageType::from_i32(m.kind as i32 % 20).unwrap_or(MessageType::MsgAppend));
    msg.from = u64::from(m.from % 5);
    msg.to = if m.misaddressed { u64::from(m.from % 5) } else { target };
    msg.term = near(term, m.term);
    msg.log_term = near(term, m.log_term);
    msg.index = near(commit, m.index);
    msg.commit = near(commit, m.commit);
    msg.reject = m.reject;
    msg.reject_hint = near(commit, m.reject_hint);
    msg.context = m.context.clone().into();
    msg.entries = m
        .entries
        .iter()
        .take(8)
        .map(|e| {
            let mut entry = Entry::default();
            entry.set_entry_type(EntryType::from_i32(e.kind as i32 % 3).unwrap_or(EntryType::EntryNormal));
            entry.term = near(term, e.term);
            entry.index = near(commit, e.index);
            entry.data = e.data.clone().into();
            entry
        })
        .collect::<Vec<_>>()
        .into();
    if let Some(s) = &m.snapshot {
        let data = if s.real_state { node.state().snapshot().unwrap_or_default() } else { s.data.clone() };
        let mut snap = Snapshot { data: data.into(), ..Default::default() };
        let meta = snap.mut_metadata();
        meta.index = near(commit, s.index);
        meta.term = near(term, s.term);
        meta.mut_conf_state().voters = s.voters.iter().take(5).map(|v| u64::from(v % 5)).collect();
        msg.set_snapshot(snap);
    }
    msg
}
