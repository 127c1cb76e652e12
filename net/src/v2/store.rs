//! The handlers' access to the member: typed wrappers around [`Backend::call`], the wall clock
//! used for `expiration` fields, and a per-request cache of lease lookups.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use keel_core::error::Error as CoreError;
use keel_core::kv::prefix_range_end;
use keel_core::request::{
    Compare, LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest, RangeRequest,
    RangeResponse, Request, RequestOp, Response, TxnRequest, TxnResponse,
};

use super::error::{self, V2Error};
use super::json::{self, Node};
use crate::backend::Backend;

/// What a lease lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    /// Seconds left.
    pub ttl: i64,
    /// The TTL the lease was granted with.
    pub granted_ttl: i64,
}

/// One request's view of the member.
pub struct Store<'a, B> {
    backend: &'a B,
    /// Wall-clock time of the request, the base of `expiration` fields.
    now: SystemTime,
    leases: HashMap<i64, Option<LeaseInfo>>,
}

fn unexpected(what: &str) -> V2Error {
    V2Error::new(error::RAFT_INTERNAL, format!("etcdserver: unexpected response to {what}"), 0)
}

impl<'a, B: Backend> Store<'a, B> {
    pub fn new(backend: &'a B) -> Self {
        Store { backend, now: SystemTime::now(), leases: HashMap::new() }
    }

    pub fn backend(&self) -> &'a B {
        self.backend
    }

    /// The member's current revision, for errors found without a read.
    pub fn current_revision(&self) -> i64 {
        self.backend.status().revision
    }

    async fn call(&self, req: Request) -> Result<Response, V2Error> {
        Ok(self.backend.call(req).await?)
    }

    /// Read one key (`range_end` empty), a prefix or a range.
    pub async fn range(&self, req: RangeRequest) -> Result<RangeResponse, V2Error> {
        match self.call(Request::Range(req)).await? {
            Response::Range(r) => Ok(r),
            _ => Err(unexpected("range")),
        }
    }

    /// Read exactly `key` at `revision` (0: current; linearizable unless `serializable`).
    pub async fn get_key(
        &self,
        key: &[u8],
        revision: i64,
        serializable: bool,
        keys_only: bool,
    ) -> Result<RangeResponse, V2Error> {
        self.range(RangeRequest { key: key.to_vec(), revision, serializable, keys_only, ..RangeRequest::default() })
            .await
    }

    /// Read every key starting with `prefix`, at most `limit` (0: all).
    pub async fn get_prefix(
        &self,
        prefix: &[u8],
        revision: i64,
        serializable: bool,
        keys_only: bool,
        limit: i64,
    ) -> Result<RangeResponse, V2Error> {
        self.range(RangeRequest {
            key: prefix.to_vec(),
            range_end: prefix_range_end(prefix),
            revision,
            serializable,
            keys_only,
            limit,
            ..RangeRequest::default()
        })
        .await
    }

    /// Run a transaction: `Some` with its response when the guards held, `None` otherwise.
    pub async fn txn(&self, compare: Vec<Compare>, success: Vec<RequestOp>) -> Result<Option<TxnResponse>, V2Error> {
        let req = TxnRequest { compare, success, failure: vec![] };
        match self.call(Request::Txn(req)).await? {
            Response::Txn(t) if t.succeeded => Ok(Some(t)),
            Response::Txn(_) => Ok(None),
            _ => Err(unexpected("txn")),
        }
    }

    /// Grant a fresh lease of `ttl` seconds; its id and the TTL granted (the cluster may raise
    /// it to its minimum).
    pub async fn grant(&mut self, ttl: u64) -> Result<(i64, i64), V2Error> {
        let ttl = i64::try_from(ttl).unwrap_or(i64::MAX);
        match self.call(Request::LeaseGrant(LeaseGrantRequest { ttl, id: 0 })).await? {
            Response::LeaseGrant(g) => {
                self.leases.insert(g.id, Some(LeaseInfo { ttl: g.ttl, granted_ttl: g.ttl }));
                Ok((g.id, g.ttl))
            }
            _ => Err(unexpected("lease grant")),
        }
    }

    /// One keep-alive: the lease's TTL after it, `None` if the lease no longer exists.
    pub async fn keep_alive(&mut self, id: i64) -> Result<Option<i64>, V2Error> {
        match self.backend.call(Request::LeaseKeepAlive(LeaseKeepAliveRequest { id })).await {
            Ok(Response::LeaseKeepAlive(k)) if k.ttl > 0 => {
                let granted = self.leases.get(&id).copied().flatten().map_or(k.ttl, |i| i.granted_ttl);
                self.leases.insert(id, Some(LeaseInfo { ttl: k.ttl, granted_ttl: granted }));
                Ok(Some(k.ttl))
            }
            Ok(Response::LeaseKeepAlive(_)) | Err(CoreError::LeaseNotFound) => Ok(None),
            Ok(_) => Err(unexpected("lease keep-alive")),
            Err(e) => Err(e.into()),
        }
    }

    /// What is left of a lease (cached for the request); `None` when it does not exist or
    /// cannot be asked about (lease lookups are best effort: a node is then shown without TTL).
    pub async fn lease_info(&mut self, id: i64) -> Option<LeaseInfo> {
        if id == 0 {
            return None;
        }
        if let Some(known) = self.leases.get(&id) {
            return *known;
        }
        let found = match self.backend.call(Request::LeaseTimeToLive(LeaseTimeToLiveRequest { id, keys: false })).await
        {
            Ok(Response::LeaseTimeToLive(t)) if t.ttl >= 0 => {
                Some(LeaseInfo { ttl: t.ttl, granted_ttl: t.granted_ttl })
            }
            _ => None,
        };
        self.leases.insert(id, found);
        found
    }

    /// Forget what is known about a lease (after it may have changed).
    pub fn forget_lease(&mut self, id: i64) {
        self.leases.remove(&id);
    }

    /// Whether a lease still exists, asking the member (not the cache).
    pub async fn lease_exists(&mut self, id: i64) -> bool {
        self.forget_lease(id);
        self.lease_info(id).await.is_some()
    }

    /// Revoke a lease, ignoring failures (used to clean up leases nothing uses).
    pub async fn revoke(&mut self, id: i64) {
        if id != 0 {
            let _ = self.backend.call(Request::LeaseRevoke(LeaseRevokeRequest { id })).await;
            self.leases.insert(id, None);
        }
    }

    /// Revoke a lease if no key is attached to it any more (a v2 key lost its TTL or got a
    /// new one). Best effort.
    pub async fn revoke_if_unused(&mut self, id: i64) {
        if id == 0 {
            return;
        }
        let req = LeaseTimeToLiveRequest { id, keys: true };
        if let Ok(Response::LeaseTimeToLive(t)) = self.backend.call(Request::LeaseTimeToLive(req)).await {
            if t.ttl >= 0 && t.keys.is_empty() {
                self.revoke(id).await;
            }
        }
    }

    /// `ttl` seconds from the request's wall-clock time, as etcd shows `expiration`.
    pub fn expiration(&self, ttl: i64) -> String {
        let secs = u64::try_from(ttl).unwrap_or(0);
        let at = self.now.checked_add(Duration::from_secs(secs)).unwrap_or(self.now);
        json::rfc3339(at)
    }

    /// Fill `ttl`/`expiration` of the nodes (and their children) that have a lease.
    pub async fn fill_ttls(&mut self, nodes: &mut [&mut Node]) {
        let mut ids = Vec::new();
        for n in nodes.iter() {
            n.leases(&mut ids);
        }
        ids.sort_unstable();
        ids.dedup();
        let mut found: HashMap<i64, (i64, String)> = HashMap::new();
        for id in ids {
            if let Some(info) = self.lease_info(id).await {
                // etcd rounds the time left up to whole seconds, so a live key shows >= 1.
                let ttl = info.ttl.max(1);
                found.insert(id, (ttl, self.expiration(ttl)));
            }
        }
        let lookup = |id: i64| found.get(&id).cloned();
        for n in nodes.iter_mut() {
            n.fill_ttls(&lookup);
        }
    }
}
