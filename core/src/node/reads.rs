//! Linearizable reads through Raft's ReadIndex, batched: every read that arrives while one
//! ReadIndex round is in flight joins the next round, so a thousand concurrent reads cost one
//! heartbeat round rather than a thousand.

use std::collections::VecDeque;

use super::output::RequestId;
use crate::api::auth::AuthInfo;
use crate::api::request::RangeRequest;

/// A read waiting for its round and then for the state machine to catch up, with who asked
/// (`None`: nobody to check), since its permission is checked when it is served.
pub(crate) type PendingRead = (RequestId, RangeRequest, Option<AuthInfo>);

/// Reads waiting for a ReadIndex round, the round in flight, and rounds that have their index.
#[derive(Default)]
pub(crate) struct ReadBatcher {
    /// Reads not yet part of a round.
    waiting: Vec<PendingRead>,
    /// The round in flight: its context, when it was sent, and its reads.
    in_flight: Option<(u64, u64, Vec<PendingRead>)>,
    /// Rounds confirmed at a commit index, served once that index is applied.
    confirmed: VecDeque<(u64, Vec<PendingRead>)>,
    next_ctx: u64,
    /// Member id and incarnation: every member, and every run of it, has its own contexts.
    /// (raft-rs drops a context already pending on the leader, and an answer to an earlier
    /// run's round must never confirm this run's.)
    prefix: [u8; 16],
}

impl ReadBatcher {
    /// Make this batcher's contexts unique to member `id` in its run `incarnation`.
    pub fn set_prefix(&mut self, id: u64, incarnation: u64) {
        self.prefix[..8].copy_from_slice(&id.to_be_bytes());
        self.prefix[8..].copy_from_slice(&incarnation.to_be_bytes());
    }

    fn context(&self, n: u64) -> Vec<u8> {
        let mut ctx = self.prefix.to_vec();
        ctx.extend_from_slice(&n.to_be_bytes());
        ctx
    }

    /// Queue a read for the next round.
    pub fn add(&mut self, id: RequestId, req: RangeRequest, who: Option<AuthInfo>) {
        self.waiting.push((id, req, who));
    }

    /// If no round is in flight and reads are waiting, start a round: returns its context.
    pub fn start_round(&mut self, now_ms: u64) -> Option<Vec<u8>> {
        if self.in_flight.is_some() || self.waiting.is_empty() {
            return None;
        }
        self.next_ctx += 1;
        let reads = std::mem::take(&mut self.waiting);
        self.in_flight = Some((self.next_ctx, now_ms, reads));
        Some(self.context(self.next_ctx))
    }

    /// A round came back confirmed at `index` (Raft's ReadState).
    pub fn confirm(&mut self, ctx: &[u8], index: u64) {
        let matches = matches!(&self.in_flight, Some((c, _, _)) if self.context(*c) == ctx);
        if matches {
            if let Some((_, _, reads)) = self.in_flight.take() {
                self.confirmed.push_back((index, reads));
            }
        }
    }

    /// A round unanswered for longer than `retry_ms` (lost with a leader, say) goes back to
    /// waiting, to be sent again with the next round.
    pub fn retry_stale(&mut self, now_ms: u64, retry_ms: u64) {
        let stale = matches!(&self.in_flight, Some((_, sent, _)) if now_ms.saturating_sub(*sent) >= retry_ms);
        if stale {
            if let Some((_, _, mut reads)) = self.in_flight.take() {
                reads.append(&mut self.waiting);
                self.waiting = reads;
            }
        }
    }

    /// Reads whose round is confirmed at or below `applied`: they can be served now.
    pub fn ready(&mut self, applied: u64) -> Vec<PendingRead> {
        let mut out = Vec::new();
        while self.confirmed.front().is_some_and(|(index, _)| *index <= applied) {
            if let Some((_, mut reads)) = self.confirmed.pop_front() {
                out.append(&mut reads);
            }
        }
        out
    }

    /// Remove and return every read for which `expired` holds (their deadline passed).
    pub fn take_expired(&mut self, mut expired: impl FnMut(RequestId) -> bool) -> Vec<RequestId> {
        let mut gone = Vec::new();
        let mut keep = |reads: &mut Vec<PendingRead>| {
            reads.retain(|(id, _, _)| {
                let out = expired(*id);
                if out {
                    gone.push(*id);
                }
                !out
            })
        };
        keep(&mut self.waiting);
        if let Some((_, _, reads)) = &mut self.in_flight {
            keep(reads);
        }
        for (_, reads) in &mut self.confirmed {
            keep(reads);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_arriving_during_a_round_share_the_next_round() {
        let mut b = ReadBatcher::default();
        b.add(1, RangeRequest::default(), None);
        let ctx = b.start_round(0).unwrap();
        b.add(2, RangeRequest::default(), None);
        b.add(3, RangeRequest::default(), None);
        assert!(b.start_round(0).is_none(), "one round at a time");
        b.confirm(&ctx, 10);
        assert!(b.ready(9).is_empty(), "not before the read index is applied");
        assert_eq!(b.ready(10).len(), 1);
        let ctx2 = b.start_round(0).unwrap();
        b.confirm(&ctx2, 12);
        assert_eq!(b.ready(12).iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 3]);
    }

    #[test]
    fn a_lost_round_is_retried_with_a_new_context() {
        let mut b = ReadBatcher::default();
        b.add(1, RangeRequest::default(), None);
        let old = b.start_round(0).unwrap();
        b.retry_stale(500, 500);
        let new = b.start_round(500).unwrap();
        assert_ne!(old, new);
        b.confirm(&old, 3); // a late answer to the old round is ignored
        assert!(b.ready(100).is_empty());
        b.confirm(&new, 4);
        assert_eq!(b.ready(4).len(), 1);
    }

    #[test]
    fn contexts_differ_between_members_and_runs() {
        let ctx = |id, run| {
            let mut b = ReadBatcher::default();
            b.set_prefix(id, run);
            b.add(1, RangeRequest::default(), None);
            b.start_round(0).unwrap()
        };
        assert_ne!(ctx(1, 7), ctx(2, 7), "two members' first rounds collide on the leader");
        assert_ne!(ctx(1, 7), ctx(1, 8), "a restarted member reuses its previous run's context");
        let mut b = ReadBatcher::default();
        b.set_prefix(1, 8);
        b.add(1, RangeRequest::default(), None);
        b.start_round(0).unwrap();
        b.confirm(&ctx(1, 7), 3);
        assert!(b.ready(u64::MAX).is_empty(), "an earlier run's answer confirmed this run's read");
    }

    #[test]
    fn expired_reads_are_removed_wherever_they_wait() {
        let mut b = ReadBatcher::default();
        b.add(1, RangeRequest::default(), None);
        let ctx = b.start_round(0).unwrap();
        b.add(2, RangeRequest::default(), None);
        b.confirm(&ctx, 1);
        let gone = b.take_expired(|_| true);
        assert_eq!(gone, vec![2, 1]);
        assert!(b.ready(u64::MAX).is_empty());
    }
}
