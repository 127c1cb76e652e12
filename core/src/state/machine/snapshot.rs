//! The applied state as one value: encoding it for a Raft snapshot or a backup, decoding and
//! checking one (older backup layouts included), and installing it in place of the state.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{records, SnapshotJob, StateMachine};
use crate::api::alarm::AlarmMember;
use crate::api::error::{Error, Result};
use crate::api::request::Member;
use crate::format::Format;
use crate::state::alarm::Alarms;
use crate::state::auth::AuthStore;
use crate::state::engine::{Batch, MemEngine};
use crate::state::lease::{LeaseSnapshot, Lessor};
use crate::state::mvcc::{MvccSnapshot, MvccStore};

/// How a [`StateSnapshot`] is stored and shipped (Raft snapshots, backups). Version 2 added the
/// auth store; version 1 snapshots (from members not yet upgraded, and backups) still decode.
pub const SNAPSHOT_FORMAT: Format = Format { name: "snapshot", tag: b"keel-snapshot", version: 2 };

/// The format of snapshots written before auth was part of the state.
const SNAPSHOT_FORMAT_V1: Format = Format { name: "snapshot", tag: b"keel-snapshot", version: 1 };

/// The serialized form of a [`StateMachine`], shipped in Raft snapshots.
#[derive(Serialize, Deserialize)]
pub struct StateSnapshot {
    applied_index: u64,
    store: MvccSnapshot,
    leases: LeaseSnapshot,
    members: Vec<Member>,
    alarms: Vec<AlarmMember>,
    auth: AuthStore,
}

/// [`SNAPSHOT_FORMAT`]'s encoding of the [`StateSnapshot`] of these parts, written field by
/// field with the key space streamed from `store`, so it is never held both as values and as
/// bytes.
pub(super) fn encode_snapshot(
    applied_index: u64,
    store: &MvccStore,
    leases: &LeaseSnapshot,
    members: &[Member],
    alarms: &[AlarmMember],
    auth: &AuthStore,
) -> Result<Vec<u8>> {
    let mut out = SNAPSHOT_FORMAT.header();
    crate::format::append(&mut out, &applied_index)?;
    store.encode_snapshot_into(&mut out)?;
    crate::format::append(&mut out, leases)?;
    crate::format::append(&mut out, members)?;
    crate::format::append(&mut out, alarms)?;
    crate::format::append(&mut out, auth)?;
    Ok(out)
}

/// A snapshot as written before auth was part of the state (format 1, and the unversioned
/// backups of the releases just before it), so those still restore.
#[derive(Deserialize)]
struct SnapshotBeforeAuth {
    applied_index: u64,
    store: MvccSnapshot,
    leases: LeaseSnapshot,
    members: Vec<Member>,
    alarms: Vec<AlarmMember>,
}

impl From<SnapshotBeforeAuth> for StateSnapshot {
    fn from(old: SnapshotBeforeAuth) -> Self {
        StateSnapshot {
            applied_index: old.applied_index,
            store: old.store,
            leases: old.leases,
            members: old.members,
            alarms: old.alarms,
            auth: AuthStore::default(),
        }
    }
}

/// A snapshot as written before alarms were part of the state, so backups made then still
/// restore.
#[derive(Deserialize)]
struct SnapshotBeforeAlarms {
    applied_index: u64,
    store: MvccSnapshot,
    leases: LeaseSnapshot,
    members: Vec<Member>,
}

impl From<SnapshotBeforeAlarms> for StateSnapshot {
    fn from(old: SnapshotBeforeAlarms) -> Self {
        StateSnapshot {
            applied_index: old.applied_index,
            store: old.store,
            leases: old.leases,
            members: old.members,
            alarms: vec![],
            auth: AuthStore::default(),
        }
    }
}

/// A Raft snapshot in this release's format or in format 1 (a member not yet upgraded may send
/// one), strictly: no padding, nothing after it.
fn decode_versioned(bytes: &[u8]) -> std::result::Result<StateSnapshot, String> {
    match bytes.strip_prefix(SNAPSHOT_FORMAT_V1.tag) {
        Some([v, ..]) if *v == SNAPSHOT_FORMAT_V1.version => {
            SNAPSHOT_FORMAT_V1.decode::<SnapshotBeforeAuth>(bytes).map(StateSnapshot::from)
        }
        _ => SNAPSHOT_FORMAT.decode(bytes),
    }
}

/// A snapshot body of layout `T` followed by nothing but zero padding.
fn unpadded<T: DeserializeOwned + Into<StateSnapshot>>(body: &[u8]) -> std::result::Result<StateSnapshot, String> {
    let (snap, rest) = postcard::take_from_bytes::<T>(body).map_err(|e| format!("a malformed keel snapshot: {e}"))?;
    match rest.iter().all(|b| *b == 0) {
        true => Ok(snap.into()),
        false => Err("a keel snapshot with stray bytes after it".into()),
    }
}

impl StateMachine {
    /// Serialize the whole applied state for a Raft snapshot (or a backup); fails when the
    /// state store cannot read it back.
    pub fn snapshot(&self) -> Result<Vec<u8>> {
        let (leases, members, alarms) = (self.lessor.snapshot(), self.members(), self.alarms.list());
        encode_snapshot(self.applied_index, &self.store, &leases, &members, &alarms, &self.auth)
    }

    /// The state as it stands now, frozen for [`SnapshotJob::build`] to serialize elsewhere: what
    /// a snapshot for a follower costs the apply path (no copy of the key space is made here).
    pub fn snapshot_job(&self) -> Result<SnapshotJob> {
        if !self.records.is_empty() {
            return Err(Error::Internal("a snapshot was asked for in the middle of an entry".into()));
        }
        let view = self.store.engine_view()?;
        let (leases, members, alarms) = (self.lessor.snapshot(), self.members(), self.alarms.list());
        Ok(SnapshotJob::new(self.applied_index, view, leases, members, alarms, self.auth.clone()))
    }

    /// Decode a Raft snapshot's bytes (checking them before anything is replaced). Bytes of
    /// another format, or corrupt ones, are an error, not a panic.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<StateSnapshot> {
        decode_versioned(bytes).map_err(|e| Error::Internal(format!("cannot read the snapshot: {e}")))
    }

    /// Decode a backup: a snapshot (this format or format 1) followed by the zero padding
    /// `snapshot save` adds, or the unversioned snapshot of a release before versioned formats
    /// (with or without alarms), so backups taken then still restore.
    pub fn decode_backup(bytes: &[u8]) -> Result<StateSnapshot> {
        let decoded = match bytes.strip_prefix(SNAPSHOT_FORMAT.tag) {
            Some([v, body @ ..]) if *v == SNAPSHOT_FORMAT.version => unpadded::<StateSnapshot>(body),
            Some([v, body @ ..]) if *v == SNAPSHOT_FORMAT_V1.version => unpadded::<SnapshotBeforeAuth>(body),
            Some(_) => SNAPSHOT_FORMAT.decode(bytes),
            None => unpadded::<SnapshotBeforeAuth>(bytes)
                .or_else(|e| unpadded::<SnapshotBeforeAlarms>(bytes).map_err(|_| e)),
        };
        decoded.map_err(|e| Error::Internal(format!("cannot read the backup: {e}")))
    }

    /// Label a decoded snapshot with the index of the last entry it holds (the Raft
    /// snapshot's index, which wins over the one inside when they differ).
    pub fn set_snapshot_index(snap: &mut StateSnapshot, index: u64) {
        snap.applied_index = index;
    }

    /// Replace the whole state with a decoded snapshot, in this member's engine, as one batch,
    /// with Raft's configuration at the snapshot (encoded by the node).
    pub fn install(&mut self, snap: StateSnapshot, term: u64, conf_state: Vec<u8>) {
        let min_ttl = self.lessor.min_ttl();
        self.store.replace(snap.store);
        self.lessor = Lessor::restore(snap.leases);
        self.lessor.set_min_ttl(min_ttl);
        self.members = snap.members.into_iter().map(|m| (m.id, m)).collect();
        self.alarms = Alarms::restore(snap.alarms);
        self.auth = snap.auth;
        self.applied_index = snap.applied_index;
        self.applied_term = term;
        self.records = Batch::default();
        // The batch empties every space, the format record's too.
        records::write_format(&mut self.records);
        let members = self.members();
        records::write_members(&mut self.records, &members);
        records::write_alarms(&mut self.records, &self.alarms.list());
        records::write_auth(&mut self.records, &self.auth);
        for id in self.lessor.leases() {
            let record = self.lessor.granted(id);
            records::write_lease(&mut self.records, id, record);
        }
        self.set_conf_state(conf_state);
        self.commit();
    }

    /// Rebuild the state in memory from a backup's bytes (see [`StateMachine::decode_backup`]).
    /// Corrupt bytes are an error, not a panic.
    pub fn restore(bytes: &[u8], min_lease_ttl: i64) -> Result<Self> {
        let snap = Self::decode_backup(bytes)?;
        let mut sm = StateMachine::open(Box::new(MemEngine::new()), min_lease_ttl)?;
        sm.install(snap, 0, Vec::new());
        Ok(sm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::command::Command;
    use crate::api::request::{LeaseGrantRequest, LeaseRevokeRequest};
    use crate::api::request::{Member, PutRequest};

    #[test]
    fn snapshots_are_versioned_strict_and_backups_may_be_padded() {
        let mut sm = StateMachine::new(vec![Member { id: 1, ..Default::default() }], 5);
        sm.apply(&Command::Put(PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), ..Default::default() }), None);
        let bytes = sm.snapshot().unwrap();
        assert!(bytes.starts_with(b"keel-snapshot\x02"), "tag and version lead");
        assert_eq!(StateMachine::restore(&bytes, 5).unwrap().hash(), sm.hash());
        let mut padded = bytes.clone();
        padded.resize(bytes.len() + 300, 0);
        assert!(StateMachine::decode_snapshot(&padded).is_err(), "a Raft snapshot has no padding");
        assert_eq!(StateMachine::restore(&padded, 5).unwrap().hash(), sm.hash(), "a backup may");
        padded.push(1);
        assert!(StateMachine::restore(&padded, 5).is_err(), "padding is zeros only");
        let mut newer = bytes.clone();
        newer[13] = 3;
        let err = |b: &[u8]| StateMachine::decode_snapshot(b).err().unwrap().to_string();
        assert!(err(&newer).contains("a keel snapshot in format 3; this keel reads format 2"), "{}", err(&newer));
        assert!(StateMachine::restore(&newer, 5).is_err(), "nor is a newer backup guessed at");
    }

    #[test]
    fn a_snapshot_job_builds_the_state_as_it_was_when_taken() {
        let mut sm = StateMachine::new(vec![Member { id: 1, ..Default::default() }], 5);
        let apply = |sm: &mut StateMachine, command: Command| {
            sm.apply(&command, None);
            sm.set_applied(sm.applied_index() + 1, 1);
        };
        let put = |k: &str, v: &str| Command::Put(PutRequest { key: k.into(), value: v.into(), ..Default::default() });
        // Over 127 keys, so their count takes two bytes of the room kept for it.
        for i in 0..300 {
            apply(&mut sm, put(&format!("many/{i}"), "x"));
        }
        apply(&mut sm, put("k", "1"));
        apply(&mut sm, Command::LeaseGrant(LeaseGrantRequest { id: 9, ttl: 60 }));
        let then = sm.snapshot().unwrap();
        let job = sm.snapshot_job().unwrap();
        apply(&mut sm, put("k", "2"));
        apply(&mut sm, put("other", "3"));
        apply(&mut sm, Command::LeaseRevoke(LeaseRevokeRequest { id: 9 }));
        assert_eq!(job.index(), 302);
        assert_eq!(job.build().unwrap(), then, "byte for byte what a snapshot then would have been");
        let whole = StateMachine::decode_snapshot(&then).unwrap();
        assert_eq!(SNAPSHOT_FORMAT.encode(&whole), then, "written piece by piece, as the whole struct encodes");
        assert_ne!(sm.snapshot().unwrap(), then);
        sm.apply(&put("staged", "4"), None);
        assert!(sm.snapshot_job().is_err(), "a view would miss the entry being applied");
    }

    #[test]
    fn format_1_snapshots_and_backups_restore_without_auth() {
        let mut sm = StateMachine::new(vec![Member { id: 1, ..Default::default() }], 5);
        sm.apply(&Command::Put(PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), ..Default::default() }), None);
        let body =
            (sm.applied_index, sm.store.snapshot().unwrap(), sm.lessor.snapshot(), sm.members(), sm.alarms.list());
        let v1 = SNAPSHOT_FORMAT_V1.encode(&body);
        assert!(v1.starts_with(b"keel-snapshot\x01"));
        let snap = StateMachine::decode_snapshot(&v1).unwrap();
        assert!(snap.auth.is_pristine());
        let mut padded = v1.clone();
        padded.resize(v1.len() + 512, 0);
        assert_eq!(StateMachine::restore(&padded, 5).unwrap().hash(), sm.hash(), "a padded format-1 backup");
        assert!(StateMachine::decode_snapshot(&padded).is_err(), "a Raft snapshot has no padding");
    }

    #[test]
    fn backups_written_before_versions_and_alarms_still_restore() {
        let mut sm = StateMachine::new(vec![Member { id: 1, ..Default::default() }], 5);
        sm.apply(&Command::Put(PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), ..Default::default() }), None);
        // The old layout: the same fields, without the alarms.
        let old =
            postcard::to_stdvec(&(sm.applied_index, sm.store.snapshot().unwrap(), sm.lessor.snapshot(), sm.members()))
                .unwrap();
        assert!(StateMachine::decode_snapshot(&old).is_err(), "not as a Raft snapshot");
        let restored = StateMachine::restore(&old, 5).unwrap();
        assert_eq!(restored.hash(), sm.hash());
        assert!(StateMachine::restore(&old[..old.len() / 2], 5).is_err(), "a cut snapshot is still corrupt");
    }
}
