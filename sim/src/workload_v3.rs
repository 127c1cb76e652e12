//! The v3 clients: the register and lock workloads again, through the v3 JSON gateway (etcd's
//! grpc-gateway) instead of the v2 API. Keel keeps one key space and one revision counter for
//! both APIs, so v3 operations land in the same history, on the same register keys, as v2 ones,
//! and the same checkers judge them together.

use std::net::SocketAddr;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::Rng;
use serde_json::{json, Value};

use crate::client::{post_json, Reply};
use crate::history::{Call, Op, Outcome, Return};
use crate::rng::rng;
use crate::workload::{pause_ms, record_outcome, register_loop, Env, CLIENT_TIMEOUT, TTL_S};

/// The lock v3 lock clients contend for, through etcd's Lock service.
pub const LOCK_V3: &str = "/locks/v3";

/// The election v3 election clients campaign in, through etcd's Election service.
pub const ELECTION_V3: &str = "/elections/v3";

/// A string as the gateway's base64 bytes.
pub(crate) fn b64(s: &str) -> String {
    B64.encode(s)
}

/// Base64 bytes from the gateway as text (lossy).
pub(crate) fn unb64(s: &str) -> String {
    B64.decode(s).map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_default()
}

/// A gateway int64 (a string) or number.
pub(crate) fn int(v: &Value) -> u64 {
    v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_u64()).unwrap_or(0)
}

/// A gateway answer: the body of a 200, or how the call failed (`Err(true)`: it may still
/// have happened).
pub(crate) async fn call(addr: SocketAddr, name: &str, body: Value) -> Result<Value, (bool, String)> {
    match post_json(addr, name, &body, CLIENT_TIMEOUT).await {
        Reply::Answered { status: 200, body, .. } => Ok(body),
        Reply::Answered { status, body, .. } => Err((true, format!("{status} {body}"))),
        Reply::NotSent(e) => Err((false, e)),
        Reply::Lost(e) => Err((true, e)),
    }
}

/// How a failed call ends the operation: a read that failed changed nothing, a write that
/// failed for an unknown reason may still commit.
pub(crate) fn failure(reading: bool, (maybe, e): (bool, String)) -> Outcome {
    if maybe && !reading {
        Outcome::Unknown(e)
    } else {
        Outcome::Failed(e)
    }
}

/// A register operation (get, put, compare-and-swap) through the gateway.
async fn register_op(addr: SocketAddr, call: &Call) -> Outcome {
    let (reading, name, body) = match call {
        Call::Get { key } => (true, "kv/range", json!({ "key": b64(key) })),
        Call::Put { key, value } => (false, "kv/put", json!({ "key": b64(key), "value": b64(value) })),
        Call::Cas { key, expected, value } => {
            let compare = match expected {
                Some(prev) => json!({ "key": b64(key), "result": "EQUAL", "target": "VALUE", "value": b64(prev) }),
                None => json!({ "key": b64(key), "result": "EQUAL", "target": "CREATE", "create_revision": "0" }),
            };
            let put = json!({ "request_put": { "key": b64(key), "value": b64(value) } });
            (false, "kv/txn", json!({ "compare": [compare], "success": [put] }))
        }
        _ => return Outcome::Failed(format!("not a register operation: {call:?}")),
    };
    let body = match self::call(addr, name, body).await {
        Ok(body) => body,
        Err(e) => return failure(reading, e),
    };
    let revision = int(&body["header"]["revision"]);
    match call {
        Call::Get { .. } => {
            let value = body["kvs"][0]["value"].as_str().map(unb64);
            Outcome::Ok(Return::Value { value, index: revision })
        }
        Call::Cas { .. } if body["succeeded"] != true => Outcome::Ok(Return::Refused),
        _ => Outcome::Ok(Return::Written { index: revision }),
    }
}

/// A v3 register client: linearizable ranges, puts and txn compare-and-swaps on the same keys
/// the v2 register clients use.
pub async fn register_client(env: Env, client: u64) -> Vec<Op> {
    register_loop(env, client, |addr, call| async move { register_op(addr, &call).await }).await
}

/// Which of etcd's recipes a v3 holder client uses. Both hand out an owner key on a lease
/// whose create revision fences its holder, so one checker judges both.
#[derive(Clone, Copy)]
enum Recipe {
    /// The Lock service: `lock/lock`, kept by lease keep-alives, released by a fenced txn.
    Lock,
    /// The Election service: `election/campaign`, kept and released by `election/proclaim`
    /// (which checks the leader key's create revision), then `election/resign`.
    Election,
}

impl Recipe {
    fn name(self) -> &'static str {
        match self {
            Recipe::Lock => LOCK_V3,
            Recipe::Election => ELECTION_V3,
        }
    }
}

/// What a v3 holder needs to keep and release what it holds.
struct Held {
    lease: String,
    key: String,
    token: u64,
    /// The Election service's leader key (`Null` for locks).
    leader: Value,
}

/// Take the lock or leadership: grant a lease, wait in etcd's Lock or Election service, and
/// learn the owner key's create revision — the fencing token, which orders holders as the
/// service's queue does.
async fn acquire(addr: SocketAddr, ttl: u64, recipe: Recipe, client: u64) -> (Outcome, Option<Held>) {
    let lease = match call(addr, "lease/grant", json!({ "TTL": ttl.to_string() })).await {
        Ok(body) => body["ID"].as_str().unwrap_or_default().to_string(),
        Err(e) => return (failure(true, e), None),
    };
    if let Recipe::Election = recipe {
        let campaign = json!({ "name": b64(ELECTION_V3), "lease": lease, "value": b64(&format!("c{client}")) });
        return match call(addr, "election/campaign", campaign).await {
            Ok(body) if body["leader"]["rev"].is_string() => {
                let leader = body["leader"].clone();
                let (key, token) = (leader["key"].as_str().unwrap_or_default().to_string(), int(&leader["rev"]));
                (Outcome::Ok(Return::Acquired { token }), Some(Held { lease, key, token, leader }))
            }
            Ok(body) => (Outcome::Unknown(format!("no leader key in {body}")), None),
            Err(e) => (failure(false, e), None),
        };
    }
    let key = match call(addr, "lock/lock", json!({ "name": b64(LOCK_V3), "lease": lease })).await {
        Ok(body) => body["key"].as_str().unwrap_or_default().to_string(),
        Err(e) => return (failure(false, e), None),
    };
    match call(addr, "kv/range", json!({ "key": key })).await {
        Ok(body) if body["kvs"][0]["create_revision"].is_string() => {
            let token = int(&body["kvs"][0]["create_revision"]);
            (Outcome::Ok(Return::Acquired { token }), Some(Held { lease, key, token, leader: Value::Null }))
        }
        // Acquired, but the key is already gone (the lease expired): nothing is held.
        Ok(_) => (Outcome::Unknown("the owner key vanished".into()), None),
        Err(e) => (failure(false, e), None),
    }
}

/// Keep the lock: a keep-alive of its lease. A live lease proves the owner key (attached to
/// it) still exists; TTL 0 means the lease, and with it the lock, is gone. Leadership is kept
/// by a proclamation, which proves it directly.
async fn refresh(addr: SocketAddr, held: &Held, recipe: Recipe) -> Outcome {
    if let Recipe::Election = recipe {
        return proclaim(addr, held).await;
    }
    match call(addr, "lease/keepalive", json!({ "ID": held.lease })).await {
        Ok(body) if int(&body["result"]["TTL"]) > 0 => {
            Outcome::Ok(Return::Written { index: int(&body["result"]["header"]["revision"]) })
        }
        Ok(body) if body["result"].is_object() => Outcome::Ok(Return::Refused),
        Ok(body) => Outcome::Failed(format!("no keep-alive answer: {body}")),
        Err(e) => failure(true, e),
    }
}

/// A new value from the leader: the service writes it only if the leader key still has our
/// create revision, so a success proves leadership at that moment.
async fn proclaim(addr: SocketAddr, held: &Held) -> Outcome {
    match call(addr, "election/proclaim", json!({ "leader": held.leader, "value": b64("still leading") })).await {
        Ok(body) => Outcome::Ok(Return::Written { index: int(&body["header"]["revision"]) }),
        Err((_, e)) if e.contains("election: not leader") => Outcome::Ok(Return::Refused),
        Err(e) => failure(false, e),
    }
}

/// Release the lock only if the owner key is still ours (same create revision): a txn, so a
/// release after the lease expired cannot pass for proof that we still held it. Leadership is
/// released by a last proclamation, the proof, then a resignation.
async fn release(addr: SocketAddr, held: &Held, recipe: Recipe) -> Outcome {
    let outcome = match recipe {
        Recipe::Election => {
            let proof = proclaim(addr, held).await;
            let _ = call(addr, "election/resign", json!({ "leader": held.leader })).await;
            proof
        }
        Recipe::Lock => {
            let compare = json!({ "key": held.key, "result": "EQUAL", "target": "CREATE", "create_revision": held.token.to_string() });
            let delete = json!({ "request_delete_range": { "key": held.key } });
            match call(addr, "kv/txn", json!({ "compare": [compare], "success": [delete] })).await {
                Ok(body) if body["succeeded"] == true => {
                    Outcome::Ok(Return::Written { index: int(&body["header"]["revision"]) })
                }
                Ok(_) => Outcome::Ok(Return::Refused),
                Err(e) => failure(false, e),
            }
        }
    };
    // Done with the lease either way; if this fails it expires on its own.
    let _ = call(addr, "lease/revoke", json!({ "ID": held.lease })).await;
    outcome
}

/// A v3 lock client: etcd's Lock service with a lease it keeps alive, releases fenced by the
/// owner key's create revision. The lock checker judges it as it judges the v2 lock clients.
pub async fn lock_client(env: Env, client: u64) -> Vec<Op> {
    holder_client(env, client, Recipe::Lock).await
}

/// A v3 election client: campaigns in etcd's Election service, proclaims while it leads,
/// resigns. Leadership is a lock by another name, so the lock checker judges it: no two
/// leaders at once, fencing tokens (leader key create revisions) growing with each leader.
pub async fn election_client(env: Env, client: u64) -> Vec<Op> {
    holder_client(env, client, Recipe::Election).await
}

/// Take, keep a while, and give up what `recipe` hands out, over and over.
async fn holder_client(env: Env, client: u64, recipe: Recipe) -> Vec<Op> {
    let mut ops = Vec::new();
    let lock = recipe.name().to_string();
    while !env.stopped() {
        let member = env.pick_member();
        let (addr, call) = (env.addr(member), Call::LockAcquire { lock: lock.clone(), ttl: TTL_S });
        let mut held = None;
        let run = async {
            let (outcome, h) = acquire(addr, TTL_S, recipe, client).await;
            held = h;
            outcome
        };
        record_outcome(&env, client, member, call, &mut ops, run).await;
        let Some(held) = held else {
            pause_ms(100, 500).await;
            continue;
        };
        let mut holding = true;
        for _ in 0..rng().gen_range(0..4) {
            pause_ms(200, 900).await;
            let member = env.pick_member();
            let call = Call::LockRefresh { lock: lock.clone(), token: held.token, prev_index: 0 };
            if !matches!(
                record_outcome(&env, client, member, call, &mut ops, refresh(env.addr(member), &held, recipe)).await,
                Outcome::Ok(Return::Written { .. })
            ) {
                holding = false;
                break;
            }
        }
        if holding {
            let member = env.pick_member();
            let call = Call::LockRelease { lock: lock.clone(), token: held.token, prev_index: 0 };
            record_outcome(&env, client, member, call, &mut ops, release(env.addr(member), &held, recipe)).await;
        }
        pause_ms(50, 400).await;
    }
    ops
}

/// How far behind the current revision the operator compacts.
const COMPACTION_LAG: u64 = 50;

/// An operator compacting the history every few seconds, a little behind the current revision:
/// members delete the discarded history in batches while faults strike, and every checker must
/// still hold (a watcher that fell further behind is told its revision was compacted). Records
/// no operations: what compaction may not change is what the other clients check.
pub async fn compactor_client(env: Env, _client: u64) -> Vec<Op> {
    while !env.stopped() {
        pause_ms(2_000, 5_000).await;
        let addr = env.addr(env.pick_member());
        let Ok(body) = call(addr, "kv/range", json!({ "key": b64("/compactor"), "serializable": true })).await else {
            continue;
        };
        let revision = int(&body["header"]["revision"]).saturating_sub(COMPACTION_LAG);
        if revision > 1 {
            let _ = call(addr, "kv/compaction", json!({ "revision": revision.to_string() })).await;
        }
    }
    Vec::new()
}
