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
