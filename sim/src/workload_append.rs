//! The append workload: clients append unique elements to a few list keys with
//! read-modify-write transactions through the v3 gateway — read the list and its mod revision,
//! then a txn that writes the longer list only if the key's mod revision is unchanged — and
//! read the lists. The append checker then asks whether every list only ever grew, as one
//! sequence per key (see `checker::append`).

use rand::Rng;
use serde_json::json;

use crate::history::{Call, Op, Outcome, Return};
use crate::rng::rng;
use crate::workload::{pause_ms, record, Env};
use crate::workload_v3::{b64, call, failure, int, unb64};

/// The list keys appended to.
pub const APPEND_KEYS: usize = 2;

/// The `k`-th list key.
pub fn append_key(k: usize) -> String {
    format!("/append/{k}")
}

/// A list's elements and its key's mod revision (0: no such key yet).
async fn read_list(addr: std::net::SocketAddr, key: &str) -> Result<(Vec<String>, u64), Outcome> {
    let body = call(addr, "kv/range", json!({ "key": b64(key) })).await.map_err(|e| failure(true, e))?;
    let kv = &body["kvs"][0];
    let text = kv["value"].as_str().map(unb64).unwrap_or_default();
    let items = text.split(',').filter(|s| !s.is_empty()).map(String::from).collect();
    Ok((items, int(&kv["mod_revision"])))
}

/// Carry out one append or read; an append answers with the list it wrote.
pub(crate) async fn carry_out(addr: std::net::SocketAddr, call_: &Call) -> Outcome {
    match call_ {
        Call::ReadList { key } => match read_list(addr, key).await {
            Ok((items, _)) => Outcome::Ok(Return::Items(items)),
            Err(outcome) => outcome,
        },
        Call::Append { key, element } => {
            let (mut items, revision) = match read_list(addr, key).await {
                Ok(read) => read,
                Err(outcome) => return outcome,
            };
            items.push(element.clone());
            let compare =
                json!({ "key": b64(key), "result": "EQUAL", "target": "MOD", "mod_revision": revision.to_string() });
            let put = json!({ "request_put": { "key": b64(key), "value": b64(&items.join(",")) } });
            match call(addr, "kv/txn", json!({ "compare": [compare], "success": [put] })).await {
                Ok(body) if body["succeeded"] == true => Outcome::Ok(Return::Items(items)),
                Ok(_) => Outcome::Ok(Return::Refused),
                Err(e) => failure(false, e),
            }
        }
        other => Outcome::Failed(format!("not an append operation: {other:?}")),
    }
}

/// An append client: unique elements appended to random list keys, lists read in between.
pub async fn append_client(env: Env, client: u64) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut seq = 0u64;
    while !env.stopped() {
        let key = append_key(rng().gen_range(0..APPEND_KEYS));
        seq += 1;
        let call_ = match rng().gen_range(0..3) {
            0 => Call::ReadList { key },
            _ => Call::Append { key, element: format!("c{client}-{seq}") },
        };
        record(&env, client, env.pick_member(), call_, &mut ops).await;
        pause_ms(0, 80).await;
    }
    ops
}
