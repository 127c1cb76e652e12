//! The Maintenance service: status, alarms, hashes, snapshot, leader transfer, and
//! defragmentation as etcd answers it when there is nothing to do.

use keel_core::api::request::{Request, Response};
use sha2::{Digest, Sha256};
use tonic::{Request as Call, Response as Reply, Status};

use super::auth::as_caller;
use super::pb::etcdserverpb as pb;
use super::{call, convert, local_header, ReplyStream};
use crate::backend::Backend;

/// Size of the pieces a snapshot is streamed in (etcd's).
pub const SNAPSHOT_CHUNK_BYTES: usize = 32 * 1024;

/// etcd's `Maintenance` service over a member.
pub struct MaintenanceService<B> {
    pub backend: B,
}

impl<B: Backend> MaintenanceService<B> {
    fn header(&self) -> Option<pb::ResponseHeader> {
        convert::header(&local_header(&self.backend.status()))
    }
}

/// etcd's snapshots are whole database pages of this size; clients check that a snapshot is a
/// multiple of it plus the SHA-256 that follows.
pub const SNAPSHOT_PAGE_BYTES: usize = 512;

/// A snapshot as streamed: the state zero-padded to whole pages, then the SHA-256 of those
/// pages (as etcd appends one, so `etcdctl snapshot save` can tell a complete snapshot from a
/// cut one), in chunks that each say how much is still to come. The state's encoding is
/// self-delimiting, so the zero padding after it adds nothing to it.
pub fn snapshot_chunks(header: Option<pb::ResponseHeader>, mut data: Vec<u8>) -> Vec<pb::SnapshotResponse> {
    data.resize(data.len().div_ceil(SNAPSHOT_PAGE_BYTES) * SNAPSHOT_PAGE_BYTES, 0);
    let digest = Sha256::digest(&data);
    data.extend_from_slice(&digest);
    let total = data.len();
    let mut sent = 0;
    data.chunks(SNAPSHOT_CHUNK_BYTES)
        .map(|chunk| {
            sent += chunk.len();
            pb::SnapshotResponse { header, remaining_bytes: (total - sent) as u64, blob: chunk.to_vec() }
        })
        .collect()
}

/// The state in a saved snapshot file (what [`snapshot_chunks`] streamed, as `etcdctl snapshot
/// save` wrote it), once its SHA-256 matches its pages; `skip_hash_check` accepts a file
/// without one, as etcdctl's flag of that name does.
pub fn backup_state(file: &[u8], skip_hash_check: bool) -> Result<&[u8], String> {
    let has_hash = file.len() % SNAPSHOT_PAGE_BYTES == Sha256::output_size();
    if !has_hash {
        return match skip_hash_check {
            true => Ok(file),
            false => Err("snapshot missing hash but --skip-hash-check=false".into()),
        };
    }
    let (pages, digest) = file.split_at(file.len() - Sha256::output_size());
    let actual = Sha256::digest(pages);
    if !skip_hash_check && actual.as_slice() != digest {
        return Err(format!("expected sha256 {digest:x?}, got {:x?}", actual.as_slice()));
    }
    Ok(pages)
}

#[tonic::async_trait]
impl<B: Backend> pb::maintenance_server::Maintenance for MaintenanceService<B> {
    type SnapshotStream = ReplyStream<pb::SnapshotResponse>;

    /// Alarms go through the log, listing included (as etcd's), so every member answers alike.
    async fn alarm(&self, req: Call<pb::AlarmRequest>) -> Result<Reply<pb::AlarmResponse>, Status> {
        let request = Request::Alarm(convert::alarm_request(req.into_inner()));
        let r = call(&self.backend, request, pick!(Response::Alarm)).await?;
        let alarms = r.alarms.into_iter().map(convert::alarm_member).collect();
        Ok(Reply::new(pb::AlarmResponse { header: convert::header(&r.header), alarms }))
    }

    async fn status(&self, _req: Call<pb::StatusRequest>) -> Result<Reply<pb::StatusResponse>, Status> {
        let s = self.backend.status();
        let is_learner = s.members.iter().any(|m| m.id == s.id && m.is_learner);
        let mut errors: Vec<String> = s.alarms.iter().copied().map(convert::alarm_error).collect();
        if s.leader == 0 {
            errors.insert(0, keel_core::api::error::Error::NoLeader.to_string());
        }
        Ok(Reply::new(pb::StatusResponse {
            header: convert::header(&local_header(&s)),
            version: crate::http::ETCD_VERSION.to_string(),
            db_size: s.db_size as i64,
            leader: s.leader,
            raft_index: s.commit_index,
            raft_term: s.term,
            raft_applied_index: s.applied_index,
            errors,
            db_size_in_use: s.db_size_in_use as i64,
            is_learner,
        }))
    }

    /// The LSM store compacts itself, and compaction frees the space the quota counts at once;
    /// there is nothing for a client to trigger.
    async fn defragment(&self, _req: Call<pb::DefragmentRequest>) -> Result<Reply<pb::DefragmentResponse>, Status> {
        Ok(Reply::new(pb::DefragmentResponse { header: self.header() }))
    }

    async fn hash(&self, req: Call<pb::HashRequest>) -> Result<Reply<pb::HashResponse>, Status> {
        let backend = as_caller(&self.backend, &req);
        let r = call(&backend, Request::Hash, pick!(Response::Hash)).await?;
        let hash = keel_core::digest::fold32(r.hash);
        Ok(Reply::new(pb::HashResponse { header: convert::header(&r.header), hash }))
    }

    async fn hash_kv(&self, req: Call<pb::HashKvRequest>) -> Result<Reply<pb::HashKvResponse>, Status> {
        let backend = as_caller(&self.backend, &req);
        let request = Request::HashKv { revision: req.into_inner().revision };
        let r = call(&backend, request, pick!(Response::HashKv)).await?;
        Ok(Reply::new(pb::HashKvResponse {
            header: convert::header(&r.header),
            hash: r.hash,
            compact_revision: r.compact_revision,
        }))
    }

    async fn snapshot(&self, req: Call<pb::SnapshotRequest>) -> Result<Reply<Self::SnapshotStream>, Status> {
        let backend = as_caller(&self.backend, &req);
        let r = call(&backend, Request::Snapshot, pick!(Response::Snapshot)).await?;
        let chunks = snapshot_chunks(convert::header(&r.header), r.data);
        Ok(Reply::new(Box::pin(futures_util::stream::iter(chunks.into_iter().map(Ok)))))
    }

    async fn move_leader(&self, req: Call<pb::MoveLeaderRequest>) -> Result<Reply<pb::MoveLeaderResponse>, Status> {
        let backend = as_caller(&self.backend, &req);
        let request = Request::MoveLeader { target: req.into_inner().target_id };
        let header = call(&backend, request, pick!(Response::MoveLeader)).await?;
        Ok(Reply::new(pb::MoveLeaderResponse { header: convert::header(&header) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_whole_pages_then_their_digest_in_counted_chunks() {
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let chunks = snapshot_chunks(None, data.clone());
        let all: Vec<u8> = chunks.iter().flat_map(|c| c.blob.clone()).collect();
        assert_eq!(all.len() % SNAPSHOT_PAGE_BYTES, 32, "what etcdctl checks before saving");
        let (pages, digest) = all.split_at(all.len() - 32);
        assert_eq!(&pages[..data.len()], &data[..]);
        assert!(pages[data.len()..].iter().all(|b| *b == 0));
        assert_eq!(digest, &Sha256::digest(pages)[..]);
        assert_eq!(chunks.last().unwrap().remaining_bytes, 0);
        assert_eq!(chunks[0].remaining_bytes as usize, all.len() - chunks[0].blob.len());
        assert!(chunks.iter().all(|c| c.blob.len() <= SNAPSHOT_CHUNK_BYTES));

        assert_eq!(backup_state(&all, false).unwrap(), pages, "a saved file gives its state back");
        let mut damaged = all.clone();
        damaged[10] ^= 1;
        assert!(backup_state(&damaged, false).unwrap_err().starts_with("expected sha256"));
        assert!(backup_state(&damaged, true).is_ok());
        assert!(backup_state(&data, false).unwrap_err().contains("missing hash"));
    }
}
