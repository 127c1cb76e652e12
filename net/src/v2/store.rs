//! The handlers' access to the member: typed wrappers around [`Backend::call`], the wall clock
//! used for `expiration` fields, and a per-request cache of lease lookups.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use keel_core::api::error::Error as CoreError;
use keel_core::api::kv::prefix_range_end;
use keel_core::api::request::{
    LeaseKeepAliveRequest, LeaseTimeToLiveRequest, RangeRequest, RangeResponse, Request, Response,
};

use super::error::{self, V2Error};
use super::json::{self, Event, Node};
use crate::backend::Backend;

/// One request's view of the member.
pub struct Store<'a, B> {
    backend: &'a B,
    /// Wall-clock time of the request, the base of `expiration` fields.
    now: SystemTime,
    /// Seconds left on each lease looked up (`None`: it does not exist).
    leases: HashMap<i64, Option<i64>>,
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

    /// The seconds left on a lease (cached for the request); `None` when it does not exist or
    /// cannot be asked about (lease lookups are best effort: a node is then shown without TTL).
    pub async fn lease_ttl(&mut self, id: i64) -> Option<i64> {
        if id == 0 {
            return None;
        }
        if let Some(known) = self.leases.get(&id) {
            return *known;
        }
        let found = match self.backend.call(Request::LeaseTimeToLive(LeaseTimeToLiveRequest { id, keys: false })).await
        {
            Ok(Response::LeaseTimeToLive(t)) if t.ttl >= 0 => Some(t.ttl),
            _ => None,
        };
        self.leases.insert(id, found);
        found
    }

    /// Renew a lease (on the leader, which alone keeps lease clocks): its TTL after the
    /// renewal, `None` if it is gone (expired, or its revoke already on its way).
    pub async fn keep_alive(&mut self, id: i64) -> Result<Option<i64>, V2Error> {
        self.leases.remove(&id);
        match self.backend.call(Request::LeaseKeepAlive(LeaseKeepAliveRequest { id })).await {
            Ok(Response::LeaseKeepAlive(k)) if k.ttl > 0 => Ok(Some(k.ttl)),
            Ok(Response::LeaseKeepAlive(_)) | Err(CoreError::LeaseNotFound) => Ok(None),
            Ok(_) => Err(unexpected("lease keep-alive")),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether a lease still exists, asking the member (not the cache).
    pub async fn lease_exists(&mut self, id: i64) -> bool {
        self.leases.remove(&id);
        self.lease_ttl(id).await.is_some()
    }

    /// `ttl` seconds from the request's wall-clock time, as etcd shows `expiration`.
    pub fn expiration(&self, ttl: i64) -> String {
        let secs = u64::try_from(ttl).unwrap_or(0);
        let at = self.now.checked_add(Duration::from_secs(secs)).unwrap_or(self.now);
        json::rfc3339(at)
    }

    /// Fill `ttl`/`expiration` of an answer's nodes (and their children) that have a lease.
    pub async fn fill_ttls(&mut self, event: &mut Event) {
        let mut nodes: Vec<&mut Node> = event.node.iter_mut().chain(event.prev_node.iter_mut()).collect();
        let mut ids = Vec::new();
        for n in nodes.iter() {
            n.leases(&mut ids);
        }
        ids.sort_unstable();
        ids.dedup();
        let mut found: HashMap<i64, (i64, String)> = HashMap::new();
        for id in ids {
            if let Some(left) = self.lease_ttl(id).await {
                // etcd rounds the time left up to whole seconds, so a live key shows >= 1.
                let ttl = left.max(1);
                found.insert(id, (ttl, self.expiration(ttl)));
            }
        }
        let lookup = |id: i64| found.get(&id).cloned();
        for n in nodes.iter_mut() {
            n.fill_ttls(&lookup);
        }
    }
}
