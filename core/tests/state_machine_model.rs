//! Property test of the applied state as a whole: random puts (with and without leases),
//! deletes, lease grants and revokes, compactions and snapshot/restore cycles, checked against a
//! plain reference model after every step. A member restored from a snapshot mid-way must end in
//! exactly the state of one that never was.

use std::collections::{BTreeMap, BTreeSet};

use keel_core::command::Command;
use keel_core::error::Error;
use keel_core::request::*;
use keel_core::state_machine::StateMachine;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Put { key: u8, value: u8, lease: Option<i64> },
    Delete { key: u8 },
    Grant { id: i64 },
    Revoke { id: i64 },
    Compact { back: i64 },
    SnapshotRestore,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6, any::<u8>(), prop::option::of(1i64..4)).prop_map(|(key, value, lease)| Op::Put { key, value, lease }),
        2 => (0u8..6).prop_map(|key| Op::Delete { key }),
        1 => (1i64..4).prop_map(|id| Op::Grant { id }),
        1 => (1i64..4).prop_map(|id| Op::Revoke { id }),
        1 => (0i64..4).prop_map(|back| Op::Compact { back }),
        1 => Just(Op::SnapshotRestore),
    ]
}

/// What the state should be: live keys with (value, lease), leases with their keys, revisions.
#[derive(Default)]
struct Model {
    keys: BTreeMap<Vec<u8>, (Vec<u8>, i64)>,
    leases: BTreeMap<i64, BTreeSet<Vec<u8>>>,
    revision: i64,
    compacted: i64,
}

impl Model {
    fn apply(&mut self, op: &Op) -> Result<(), Error> {
        match op {
            Op::Put { key, value, lease } => {
                let lease = lease.unwrap_or(0);
                if lease != 0 && !self.leases.contains_key(&lease) {
                    return Err(Error::LeaseNotFound);
                }
                let key = vec![b'a' + key];
                if let Some((_, old)) = self.keys.insert(key.clone(), (vec![*value], lease)) {
                    self.leases.get_mut(&old).map(|s| s.remove(&key));
                }
                if lease != 0 {
                    self.leases.entry(lease).or_default().insert(key);
                }
                self.revision += 1;
            }
            Op::Delete { key } => {
                let key = vec![b'a' + key];
                if let Some((_, lease)) = self.keys.remove(&key) {
                    self.leases.get_mut(&lease).map(|s| s.remove(&key));
                    self.revision += 1;
                }
            }
            Op::Grant { id } => {
                if self.leases.contains_key(id) {
                    return Err(Error::LeaseExists);
                }
                self.leases.insert(*id, BTreeSet::new());
            }
            Op::Revoke { id } => {
                let keys = self.leases.remove(id).ok_or(Error::LeaseNotFound)?;
                for k in &keys {
                    self.keys.remove(k);
                }
                if !keys.is_empty() {
                    self.revision += 1;
                }
            }
            Op::Compact { back } => {
                let target = (self.revision - back).max(1);
                if target <= self.compacted {
                    return Err(Error::Compacted);
                }
                self.compacted = target;
            }
            Op::SnapshotRestore => {}
        }
        Ok(())
    }
}

fn command(op: &Op, model: &Model) -> Option<Command> {
    Some(match op {
        Op::Put { key, value, lease } => Command::Put(PutRequest {
            key: vec![b'a' + key],
            value: vec![*value],
            lease: lease.unwrap_or(0),
            ..Default::default()
        }),
        Op::Delete { key } => Command::DeleteRange(DeleteRangeRequest { key: vec![b'a' + key], ..Default::default() }),
        Op::Grant { id } => Command::LeaseGrant(LeaseGrantRequest { id: *id, ttl: 60 }),
        Op::Revoke { id } => Command::LeaseRevoke(LeaseRevokeRequest { id: *id }),
        Op::Compact { back } => Command::Compact(CompactionRequest { revision: (model.revision - back).max(1), physical: false }),
        Op::SnapshotRestore => return None,
    })
}

fn live(sm: &StateMachine) -> BTreeMap<Vec<u8>, (Vec<u8>, i64)> {
    let all = RangeRequest { key: vec![0], range_end: vec![0], ..Default::default() };
    let resp = sm.store().range(&all).expect("range all");
    resp.kvs.into_iter().map(|kv| (kv.key, (kv.value, kv.lease))).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn applied_state_matches_the_model_through_snapshots(ops in prop::collection::vec(op(), 1..80)) {
        let mut model = Model { revision: 1, ..Default::default() };
        let mut sm = StateMachine::new(vec![], 2);
        let mut twin = StateMachine::new(vec![], 2);
        for op in &ops {
            let cmd = command(op, &model);
            let expected = model.apply(op);
            match cmd {
                None => {
                    sm = StateMachine::restore(&sm.snapshot(), 2).expect("restore");
                    prop_assert_eq!(sm.hash(), twin.hash());
                }
                Some(cmd) => {
                    let got = sm.apply(&cmd, None).response.expect("client commands answer");
                    twin.apply(&cmd, None);
                    prop_assert_eq!(got.as_ref().err(), expected.as_ref().err(), "op {:?}", op);
                }
            }
            prop_assert_eq!(live(&sm), model.keys.clone());
            prop_assert_eq!(sm.store().current_revision(), model.revision);
            prop_assert_eq!(sm.lessor().leases(), model.leases.keys().copied().collect::<Vec<_>>());
            for (id, keys) in &model.leases {
                let ttl = sm.lessor().time_to_live(*id, true, None);
                prop_assert_eq!(ttl.keys.into_iter().collect::<BTreeSet<_>>(), keys.clone());
            }
        }
        let restored = StateMachine::restore(&sm.snapshot(), 2).expect("restore");
        prop_assert_eq!(restored.hash(), sm.hash());
        prop_assert_eq!(live(&restored), live(&sm));
        prop_assert_eq!(sm.hash(), twin.hash());
    }
}
