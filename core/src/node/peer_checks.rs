//! Which peer messages a member steps. Peers are trusted to speak Raft, but raft-rs panics
//! or breaks its invariants on some messages no correct peer sends (most found by the
//! `raft_messages` fuzzer); those are refused here, before raft-rs sees them.

use raft::eraftpb::{Message, MessageType};

use super::Node;
use crate::api::error::{Error, Result};

impl Node {
    pub(super) fn check_peer_message(&self, msg: &Message) -> Result<()> {
        let bad = |why: &str| {
            Err(Error::Internal(format!("refused peer message {:?} from {:x}: {why}", msg.get_msg_type(), msg.from)))
        };
        if raft::raw_node::is_local_msg(msg.get_msg_type()) {
            return bad("local message type");
        }
        if msg.to != self.config.id || msg.from == 0 || msg.from == self.config.id {
            return bad("wrong addressing");
        }
        match msg.get_msg_type() {
            MessageType::MsgReadIndex | MessageType::MsgReadIndexResp if msg.entries.len() != 1 => {
                bad("read index without exactly one context")
            }
            // raft-rs steps a message of term 0 as a local one, skipping every term check; peers
            // send term 0 only when forwarding proposals and read requests (found by the
            // raft_messages fuzzer: a term-0 heartbeat committed beyond the log).
            kind if msg.term == 0 && !matches!(kind, MessageType::MsgPropose | MessageType::MsgReadIndex) => {
                bad("no term")
            }
            // A follower forwards these to the leader, and raft-rs panics sending one with a
            // term; Keel forwards leadership transfers as requests, never as Raft messages
            // (found by the raft_messages fuzzer).
            MessageType::MsgPropose | MessageType::MsgReadIndex if msg.term != 0 => bad("forwarded with a term"),
            MessageType::MsgTransferLeader => bad("leadership transfer from a peer"),
            // raft-rs assumes an append's entries follow its index one by one, with terms that
            // never go down or past the message's (found by the raft_messages fuzzer).
            MessageType::MsgAppend if !entries_in_sequence(msg) => bad("entries out of sequence"),
            MessageType::MsgHeartbeat if msg.commit > self.raw.raft.raft_log.last_index() => {
                bad("heartbeat commits beyond our log")
            }
            MessageType::MsgSnapshot if msg.get_snapshot().get_metadata().index == 0 => bad("empty snapshot"),
            // raft-rs takes term 0 as a match for any index past its log and commits up to the
            // snapshot's index (found by the raft_messages fuzzer).
            MessageType::MsgSnapshot if msg.get_snapshot().get_metadata().term == 0 => bad("snapshot without a term"),
            // raft-rs panics restoring a configuration it could not have made (found by the
            // raft_messages fuzzer: a voter listed twice).
            MessageType::MsgSnapshot if !conf_state_valid(msg.get_snapshot().get_metadata().get_conf_state()) => {
                bad("snapshot with an impossible configuration")
            }
            // raft-rs panics on a proposal without entries (found by the raft_messages fuzzer).
            MessageType::MsgPropose if msg.entries.is_empty() => bad("proposal without entries"),
            _ => Ok(()),
        }
    }
}

/// Whether an append is what a leader sends: a term for the entry before (raft-rs takes term 0
/// for any index past its log as a match), and entries whose indexes follow the message's one
/// by one, with terms never going down, from the previous entry's up to the message's.
fn entries_in_sequence(msg: &Message) -> bool {
    let mut term = msg.log_term;
    (msg.index == 0 || msg.log_term > 0)
        && msg.entries.iter().enumerate().all(|(i, e)| {
            let ok =
                e.index == msg.index.saturating_add(1 + i as u64) && e.term > 0 && e.term >= term && e.term <= msg.term;
            term = e.term;
            ok
        })
}

/// Whether a snapshot's configuration is one raft-rs can restore: voters, no id twice or zero,
/// learners apart from voters (in the configuration and in the one being left).
fn conf_state_valid(cs: &raft::eraftpb::ConfState) -> bool {
    let distinct = |ids: &[u64]| {
        let set: std::collections::BTreeSet<u64> = ids.iter().copied().collect();
        set.len() == ids.len() && !set.contains(&0)
    };
    let disjoint = |a: &[u64], b: &[u64]| a.iter().all(|id| !b.contains(id));
    !cs.voters.is_empty()
        && [&cs.voters, &cs.learners, &cs.voters_outgoing, &cs.learners_next].iter().all(|ids| distinct(ids))
        && disjoint(&cs.voters, &cs.learners)
        && disjoint(&cs.voters_outgoing, &cs.learners)
        && disjoint(&cs.learners_next, &cs.voters)
}
