//! The Lock service (etcd's `v3lock`): a distributed mutex on the [`recipe`]
//! queue. The returned key is the ownership token: it exists exactly while the lock is held,
//! and its create revision fences writes made under the lock.

use tonic::{Request as Call, Response as Reply, Status};

use super::auth::as_caller;
use super::pb::v3lockpb as pb;
use super::{convert, recipe};
use crate::backend::Backend;

/// etcd's `Lock` service over a member.
pub struct LockService<B> {
    pub backend: B,
}

#[tonic::async_trait]
impl<B: Backend> pb::lock_server::Lock for LockService<B> {
    async fn lock(&self, req: Call<pb::LockRequest>) -> Result<Reply<pb::LockResponse>, Status> {
        let backend = as_caller(&self.backend, &req);
        let req = req.into_inner();
        let entry = recipe::acquire(&backend, &req.name, req.lease, b"").await?;
        Ok(Reply::new(pb::LockResponse { header: convert::header(&entry.header), key: entry.key }))
    }

    async fn unlock(&self, req: Call<pb::UnlockRequest>) -> Result<Reply<pb::UnlockResponse>, Status> {
        let backend = as_caller(&self.backend, &req);
        let header = recipe::delete(&backend, &req.into_inner().key).await?;
        Ok(Reply::new(pb::UnlockResponse { header: convert::header(&header) }))
    }
}
