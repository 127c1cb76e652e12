//! etcd's v2 stats endpoints (`/v2/stats/self|leader|store`), from what the member tracks.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use keel_core::api::v2::V2Action;

use super::params::StoreOp;
use crate::backend::Backend;
use crate::http::{Api, Reply};

/// Counts of v2 keys requests by store operation and outcome, for `/v2/stats/store`. As on
/// etcd, a request counts where it was answered: gets on the member that served them, and
/// writes (unlike etcd, which counts them as every member applies them) on the member the
/// client sent them to.
#[derive(Default)]
pub struct StoreStats {
    counts: [[AtomicU64; 2]; 7],
}

impl StoreStats {
    /// Count one answered v2 keys request (`op` `None`: it never reached the store).
    pub fn record(&self, op: Option<StoreOp>, status: u16) {
        if let Some(op) = op {
            let failed = usize::from(!(200..300).contains(&status));
            self.counts[slot(op)][failed].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn succeeded(&self, op: StoreOp) -> u64 {
        self.counts[slot(op)][0].load(Ordering::Relaxed)
    }

    fn failed(&self, op: StoreOp) -> u64 {
        self.counts[slot(op)][1].load(Ordering::Relaxed)
    }
}

/// Where `op`'s counts are kept: reads first, then each kind of write.
fn slot(op: StoreOp) -> usize {
    match op {
        StoreOp::Get => 0,
        StoreOp::Write(action) => 1 + action as usize,
    }
}

/// Route one `/v2/stats/...` request.
pub fn handle<B: Backend>(api: &Api<B>, path: &str) -> Reply {
    let status = api.backend.status();
    let id = format!("{:x}", status.id);
    match path.trim_end_matches('/') {
        "/v2/stats/self" => {
            let state = if status.leader == status.id { "StateLeader" } else { "StateFollower" };
            Reply::json(
                200,
                &json!({
                    "name": status.name,
                    "id": id,
                    "state": state,
                    "leaderInfo": { "leader": format!("{:x}", status.leader) },
                }),
            )
        }
        "/v2/stats/leader" if status.leader == status.id => {
            let followers: serde_json::Map<String, serde_json::Value> = status
                .members
                .iter()
                .filter(|m| m.id != status.id)
                .map(|m| (format!("{:x}", m.id), json!({})))
                .collect();
            Reply::json(200, &json!({ "leader": id, "followers": followers }))
        }
        "/v2/stats/leader" => Reply::json(403, &json!({ "message": "not current leader" })),
        "/v2/stats/store" => {
            let s = &api.store_stats;
            Reply::json(
                200,
                &json!({
                    "getsSuccess": s.succeeded(StoreOp::Get), "getsFail": s.failed(StoreOp::Get),
                    "setsSuccess": s.succeeded(StoreOp::Write(V2Action::Set)), "setsFail": s.failed(StoreOp::Write(V2Action::Set)),
                    "deleteSuccess": s.succeeded(StoreOp::Write(V2Action::Delete)), "deleteFail": s.failed(StoreOp::Write(V2Action::Delete)),
                    "updateSuccess": s.succeeded(StoreOp::Write(V2Action::Update)), "updateFail": s.failed(StoreOp::Write(V2Action::Update)),
                    "createSuccess": s.succeeded(StoreOp::Write(V2Action::Create)), "createFail": s.failed(StoreOp::Write(V2Action::Create)),
                    "compareAndSwapSuccess": s.succeeded(StoreOp::Write(V2Action::CompareAndSwap)),
                    "compareAndSwapFail": s.failed(StoreOp::Write(V2Action::CompareAndSwap)),
                    "compareAndDeleteSuccess": s.succeeded(StoreOp::Write(V2Action::CompareAndDelete)),
                    "compareAndDeleteFail": s.failed(StoreOp::Write(V2Action::CompareAndDelete)),
                    "expireCount": status.expired_keys,
                    "watchers": api.metrics.watchers.get(),
                }),
            )
        }
        _ => Reply::text(404, "404 page not found\n"),
    }
}
