//! Restoring a backup (what `etcdctl snapshot save` wrote from Maintenance.Snapshot) as the
//! first state of a new cluster, as `etcdctl snapshot restore` does for etcd: the key space,
//! its revisions and the leases come back; the membership is the new cluster's, and alarms
//! are left behind. Every member of the new cluster restores the same backup with the same
//! members and so starts from the same snapshot.

use raft::eraftpb::{ConfState, Snapshot};

use crate::api::error::{Error, Result};
use crate::api::request::Member;
use crate::node::{HardState, SnapshotRecord};
use crate::state::machine::StateMachine;

/// What a new member's storage starts with: the snapshot and the hard state that commits it.
pub struct Restored {
    pub snapshot: SnapshotRecord,
    pub hard_state: HardState,
    /// The key space's revision in the backup.
    pub revision: i64,
}

/// The first snapshot of a new cluster of `members` (all voters) holding the state in
/// `backup` (zero padding after it is ignored). It sits at the backup's applied index (at
/// least 1), term 1, committed.
pub fn restore(backup: &[u8], members: Vec<Member>) -> Result<Restored> {
    if members.is_empty() {
        return Err(Error::Internal("a restored cluster needs members".into()));
    }
    let mut state = StateMachine::restore(backup, 1)?;
    let index = state.applied_index().max(1);
    let voters = members.iter().map(|m| m.id).collect();
    state.refound(members, index);
    let mut snapshot = Snapshot::default();
    snapshot.set_data(state.snapshot()?.into());
    let meta = snapshot.mut_metadata();
    meta.index = index;
    meta.term = 1;
    meta.set_conf_state(ConfState { voters, ..Default::default() });
    Ok(Restored {
        snapshot: SnapshotRecord::from_raft(&snapshot),
        hard_state: HardState { term: 1, vote: 0, commit: index },
        revision: state.store().current_revision(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::request::{PutRequest, RangeRequest, Request, Response};
    use crate::cluster::LocalCluster;
    use crate::config::NodeConfig;
    use crate::node::{Node, Recovery};

    #[test]
    fn a_backup_restores_as_a_new_cluster_with_the_same_keys() {
        let mut old = LocalCluster::new(3, 1);
        old.wait_for_leader();
        for i in 0..10 {
            old.call(
                1,
                Request::Put(PutRequest { key: format!("k{i}").into(), value: b"v".to_vec(), ..Default::default() }),
            )
            .unwrap();
        }
        let Ok(Response::Snapshot(backup)) = old.call(1, Request::Snapshot) else { panic!() };
        let mut padded = backup.data.clone();
        padded.resize(padded.len() + 300, 0);
        let restored = restore(&padded, vec![Member { id: 7, name: "solo".into(), ..Default::default() }]).unwrap();
        assert_eq!(restored.revision, 11);

        let recovery = Recovery { snapshot: Some(restored.snapshot), hard_state: restored.hard_state, entries: vec![] };
        let node =
            Node::recover(NodeConfig::new(7, vec![]), recovery, Box::new(crate::state::engine::MemEngine::new()))
                .unwrap();
        let members = node.state().members();
        assert_eq!(members.iter().map(|m| m.id).collect::<Vec<_>>(), [7], "only the new membership");
        let range =
            RangeRequest { key: b"k".to_vec(), range_end: b"l".to_vec(), serializable: true, ..Default::default() };
        let resp = node.state().store().range(&range).unwrap();
        assert_eq!((resp.count, resp.header.revision), (10, 11), "every key, at the backup's revision");
        assert!(restore(b"not a backup", vec![Member { id: 7, ..Default::default() }]).is_err());
    }
}
