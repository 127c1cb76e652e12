//! Client requests: validating and dispatching them, proposing the writes, answering (the one
//! place a response header is stamped) and timing out the ones that wait too long.

use rand::Rng;

use super::{Node, RequestId};
use crate::api::auth::Caller;
use crate::api::command::{Command, Proposal};
use crate::api::error::{Error, Result};
use crate::api::request::{
    HashResponse, LeaseKeepAliveResponse, LeaseLeasesResponse, MemberResponse, Request, Response,
};
use crate::api::validate;
use crate::state::alarm;

impl Node {
    /// A client request made by nobody in particular (see [`Node::request_as`]).
    pub fn request(&mut self, id: RequestId, request: Request) {
        self.request_as(id, Caller::Anonymous, request)
    }

    /// A request made by `caller`. Its answer comes out of a later [`Node::ready`] under the
    /// same `id`.
    pub fn request_as(&mut self, id: RequestId, caller: Caller, request: Request) {
        if self.removed {
            self.respond(id, Err(Error::Stopped));
            return;
        }
        if let Err(e) = self.start_request(id, caller, request) {
            self.respond(id, Err(e));
        }
    }

    pub(super) fn start_request(&mut self, id: RequestId, caller: Caller, request: Request) -> Result<()> {
        if request.needs_leader() {
            self.require_leader()?;
        }
        let who = self.resolve(&caller)?;
        match request {
            Request::Range(req) => {
                validate::range(&req)?;
                // Planted bug (simulation only): a leader skipping ReadIndex for its reads.
                let local = crate::bugs::enabled(crate::bugs::Bug::LocalLinearizableRead) && self.is_leader();
                if req.serializable || local {
                    self.require_read(&who, &req.key, &req.range_end)?;
                    let resp = self.sm.store().range(&req)?;
                    self.respond(id, Ok(Response::Range(resp)));
                } else {
                    self.pending.insert(id, self.deadline());
                    self.reads.add(id, req, who);
                }
                Ok(())
            }
            Request::Put(req) => {
                validate::put(&req)?;
                self.propose(id, Node::vouch(who, Command::Put(req)))
            }
            Request::PutInOrder(req) => self.propose(id, Node::vouch(who, Command::PutInOrder(req))),
            Request::DeleteRange(req) => {
                validate::delete_range(&req)?;
                self.propose(id, Node::vouch(who, Command::DeleteRange(req)))
            }
            Request::Txn(req) => {
                validate::txn(&req, self.config.max_txn_ops)?;
                self.propose(id, Node::vouch(who, Command::Txn(req)))
            }
            Request::Compact(req) => self.propose(id, Command::Compact(req)),
            Request::Auth(req) => self.start_auth(id, who, req),
            Request::PasswordHash { name } => self.password_hash(id, &name),
            Request::LeaseGrant(mut req) => {
                if req.id == 0 {
                    req.id = self.rng.gen_range(1..i64::MAX);
                }
                self.propose(id, Command::LeaseGrant(req))
            }
            Request::LeaseRevoke(req) => self.propose(id, Node::vouch(who, Command::LeaseRevoke(req))),
            Request::V2Write(mut req) => {
                validate::v2_write(&req)?;
                if req.ttl.is_some() {
                    req.lease = self.rng.gen_range(1..i64::MAX);
                }
                self.propose(id, Node::vouch(who, Command::V2Write(req)))
            }
            Request::LeaseKeepAlive(req) => {
                if !self.leader_caught_up() {
                    // A new leader may not have applied a revoke its predecessor committed:
                    // renewing now could revive a lease whose keys are gone (etcd waits too).
                    self.pending.insert(id, self.deadline());
                    self.deferred_keepalives.push((id, req));
                    return Ok(());
                }
                let ttl = self.sm.lessor_mut().renew(req.id, self.now_ms)?;
                // A checkpointed countdown is stale after a keep-alive: clear it everywhere, or
                // a new leader would resume the old countdown instead of the renewed one.
                if self.sm.lessor().checkpointed_ttl(req.id).is_some_and(|t| t > 0) {
                    let _ = self.propose(0, Command::LeaseCheckpoint(vec![(req.id, 0)]));
                }
                let resp = LeaseKeepAliveResponse { id: req.id, ttl, ..Default::default() };
                self.respond(id, Ok(Response::LeaseKeepAlive(resp)));
                Ok(())
            }
            Request::LeaseTimeToLive(req) => {
                if req.keys {
                    for key in self.sm.lessor().keys(req.id) {
                        self.require_read(&who, key, b"")?;
                    }
                }
                let resp = self.sm.lessor().time_to_live(req.id, req.keys, Some(self.now_ms));
                self.respond(id, Ok(Response::LeaseTimeToLive(resp)));
                Ok(())
            }
            Request::LeaseLeases => {
                let leases = self.sm.lessor().leases();
                self.respond(id, Ok(Response::LeaseLeases(LeaseLeasesResponse { leases, ..Default::default() })));
                Ok(())
            }
            Request::MemberChange(change) => {
                self.require_admin(&who)?;
                self.propose_member_change(id, change)
            }
            Request::MemberList => {
                let members = self.sm.members();
                self.respond(id, Ok(Response::Member(MemberResponse { members, ..Default::default() })));
                Ok(())
            }
            Request::MoveLeader { target } => {
                self.require_admin(&who)?;
                self.move_leader(id, target)
            }
            Request::Hash => {
                self.require_admin(&who)?;
                let resp =
                    HashResponse { hash: self.sm.hash(), applied_index: self.sm.applied_index(), ..Default::default() };
                self.respond(id, Ok(Response::Hash(resp)));
                Ok(())
            }
            Request::HashKv { revision } => {
                self.require_admin(&who)?;
                let resp = self.sm.store().hash_kv(revision)?;
                self.respond(id, Ok(Response::HashKv(resp)));
                Ok(())
            }
            Request::Alarm(req) => self.propose(id, Command::Alarm(req)),
            Request::Snapshot => {
                self.require_admin(&who)?;
                // Built off the apply path, as a follower's is; the answer comes from backup_built.
                let job = self.sm.snapshot_job()?;
                self.out.backups.push((id, job));
                Ok(())
            }
        }
    }

    pub(super) fn serve_reads(&mut self) {
        for (id, req, who) in self.reads.ready(self.sm.applied_index()) {
            if self.pending.remove(&id).is_none() {
                continue;
            }
            let permitted = self.require_read(&who, &req.key, &req.range_end);
            let resp = permitted.and_then(|()| self.sm.store().range(&req)).map(Response::Range);
            self.respond(id, resp);
        }
    }

    pub(super) fn respond(&mut self, id: RequestId, mut result: Result<Response>) {
        if let Ok(resp) = &mut result {
            let header = resp.header_mut();
            header.cluster_id = self.config.cluster_id;
            header.member_id = self.config.id;
            header.raft_term = self.raw.raft.term;
            if header.revision == 0 {
                header.revision = self.sm.store().current_revision();
            }
        }
        self.out.responses.push((id, result));
    }

    pub(super) fn deadline(&self) -> u64 {
        self.now_ms + self.config.request_timeout_ms
    }

    pub(super) fn expire_requests(&mut self) {
        let now = self.now_ms;
        let expired: Vec<RequestId> = self.pending.iter().filter(|(_, d)| **d <= now).map(|(id, _)| *id).collect();
        if expired.is_empty() {
            return;
        }
        for id in &expired {
            self.pending.remove(id);
        }
        self.reads.take_expired(|id| expired.contains(&id));
        if self.transfer.is_some_and(|(id, _, _)| expired.contains(&id)) {
            self.transfer = None;
        }
        for id in expired {
            self.respond(id, Err(Error::Timeout));
        }
    }

    /// Whether this leader has committed an entry of its own term and applied everything
    /// committed: only then does its lessor reflect every revoke and grant.
    pub(super) fn leader_caught_up(&self) -> bool {
        let raft = &self.raw.raft;
        raft.commit_to_current_term() && self.sm.applied_index() >= raft.raft_log.committed
    }

    pub(super) fn retry_keepalives(&mut self) {
        // Once caught up they are answered; if leadership was lost, retrying answers NotLeader.
        let can_answer = !self.is_leader() || self.leader_caught_up();
        if self.deferred_keepalives.is_empty() || !can_answer {
            return;
        }
        for (id, req) in std::mem::take(&mut self.deferred_keepalives) {
            if self.pending.remove(&id).is_some() {
                self.request(id, Request::LeaseKeepAlive(req));
            }
        }
    }

    pub(super) fn require_leader(&self) -> Result<()> {
        match self.raw.raft.leader_id {
            0 => Err(Error::NoLeader),
            l if l == self.config.id => Ok(()),
            _ => Err(Error::NotLeader),
        }
    }

    /// Whether `command` would take the key space to the space quota or past it (etcd lets a
    /// write through only while size plus cost stays below the quota; see [`crate::state::alarm`]).
    pub(super) fn exceeds_quota(&self, command: &Command) -> bool {
        let quota = self.config.quota_bytes;
        quota > 0
            && alarm::quota_cost(command).is_some_and(|cost| self.sm.store().size_bytes().saturating_add(cost) >= quota)
    }

    /// Encode and propose a command on behalf of request `id` (0 with origin 0: internal). A
    /// client's write past the space quota becomes `QuotaExceeded`: it raises NOSPACE and fails.
    pub(super) fn propose(&mut self, id: RequestId, command: Command) -> Result<()> {
        let command = match id != 0 && self.exceeds_quota(&command) {
            true => Command::QuotaExceeded { member_id: self.config.id },
            false => command,
        };
        let origin = if id == 0 { 0 } else { self.config.id };
        let data = Proposal { origin, incarnation: self.incarnation, request_id: id, command }.encode();
        if data.len() > self.config.max_request_bytes {
            return Err(Error::RequestTooLarge);
        }
        self.raw.propose(vec![], data).map_err(|_| self.dropped_error())?;
        if id != 0 {
            self.pending.insert(id, self.deadline());
        }
        Ok(())
    }

    /// Why raft-rs refused a proposal: no leader known, or a leader transfer under way.
    pub(super) fn dropped_error(&self) -> Error {
        if self.raw.raft.leader_id == 0 {
            Error::NoLeader
        } else {
            Error::LeaderChanged
        }
    }
}
