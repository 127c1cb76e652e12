//! The Lessor: leases with etcd v3.4 semantics.
//!
//! Two kinds of state live here:
//!
//! * **Replicated state** — every lease's id, granted TTL, checkpointed remaining TTL and the keys
//!   attached to it. It changes only through operations applied from the Raft log (`grant`,
//!   `revoke`, `checkpoint`, `attach`, `detach`), so it is identical on every member; it is what
//!   [`Lessor::snapshot`] saves and what `PartialEq` compares.
//! * **Leader-only volatile state** — each lease's expiry instant in milliseconds of the leader's
//!   monotonic clock. Only the leader keeps it (`promote` builds it, `demote` drops it), and only
//!   the leader expires leases: [`Lessor::expired`] reports them and the node proposes a revoke
//!   through Raft, so keys vanish on every member at one log position.
//!
//! Nothing here reads a clock: every instant is a `now_ms` argument.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::request::{LeaseGrantResponse, LeaseTimeToLiveResponse};

/// The largest TTL a lease may be granted, in seconds (etcd's `MaxLeaseTTL`); larger requests
/// fail with [`Error::LeaseTtlTooLarge`].
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// Seconds to milliseconds for a TTL, never negative and never overflowing.
fn secs_to_ms(secs: i64) -> u64 {
    u64::try_from(secs.max(0)).unwrap_or(0).saturating_mul(1000)
}

/// One lease's replicated record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Lease {
    /// Granted TTL in seconds (after raising it to the minimum).
    ttl: i64,
    /// Remaining TTL in seconds as last checkpointed; 0 when there is no checkpoint.
    remaining_ttl: i64,
    /// Keys currently attached to the lease.
    keys: BTreeSet<Vec<u8>>,
}

impl Lease {
    /// The TTL a new leader should count down from: the checkpoint if there is one, else the
    /// granted TTL.
    fn effective_remaining(&self) -> i64 {
        if self.remaining_ttl > 0 {
            self.remaining_ttl
        } else {
            self.ttl
        }
    }
}

/// One lease as it is saved in a [`LeaseSnapshot`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub id: i64,
    /// Granted TTL in seconds.
    pub ttl: i64,
    /// Checkpointed remaining TTL in seconds; 0 when none.
    pub remaining_ttl: i64,
    /// Attached keys, sorted.
    pub keys: Vec<Vec<u8>>,
}

/// The Lessor's replicated state, serializable, for Raft snapshots. Expiries are not in it: they
/// are the leader's own and are rebuilt by [`Lessor::promote`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseSnapshot {
    /// The minimum TTL of the member that took the snapshot (configuration, carried so that
    /// [`Lessor::restore`] yields a usable Lessor; see [`Lessor::set_min_ttl`]).
    pub min_ttl: i64,
    /// Every lease, sorted by id.
    pub leases: Vec<LeaseRecord>,
}

/// The registry of leases of one member: replicated lease records plus, on the leader, their
/// expiry instants. Equality compares the replicated records only.
#[derive(Clone, Debug)]
pub struct Lessor {
    /// Minimum TTL in seconds; shorter grants are raised to it.
    min_ttl: i64,
    /// Replicated records by id.
    leases: BTreeMap<i64, Lease>,
    /// Leader only: expiry instant (ms) by lease id.
    expiry: BTreeMap<i64, u64>,
    /// Leader only: the same expiries ordered by (instant, id), for [`Lessor::expired`].
    queue: BTreeSet<(u64, i64)>,
}

impl PartialEq for Lessor {
    fn eq(&self, other: &Self) -> bool {
        self.leases == other.leases
    }
}

impl Eq for Lessor {}

impl Lessor {
    /// A Lessor with no leases, raising every grant to at least `min_ttl` seconds.
    pub fn new(min_ttl: i64) -> Self {
        Lessor { min_ttl, leases: BTreeMap::new(), expiry: BTreeMap::new(), queue: BTreeSet::new() }
    }

    /// etcd's minimum lease TTL for a cluster: a lease must outlive one leader election, so it is
    /// `ceil(((3 * election_ticks) / 2) * heartbeat_ms / 1000)` seconds (the `/ 2` is integer
    /// division, as in etcd).
    pub fn min_ttl_seconds(election_ticks: u64, heartbeat_ms: u64) -> i64 {
        let ticks = election_ticks.saturating_mul(3) / 2;
        let ms = ticks.saturating_mul(heartbeat_ms);
        let secs = ms.div_ceil(1000);
        i64::try_from(secs).unwrap_or(i64::MAX)
    }

    /// The configured minimum TTL in seconds.
    pub fn min_ttl(&self) -> i64 {
        self.min_ttl
    }

    /// Replace the minimum TTL (e.g. after [`Lessor::restore`] from another member's snapshot).
    pub fn set_min_ttl(&mut self, min_ttl: i64) {
        self.min_ttl = min_ttl;
    }

    fn set_expiry(&mut self, id: i64, at: u64) {
        if let Some(old) = self.expiry.insert(id, at) {
            self.queue.remove(&(old, id));
        }
        self.queue.insert((at, id));
    }

    fn clear_expiry(&mut self, id: i64) {
        if let Some(old) = self.expiry.remove(&id) {
            self.queue.remove(&(old, id));
        }
    }

    /// Apply a LeaseGrant (replicated). `id` must be non-zero (the node picks ids before
    /// proposing); a TTL below the minimum is raised to it. `now_ms` is `Some` on the leader,
    /// which starts the countdown at once; followers pass `None` and keep no expiry.
    pub fn grant(&mut self, id: i64, ttl: i64, now_ms: Option<u64>) -> Result<LeaseGrantResponse> {
        if id == 0 {
            return Err(Error::LeaseNotFound);
        }
        if ttl > MAX_LEASE_TTL {
            return Err(Error::LeaseTtlTooLarge);
        }
        if self.leases.contains_key(&id) {
            return Err(Error::LeaseExists);
        }
        let ttl = ttl.max(self.min_ttl);
        self.leases.insert(id, Lease { ttl, remaining_ttl: 0, keys: BTreeSet::new() });
        if let Some(now) = now_ms {
            self.set_expiry(id, now.saturating_add(secs_to_ms(ttl)));
        }
        Ok(LeaseGrantResponse { id, ttl, ..Default::default() })
    }

    /// Apply a LeaseRevoke (replicated): remove the lease and return its attached keys, sorted,
    /// so that the state machine deletes them all in one revision.
    pub fn revoke(&mut self, id: i64) -> Result<Vec<Vec<u8>>> {
        let lease = self.leases.remove(&id).ok_or(Error::LeaseNotFound)?;
        self.clear_expiry(id);
        Ok(lease.keys.into_iter().collect())
    }

    /// Apply a LeaseCheckpoint (replicated): record how many seconds the lease had left on the
    /// leader, so that a new leader resumes from there instead of the full TTL. A value `<= 0`
    /// clears the checkpoint (the leader replicates that after a keep-alive). A positive value is
    /// capped at what the lease had (its checkpoint, else its granted TTL): a checkpoint never
    /// lengthens a lease. Unknown ids are ignored. Expiries are not touched; `promote` uses this.
    pub fn checkpoint(&mut self, id: i64, remaining_ttl: i64) {
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.remaining_ttl = if remaining_ttl <= 0 { 0 } else { remaining_ttl.min(lease.effective_remaining()) };
        }
    }

    /// Record that `key` is now attached to lease `id` (from an applied put). Unknown ids are
    /// ignored.
    pub fn attach(&mut self, id: i64, key: &[u8]) {
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.keys.insert(key.to_vec());
        }
    }

    /// Record that `key` no longer belongs to lease `id` (deleted, or re-put under another lease).
    /// Unknown ids and keys are ignored.
    pub fn detach(&mut self, id: i64, key: &[u8]) {
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.keys.remove(key);
        }
    }

    /// A granted lease's TTL and checkpointed remaining TTL (0: none), as its record stores them.
    pub fn granted(&self, id: i64) -> Option<(i64, i64)> {
        self.leases.get(&id).map(|l| (l.ttl, l.remaining_ttl))
    }

    /// Whether lease `id` exists (puts naming a missing lease fail).
    pub fn exists(&self, id: i64) -> bool {
        self.leases.contains_key(&id)
    }

    /// Whether lease `id` exists and holds no key (a v2 write revokes such a lease its node
    /// left, as nothing can use it any more).
    pub fn is_unused(&self, id: i64) -> bool {
        self.leases.get(&id).is_some_and(|l| l.keys.is_empty())
    }

    /// The whole seconds left on lease `id` (truncated, as [`Lessor::time_to_live`] counts
    /// them) when this member knows them: on the leader (`now_ms` given) for a lease whose
    /// expiry it keeps. `None` elsewhere, where only an estimate exists.
    pub fn exact_ttl(&self, id: i64, now_ms: Option<u64>) -> Option<i64> {
        let at = *self.expiry.get(&id)?;
        let now = now_ms?;
        Some(i64::try_from(at.saturating_sub(now) / 1000).unwrap_or(i64::MAX))
    }

    /// Every lease id, sorted (LeaseLeases).
    pub fn leases(&self) -> Vec<i64> {
        self.leases.keys().copied().collect()
    }

    /// The checkpointed remaining TTL of lease `id` (0 when none), `None` if unknown. After a
    /// [`Lessor::renew`], when it is positive the node should replicate `checkpoint(id, 0)` so
    /// that every member forgets the checkpoint (else a new leader would count down from it).
    pub fn checkpointed_ttl(&self, id: i64) -> Option<i64> {
        self.leases.get(&id).map(|l| l.remaining_ttl)
    }

    /// Answer LeaseTimeToLive. An unknown lease answers `ttl: -1` (as etcd does). On the leader
    /// (`now_ms` given and the lease's expiry known) `ttl` is the whole seconds left, truncated and
    /// never negative; elsewhere it is the checkpointed remaining TTL, else the granted TTL.
    pub fn time_to_live(&self, id: i64, keys: bool, now_ms: Option<u64>) -> LeaseTimeToLiveResponse {
        let Some(lease) = self.leases.get(&id) else {
            return LeaseTimeToLiveResponse { id, ttl: -1, ..Default::default() };
        };
        let ttl = match (now_ms, self.expiry.get(&id)) {
            (Some(now), Some(&at)) => i64::try_from(at.saturating_sub(now) / 1000).unwrap_or(i64::MAX),
            _ => lease.effective_remaining(),
        };
        LeaseTimeToLiveResponse {
            id,
            ttl,
            granted_ttl: lease.ttl,
            keys: if keys { lease.keys.iter().cloned().collect() } else { Vec::new() },
            ..Default::default()
        }
    }

    /// Leader only: one keep-alive. Restarts the countdown at the full granted TTL and returns
    /// the granted TTL. A lease that is unknown, or already expired (its revoke is due), answers
    /// [`Error::LeaseNotFound`], which is what etcd answers once that revoke is applied.
    ///
    /// It changes only the leader's expiry, never the replicated state (that would make the
    /// leader's state differ from its followers'). To forget a checkpoint taken before this
    /// keep-alive, the node replicates `checkpoint(id, 0)` when [`Lessor::checkpointed_ttl`] is
    /// positive, as etcd does.
    pub fn renew(&mut self, id: i64, now_ms: u64) -> Result<i64> {
        if let Some(&at) = self.expiry.get(&id) {
            if at <= now_ms {
                return Err(Error::LeaseNotFound);
            }
        }
        let ttl = self.leases.get(&id).ok_or(Error::LeaseNotFound)?.ttl;
        self.set_expiry(id, now_ms.saturating_add(secs_to_ms(ttl)));
        Ok(ttl)
    }

    /// On becoming leader: start every lease's countdown at
    /// `now + extend + (checkpointed remaining TTL, else granted TTL)`. Using the checkpoint is
    /// what keeps a leader change from resetting a lease to its full TTL; `extend_ms` gives
    /// clients time to find the new leader before their leases can expire.
    pub fn promote(&mut self, now_ms: u64, extend_ms: u64) {
        self.expiry.clear();
        self.queue.clear();
        let base = now_ms.saturating_add(extend_ms);
        let plan: Vec<(i64, u64)> =
            self.leases.iter().map(|(&id, l)| (id, base.saturating_add(secs_to_ms(l.effective_remaining())))).collect();
        for (id, at) in plan {
            self.set_expiry(id, at);
        }
    }

    /// On losing leadership: forget every expiry (a follower never expires leases).
    pub fn demote(&mut self) {
        self.expiry.clear();
        self.queue.clear();
    }

    /// Leader only: up to `max` leases whose expiry is `<= now_ms`, soonest first (ties by id).
    /// The node proposes a revoke for each; they keep being reported until that revoke is
    /// applied, so the node should remember which revokes it has in flight.
    pub fn expired(&self, now_ms: u64, max: usize) -> Vec<i64> {
        self.queue.iter().take_while(|&&(at, _)| at <= now_ms).take(max).map(|&(_, id)| id).collect()
    }

    /// Leader only: `(id, remaining seconds rounded up, at least 1)` for every lease with a known
    /// expiry, sorted by id, to be replicated as one batched LeaseCheckpoint command.
    pub fn checkpoints(&self, now_ms: u64) -> Vec<(i64, i64)> {
        self.expiry
            .iter()
            .map(|(&id, &at)| {
                let ms = at.saturating_sub(now_ms);
                let secs = ms.div_ceil(1000);
                (id, i64::try_from(secs).unwrap_or(i64::MAX).max(1))
            })
            .collect()
    }

    /// The replicated state, for a Raft snapshot.
    pub fn snapshot(&self) -> LeaseSnapshot {
        LeaseSnapshot {
            min_ttl: self.min_ttl,
            leases: self
                .leases
                .iter()
                .map(|(&id, l)| LeaseRecord {
                    id,
                    ttl: l.ttl,
                    remaining_ttl: l.remaining_ttl,
                    keys: l.keys.iter().cloned().collect(),
                })
                .collect(),
        }
    }

    /// Rebuild a Lessor from a snapshot, as a follower (no expiries; call
    /// [`Lessor::promote`] if this member leads). Records with id 0 are skipped; a repeated id
    /// keeps the last record.
    pub fn restore(s: LeaseSnapshot) -> Self {
        let mut lessor = Lessor::new(s.min_ttl);
        for r in s.leases {
            if r.id == 0 {
                continue;
            }
            lessor.leases.insert(
                r.id,
                Lease { ttl: r.ttl, remaining_ttl: r.remaining_ttl.max(0), keys: r.keys.into_iter().collect() },
            );
        }
        lessor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ks: &[&str]) -> Vec<Vec<u8>> {
        ks.iter().map(|k| k.as_bytes().to_vec()).collect()
    }

    #[test]
    fn min_ttl_formula_matches_etcd() {
        // etcd defaults: 10 election ticks, 100 ms heartbeat -> 15 ticks * 100ms = 1.5s -> 2s.
        assert_eq!(Lessor::min_ttl_seconds(10, 100), 2);
        // (3*5)/2 = 7 (integer division), 7 * 100ms = 0.7s -> 1s.
        assert_eq!(Lessor::min_ttl_seconds(5, 100), 1);
        assert_eq!(Lessor::min_ttl_seconds(20, 100), 3);
        assert_eq!(Lessor::min_ttl_seconds(10, 200), 3);
        assert_eq!(Lessor::min_ttl_seconds(0, 100), 0);
        assert!(Lessor::min_ttl_seconds(u64::MAX, u64::MAX) > 0);
    }

    #[test]
    fn grant_raises_short_ttl_to_minimum() {
        let mut l = Lessor::new(5);
        let r = l.grant(1, 2, None).unwrap();
        assert_eq!((r.id, r.ttl), (1, 5));
        assert_eq!(l.grant(2, -7, None).unwrap().ttl, 5);
        assert_eq!(l.grant(3, i64::MIN, None).unwrap().ttl, 5);
        assert_eq!(l.grant(4, 60, None).unwrap().ttl, 60);
        assert_eq!(l.grant(5, MAX_LEASE_TTL, None).unwrap().ttl, MAX_LEASE_TTL);
        assert_eq!(l.leases(), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn grant_rejects_zero_id_duplicate_and_too_large() {
        let mut l = Lessor::new(1);
        assert_eq!(l.grant(0, 10, None), Err(Error::LeaseNotFound));
        assert_eq!(l.grant(7, MAX_LEASE_TTL + 1, None), Err(Error::LeaseTtlTooLarge));
        assert_eq!(l.grant(7, i64::MAX, Some(0)), Err(Error::LeaseTtlTooLarge));
        assert!(!l.exists(7));
        l.grant(7, 10, None).unwrap();
        assert_eq!(l.grant(7, 20, None), Err(Error::LeaseExists));
        assert_eq!(l.time_to_live(7, false, None).granted_ttl, 10);
        // Negative ids are ordinary ids.
        l.grant(-3, 10, None).unwrap();
        assert_eq!(l.leases(), vec![-3, 7]);
    }

    #[test]
    fn grant_on_leader_starts_countdown() {
        let mut l = Lessor::new(1);
        l.grant(1, 10, Some(1_000)).unwrap();
        assert_eq!(l.expired(10_999, 10), Vec::<i64>::new());
        assert_eq!(l.expired(11_000, 10), vec![1]);
        // Follower grants keep no expiry.
        let mut f = Lessor::new(1);
        f.grant(1, 10, None).unwrap();
        assert!(f.expired(u64::MAX, 10).is_empty());
        assert_eq!(l, f, "equality ignores expiries");
        // Extreme clock values saturate instead of overflowing.
        l.grant(2, MAX_LEASE_TTL, Some(u64::MAX)).unwrap();
        assert_eq!(l.expired(u64::MAX, 10), vec![1, 2]);
    }

    #[test]
    fn revoke_returns_sorted_keys_and_removes_lease() {
        let mut l = Lessor::new(1);
        l.grant(1, 10, Some(0)).unwrap();
        l.attach(1, b"b");
        l.attach(1, b"a");
        l.attach(1, b"c");
        l.attach(1, b"a");
        assert_eq!(l.revoke(1), Ok(keys(&["a", "b", "c"])));
        assert!(!l.exists(1));
        assert!(l.expired(u64::MAX, 10).is_empty(), "expiry removed with the lease");
        assert_eq!(l.revoke(1), Err(Error::LeaseNotFound));
        assert_eq!(l.revoke(0), Err(Error::LeaseNotFound));
        l.grant(2, 10, None).unwrap();
        assert_eq!(l.revoke(2), Ok(vec![]));
    }

    #[test]
    fn attach_detach_bookkeeping() {
        let mut l = Lessor::new(1);
        l.grant(1, 10, None).unwrap();
        l.grant(2, 10, None).unwrap();
        l.attach(1, b"x");
        l.attach(1, b"y");
        l.attach(9, b"z"); // unknown: ignored
        l.detach(9, b"x"); // unknown: ignored
        l.detach(2, b"x"); // not attached there: no effect
        assert_eq!(l.time_to_live(1, true, None).keys, keys(&["x", "y"]));
        // Moving a key from lease 1 to lease 2.
        l.detach(1, b"x");
        l.attach(2, b"x");
        assert_eq!(l.time_to_live(1, true, None).keys, keys(&["y"]));
        assert_eq!(l.time_to_live(2, true, None).keys, keys(&["x"]));
        assert!(l.time_to_live(2, false, None).keys.is_empty());
        assert!(!l.exists(9));
    }

    #[test]
    fn renew_restarts_countdown_and_leaves_replicated_state_alone() {
        let mut l = Lessor::new(1);
        l.grant(1, 10, Some(0)).unwrap();
        l.checkpoint(1, 4);
        let follower = {
            let mut f = l.clone();
            f.demote();
            f
        };
        assert_eq!(l.checkpointed_ttl(1), Some(4));
        assert_eq!(l.renew(1, 5_000), Ok(10));
        // Replicated state unchanged (equal to a follower's); the node replicates the clear.
        assert_eq!(l, follower);
        assert_eq!(l.checkpointed_ttl(1), Some(4));
        l.checkpoint(1, 0);
        assert_eq!(l.checkpointed_ttl(1), Some(0));
        assert_eq!(l.time_to_live(1, false, Some(5_000)).ttl, 10);
        assert!(l.expired(14_999, 10).is_empty());
        assert_eq!(l.expired(15_000, 10), vec![1]);
        assert_eq!(l.renew(2, 5_000), Err(Error::LeaseNotFound));
        // Already expired (its revoke is due): not renewable.
        assert_eq!(l.renew(1, 15_000), Err(Error::LeaseNotFound));
        assert_eq!(l.checkpointed_ttl(2), None);
    }

    #[test]
    fn expired_orders_by_expiry_then_id_and_is_bounded() {
        let mut l = Lessor::new(1);
        l.grant(5, 3, Some(0)).unwrap();
        l.grant(2, 3, Some(0)).unwrap();
        l.grant(9, 1, Some(0)).unwrap();
        l.grant(1, 7, Some(0)).unwrap();
        assert_eq!(l.expired(999, 10), Vec::<i64>::new());
        assert_eq!(l.expired(1_000, 10), vec![9]);
        assert_eq!(l.expired(3_000, 10), vec![9, 2, 5]);
        assert_eq!(l.expired(3_000, 2), vec![9, 2]);
        assert_eq!(l.expired(u64::MAX, 0), Vec::<i64>::new());
        assert_eq!(l.expired(u64::MAX, 100), vec![9, 2, 5, 1]);
        // Renewing moves a lease back in the queue.
        assert_eq!(l.renew(2, 2_500), Ok(3));
        assert_eq!(l.expired(3_000, 10), vec![9, 5]);
        assert_eq!(l.expired(5_500, 10), vec![9, 5, 2]);
    }

    #[test]
    fn checkpoint_never_lengthens_and_zero_clears() {
        let mut l = Lessor::new(1);
        l.grant(1, 10, None).unwrap();
        l.checkpoint(1, 30); // more than granted: capped
        assert_eq!(l.checkpointed_ttl(1), Some(10));
        l.checkpoint(1, 4);
        assert_eq!(l.checkpointed_ttl(1), Some(4));
        l.checkpoint(1, 6); // more than it had: stays 4
        assert_eq!(l.checkpointed_ttl(1), Some(4));
        l.checkpoint(1, 3);
        assert_eq!(l.checkpointed_ttl(1), Some(3));
        l.checkpoint(1, 0); // clear (replicated after a keep-alive)
        assert_eq!(l.checkpointed_ttl(1), Some(0));
        l.checkpoint(1, i64::MAX);
        assert_eq!(l.checkpointed_ttl(1), Some(10));
        l.checkpoint(1, i64::MIN);
        assert_eq!(l.checkpointed_ttl(1), Some(0));
        l.checkpoint(42, 5); // unknown: ignored
        assert!(!l.exists(42));
    }

    #[test]
    fn checkpoint_does_not_move_leader_expiry() {
        let mut l = Lessor::new(1);
        l.grant(1, 10, Some(0)).unwrap();
        l.checkpoint(1, 2);
        assert!(l.expired(9_999, 10).is_empty());
        assert_eq!(l.expired(10_000, 10), vec![1]);
    }

    #[test]
    fn promote_uses_checkpointed_remaining_ttl() {
        // Granted 10s; the old leader checkpointed 4s remaining; a new leader takes over at t.
        let mut l = Lessor::new(1);
        l.grant(1, 10, None).unwrap();
        l.grant(2, 10, None).unwrap();
        l.checkpoint(1, 4);
        let t = 50_000;
        let extend = 1_500;
        l.promote(t, extend);
        assert!(l.expired(t + extend + 3_999, 10).is_empty());
        assert_eq!(l.expired(t + extend + 4_000, 10), vec![1]);
        assert_eq!(l.expired(t + extend + 9_999, 10), vec![1]);
        assert_eq!(l.expired(t + extend + 10_000, 10), vec![1, 2]);
        // Promote replaces earlier expiries (no leftovers in the queue).
        l.promote(0, 0);
        assert_eq!(l.expired(4_000, 10), vec![1]);
        assert_eq!(l.expired(u64::MAX, 10), vec![1, 2]);
        l.promote(u64::MAX, u64::MAX);
        assert_eq!(l.expired(u64::MAX, 10), vec![1, 2]);
    }

    #[test]
    fn demote_forgets_expiries() {
        let mut l = Lessor::new(1);
        l.grant(1, 10, Some(0)).unwrap();
        l.demote();
        assert!(l.expired(u64::MAX, 10).is_empty());
        assert!(l.checkpoints(0).is_empty());
        assert_eq!(l.time_to_live(1, false, Some(9_000)).ttl, 10);
        assert!(l.exists(1));
    }

    #[test]
    fn checkpoints_round_up_and_floor_at_one() {
        let mut l = Lessor::new(1);
        l.grant(3, 10, Some(0)).unwrap();
        l.grant(1, 5, Some(0)).unwrap();
        l.grant(2, 5, None).unwrap(); // no expiry known here: not reported
        assert_eq!(l.checkpoints(0), vec![(1, 5), (3, 10)]);
        assert_eq!(l.checkpoints(4_001), vec![(1, 1), (3, 6)]);
        assert_eq!(l.checkpoints(6_000), vec![(1, 1), (3, 4)]);
        assert_eq!(l.checkpoints(u64::MAX), vec![(1, 1), (3, 1)]);
        // Applying them and promoting elsewhere resumes from there.
        let mut f = l.clone();
        f.demote();
        for (id, rem) in l.checkpoints(6_000) {
            f.checkpoint(id, rem);
        }
        f.promote(100_000, 0);
        assert_eq!(f.expired(100_999, 10), Vec::<i64>::new());
        assert_eq!(f.expired(101_000, 10), vec![1]);
        assert_eq!(f.expired(104_000, 10), vec![1, 3]);
        assert_eq!(f.expired(105_000, 10), vec![1, 3, 2]);
    }

    #[test]
    fn time_to_live_on_leader_follower_and_unknown() {
        let mut l = Lessor::new(1);
        l.grant(1, 10, Some(1_000)).unwrap();
        l.attach(1, b"k2");
        l.attach(1, b"k1");
        let r = l.time_to_live(1, true, Some(4_500));
        assert_eq!((r.id, r.ttl, r.granted_ttl), (1, 6, 10)); // 6.5s left, truncated
        assert_eq!(r.keys, keys(&["k1", "k2"]));
        assert_eq!(l.time_to_live(1, false, Some(11_000)).ttl, 0);
        assert_eq!(l.time_to_live(1, false, Some(u64::MAX)).ttl, 0);
        // Follower view: no clock; granted TTL, then the checkpoint once there is one.
        let mut f = Lessor::new(1);
        f.grant(1, 10, None).unwrap();
        assert_eq!(f.time_to_live(1, false, Some(4_500)).ttl, 10);
        f.checkpoint(1, 3);
        assert_eq!(f.time_to_live(1, false, None).ttl, 3);
        assert_eq!(f.time_to_live(1, false, None).granted_ttl, 10);
        // Unknown lease: ttl -1, as etcd answers.
        let u = l.time_to_live(77, true, Some(0));
        assert_eq!((u.id, u.ttl, u.granted_ttl), (77, -1, 0));
        assert!(u.keys.is_empty());
    }

    #[test]
    fn snapshot_round_trip_keeps_replicated_state_only() {
        let mut l = Lessor::new(3);
        l.grant(1, 10, Some(0)).unwrap();
        l.grant(2, 20, Some(0)).unwrap();
        l.attach(1, b"a");
        l.attach(2, b"b");
        l.attach(2, b"c");
        l.checkpoint(2, 7);
        let snap = l.snapshot();
        let bytes = postcard::to_allocvec(&snap).unwrap();
        let back: LeaseSnapshot = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, snap);
        let r = Lessor::restore(back);
        assert_eq!(r, l);
        assert_eq!(r.min_ttl(), 3);
        assert_eq!(r.snapshot(), snap);
        assert!(r.expired(u64::MAX, 10).is_empty(), "restored as a follower");
        assert_eq!(r.time_to_live(2, true, None).keys, keys(&["b", "c"]));
        assert_eq!(r.time_to_live(2, false, None).ttl, 7);
    }

    #[test]
    fn restore_tolerates_odd_snapshots() {
        let snap = LeaseSnapshot {
            min_ttl: 1,
            leases: vec![
                LeaseRecord { id: 0, ttl: 5, remaining_ttl: 0, keys: vec![] },
                LeaseRecord { id: 4, ttl: 5, remaining_ttl: -9, keys: keys(&["b", "a", "b"]) },
                LeaseRecord { id: 4, ttl: 6, remaining_ttl: 0, keys: keys(&["z"]) },
            ],
        };
        let mut r = Lessor::restore(snap);
        assert_eq!(r.leases(), vec![4]);
        assert_eq!(r.time_to_live(4, true, None).granted_ttl, 6);
        assert_eq!(r.time_to_live(4, true, None).keys, keys(&["z"]));
        r.set_min_ttl(2);
        assert_eq!(r.grant(5, 1, None).unwrap().ttl, 2);
    }

    #[test]
    fn equality_is_over_replicated_state() {
        let mut a = Lessor::new(1);
        let mut b = Lessor::new(1);
        a.grant(1, 10, Some(0)).unwrap();
        b.grant(1, 10, None).unwrap();
        a.promote(5, 5);
        assert_eq!(a, b);
        b.attach(1, b"k");
        assert_ne!(a, b);
        a.attach(1, b"k");
        a.checkpoint(1, 5);
        assert_ne!(a, b);
    }
}
