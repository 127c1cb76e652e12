//! Rewriting what releases before the versioned formats stored (see [`crate::format`]): their
//! log entries carried bare proposals, and a restored backup's snapshot a bare state. The
//! storage calls these once, when it opens such a data directory, and stores the results in
//! the current formats (with its own layout's new version) in one batch.

use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeV2, EntryType};

use crate::api::command::Proposal;
use crate::api::error::{Error, Result};
use crate::node::{LogEntry, SnapshotRecord};
use crate::state::machine::{StateMachine, SNAPSHOT_FORMAT};

/// `entry` as an earlier release stored it, in the current format. Entries without a proposal
/// (Raft's empty entries, its automatic configuration changes) come back unchanged.
pub fn unversioned_entry(entry: &LogEntry) -> Result<LogEntry> {
    let mut raft = entry.to_raft()?;
    let upgrade = |bytes: &[u8]| Proposal::decode_unversioned(bytes).map(|p| p.encode());
    let malformed = |e: protobuf::ProtobufError| {
        Error::Internal(format!("a malformed configuration change in entry {}: {e}", entry.index))
    };
    match raft.get_entry_type() {
        EntryType::EntryNormal if !raft.data.is_empty() => raft.data = upgrade(&raft.data)?.into(),
        EntryType::EntryNormal => {}
        EntryType::EntryConfChange => {
            let mut cc = ConfChange::parse_from_bytes(&raft.data).map_err(malformed)?;
            if !cc.context.is_empty() {
                cc.context = upgrade(&cc.context)?.into();
                raft.data = cc.write_to_bytes().map_err(malformed)?.into();
            }
        }
        EntryType::EntryConfChangeV2 => {
            let mut cc = ConfChangeV2::parse_from_bytes(&raft.data).map_err(malformed)?;
            if !cc.context.is_empty() {
                cc.context = upgrade(&cc.context)?.into();
                raft.data = cc.write_to_bytes().map_err(malformed)?.into();
            }
        }
    }
    Ok(LogEntry::from_raft(&raft))
}

/// A stored snapshot as an earlier release kept it, in the current format. Only a restored
/// backup's snapshot holds a state (a member's own holds only its position).
pub fn unversioned_snapshot(record: &SnapshotRecord) -> Result<SnapshotRecord> {
    let mut raft = record.to_raft()?;
    if !raft.data.is_empty() {
        let state = StateMachine::decode_backup(&raft.data)?;
        raft.data = SNAPSHOT_FORMAT.encode(&state).into();
    }
    Ok(SnapshotRecord::from_raft(&raft))
}

#[cfg(test)]
mod tests {
    use raft::eraftpb::{ConfChangeType, Entry, Snapshot};

    use super::*;
    use crate::api::command::Command;
    use crate::api::request::{Member, MemberAddRequest, MemberChange, PutRequest};

    fn proposal(command: Command) -> Proposal {
        Proposal { origin: 1, incarnation: 2, request_id: 3, command }
    }

    fn entry(kind: EntryType, data: Vec<u8>) -> LogEntry {
        let mut e = Entry::default();
        e.set_entry_type(kind);
        e.index = 7;
        e.term = 2;
        e.data = data.into();
        LogEntry::from_raft(&e)
    }

    #[test]
    fn bare_proposals_become_versioned_ones_and_the_rest_is_kept() {
        let put = proposal(Command::Put(PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), ..Default::default() }));
        let bare = postcard::to_stdvec(&put).unwrap();
        let upgraded = unversioned_entry(&entry(EntryType::EntryNormal, bare.clone())).unwrap();
        assert_eq!((upgraded.index, upgraded.term), (7, 2));
        assert_eq!(Proposal::decode(&upgraded.to_raft().unwrap().data).unwrap(), put);

        let add = proposal(Command::Member(MemberChange::Add(MemberAddRequest {
            id: 4,
            peer_urls: vec!["u".into()],
            is_learner: false,
        })));
        let mut cc = ConfChangeV2::default();
        let mut single = raft::eraftpb::ConfChangeSingle::default();
        single.set_change_type(ConfChangeType::AddNode);
        single.node_id = 4;
        cc.mut_changes().push(single);
        cc.context = postcard::to_stdvec(&add).unwrap().into();
        let upgraded = unversioned_entry(&entry(EntryType::EntryConfChangeV2, cc.write_to_bytes().unwrap())).unwrap();
        let back = ConfChangeV2::parse_from_bytes(&upgraded.to_raft().unwrap().data).unwrap();
        assert_eq!(Proposal::decode(&back.context).unwrap(), add);
        assert_eq!(back.changes, cc.changes);

        let empty = entry(EntryType::EntryNormal, vec![]);
        assert_eq!(unversioned_entry(&empty).unwrap(), empty, "Raft's own entries are kept");
        assert!(unversioned_entry(&entry(EntryType::EntryNormal, vec![0xff; 3])).is_err(), "garbage is refused");
    }

    #[test]
    fn a_bare_restored_state_becomes_a_versioned_snapshot() {
        let mut sm = StateMachine::new(vec![Member { id: 1, ..Default::default() }], 5);
        sm.apply(&Command::Put(PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), ..Default::default() }), None);
        let versioned = sm.snapshot().unwrap();
        let bare = versioned[SNAPSHOT_FORMAT.tag.len() + 1..].to_vec();
        let mut raft = Snapshot::default();
        raft.set_data(bare.into());
        raft.mut_metadata().index = 3;
        let upgraded = unversioned_snapshot(&SnapshotRecord::from_raft(&raft)).unwrap();
        assert_eq!(upgraded.to_raft().unwrap().get_data(), &versioned[..]);
        let position = SnapshotRecord::from_raft(&Snapshot::default());
        assert_eq!(unversioned_snapshot(&position).unwrap(), position);
    }
}
