//! Which of raft-rs's readies are durable, so raft-rs is never told an unsynced entry is safe.

use std::collections::VecDeque;

/// Which raft-rs readies are durable. Readies are numbered in order; those with writes become
/// durable when the shell acknowledges them (cumulatively), those without as soon as every
/// earlier one with writes is.
#[derive(Default)]
pub(super) struct Durability {
    /// Numbers of readies with writes, not yet acknowledged, in order.
    unsynced: VecDeque<u64>,
    /// Numbers of readies with nothing to write, waiting for earlier writes, in order.
    empty: VecDeque<u64>,
    /// Highest number acknowledged by the shell.
    acked: u64,
    /// Highest number reported to raft-rs.
    reported: u64,
}

impl Durability {
    pub(super) fn wrote(&mut self, number: u64) {
        self.unsynced.push_back(number);
    }

    pub(super) fn wrote_nothing(&mut self, number: u64) {
        self.empty.push_back(number);
    }

    pub(super) fn acked(&mut self, number: u64) {
        self.acked = self.acked.max(number);
        while self.unsynced.front().is_some_and(|n| *n <= number) {
            self.unsynced.pop_front();
        }
    }

    /// The highest number now durable, if it is news.
    pub(super) fn releasable(&mut self) -> Option<u64> {
        let limit = self.unsynced.front().map_or(u64::MAX, |first| first - 1);
        let mut durable = self.acked.min(limit);
        while self.empty.front().is_some_and(|n| *n <= limit) {
            durable = durable.max(self.empty.pop_front().unwrap_or(0));
        }
        (durable > self.reported).then(|| {
            self.reported = durable;
            durable
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Durability;

    #[test]
    fn an_empty_ready_is_durable_only_after_every_earlier_write() {
        let mut d = Durability::default();
        d.wrote(5);
        d.wrote_nothing(6);
        assert_eq!(d.releasable(), None, "6 must wait for 5's fsync");
        d.wrote(8);
        d.wrote_nothing(9);
        d.acked(5);
        assert_eq!(d.releasable(), Some(6), "5 synced: 6 is durable, 9 still waits for 8");
        d.acked(8);
        assert_eq!(d.releasable(), Some(9));
        d.wrote_nothing(10);
        assert_eq!(d.releasable(), Some(10), "nothing unsynced: at once");
        assert_eq!(d.releasable(), None);
    }
}
