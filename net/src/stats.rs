//! etcd's v2 stats endpoints (`/v2/stats/self|leader|store`), from what the member tracks.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use crate::backend::Backend;
use crate::http::{Api, Reply};

/// Counts of v2 keys requests by outcome, for `/v2/stats/store`. Counted by HTTP method:
/// GET = gets, PUT = sets (set, update and compare-and-swap alike), POST = creates,
/// DELETE = deletes.
#[derive(Default)]
pub struct StoreStats {
    counts: [AtomicU64; 8],
}

impl StoreStats {
    /// Count one answered v2 keys request.
    pub fn record(&self, method: &str, status: u16) {
        let kind = match method {
            "GET" => 0,
            "PUT" => 2,
            "POST" => 4,
            "DELETE" => 6,
            _ => return,
        };
        let failed = usize::from(!(200..300).contains(&status));
        self.counts[kind + failed].fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self, i: usize) -> u64 {
        self.counts[i].load(Ordering::Relaxed)
    }
}

/// Route one `/v2/stats/...` request.
pub fn handle<B: Backend>(api: &Api<B>, path: &str) -> Reply {
    let status = api.backend.status();
    let id = format!("{:x}", status.id);
    match path.trim_end_matches('/') {
        "/v2/stats/self" => {
            let state = if status.leader == status.id { "StateLeader" } else { "StateFollower" };
            Reply::json(200, &json!({
                "name": status.name,
                "id": id,
                "state": state,
                "leaderInfo": { "leader": format!("{:x}", status.leader) },
            }))
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
            Reply::json(200, &json!({
                "getsSuccess": s.get(0), "getsFail": s.get(1),
                "setsSuccess": s.get(2), "setsFail": s.get(3),
                "createSuccess": s.get(4), "createFail": s.get(5),
                "deleteSuccess": s.get(6), "deleteFail": s.get(7),
                "watchers": api.metrics.watchers.get(),
            }))
        }
        _ => Reply::text(404, "404 page not found\n"),
    }
}
