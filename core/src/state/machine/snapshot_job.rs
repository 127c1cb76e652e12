//! [`SnapshotJob`]: a follower's snapshot, taken on the apply path in a moment and built off it.
//!
//! Serializing the whole key space takes time in proportion to its size; done while applying,
//! it would stall every write for that long. So the apply path only freezes what the snapshot
//! will hold (a read view of the engine, which on disk is a fjall snapshot, plus the leases,
//! members, alarms and auth store it keeps in memory) and the shell runs [`SnapshotJob::build`] on another
//! thread while the member goes on applying.

use crate::api::alarm::AlarmMember;
use crate::api::error::Result;
use crate::api::request::Member;
use crate::state::auth::AuthStore;
use crate::state::engine::{View, ViewEngine};
use crate::state::lease::LeaseSnapshot;
use crate::state::mvcc::MvccStore;

/// The applied state at one index, frozen, waiting to be serialized.
pub struct SnapshotJob {
    index: u64,
    view: View,
    leases: LeaseSnapshot,
    members: Vec<Member>,
    alarms: Vec<AlarmMember>,
    auth: AuthStore,
}

impl std::fmt::Debug for SnapshotJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotJob").field("index", &self.index).finish_non_exhaustive()
    }
}

impl SnapshotJob {
    pub(super) fn new(
        index: u64,
        view: View,
        leases: LeaseSnapshot,
        members: Vec<Member>,
        alarms: Vec<AlarmMember>,
        auth: AuthStore,
    ) -> Self {
        SnapshotJob { index, view, leases, members, alarms, auth }
    }

    /// The index of the last entry the frozen state holds (the snapshot's index).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The snapshot's bytes, as [`super::StateMachine::snapshot`] would have given them at
    /// [`SnapshotJob::index`]; fails when the view cannot be read back.
    pub fn build(self) -> Result<Vec<u8>> {
        let store = MvccStore::open(Box::new(ViewEngine(self.view)))?;
        super::snapshot::encode_snapshot(self.index, &store, &self.leases, &self.members, &self.alarms, &self.auth)
    }
}
