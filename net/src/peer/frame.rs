//! The peer protocol's framing: `[u32 length, big-endian]["K"][version][postcard-encoded Frame]`.
//! Bytes from a peer are untrusted: lengths are checked against a limit before anything is
//! allocated, and a frame that does not decode is an error, never a panic. The version tells a
//! member that runs another release (whose frames it must not guess at) from a damaged stream.

use keel_core::api::auth::Caller;
use keel_core::api::error::Error;
use keel_core::api::request::{Request, Response};
use keel_core::format::Format;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest frame accepted. Snapshots travel in chunks well below it.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Size of one snapshot chunk.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;

/// How a frame's body is encoded. The tag cannot start a frame of the releases before it (those
/// began with the variant's number, below 9), so they are refused by name too.
pub const PEER_FORMAT: Format = Format { name: "peer frame", tag: b"K", version: 1 };

/// Everything one member says to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// First frame on a connection: who is calling, for which cluster, and at which peer URL
    /// it takes connections (empty: none to give) — so a member can answer a peer it does not
    /// know yet, such as a new leader whose addition it has not applied.
    Hello { from: u64, cluster_id: u64, peer_url: String },
    /// An encoded Raft message.
    Raft(Vec<u8>),
    /// Part of an encoded Raft snapshot message of `total` bytes; delivered once complete.
    SnapshotChunk { total: u64, offset: u64, data: Vec<u8> },
    /// A request only the leader can answer, forwarded by a follower of an earlier release
    /// (made by nobody in particular); this release sends [`Frame::ForwardAs`].
    Forward { id: u64, request: Request },
    /// Member `member` has been removed from the cluster. Once its removal is applied nobody
    /// replicates to it any more, so it could never learn of it from the log. The id is named
    /// because whoever listens at a removed member's address may be a new member added there.
    Removed { member: u64 },
    /// The leader's answer to a forwarded request.
    ForwardReply { id: u64, result: Result<Response, Error> },
    /// A member joining a running cluster, with no state yet, asks which id `member add`
    /// gave the member with these peer URLs (ids of added members are not derivable).
    WhoAmI { peer_urls: Vec<String> },
    /// The answer to [`Frame::WhoAmI`]: the member's id (0: no such member yet), the
    /// cluster's, every member's id and peer URLs (a joiner must answer members whose ids it
    /// cannot derive either, before its log tells it of them), and whether the member has served
    /// clients already (a founder that has cannot found again), as of raft index `as_of`.
    YouAre { id: u64, cluster_id: u64, members: Vec<(u64, Vec<String>)>, started: bool, as_of: u64 },
    /// A request only the leader can answer, forwarded by a follower with who made it (a
    /// token is good on every member), so the leader checks it as the follower would have.
    ForwardAs { id: u64, caller: Caller, request: Request },
}

/// Why a connection's byte stream was rejected.
#[derive(Debug)]
pub enum FrameError {
    Io(std::io::Error),
    TooLarge(usize),
    Malformed(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "peer connection: {e}"),
            FrameError::TooLarge(n) => write!(f, "peer frame of {n} bytes exceeds {MAX_FRAME_BYTES}"),
            FrameError::Malformed(e) => {
                write!(f, "unreadable peer frame: {e} (every member must run the same keel release)")
            }
        }
    }
}

impl Frame {
    /// The frame's wire form, length prefix included.
    pub fn encode(&self) -> Vec<u8> {
        let body = PEER_FORMAT.encode(self);
        let mut out = Vec::with_capacity(body.len() + 4);
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decode one frame body (without its length prefix).
    pub fn decode(body: &[u8]) -> Result<Frame, FrameError> {
        PEER_FORMAT.decode(body).map_err(FrameError::Malformed)
    }

    /// Read one frame; `Ok(None)` at a clean end of stream.
    pub async fn read<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Frame>, FrameError> {
        let mut len = [0u8; 4];
        match r.read_exact(&mut len).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(FrameError::Io(e)),
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge(len));
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).await.map_err(FrameError::Io)?;
        Frame::decode(&body).map(Some)
    }

    /// Write one frame.
    pub async fn write<W: AsyncWrite + Unpin>(&self, w: &mut W) -> std::io::Result<()> {
        w.write_all(&self.encode()).await
    }
}

/// Cut an encoded snapshot message, kept in `parts` (see `OutMessage::parts`), into chunk
/// frames, made one at a time as they are written: the message is never copied whole.
pub fn snapshot_chunks<'a>(parts: &'a [&'a [u8]]) -> impl Iterator<Item = Frame> + 'a {
    let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
    let mut bytes = parts.iter().flat_map(|p| p.chunks(SNAPSHOT_CHUNK_BYTES)).peekable();
    let mut offset = 0u64;
    std::iter::from_fn(move || {
        bytes.peek()?;
        let mut data = Vec::with_capacity(SNAPSHOT_CHUNK_BYTES);
        while let Some(piece) = bytes.peek_mut() {
            let room = SNAPSHOT_CHUNK_BYTES - data.len();
            if room == 0 {
                break;
            }
            let take = room.min(piece.len());
            data.extend_from_slice(&piece[..take]);
            *piece = &piece[take..];
            if piece.is_empty() {
                bytes.next();
            }
        }
        let frame = Frame::SnapshotChunk { total, offset, data };
        offset += SNAPSHOT_CHUNK_BYTES as u64;
        Some(frame)
    })
}

/// Reassembles one snapshot from its chunks, refusing chunks that do not fit.
#[derive(Default)]
pub struct SnapshotAssembler {
    buf: Vec<u8>,
    total: u64,
}

/// Largest snapshot a member accepts (bounds memory against a hostile peer).
pub const MAX_SNAPSHOT_BYTES: u64 = 8 * 1024 * 1024 * 1024;

impl SnapshotAssembler {
    /// Add a chunk; returns the whole message once its last chunk arrived.
    pub fn add(&mut self, total: u64, offset: u64, data: Vec<u8>) -> Result<Option<Vec<u8>>, FrameError> {
        if total > MAX_SNAPSHOT_BYTES {
            return Err(FrameError::TooLarge(total as usize));
        }
        if offset == 0 {
            self.buf.clear();
            self.total = total;
        }
        if total != self.total || offset != self.buf.len() as u64 {
            self.buf.clear();
            return Err(FrameError::Malformed("snapshot chunk out of order".into()));
        }
        if offset + data.len() as u64 > total {
            self.buf.clear();
            return Err(FrameError::Malformed("snapshot chunk past its end".into()));
        }
        self.buf.extend_from_slice(&data);
        if self.buf.len() as u64 == total {
            return Ok(Some(std::mem::take(&mut self.buf)));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_garbage_is_rejected_without_panicking() {
        let frames = vec![
            Frame::Hello { from: 7, cluster_id: 9, peer_url: "http://10.0.0.7:2380".into() },
            Frame::Raft(vec![1, 2, 3]),
            Frame::Forward { id: 1, request: Request::LeaseLeases },
            Frame::ForwardAs { id: 2, caller: Caller::Token("t.1".into()), request: Request::LeaseLeases },
            Frame::ForwardReply { id: 1, result: Err(Error::NoLeader) },
            Frame::WhoAmI { peer_urls: vec!["http://10.0.0.4:2380".into()] },
            Frame::YouAre {
                id: 4,
                cluster_id: 9,
                members: vec![(4, vec!["http://10.0.0.4:2380".into()])],
                started: true,
                as_of: 12,
            },
        ];
        let mut wire = Vec::new();
        for f in &frames {
            wire.extend(f.encode());
        }
        let mut r = &wire[..];
        for f in &frames {
            assert_eq!(Frame::read(&mut r).await.unwrap().as_ref(), Some(f));
        }
        assert!(Frame::read(&mut r).await.unwrap().is_none());
        let huge = (u32::MAX).to_be_bytes();
        assert!(matches!(Frame::read(&mut &huge[..]).await, Err(FrameError::TooLarge(_))));
        let mut garbage = 3u32.to_be_bytes().to_vec();
        garbage.extend([0xff, 0xff, 0xff]);
        assert!(matches!(Frame::read(&mut &garbage[..]).await, Err(FrameError::Malformed(_))));
        let truncated = [0u8, 0, 0, 10, 1];
        assert!(Frame::read(&mut &truncated[..]).await.is_err());
    }

    /// The wire bytes of a frame, pinned: a change to them is a new protocol version.
    #[tokio::test]
    async fn golden_bytes_and_other_releases_frames_are_refused_by_name() {
        let hello = Frame::Hello { from: 7, cluster_id: 9, peer_url: "u".into() };
        assert_eq!(hello.encode(), b"\0\0\0\x07K\x01\x00\x07\x09\x01u".to_vec());
        let unreadable = |body: &[u8]| {
            let mut wire = (body.len() as u32).to_be_bytes().to_vec();
            wire.extend_from_slice(body);
            async move { Frame::read(&mut &wire[..]).await.unwrap_err().to_string() }
        };
        assert_eq!(
            unreadable(b"K\x02\x00\x07\x09\x01u").await,
            "unreadable peer frame: a keel peer frame in format 2; this keel reads format 1 (every member must run the same keel release)"
        );
        // A Hello as releases before the version wrote it.
        assert!(unreadable(b"\x00\x07\x09\x01u").await.contains("5 bytes that are not a keel peer frame"));
    }

    #[test]
    fn snapshots_reassemble_from_chunks_and_reject_disorder() {
        let bytes: Vec<u8> = (0..(SNAPSHOT_CHUNK_BYTES * 2 + 10)).map(|i| i as u8).collect();
        // In uneven parts, as a message's head, state and trailer are kept.
        let (head, rest) = bytes.split_at(7);
        let (data, trailer) = rest.split_at(SNAPSHOT_CHUNK_BYTES * 2);
        let chunks: Vec<Frame> = snapshot_chunks(&[head, data, trailer]).collect();
        assert_eq!(chunks.len(), 3);
        let mut a = SnapshotAssembler::default();
        let mut out = None;
        for c in chunks.clone() {
            let Frame::SnapshotChunk { total, offset, data } = c else { panic!() };
            out = a.add(total, offset, data).unwrap();
        }
        assert_eq!(out, Some(bytes));
        let Frame::SnapshotChunk { total, offset, data } = chunks[1].clone() else { panic!() };
        assert!(a.add(total, offset, data).is_err(), "a middle chunk cannot start a snapshot");
        assert!(a.add(u64::MAX, 0, vec![]).is_err());
    }
}
