//! Same seed, same run: the core draws every random number from its own seeded generator, so a
//! cluster driven by the same inputs elects the same leaders at the same ticks and commits the
//! same entries. Different seeds take different paths.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use keel_core::api::request::{PutRequest, Request};
use keel_core::cluster::LocalCluster;

/// One tick of a run: time, leader, and every running member's (term, commit index).
type TickTrace = (u64, Option<u64>, Vec<(u64, u64)>);

/// Per tick: (time, leader, and every member's term and commit index); leaders are killed and
/// restarted along the way so that many elections happen.
fn trace(seed: u64) -> Vec<TickTrace> {
    let mut c = LocalCluster::new(5, seed);
    let mut out = Vec::new();
    let mut crashed: Option<u64> = None;
    for tick in 0..600u64 {
        c.tick();
        if let Some(leader) = c.leader() {
            let put = PutRequest {
                key: format!("k{}", tick % 7).into_bytes(),
                value: tick.to_le_bytes().to_vec(),
                ..Default::default()
            };
            c.request(leader, Request::Put(put));
            if tick % 97 == 0 {
                if let Some(id) = crashed.take() {
                    c.restart(id);
                }
                c.crash(leader);
                crashed = Some(leader);
            }
        }
        let members = c.running().iter().map(|id| (c.node(*id).term(), c.node(*id).commit_index())).collect();
        out.push((c.now_ms(), c.leader(), members));
    }
    out
}

fn leaders(t: &[TickTrace]) -> Vec<(u64, u64)> {
    let mut changes = Vec::new();
    let mut last = None;
    for (now, leader, _) in t {
        if *leader != last {
            if let Some(l) = leader {
                changes.push((*now, *l));
            }
            last = *leader;
        }
    }
    changes
}

#[test]
fn one_seed_gives_identical_leaders_terms_and_commits() {
    let a = trace(42);
    let b = trace(42);
    assert!(leaders(&a).len() >= 4, "the scenario must exercise several elections: {:?}", leaders(&a));
    assert_eq!(a, b);
}

#[test]
fn different_seeds_take_different_paths() {
    let a = leaders(&trace(1));
    let differs = (2..6).any(|seed| leaders(&trace(seed)) != a);
    assert!(differs, "five seeds gave the same election history");
}

#[test]
fn election_timeouts_come_from_the_seed_and_stay_in_raft_bounds() {
    let c1 = LocalCluster::new(3, 99);
    let c2 = LocalCluster::new(3, 99);
    for id in 1..=3 {
        let t = c1.node(id).election_timeout_ticks();
        assert_eq!(t, c2.node(id).election_timeout_ticks());
        assert!((10..20).contains(&t), "timeout {t} outside [election, 2*election)");
    }
}
