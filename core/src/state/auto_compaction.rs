//! etcd's automatic compaction (`--auto-compaction-mode`, `--auto-compaction-retention`) as a
//! decision over the clock and the revision the shell observes: when to compact, and at which
//! revision. Only the leader compacts; the shell proposes the compaction like a client's.

use std::collections::VecDeque;

/// How much history automatic compaction keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// `periodic`: the history of the last this many milliseconds.
    Periodic { ms: u64 },
    /// `revision`: the last this many revisions.
    Revisions(i64),
}

/// etcd's revision-mode compactor looks every 5 minutes.
const REVISION_CHECK_MS: u64 = 5 * 60 * 1000;
/// A periodic compactor compacts at least hourly, however long its retention.
const MAX_PERIOD_MS: u64 = 60 * 60 * 1000;

/// The compactor's memory: the revisions it saw, and what it last did.
#[derive(Clone, Debug)]
pub struct AutoCompactor {
    retention: Retention,
    /// When the compactor started (a periodic one waits a whole retention first).
    started_ms: Option<u64>,
    /// (time, revision) observed every [`AutoCompactor::poll_ms`], oldest first, spanning one
    /// retention (periodic mode).
    samples: VecDeque<(u64, i64)>,
    last_compaction_ms: Option<u64>,
    last_revision: i64,
}

impl AutoCompactor {
    /// A compactor keeping `retention`.
    pub fn new(retention: Retention) -> Self {
        AutoCompactor {
            retention,
            started_ms: None,
            samples: VecDeque::new(),
            last_compaction_ms: None,
            last_revision: 0,
        }
    }

    /// How often the shell calls [`AutoCompactor::observe`]: a tenth of the compaction period in
    /// periodic mode (so the revision from one retention ago is known to a tenth), every five
    /// minutes in revision mode, as etcd.
    pub fn poll_ms(&self) -> u64 {
        match self.retention {
            Retention::Periodic { ms } => (ms.min(MAX_PERIOD_MS) / 10).max(1),
            Retention::Revisions(_) => REVISION_CHECK_MS,
        }
    }

    /// The clock reads `now_ms` and the key space is at `revision`; `leader` tells whether this
    /// member leads (others only watch the revision go by). Returns the revision to compact at,
    /// if it is time. The caller reports the outcome with [`AutoCompactor::compacted`].
    pub fn observe(&mut self, now_ms: u64, revision: i64, leader: bool) -> Option<i64> {
        match self.retention {
            Retention::Revisions(keep) => {
                let target = revision - keep;
                (leader && target > 0 && target != self.last_revision).then_some(target)
            }
            Retention::Periodic { ms } => {
                let started = *self.started_ms.get_or_insert(now_ms);
                self.samples.push_back((now_ms, revision));
                // One retention of samples, plus the one from just before it.
                while self.samples.len() > 1 && self.samples[1].0 + ms <= now_ms {
                    self.samples.pop_front();
                }
                let interval = ms.min(MAX_PERIOD_MS);
                let due = self.last_compaction_ms.is_none_or(|last| now_ms >= last + interval);
                let (_, target) = *self.samples.front()?;
                (leader && now_ms >= started + ms && due && target > self.last_revision).then_some(target)
            }
        }
    }

    /// The compaction at `revision` decided at `now_ms` took effect (or was already done).
    pub fn compacted(&mut self, now_ms: u64, revision: i64) {
        self.last_compaction_ms = Some(now_ms);
        self.last_revision = self.last_revision.max(revision);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a compactor for `seconds`, one write per second, compactions taking effect at once.
    fn run(retention: Retention, seconds: u64, leader: impl Fn(u64) -> bool) -> Vec<(u64, i64)> {
        let mut c = AutoCompactor::new(retention);
        let mut done = Vec::new();
        let mut now = 0;
        while now <= seconds * 1000 {
            let revision = 1 + (now / 1000) as i64;
            if let Some(target) = c.observe(now, revision, leader(now)) {
                c.compacted(now, target);
                done.push((now / 1000, target));
            }
            now += c.poll_ms();
        }
        done
    }

    #[test]
    fn periodic_keeps_one_retention_of_history_and_compacts_once_per_period() {
        let done = run(Retention::Periodic { ms: 10_000 }, 40, |_| true);
        // Nothing in the first retention; then every 10 s, at the revision of 10 s before.
        assert_eq!(done, vec![(10, 1), (20, 11), (30, 21), (40, 31)]);
    }

    #[test]
    fn periodic_over_an_hour_compacts_hourly() {
        let done = run(Retention::Periodic { ms: 3 * 3600 * 1000 }, 5 * 3600, |_| true);
        assert_eq!(done.iter().map(|d| d.0 / 3600).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert!(
            done.iter().all(|(at, target)| (at - 3 * 3600) as i64 + 1 == *target),
            "the revision of 3 h before: {done:?}"
        );
    }

    #[test]
    fn revision_mode_keeps_the_last_revisions_and_only_the_leader_compacts() {
        let done = run(Retention::Revisions(100), 1200, |now| now < 700_000);
        assert_eq!(done, vec![(300, 201), (600, 501)], "every 5 minutes, while leader");
        assert_eq!(run(Retention::Revisions(5000), 1200, |_| true), vec![], "not enough history yet");
    }

    #[test]
    fn a_follower_compacts_nothing() {
        assert!(run(Retention::Periodic { ms: 1000 }, 30, |_| false).is_empty());
    }
}
