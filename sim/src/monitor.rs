//! Watches the members from inside while the run goes on: a member's raft term must never go
//! backwards (not even across its restarts: the term is durable), and within one incarnation
//! neither may its commit index or its key space's revision. A member added back on its old
//! host after its removal (with a new id and an empty disk) starts afresh.

use std::collections::BTreeMap;

use tokio::time::Instant;

use crate::checker::Violation;
use crate::cluster::SimCluster;

/// What was last seen of one member.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    /// Which member it was (a host's member changes when one is added back).
    id: u64,
    term: u64,
    commit: u64,
    revision: i64,
    /// The incarnation the last sample found running (None: it was down).
    incarnation: Option<u64>,
}

/// Samples of every member, and what went wrong in them.
#[derive(Debug, Default)]
pub struct Monitor {
    seen: BTreeMap<usize, Seen>,
    violations: Vec<Violation>,
}

impl Monitor {
    /// Look at every member once.
    pub fn sample(&mut self, cluster: &SimCluster, start: Instant) {
        let at = start.elapsed().as_millis();
        for m in 0..cluster.hosts() {
            let before = self
                .seen
                .get(&m)
                .copied()
                .filter(|s| s.id == cluster.id(m))
                .unwrap_or(Seen { id: cluster.id(m), ..Seen::default() });
            let Some(status) = cluster.status(m) else {
                self.seen.insert(m, Seen { incarnation: None, ..before });
                continue;
            };
            if status.term < before.term {
                self.flag(
                    "terms",
                    format!("at {at} ms m{} is in term {} after term {}", m + 1, status.term, before.term),
                );
            }
            let same = before.incarnation == Some(cluster.incarnation(m));
            if same && status.commit_index < before.commit {
                self.flag(
                    "commit index",
                    format!("at {at} ms m{} commit index {} after {}", m + 1, status.commit_index, before.commit),
                );
            }
            if same && status.revision < before.revision {
                self.flag(
                    "revisions",
                    format!("at {at} ms m{} revision {} after {}", m + 1, status.revision, before.revision),
                );
            }
            self.seen.insert(
                m,
                Seen {
                    id: before.id,
                    term: status.term,
                    commit: status.commit_index,
                    revision: status.revision,
                    incarnation: Some(cluster.incarnation(m)),
                },
            );
        }
    }

    fn flag(&mut self, what: &'static str, detail: String) {
        if self.violations.len() < 20 {
            self.violations.push(Violation::new(what, detail));
        }
    }

    /// Everything that went wrong.
    pub fn violations(&self) -> Vec<Violation> {
        self.violations.clone()
    }
}
