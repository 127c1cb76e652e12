//! What the API layers need from a member, as one trait: the driver implements it for the
//! real server, tests implement it over the core's in-process cluster.

use std::future::Future;

use keel_core::api::alarm::AlarmMember;
use keel_core::api::auth::Caller;
use keel_core::api::error::Result;
use keel_core::api::request::{Member, Request, Response};
use keel_core::state::watch::{WatchCreate, WatchId, WatchResponse};
use tokio::sync::mpsc;

/// A live watch: its responses arrive on `events` (the first is the `created` notice).
/// Dropping the stream cancels the watch.
pub struct WatchStream {
    pub id: WatchId,
    pub events: mpsc::Receiver<WatchResponse>,
}

/// A member's view of itself and the cluster, for status endpoints and response headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberStatus {
    pub id: u64,
    pub name: String,
    pub cluster_id: u64,
    /// The leader's id, 0 when none is known.
    pub leader: u64,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    /// The key space's current revision.
    pub revision: i64,
    pub members: Vec<Member>,
    /// Bytes of storage the member uses (etcd's `dbSize`), refreshed every tick.
    pub db_size: u64,
    /// Bytes the retained key-space history counts towards the space quota (etcd's
    /// `dbSizeInUse`).
    pub db_size_in_use: u64,
    /// The cluster's active alarms (NOSPACE: writes that add data are refused).
    pub alarms: Vec<AlarmMember>,
    /// Keys deleted because their lease expired, since the member started (etcd's v2
    /// `expireCount`).
    pub expired_keys: u64,
}

/// A member, as the API handlers see it. Requests that only the leader can answer are
/// forwarded by the implementation; callers need not care which member they talk to.
pub trait Backend: Clone + Send + Sync + 'static {
    /// Carry out one request made by `caller` and return its answer (or etcd's error).
    fn call_as(&self, caller: Caller, request: Request) -> impl Future<Output = Result<Response>> + Send;

    /// Carry out one request made by nobody in particular.
    fn call(&self, request: Request) -> impl Future<Output = Result<Response>> + Send {
        self.call_as(Caller::Anonymous, request)
    }

    /// Start a watch on this member for `caller` (who needs read permission on its range).
    fn watch_as(&self, caller: Caller, request: WatchCreate) -> impl Future<Output = Result<WatchStream>> + Send;

    /// Start a watch for nobody in particular.
    fn watch(&self, request: WatchCreate) -> impl Future<Output = Result<WatchStream>> + Send {
        self.watch_as(Caller::Anonymous, request)
    }

    /// The member's current status.
    fn status(&self) -> MemberStatus;
}

/// A backend whose calls are made by one caller: what a handler passes on to code that calls
/// the backend many times (the lock and election recipes), so every call is checked as its.
/// Whoever a call names is replaced by this caller (`call` and `watch` name nobody).
#[derive(Clone)]
pub struct AsCaller<B> {
    pub backend: B,
    pub caller: Caller,
}

impl<B: Backend> Backend for AsCaller<B> {
    fn call_as(&self, _: Caller, request: Request) -> impl Future<Output = Result<Response>> + Send {
        self.backend.call_as(self.caller.clone(), request)
    }

    fn watch_as(&self, _: Caller, request: WatchCreate) -> impl Future<Output = Result<WatchStream>> + Send {
        self.backend.watch_as(self.caller.clone(), request)
    }

    fn status(&self) -> MemberStatus {
        self.backend.status()
    }
}
