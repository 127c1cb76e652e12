//! [`FollowerSnapshots`]: the leader's bookkeeping of snapshots for followers too far behind for
//! its log. One is built off the apply path at a time, and the log after a snapshot is kept
//! until the follower it went to has installed it: a follower that installs a snapshot and then
//! finds the entries after it compacted away would need another one, and under steady writes
//! could chase snapshots for ever.

use std::collections::BTreeMap;

use raft::eraftpb::Snapshot;

/// How long the log after a delivered snapshot is kept for a follower that has not yet said it
/// installed it (decoding and storing a large state takes it a while; a follower that died
/// meanwhile must not hold the log back for good).
pub(super) const INSTALL_GRACE_MS: u64 = 60_000;

/// Snapshots being built, and delivered but not yet installed.
#[derive(Debug, Default)]
pub(super) struct FollowerSnapshots {
    /// The metadata of the snapshot being built (see `Ready::snapshot_job`).
    building: Option<Snapshot>,
    /// Delivered snapshots by follower: their index and until when the log is kept for them.
    delivered: BTreeMap<u64, (u64, u64)>,
}

impl FollowerSnapshots {
    /// Whether a snapshot is being built (only one is, at a time).
    pub(super) fn is_building(&self) -> bool {
        self.building.is_some()
    }

    /// A snapshot with `metadata` started building.
    pub(super) fn start(&mut self, metadata: Snapshot) {
        self.building = Some(metadata);
    }

    /// The metadata of the snapshot at `index` that finished building (none if it was given up).
    pub(super) fn built(&mut self, index: u64) -> Option<Snapshot> {
        self.building.take_if(|s| s.get_metadata().index == index)
    }

    /// The snapshot at `index` reached `peer`; it has until `now_ms` plus the grace to install it.
    pub(super) fn delivered(&mut self, peer: u64, index: u64, now_ms: u64) {
        self.delivered.insert(peer, (index, now_ms + INSTALL_GRACE_MS));
    }

    /// The first index the log must keep for followers' snapshots, if any: the one being built,
    /// `outgoing` (the one being sent), and the delivered ones whose follower has not yet
    /// `matched` their index, within their grace.
    pub(super) fn keep_log_after(
        &mut self,
        now_ms: u64,
        outgoing: Option<u64>,
        matched: impl Fn(u64) -> u64,
    ) -> Option<u64> {
        self.delivered.retain(|peer, (index, until)| now_ms < *until && matched(*peer) < *index);
        let building = self.building.as_ref().map(|s| s.get_metadata().index);
        let delivered = self.delivered.values().map(|(index, _)| *index);
        building.into_iter().chain(outgoing).chain(delivered).min()
    }

    /// This member is no longer the leader: it sends no snapshots.
    pub(super) fn clear(&mut self) {
        *self = FollowerSnapshots::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(index: u64) -> Snapshot {
        let mut s = Snapshot::default();
        s.mut_metadata().index = index;
        s
    }

    #[test]
    fn the_log_is_kept_from_the_oldest_snapshot_not_yet_installed() {
        let mut f = FollowerSnapshots::default();
        assert_eq!(f.keep_log_after(0, None, |_| 0), None);
        f.start(metadata(100));
        assert!(f.built(99).is_none() && f.is_building(), "only the snapshot being built finishes it");
        assert_eq!(f.keep_log_after(0, Some(120), |_| 0), Some(100));
        assert_eq!(f.built(100).map(|s| s.get_metadata().index), Some(100));
        f.delivered(2, 100, 1_000);
        f.delivered(3, 150, 1_000);
        assert_eq!(f.keep_log_after(2_000, None, |_| 0), Some(100));
        assert_eq!(f.keep_log_after(2_000, None, |peer| if peer == 2 { 100 } else { 0 }), Some(150), "2 installed it");
        assert_eq!(f.keep_log_after(1_000 + INSTALL_GRACE_MS, None, |_| 0), None, "3 took too long");
    }
}
