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

use crate::api::error::{Error, Result};
use crate::api::request::{LeaseGrantResponse, LeaseTimeToLiveResponse, MAX_LEASE_TTL};

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

    /// The keys attached to lease `id` (none when it does not exist), for permission checks.
    pub fn keys(&self, id: i64) -> impl Iterator<Item = &Vec<u8>> {
        self.leases.get(&id).into_iter().flat_map(|l| l.keys.iter())
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
mod tests;
