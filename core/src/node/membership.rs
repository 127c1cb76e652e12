//! Membership changes and leader transfer: the requests that go through Raft's configuration
//! machinery rather than the state machine alone.

use raft::eraftpb::{ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2};
use rand::Rng;

use super::{Node, RequestId};
use crate::api::command::{Command, Proposal};
use crate::api::error::{Error, Result};
use crate::api::request::{MemberChange, Response, ResponseHeader};

impl Node {
    pub(super) fn propose_member_change(&mut self, id: RequestId, mut change: MemberChange) -> Result<()> {
        if let MemberChange::Add(req) = &mut change {
            while req.id == 0 || self.sm.member(req.id).is_some() {
                req.id = self.rng.gen();
            }
        }
        self.sm.check_member_change(&change)?;
        let (kind, target) = match &change {
            MemberChange::Add(req) if req.is_learner => (ConfChangeType::AddLearnerNode, req.id),
            MemberChange::Add(req) => (ConfChangeType::AddNode, req.id),
            MemberChange::Remove { id } => (ConfChangeType::RemoveNode, *id),
            MemberChange::Promote { id } => {
                self.check_learner_ready(*id)?;
                (ConfChangeType::AddNode, *id)
            }
            MemberChange::Update { .. } | MemberChange::Publish { .. } => {
                return self.propose(id, Command::Member(change))
            }
        };
        let proposal = Proposal {
            origin: self.config.id,
            incarnation: self.incarnation,
            request_id: id,
            command: Command::Member(change),
        };
        let cc = conf_change(kind, target, proposal.encode());
        self.raw.propose_conf_change(vec![], cc).map_err(|_| self.dropped_error())?;
        self.pending.insert(id, self.deadline());
        Ok(())
    }

    /// etcd promotes a learner only when it has caught up to 90% of the leader's log. Only the
    /// leader knows how far a learner is, so a promotion needs the leader
    /// ([`Request::needs_leader`](crate::api::request::Request::needs_leader); a follower proposing
    /// it would skip the check).
    pub(super) fn check_learner_ready(&self, learner: u64) -> Result<()> {
        let last = self.raw.raft.raft_log.last_index();
        match self.raw.raft.prs().get(learner) {
            Some(pr) if pr.matched.saturating_mul(10) >= last.saturating_mul(9) => Ok(()),
            _ => Err(Error::LearnerNotReady),
        }
    }

    pub(super) fn move_leader(&mut self, id: RequestId, target: u64) -> Result<()> {
        if !self.raw.raft.prs().conf().voters().contains(target) {
            return Err(Error::BadLeaderTransferee);
        }
        if target == self.config.id {
            self.respond(id, Ok(Response::MoveLeader(ResponseHeader::default())));
            return Ok(());
        }
        self.raw.transfer_leader(target);
        self.transfer = Some((id, target, self.deadline()));
        self.pending.insert(id, self.deadline());
        Ok(())
    }
}

/// A single-step ConfChangeV2 (Raft leaves joint consensus by itself when one is needed).
pub(super) fn conf_change(kind: ConfChangeType, node: u64, context: Vec<u8>) -> ConfChangeV2 {
    let mut single = ConfChangeSingle::default();
    single.set_change_type(kind);
    single.node_id = node;
    let mut cc = ConfChangeV2::default();
    cc.set_transition(ConfChangeTransition::Auto);
    cc.mut_changes().push(single);
    cc.context = context.into();
    cc
}
