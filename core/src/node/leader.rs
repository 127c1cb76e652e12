//! What only the leader does on each tick: expire leases (by proposing their revocation, so
//! every member deletes the keys at the same revision) and checkpoint leases' remaining TTLs
//! (so a new leader continues the countdown instead of restarting it).

use super::Node;
use crate::api::command::Command;
use crate::api::request::LeaseRevokeRequest;

/// Most lease revocations proposed per tick, so a mass expiry cannot flood the log at once.
const MAX_REVOKES_PER_TICK: usize = 1000;

/// Leases per checkpoint entry, so no entry approaches the request size limit.
const MAX_CHECKPOINTS_PER_ENTRY: usize = 1000;

impl Node {
    pub(super) fn leader_duties(&mut self) {
        let now = self.now_ms;
        let retry = self.config.election_timeout_ms();
        // Planted bug (simulation only): expiring leases ahead of their time.
        let early = if crate::bugs::enabled(crate::bugs::Bug::EarlyLeaseExpiry) { 2000 } else { 0 };
        for id in self.sm.lessor().expired(now + early, MAX_REVOKES_PER_TICK) {
            if self.revoking.get(&id).is_some_and(|again| *again > now) {
                continue;
            }
            if self.propose(0, Command::LeaseRevoke(LeaseRevokeRequest { id })).is_ok() {
                self.revoking.insert(id, now + retry);
            }
        }
        if now >= self.next_checkpoint_ms {
            self.next_checkpoint_ms = now + self.config.lease_checkpoint_ms;
            let checkpoints = self.sm.lessor().checkpoints(now);
            for batch in checkpoints.chunks(MAX_CHECKPOINTS_PER_ENTRY) {
                if let Err(e) = self.propose(0, Command::LeaseCheckpoint(batch.to_vec())) {
                    tracing::warn!("lease checkpoint not proposed: {e}");
                }
            }
        }
    }
}
