//! The KV service: Range, Put, DeleteRange, Txn and Compact, each one core request.

use keel_core::api::request::{Request, Response};
use tonic::{Request as Call, Response as Reply, Status};

use super::auth::as_caller;
use super::pb::etcdserverpb as pb;
use super::{call, convert, status};
use crate::backend::Backend;

/// etcd's `KV` service over a member.
pub struct KvService<B> {
    pub backend: B,
}

#[tonic::async_trait]
impl<B: Backend> pb::kv_server::Kv for KvService<B> {
    async fn range(&self, req: Call<pb::RangeRequest>) -> Result<Reply<pb::RangeResponse>, Status> {
        let backend = as_caller(&self.backend, &req);
        let request = Request::Range(convert::range_request(req.into_inner()));
        let r = call(&backend, request, pick!(Response::Range));
        Ok(Reply::new(convert::range_response(r.await?)))
    }

    async fn put(&self, req: Call<pb::PutRequest>) -> Result<Reply<pb::PutResponse>, Status> {
        let backend = as_caller(&self.backend, &req);
        let request = Request::Put(convert::put_request(req.into_inner()));
        let r = call(&backend, request, pick!(Response::Put));
        Ok(Reply::new(convert::put_response(r.await?)))
    }

    async fn delete_range(&self, req: Call<pb::DeleteRangeRequest>) -> Result<Reply<pb::DeleteRangeResponse>, Status> {
        let backend = as_caller(&self.backend, &req);
        let request = Request::DeleteRange(convert::delete_request(req.into_inner()));
        let r = call(&backend, request, pick!(Response::DeleteRange));
        Ok(Reply::new(convert::delete_response(r.await?)))
    }

    async fn txn(&self, req: Call<pb::TxnRequest>) -> Result<Reply<pb::TxnResponse>, Status> {
        let backend = as_caller(&self.backend, &req);
        let request = Request::Txn(convert::txn_request(req.into_inner()).map_err(status)?);
        let r = call(&backend, request, pick!(Response::Txn));
        Ok(Reply::new(convert::txn_response(r.await?)))
    }

    async fn compact(&self, req: Call<pb::CompactionRequest>) -> Result<Reply<pb::CompactionResponse>, Status> {
        let backend = as_caller(&self.backend, &req);
        let req = req.into_inner();
        let request = Request::Compact(keel_core::api::request::CompactionRequest {
            revision: req.revision,
            physical: req.physical,
        });
        let r = call(&backend, request, pick!(Response::Compact));
        Ok(Reply::new(pb::CompactionResponse { header: convert::header(&r.await?.header) }))
    }
}
