//! What a [`super::Node`] asks its shell to do: messages to send, log entries and hard state to
//! make durable, answers for clients, watch events, snapshots to keep. Raft's own types stay
//! inside the core; the shell sees numbers and encoded bytes it can store and ship as they are.

use std::sync::Arc;

use protobuf::wire_format::WireType;
use protobuf::Message as _;
use raft::eraftpb::{Entry, HardState as RaftHardState, Message, Snapshot};
use serde::{Deserialize, Serialize};

use crate::api::error::{Error, Result};
use crate::api::request::Response;
use crate::state::machine::SnapshotJob;
use crate::state::watch::WatchResponse;

/// Identifies a client request to the member that received it; chosen by the shell, unique
/// among that member's requests in flight.
pub type RequestId = u64;

/// A Raft message for a peer, already encoded. A snapshot message's state travels in
/// `payload`, apart from `bytes`: the state (of any size) is never copied into a message on the
/// member's loop. The message on the wire is `bytes`, then the payload's data, then its trailer
/// ([`OutMessage::parts`]), which the receiver reads as one protobuf message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutMessage {
    pub to: u64,
    pub bytes: Vec<u8>,
    pub payload: Option<SnapshotPayload>,
}

/// The state a snapshot message carries, shared with the snapshot kept for followers, and the
/// encoded bytes that follow it (the snapshot's metadata).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotPayload {
    pub data: Arc<Vec<u8>>,
    pub trailer: Vec<u8>,
}

/// eraftpb's field numbers that the split encoding writes itself (`Message.snapshot`,
/// `Snapshot.data`, `Snapshot.metadata`); the round-trip test pins them.
const MESSAGE_SNAPSHOT: u32 = 9;
const SNAPSHOT_DATA: u32 = 1;
const SNAPSHOT_METADATA: u32 = 2;

impl OutMessage {
    /// `msg` encoded; for a snapshot message, `data` is the state it carries (its `snapshot`
    /// holds only the metadata), written as the snapshot's data field without being copied.
    pub(crate) fn encode(msg: &Message, data: Option<Arc<Vec<u8>>>) -> OutMessage {
        let Some(data) = data else {
            return OutMessage { to: msg.to, bytes: msg.write_to_bytes().unwrap_or_default(), payload: None };
        };
        // Protobuf fields may come in any order: the message without its snapshot, then the
        // snapshot as one field holding the data and then the metadata.
        let mut head = msg.clone();
        head.clear_snapshot();
        let mut bytes = head.write_to_bytes().unwrap_or_default();
        let metadata = msg.get_snapshot().get_metadata().write_to_bytes().unwrap_or_default();
        let field = |number: u32, len: usize| {
            protobuf::rt::tag_size(number) + protobuf::rt::compute_raw_varint64_size(len as u64) + len as u32
        };
        let inner = field(SNAPSHOT_DATA, data.len()) + field(SNAPSHOT_METADATA, metadata.len());
        let mut trailer = Vec::with_capacity(metadata.len() + 8);
        let written = (|| -> protobuf::ProtobufResult<()> {
            let mut os = protobuf::CodedOutputStream::vec(&mut bytes);
            os.write_tag(MESSAGE_SNAPSHOT, WireType::WireTypeLengthDelimited)?;
            os.write_raw_varint64(u64::from(inner))?;
            os.write_tag(SNAPSHOT_DATA, WireType::WireTypeLengthDelimited)?;
            os.write_raw_varint64(data.len() as u64)?;
            os.flush()?;
            let mut os = protobuf::CodedOutputStream::vec(&mut trailer);
            os.write_tag(SNAPSHOT_METADATA, WireType::WireTypeLengthDelimited)?;
            os.write_bytes_no_tag(&metadata)?;
            os.flush()
        })();
        // Writing into a Vec cannot fail.
        debug_assert!(written.is_ok());
        OutMessage { to: msg.to, bytes, payload: Some(SnapshotPayload { data, trailer }) }
    }

    /// Whether this carries a snapshot (transports stream those in chunks).
    pub fn is_snapshot(&self) -> bool {
        self.payload.is_some()
    }

    /// The encoded message, in the pieces it is kept in.
    pub fn parts(&self) -> Vec<&[u8]> {
        match &self.payload {
            None => vec![&self.bytes],
            Some(p) => vec![&self.bytes, &p.data, &p.trailer],
        }
    }

    /// The encoded message in one piece (a copy of the payload: for shells in memory).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.parts().concat()
    }
}

/// One Raft log entry as stored on disk: its position and its encoded form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub index: u64,
    pub term: u64,
    pub bytes: Vec<u8>,
}

impl LogEntry {
    pub(crate) fn from_raft(entry: &Entry) -> Self {
        LogEntry { index: entry.index, term: entry.term, bytes: entry.write_to_bytes().unwrap_or_default() }
    }

    pub(crate) fn to_raft(&self) -> Result<Entry> {
        Entry::parse_from_bytes(&self.bytes)
            .map_err(|e| Error::Internal(format!("corrupt log entry {}: {e}", self.index)))
    }
}

/// Raft's durable vote and commit state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: u64,
    pub vote: u64,
    pub commit: u64,
}

impl HardState {
    pub(crate) fn from_raft(hs: &RaftHardState) -> Self {
        HardState { term: hs.term, vote: hs.vote, commit: hs.commit }
    }

    pub(crate) fn to_raft(self) -> RaftHardState {
        RaftHardState { term: self.term, vote: self.vote, commit: self.commit, ..Default::default() }
    }
}

/// A snapshot of the whole applied state at a log position, encoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub index: u64,
    pub term: u64,
    pub bytes: Vec<u8>,
}

impl SnapshotRecord {
    pub(crate) fn from_raft(snap: &Snapshot) -> Self {
        SnapshotRecord {
            index: snap.get_metadata().index,
            term: snap.get_metadata().term,
            bytes: snap.write_to_bytes().unwrap_or_default(),
        }
    }

    pub(crate) fn to_raft(&self) -> Result<Snapshot> {
        Snapshot::parse_from_bytes(&self.bytes)
            .map_err(|e| Error::Internal(format!("corrupt snapshot at {}: {e}", self.index)))
    }
}

/// Writes that must be durable (fsynced, when `must_sync`) before the shell calls
/// `Node::persisted(number)`.
/// Apply in this order: `snapshot` (the log restarts after it: drop every stored entry), then
/// `entries` (drop stored entries at `entries[0].index` and after, then store these), then
/// `hard_state`. One fsync may cover several `Persist`s; acknowledging the last covers all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Persist {
    pub number: u64,
    /// Whether this must be fsynced before it is acknowledged. False when all it changes is
    /// the commit index (which a restarted member re-learns from the leader): the shell may
    /// then write it without an fsync, as etcd does.
    pub must_sync: bool,
    pub snapshot: Option<SnapshotRecord>,
    pub entries: Vec<LogEntry>,
    pub hard_state: Option<HardState>,
}

impl Persist {
    /// Fold a later batch into this one, keeping the stored-log rules above true for the sum.
    pub(crate) fn merge(&mut self, later: Persist) {
        self.number = later.number;
        self.must_sync |= later.must_sync;
        super::stored::fold_log(&mut self.snapshot, &mut self.entries, later.snapshot, later.entries);
        if later.hard_state.is_some() {
            self.hard_state = later.hard_state;
        }
    }
}

/// A snapshot the member took of its own state; the shell may store it and then drop stored
/// entries up to `compact_to` (older ones are no longer needed by anyone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalSnapshot {
    pub snapshot: SnapshotRecord,
    pub compact_to: u64,
}

/// Everything a node has for its shell since the last call to `Node::ready`.
#[derive(Debug, Default)]
pub struct Ready {
    /// Send these now, in order.
    pub messages: Vec<OutMessage>,
    /// Make these durable, then acknowledge with `Node::persisted`.
    pub persist: Option<Persist>,
    /// Answers for client requests.
    pub responses: Vec<(RequestId, Result<Response>)>,
    /// Events and notices for watchers.
    pub watch_responses: Vec<WatchResponse>,
    /// A snapshot taken of the applied state.
    pub snapshot: Option<LocalSnapshot>,
    /// A follower needs a snapshot: build it off the apply path (it takes time in proportion
    /// to the data) and hand the result to `Node::snapshot_built`.
    pub snapshot_job: Option<SnapshotJob>,
    /// Backups clients asked for (Maintenance.Snapshot), by request: build each like a
    /// follower's snapshot and hand it to `Node::backup_built`.
    pub backups: Vec<(RequestId, SnapshotJob)>,
}

impl Ready {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.persist.is_none()
            && self.responses.is_empty()
            && self.watch_responses.is_empty()
            && self.snapshot.is_none()
            && self.snapshot_job.is_none()
            && self.backups.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> LogEntry {
        LogEntry { index, term, bytes: vec![] }
    }

    #[test]
    fn a_snapshot_message_in_parts_reads_as_the_whole_message() {
        let mut msg = Message::default();
        msg.set_msg_type(raft::eraftpb::MessageType::MsgSnapshot);
        (msg.to, msg.from, msg.term, msg.commit) = (2, 1, 7, 300);
        let meta = msg.mut_snapshot().mut_metadata();
        (meta.index, meta.term) = (300, 7);
        meta.mut_conf_state().set_voters(vec![1, 2, 3]);
        for size in [0, 1, 127, 128, 300_000] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let out = OutMessage::encode(&msg, Some(Arc::new(data.clone())));
            assert!(out.is_snapshot() && out.parts().len() == 3);
            let mut whole = msg.clone();
            whole.mut_snapshot().set_data(data.into());
            if size > 0 {
                // (Protobuf leaves an empty data field out, and no field after the snapshot is set.)
                assert_eq!(out.to_bytes(), whole.write_to_bytes().unwrap(), "what protobuf writes, byte for byte");
            }
            assert_eq!(Message::parse_from_bytes(&out.to_bytes()).unwrap(), whole);
        }
        let plain = OutMessage::encode(&Message::default(), None);
        assert!(!plain.is_snapshot() && plain.parts().len() == 1);
    }

    #[test]
    fn merging_a_batch_that_overwrites_a_suffix_keeps_the_new_suffix_only() {
        let mut a = Persist { number: 1, entries: vec![entry(5, 1), entry(6, 1), entry(7, 1)], ..Default::default() };
        a.merge(Persist { number: 2, entries: vec![entry(6, 2)], ..Default::default() });
        assert_eq!(a.entries, vec![entry(5, 1), entry(6, 2)]);
        assert_eq!(a.number, 2);
    }

    #[test]
    fn merging_a_snapshot_drops_earlier_entries() {
        let mut a = Persist { number: 1, entries: vec![entry(5, 1)], ..Default::default() };
        let snap = SnapshotRecord { index: 9, term: 2, bytes: vec![] };
        a.merge(Persist { number: 2, snapshot: Some(snap.clone()), entries: vec![entry(10, 2)], ..Default::default() });
        assert_eq!(a.snapshot, Some(snap));
        assert_eq!(a.entries, vec![entry(10, 2)]);
    }
}
