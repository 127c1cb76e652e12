//! The Election service (etcd's `v3election`) on the [`recipe`] queue: the
//! contender created first leads; its key's value is the proclaimed value, and the leader key
//! (name, key, create revision, lease) proves leadership to Proclaim and Resign.

use keel_core::api::kv::{prefix_range_end, KeyValue};
use keel_core::api::request::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, PutRequest, Request, RequestOp, Response, TxnRequest,
};
use keel_core::state::watch::WatchCreate;
use tokio::sync::mpsc;
use tonic::{Code, Request as Call, Response as Reply, Status};

use super::auth::as_caller;
use super::pb::v3electionpb as pb;
use super::{call, channel_stream, convert, recipe, status, ReplyStream};
use crate::backend::Backend;

/// etcd's `Election` service over a member.
pub struct ElectionService<B> {
    pub backend: B,
}

/// etcd's answer when the caller's leader key no longer leads.
fn not_leader() -> Status {
    Status::new(Code::FailedPrecondition, "election: not leader")
}

impl<B: Backend> ElectionService<B> {
    /// Run `op` only if `leader`'s key still exists with the same create revision.
    async fn as_leader<T>(
        &self,
        req: &Call<T>,
        leader: pb::LeaderKey,
        op: RequestOp,
    ) -> Result<Option<super::pb::etcdserverpb::ResponseHeader>, Status> {
        let txn = TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal,
                target: CompareTarget::CreateRevision(leader.rev),
                key: leader.key,
                range_end: vec![],
            }],
            success: vec![op],
            failure: vec![],
        };
        let r = call(&as_caller(&self.backend, req), Request::Txn(txn), pick!(Response::Txn)).await?;
        if !r.succeeded {
            return Err(not_leader());
        }
        Ok(convert::header(&r.header))
    }
}

#[tonic::async_trait]
impl<B: Backend> pb::election_server::Election for ElectionService<B> {
    type ObserveStream = ReplyStream<pb::LeaderResponse>;

    async fn campaign(&self, req: Call<pb::CampaignRequest>) -> Result<Reply<pb::CampaignResponse>, Status> {
        let backend = as_caller(&self.backend, &req);
        let req = req.into_inner();
        let entry = recipe::acquire(&backend, &req.name, req.lease, &req.value).await?;
        let leader = pb::LeaderKey { name: req.name, key: entry.key, rev: entry.create_revision, lease: req.lease };
        Ok(Reply::new(pb::CampaignResponse { header: convert::header(&entry.header), leader: Some(leader) }))
    }

    async fn proclaim(&self, req: Call<pb::ProclaimRequest>) -> Result<Reply<pb::ProclaimResponse>, Status> {
        let r = req.get_ref().clone();
        let Some(leader) = r.leader else { return Err(not_leader()) };
        let put = PutRequest { key: leader.key.clone(), value: r.value, lease: leader.lease, ..Default::default() };
        let header = self.as_leader(&req, leader, RequestOp::Put(put)).await?;
        Ok(Reply::new(pb::ProclaimResponse { header }))
    }

    async fn leader(&self, req: Call<pb::LeaderRequest>) -> Result<Reply<pb::LeaderResponse>, Status> {
        let backend = as_caller(&self.backend, &req);
        let (kv, header) = recipe::first(&backend, &req.into_inner().name).await?;
        let kv = kv.ok_or_else(|| Status::new(Code::NotFound, "election: no leader"))?;
        Ok(Reply::new(pb::LeaderResponse { header: convert::header(&header), kv: Some(convert::kv(kv)) }))
    }

    async fn observe(&self, req: Call<pb::LeaderRequest>) -> Result<Reply<Self::ObserveStream>, Status> {
        let backend = as_caller(&self.backend, &req);
        let name = req.into_inner().name;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            if let Err(e) = observe(&backend, &name, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok(Reply::new(channel_stream(rx)))
    }

    async fn resign(&self, req: Call<pb::ResignRequest>) -> Result<Reply<pb::ResignResponse>, Status> {
        let Some(leader) = req.get_ref().leader.clone() else { return Err(not_leader()) };
        let delete = DeleteRangeRequest { key: leader.key.clone(), ..Default::default() };
        let header = self.as_leader(&req, leader, RequestOp::DeleteRange(delete)).await?;
        Ok(Reply::new(pb::ResignResponse { header }))
    }
}

/// Send the leader's key-value each time leadership or the proclaimed value changes, until the
/// client goes away.
async fn observe<B: Backend>(
    backend: &B,
    name: &[u8],
    tx: &mpsc::Sender<Result<pb::LeaderResponse, Status>>,
) -> Result<(), Status> {
    let pfx = recipe::prefix(name);
    let (mut current, header) = recipe::first(backend, name).await?;
    let create = WatchCreate {
        key: pfx.clone(),
        range_end: prefix_range_end(&pfx),
        start_revision: header.revision + 1,
        ..Default::default()
    };
    let mut watch = backend.watch(create).await.map_err(status)?;
    let mut sent: Option<KeyValue> = None;
    let mut header = header;
    loop {
        if let Some(kv) = &current {
            if sent.as_ref() != Some(kv) {
                let reply = pb::LeaderResponse { header: convert::header(&header), kv: Some(convert::kv(kv.clone())) };
                if tx.send(Ok(reply)).await.is_err() {
                    return Ok(());
                }
                sent = Some(kv.clone());
            }
        }
        let next = tokio::select! {
            biased;
            _ = tx.closed() => return Ok(()),
            next = watch.events.recv() => next,
        };
        match next {
            Some(r) if r.canceled => {
                return Err(Status::unavailable(format!("etcdserver: watch canceled: {}", r.cancel_reason)))
            }
            Some(r) if r.events.is_empty() => continue,
            Some(_) => (current, header) = recipe::first(backend, name).await?,
            None => return Err(status(keel_core::api::error::Error::Stopped)),
        }
    }
}
