//! Target `peer_frames`: a peer connection's byte stream. Frames are read one after another as
//! the transport reads them: lengths beyond the limit, truncated bodies and bodies that do not
//! decode end the stream with an error, never a panic or an allocation the length asked for.
//! What decodes must encode back to the same frame; snapshot chunks go through the reassembler,
//! and forwarded requests are carried out by a one-member cluster, as the leader would.

use keel_core::cluster::LocalCluster;
use keel_net::peer::{Frame, SnapshotAssembler};

use crate::exec::Exec;

/// Forwarded requests carried out per input (each may tick the cluster for a while).
const MAX_FORWARDS: usize = 4;

/// The target's body.
pub fn run(data: &[u8]) {
    let mut stream = data;
    let mut assembler = SnapshotAssembler::default();
    let mut leader: Option<LocalCluster> = None;
    let mut forwards = 0;
    let exec = Exec::new();
    loop {
        let frame = match exec.settle(Frame::read(&mut stream)).expect("reading from memory never waits") {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(_) => return,
        };
        let encoded = frame.encode();
        let again = Frame::decode(&encoded[4..]).expect("an encoded frame decodes");
        assert_eq!(again, frame, "frames round-trip");
        match frame {
            Frame::SnapshotChunk { total, offset, data } => {
                if let Ok(Some(whole)) = assembler.add(total, offset, data) {
                    assert_eq!(whole.len() as u64, total);
                }
            }
            Frame::Forward { request, .. } if forwards < MAX_FORWARDS => {
                forwards += 1;
                let cluster = leader.get_or_insert_with(|| {
                    let mut c = LocalCluster::new(1, 1);
                    c.wait_for_leader();
                    c
                });
                // Any answer will do (most forwarded garbage is refused); a panic will not.
                let _ = cluster.call(1, request);
            }
            _ => {}
        }
    }
}
