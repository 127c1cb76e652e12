//! The Cluster service: list, add (voter or learner), remove, update and promote members.
//! Membership changes are replicated Raft configuration changes made by the core.

use keel_core::api::request::{MemberAddRequest, MemberChange, MemberResponse, Request, Response};
use tonic::{Request as Call, Response as Reply, Status};

use super::auth::as_caller;
use super::pb::etcdserverpb as pb;
use super::{call, convert, local_header};
use crate::backend::Backend;

/// etcd's `Cluster` service over a member; `token` is the cluster token from which an added
/// member's id is derived, as a founding member's is (see [`crate::ids`]).
pub struct ClusterService<B> {
    pub backend: B,
    pub token: String,
}

impl<B: Backend> ClusterService<B> {
    /// Make a membership change as `req`'s caller.
    async fn change<T>(
        &self,
        req: &Call<T>,
        change: MemberChange,
    ) -> Result<(Option<pb::ResponseHeader>, Vec<pb::Member>), Status> {
        let request = Request::MemberChange(change);
        let r: MemberResponse = call(&as_caller(&self.backend, req), request, pick!(Response::Member)).await?;
        Ok((convert::header(&r.header), convert::members(r.members)))
    }
}

/// Peer URLs must be present and each a `scheme://host:port` URL.
fn check_urls(urls: &[String]) -> Result<(), Status> {
    if urls.is_empty() || urls.iter().any(|u| crate::peer::host_port(u).is_none()) {
        return Err(Status::invalid_argument(format!("etcdserver: invalid peer URLs {urls:?}")));
    }
    Ok(())
}

#[tonic::async_trait]
impl<B: Backend> pb::cluster_server::Cluster for ClusterService<B> {
    async fn member_add(&self, req: Call<pb::MemberAddRequest>) -> Result<Reply<pb::MemberAddResponse>, Status> {
        let backend = as_caller(&self.backend, &req);
        let req = req.into_inner();
        check_urls(&req.peer_ur_ls)?;
        let id = crate::ids::added_member_id(&req.peer_ur_ls, &self.token, self.backend.status().applied_index);
        let add = MemberChange::Add(MemberAddRequest { id, peer_urls: req.peer_ur_ls, is_learner: req.is_learner });
        let r = call(&backend, Request::MemberChange(add), pick!(Response::Member)).await?;
        Ok(Reply::new(pb::MemberAddResponse {
            header: convert::header(&r.header),
            member: r.member.map(convert::member),
            members: convert::members(r.members),
        }))
    }

    async fn member_remove(
        &self,
        req: Call<pb::MemberRemoveRequest>,
    ) -> Result<Reply<pb::MemberRemoveResponse>, Status> {
        let remove = MemberChange::Remove { id: req.get_ref().id };
        let (header, members) = self.change(&req, remove).await?;
        Ok(Reply::new(pb::MemberRemoveResponse { header, members }))
    }

    async fn member_update(
        &self,
        req: Call<pb::MemberUpdateRequest>,
    ) -> Result<Reply<pb::MemberUpdateResponse>, Status> {
        let r = req.get_ref().clone();
        check_urls(&r.peer_ur_ls)?;
        let (header, members) = self.change(&req, MemberChange::Update { id: r.id, peer_urls: r.peer_ur_ls }).await?;
        Ok(Reply::new(pb::MemberUpdateResponse { header, members }))
    }

    async fn member_list(&self, _req: Call<pb::MemberListRequest>) -> Result<Reply<pb::MemberListResponse>, Status> {
        let s = self.backend.status();
        Ok(Reply::new(pb::MemberListResponse {
            header: convert::header(&local_header(&s)),
            members: convert::members(s.members),
        }))
    }

    async fn member_promote(
        &self,
        req: Call<pb::MemberPromoteRequest>,
    ) -> Result<Reply<pb::MemberPromoteResponse>, Status> {
        let promote = MemberChange::Promote { id: req.get_ref().id };
        let (header, members) = self.change(&req, promote).await?;
        Ok(Reply::new(pb::MemberPromoteResponse { header, members }))
    }
}
