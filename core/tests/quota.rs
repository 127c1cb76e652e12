//! The space quota and its NOSPACE alarm across a cluster: raised through the log, refused
//! alike by every member, kept in snapshots, and cleared by compaction plus a disarm.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use keel_core::api::alarm::{AlarmAction, AlarmMember, AlarmRequest, AlarmType};
use keel_core::api::error::Error;
use keel_core::api::request::*;
use keel_core::cluster::LocalCluster;

fn put(key: &str, bytes: usize) -> Request {
    Request::Put(PutRequest { key: key.into(), value: vec![b'v'; bytes], ..Default::default() })
}

fn alarm(action: AlarmAction, member_id: u64) -> Request {
    Request::Alarm(AlarmRequest {
        action,
        member_id,
        alarm: if member_id == 0 { AlarmType::None } else { AlarmType::Nospace },
    })
}

fn alarms(c: &mut LocalCluster, on: u64) -> Vec<AlarmMember> {
    match c.call(on, alarm(AlarmAction::Get, 0)) {
        Ok(Response::Alarm(r)) => r.alarms,
        other => panic!("expected alarms, got {other:?}"),
    }
}

#[test]
fn a_full_store_raises_nospace_everywhere_until_space_is_freed_and_the_alarm_disarmed() {
    let mut c = LocalCluster::with_config(3, 5, |cfg| {
        cfg.quota_bytes = 10_000;
        cfg.snapshot_count = 5;
        cfg.snapshot_catchup_entries = 1;
    });
    let leader = c.wait_for_leader();
    let follower = c.running().into_iter().find(|id| *id != leader).unwrap();
    let mut written = 0;
    let refused = loop {
        match c.call(follower, put(&format!("k{written}"), 1000)) {
            Ok(_) => written += 1,
            Err(e) => break e,
        }
        assert!(written < 20, "the quota never refused a write");
    };
    assert_eq!(refused, Error::NoSpace);
    assert_eq!(written, 9, "9 puts of 1000 bytes (plus key and overhead) fit in 10 000");
    let raised = vec![AlarmMember { member_id: follower, alarm: AlarmType::Nospace }];
    let raised_at = c.node(follower).applied_index();
    for id in c.running() {
        assert_eq!(alarms(&mut c, id), raised, "member {id} lists the alarm");
        // While the alarm is up, even a small write is refused, a lease grant too...
        assert_eq!(c.call(id, put("tiny", 1)).unwrap_err(), Error::NoSpace);
        let grant = Request::LeaseGrant(LeaseGrantRequest { ttl: 60, id: 0 });
        assert_eq!(c.call(id, grant).unwrap_err(), Error::NoSpace);
    }
    // ...but reads, deletes and compaction go on.
    let all = Request::Range(RangeRequest {
        key: b"k".to_vec(),
        range_end: b"l".to_vec(),
        count_only: true,
        ..Default::default()
    });
    let Ok(Response::Range(r)) = c.call(leader, all) else { panic!() };
    assert_eq!(r.count, 9);
    let del =
        Request::DeleteRange(DeleteRangeRequest { key: b"k".to_vec(), range_end: b"l".to_vec(), ..Default::default() });
    let Ok(Response::DeleteRange(d)) = c.call(leader, del) else { panic!() };
    let Ok(Response::Compact(_)) =
        c.call(leader, Request::Compact(CompactionRequest { revision: d.header.revision, physical: false }))
    else {
        panic!()
    };

    // A member that restarts from a snapshot keeps the alarm.
    c.crash(follower);
    c.restart(follower);
    let caught_up = c.tick_until(100, |c| {
        c.node(follower).leader_id() != 0 && c.node(follower).applied_index() == c.node(leader).applied_index()
    });
    assert!(caught_up, "the restarted member caught up");
    assert!(
        c.disk(follower).stored.snapshot.as_ref().is_some_and(|s| s.index > raised_at),
        "the alarm came back from a snapshot"
    );
    assert_eq!(alarms(&mut c, follower), raised);

    // Disarmed, writes go through again, and the store is below the quota.
    let Ok(Response::Alarm(cleared)) = c.call(leader, alarm(AlarmAction::Deactivate, follower)) else { panic!() };
    assert_eq!(cleared.alarms, raised, "the disarmed alarm is named");
    assert!(alarms(&mut c, leader).is_empty());
    c.call(follower, put("again", 1000)).expect("writes work after the disarm");
}
