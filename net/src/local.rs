//! A [`Backend`] over the core's in-process cluster (one member): the API layers run against a
//! real member without sockets, disks or clocks, in their tests and under the fuzzers.
//!
//! `call` submits the request and ticks until it is answered. Watches are registered with the
//! member and their responses are handed to the watch's channel whenever the cluster has been
//! run (after every call, every tick, and by a small pump task per watch, which also cancels
//! the watch once its receiver is dropped). The pump does not advance the simulated clock:
//! tests move time explicitly with [`LocalBackend::tick`], so TTLs behave deterministically.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{Backend, MemberStatus, WatchStream};
use keel_core::api::auth::Caller;
use keel_core::api::error::Result;
use keel_core::api::request::{Request, Response};
use keel_core::cluster::LocalCluster;
use keel_core::state::watch::{WatchCreate, WatchId, WatchResponse};
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::mpsc;

/// The cluster id `LocalCluster` gives its members.
pub const CLUSTER_ID: u64 = 0x6b65656c;

struct Inner {
    cluster: LocalCluster,
    watchers: HashMap<WatchId, mpsc::Sender<WatchResponse>>,
    /// Every request made through [`Backend::call`], in order.
    log: Vec<Request>,
}

/// The in-process member (cheap to clone: clones share it).
#[derive(Clone)]
pub struct LocalBackend {
    inner: Arc<Mutex<Inner>>,
}

impl Default for LocalBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalBackend {
    /// A one-member cluster with an elected leader.
    pub fn new() -> LocalBackend {
        let mut cluster = LocalCluster::new(1, 7);
        cluster.wait_for_leader();
        LocalBackend { inner: Arc::new(Mutex::new(Inner { cluster, watchers: HashMap::new(), log: Vec::new() })) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock()
    }

    /// Advance the simulated clock by `n` ticks (100 ms each).
    pub fn tick(&self, n: u64) {
        let mut g = self.lock();
        for _ in 0..n {
            g.cluster.tick();
        }
        dispatch(&mut g);
    }

    /// Watches the member still has.
    pub fn watch_count(&self) -> usize {
        self.lock().cluster.node(1).watch_count()
    }

    /// The requests made through [`Backend::call`] since the last call of this.
    pub fn take_log(&self) -> Vec<Request> {
        std::mem::take(&mut self.lock().log)
    }

    /// Carry out a core request directly (as a v3 client would).
    pub fn core(&self, request: Request) -> Result<Response> {
        let mut g = self.lock();
        let r = g.cluster.call(1, request);
        dispatch(&mut g);
        r
    }
}

/// Hand collected watch responses to their channels; cancel watches nobody listens to.
fn dispatch(g: &mut Inner) {
    for r in g.cluster.take_watch_responses(1) {
        if let Some(tx) = g.watchers.get(&r.watch_id) {
            let _ = tx.try_send(r);
        }
    }
    let closed: Vec<WatchId> = g.watchers.iter().filter(|(_, tx)| tx.is_closed()).map(|(id, _)| *id).collect();
    for id in &closed {
        g.watchers.remove(id);
        g.cluster.node_mut(1).cancel_watch(*id);
    }
    if !closed.is_empty() {
        g.cluster.settle();
        let _ = g.cluster.take_watch_responses(1);
    }
}

impl Backend for LocalBackend {
    fn call_as(&self, caller: Caller, request: Request) -> impl Future<Output = Result<Response>> + Send {
        let this = self.clone();
        async move {
            tokio::task::yield_now().await;
            let mut g = this.lock();
            g.log.push(request.clone());
            let r = g.cluster.call_as(1, caller, request);
            dispatch(&mut g);
            r
        }
    }

    fn watch_as(&self, caller: Caller, request: WatchCreate) -> impl Future<Output = Result<WatchStream>> + Send {
        let this = self.clone();
        async move {
            tokio::task::yield_now().await;
            let (tx, rx) = mpsc::channel(1024);
            let id = {
                let mut g = this.lock();
                let id = g.cluster.watch_as(1, &caller, request)?;
                g.watchers.insert(id, tx);
                dispatch(&mut g);
                id
            };
            let pump = this.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    let mut g = pump.lock();
                    dispatch(&mut g);
                    if !g.watchers.contains_key(&id) {
                        return;
                    }
                }
            });
            Ok(WatchStream { id, events: rx })
        }
    }

    fn status(&self) -> MemberStatus {
        let g = self.lock();
        let n = g.cluster.node(1);
        MemberStatus {
            id: 1,
            name: "m1".into(),
            cluster_id: CLUSTER_ID,
            leader: n.leader_id(),
            term: n.term(),
            commit_index: n.commit_index(),
            applied_index: n.applied_index(),
            revision: n.view().revision(),
            members: vec![],
            db_size: 0,
            db_size_in_use: n.view().size_in_use(),
            alarms: n.view().alarms(),
            expired_keys: n.expired_keys(),
        }
    }
}
