//! The Lease service: grant, revoke, time-to-live, list, and the keep-alive stream.

use futures_util::{Stream, StreamExt};
use keel_core::api::error::Error;
use keel_core::api::request::{self as core, Request, Response};
use tokio::sync::mpsc;
use tonic::{Request as Call, Response as Reply, Status, Streaming};

use super::auth::as_caller;
use super::pb::etcdserverpb as pb;
use super::{call, channel_stream, convert, status, ReplyStream};
use crate::backend::Backend;

/// etcd's `Lease` service over a member.
pub struct LeaseService<B> {
    pub backend: B,
}

#[tonic::async_trait]
impl<B: Backend> pb::lease_server::Lease for LeaseService<B> {
    type LeaseKeepAliveStream = ReplyStream<pb::LeaseKeepAliveResponse>;

    async fn lease_grant(&self, req: Call<pb::LeaseGrantRequest>) -> Result<Reply<pb::LeaseGrantResponse>, Status> {
        let req = req.into_inner();
        let request = Request::LeaseGrant(core::LeaseGrantRequest { ttl: req.ttl, id: req.id });
        let r = call(&self.backend, request, pick!(Response::LeaseGrant)).await?;
        Ok(Reply::new(pb::LeaseGrantResponse {
            header: convert::header(&r.header),
            id: r.id,
            ttl: r.ttl,
            error: String::new(),
        }))
    }

    async fn lease_revoke(&self, req: Call<pb::LeaseRevokeRequest>) -> Result<Reply<pb::LeaseRevokeResponse>, Status> {
        let backend = as_caller(&self.backend, &req);
        let request = Request::LeaseRevoke(core::LeaseRevokeRequest { id: req.into_inner().id });
        let r = call(&backend, request, pick!(Response::LeaseRevoke)).await?;
        Ok(Reply::new(pb::LeaseRevokeResponse { header: convert::header(&r.header) }))
    }

    async fn lease_keep_alive(
        &self,
        req: Call<Streaming<pb::LeaseKeepAliveRequest>>,
    ) -> Result<Reply<Self::LeaseKeepAliveStream>, Status> {
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(keep_alive_stream(self.backend.clone(), req.into_inner(), tx));
        Ok(Reply::new(channel_stream(rx)))
    }

    async fn lease_time_to_live(
        &self,
        req: Call<pb::LeaseTimeToLiveRequest>,
    ) -> Result<Reply<pb::LeaseTimeToLiveResponse>, Status> {
        let backend = as_caller(&self.backend, &req);
        let req = req.into_inner();
        let request = Request::LeaseTimeToLive(core::LeaseTimeToLiveRequest { id: req.id, keys: req.keys });
        let r = call(&backend, request, pick!(Response::LeaseTimeToLive)).await?;
        Ok(Reply::new(pb::LeaseTimeToLiveResponse {
            header: convert::header(&r.header),
            id: r.id,
            ttl: r.ttl,
            granted_ttl: r.granted_ttl,
            keys: r.keys,
        }))
    }

    async fn lease_leases(&self, _req: Call<pb::LeaseLeasesRequest>) -> Result<Reply<pb::LeaseLeasesResponse>, Status> {
        let r = call(&self.backend, Request::LeaseLeases, pick!(Response::LeaseLeases)).await?;
        let leases = r.leases.into_iter().map(|id| pb::LeaseStatus { id }).collect();
        Ok(Reply::new(pb::LeaseLeasesResponse { header: convert::header(&r.header), leases }))
    }
}

/// Answer keep-alives until either side closes the stream or a keep-alive fails. `incoming`
/// is a gRPC stream or the JSON gateway's requests.
pub async fn keep_alive_stream<B, S>(
    backend: B,
    mut incoming: S,
    tx: mpsc::Sender<Result<pb::LeaseKeepAliveResponse, Status>>,
) where
    B: Backend,
    S: Stream<Item = Result<pb::LeaseKeepAliveRequest, Status>> + Unpin + Send,
{
    loop {
        let next = tokio::select! {
            biased;
            _ = tx.closed() => return,
            next = incoming.next() => next,
        };
        let id = match next {
            Some(Ok(req)) => req.id,
            None | Some(Err(_)) => return,
        };
        let reply = keep_alive(&backend, id).await.map_err(status);
        let failed = reply.is_err();
        if tx.send(reply).await.is_err() || failed {
            return;
        }
    }
}

/// One keep-alive. A lease that no longer exists is answered with TTL 0 rather than an error,
/// as etcd does: that is how a client learns its lease expired and stops sending.
async fn keep_alive<B: Backend>(backend: &B, id: i64) -> Result<pb::LeaseKeepAliveResponse, Error> {
    match backend.call(Request::LeaseKeepAlive(core::LeaseKeepAliveRequest { id })).await {
        Ok(Response::LeaseKeepAlive(r)) => {
            Ok(pb::LeaseKeepAliveResponse { header: convert::header(&r.header), id: r.id, ttl: r.ttl })
        }
        Ok(_) => Err(Error::Internal("unexpected response".into())),
        Err(Error::LeaseNotFound) => {
            let header = super::local_header(&backend.status());
            Ok(pb::LeaseKeepAliveResponse { header: convert::header(&header), id, ttl: 0 })
        }
        Err(e) => Err(e),
    }
}
