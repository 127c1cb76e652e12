//! What a shell may ask a member about itself (role, indexes, health) without changing it:
//! status pages, metrics and the simulator's checkers read these.

use raft::StateRole;

use super::Node;
use crate::api::alarm::AlarmMember;
use crate::api::request::Member;
use crate::state::machine::StateMachine;

/// Whether this member leads, follows, or is looking for a leader — for status and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

impl Node {
    /// Whether a compaction's discarded history is still being deleted.
    pub fn compaction_pending(&self) -> bool {
        self.sm.store().compaction_pending() && self.sm.failure().is_none()
    }

    /// This member's id.
    pub fn id(&self) -> u64 {
        self.config.id
    }

    /// The leader this member knows of (0 for none).
    pub fn leader_id(&self) -> u64 {
        self.raw.raft.leader_id
    }

    /// The current Raft term.
    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    /// Whether this member is the leader.
    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// This member's role.
    pub fn role(&self) -> Role {
        match self.raw.raft.state {
            StateRole::Leader => Role::Leader,
            StateRole::Candidate | StateRole::PreCandidate => Role::Candidate,
            StateRole::Follower => Role::Follower,
        }
    }

    /// Index of the last committed entry this member knows of.
    pub fn commit_index(&self) -> u64 {
        self.raw.raft.raft_log.committed
    }

    /// Index of the last entry applied to the state machine.
    pub fn applied_index(&self) -> u64 {
        self.sm.applied_index()
    }

    /// What a shell may read of the applied state (status pages, metrics, the peer transport).
    pub fn view(&self) -> StateView<'_> {
        StateView { sm: &self.sm }
    }

    /// The whole applied state, for tests and fuzzers that check it; shells read [`Node::view`].
    #[cfg(any(test, feature = "testing"))]
    pub fn state(&self) -> &StateMachine {
        &self.sm
    }

    /// Keys deleted because their lease expired, as this member applied them since it started.
    pub fn expired_keys(&self) -> u64 {
        self.expired_keys
    }

    /// Why this member cannot go on, if so (its state store refused a write, or a committed
    /// entry cannot be read): it must stop, since its state would part from its log.
    pub fn failure(&self) -> Option<&str> {
        self.sm.failure()
    }

    /// Whether this member has been removed from the cluster (it should shut down).
    pub fn is_removed(&self) -> bool {
        self.removed
    }

    /// Number of active watchers.
    pub fn watch_count(&self) -> usize {
        self.watches.len()
    }

    /// The randomized election timeout in ticks currently in force (for determinism tests).
    pub fn election_timeout_ticks(&self) -> usize {
        self.raw.raft.randomized_election_timeout()
    }
}

/// The applied state as a shell may see it: read-only, and only what status pages, metrics and
/// the peer transport need, so shells do not come to depend on the state machine's insides.
/// Everything else goes through requests.
pub struct StateView<'a> {
    sm: &'a StateMachine,
}

impl StateView<'_> {
    /// The newest revision of the key space.
    pub fn revision(&self) -> i64 {
        self.sm.store().current_revision()
    }

    /// Bytes the key space takes in its engine (etcd's `dbSizeInUse`).
    pub fn size_in_use(&self) -> u64 {
        self.sm.store().size_bytes()
    }

    /// The members, as the applied log says.
    pub fn members(&self) -> Vec<Member> {
        self.sm.members()
    }

    /// Whether `id` is a member, as the applied log says.
    pub fn is_member(&self, id: u64) -> bool {
        self.sm.member(id).is_some()
    }

    /// The alarms raised.
    pub fn alarms(&self) -> Vec<AlarmMember> {
        self.sm.alarms().list()
    }
}
