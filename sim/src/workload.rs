//! The clients. Each talks to members over the v2 HTTP API exactly as curl would, and records
//! every operation with its invoke and complete times. Which member, which key and when are
//! drawn from [`crate::rng`]. In the simulation each runs on its own simulated host; the
//! partition suite runs the same clients against real processes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use rand::Rng;
use serde_json::Value;
use tokio::time::Instant;

use crate::client::{request, Reply};
use crate::history::{Call, Op, Outcome, Return, SeenEvent, WatchLog};
use crate::rng::rng;

/// Register keys live under this directory (watchers watch it).
pub const REGISTER_DIR: &str = "/r";
/// How many register keys clients contend on.
pub const REGISTER_KEYS: usize = 3;
/// The lock every lock client contends for.
pub const LOCK_KEY: &str = "/locks/l";
/// TTL of lock keys and service registrations, in seconds.
pub const TTL_S: u64 = 3;
/// How long a client waits for an answer before it records the operation as unknown.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(4);

/// What every client shares: the run's start (times are relative to it), where each member
/// serves clients, and the stop signal.
#[derive(Clone)]
pub struct Env {
    pub start: Instant,
    /// Member `i`'s client address.
    pub members: Arc<Vec<SocketAddr>>,
    pub stop: Arc<AtomicBool>,
}

impl Env {
    pub(crate) fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub(crate) fn pick_member(&self) -> usize {
        rng().gen_range(0..self.members.len())
    }

    pub(crate) fn addr(&self, member: usize) -> SocketAddr {
        self.members[member]
    }
}

/// The key of register `i`.
pub fn register_key(i: usize) -> String {
    format!("{REGISTER_DIR}/k{i}")
}

pub(crate) async fn pause_ms(lo: u64, hi: u64) {
    let ms = rng().gen_range(lo..hi);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// One call (v2, or a list append or read through the v3 gateway): send it to `member`, record
/// it in `ops`, and return how it ended.
pub async fn record(env: &Env, client: u64, member: usize, call: Call, ops: &mut Vec<Op>) -> Outcome {
    let addr = env.addr(member);
    let run = async {
        match &call {
            Call::Dequeue { queue } => dequeue(addr, queue).await,
            Call::ListQueue { queue } => list_queue(addr, queue).await,
            Call::Append { .. } | Call::ReadList { .. } => crate::workload_append::carry_out(addr, &call).await,
            _ => interpret(&call, send(addr, &call).await),
        }
    };
    record_outcome(env, client, member, call.clone(), ops, run).await
}

/// Record `call`, sent to `member`, as ending with what `run` (the requests that carry it out,
/// through whichever API) returns, timed from invocation to completion.
pub async fn record_outcome(
    env: &Env,
    client: u64,
    member: usize,
    call: Call,
    ops: &mut Vec<Op>,
    run: impl std::future::Future<Output = Outcome>,
) -> Outcome {
    let invoke_ms = env.now_ms();
    let outcome = run.await;
    ops.push(Op { client, member, call, invoke_ms, complete_ms: env.now_ms(), outcome: outcome.clone() });
    outcome
}

/// The v2 request that carries out `call`.
async fn send(addr: SocketAddr, call: &Call) -> Reply {
    let ttl;
    let (method, path, form): (&str, String, Vec<(&str, &str)>) = match call {
        Call::Get { key } | Call::Lookup { key } => ("GET", format!("/v2/keys{key}?quorum=true"), vec![]),
        Call::Put { key, value } => ("PUT", format!("/v2/keys{key}"), vec![("value", value)]),
        Call::Cas { key, expected: Some(prev), value } => {
            ("PUT", format!("/v2/keys{key}"), vec![("value", value), ("prevValue", prev)])
        }
        Call::Cas { key, expected: None, value } => {
            ("PUT", format!("/v2/keys{key}"), vec![("value", value), ("prevExist", "false")])
        }
        Call::LockAcquire { lock, ttl: t } => {
            ttl = t.to_string();
            ("PUT", format!("/v2/keys{lock}"), vec![("value", "held"), ("prevExist", "false"), ("ttl", &ttl)])
        }
        Call::LockRefresh { lock, prev_index, .. } => {
            ttl = TTL_S.to_string();
            ("PUT", format!("/v2/keys{lock}?prevIndex={prev_index}"), vec![("refresh", "true"), ("ttl", &ttl)])
        }
        Call::LockRelease { lock, prev_index, .. } => {
            ("DELETE", format!("/v2/keys{lock}?prevIndex={prev_index}"), vec![])
        }
        Call::Register { key, ttl: t } => {
            ttl = t.to_string();
            ("PUT", format!("/v2/keys{key}"), vec![("value", "up"), ("ttl", &ttl)])
        }
        Call::Heartbeat { key, ttl: t } => {
            ttl = t.to_string();
            ("PUT", format!("/v2/keys{key}"), vec![("refresh", "true"), ("prevExist", "true"), ("ttl", &ttl)])
        }
        Call::Enqueue { queue, value } => ("POST", format!("/v2/keys{queue}"), vec![("value", value)]),
        // Two requests each: see `dequeue` and `list_queue`.
        Call::Dequeue { .. } | Call::ListQueue { .. } => return Reply::NotSent("not a single request".into()),
        Call::Append { .. } | Call::ReadList { .. } => return Reply::NotSent("not a v2 request".into()),
    };
    request(addr, method, &path, &form, CLIENT_TIMEOUT).await
}

/// etcd v2 error codes that mean "the condition did not hold": key not found, compare failed,
/// key exists.
fn refused(body: &Value) -> bool {
    matches!(body["errorCode"].as_u64(), Some(100 | 101 | 105))
}

fn node_index(body: &Value, field: &str) -> u64 {
    body["node"][field].as_u64().unwrap_or(0)
}

/// What a reply means for `call`.
fn interpret(call: &Call, reply: Reply) -> Outcome {
    let (status, index, body) = match reply {
        Reply::Answered { status, index, body } => (status, index, body),
        Reply::NotSent(e) => return Outcome::Failed(e),
        Reply::Lost(e) => return Outcome::Unknown(e),
    };
    let reading = matches!(call, Call::Get { .. } | Call::Lookup { .. });
    match status {
        200 | 201 if reading => {
            Outcome::Ok(Return::Value { value: body["node"]["value"].as_str().map(String::from), index })
        }
        404 if reading && body["errorCode"].as_u64() == Some(100) => Outcome::Ok(Return::Value { value: None, index }),
        200 | 201 if matches!(call, Call::LockAcquire { .. }) => {
            Outcome::Ok(Return::Acquired { token: node_index(&body, "createdIndex") })
        }
        200 | 201 => Outcome::Ok(Return::Written { index: node_index(&body, "modifiedIndex") }),
        404 | 412 if refused(&body) => Outcome::Ok(Return::Refused),
        // A read that failed changed nothing; a write that failed for an unknown reason
        // (timeout, leader lost) may still commit.
        _ if reading => Outcome::Failed(format!("{status} {body}")),
        _ => Outcome::Unknown(format!("{status} {body}")),
    }
}

/// A register client: linearizable reads, writes and compare-and-swaps on a few hot keys.
pub async fn register_client(env: Env, client: u64) -> Vec<Op> {
    register_loop(env, client, |addr, call| async move { interpret(&call, send(addr, &call).await) }).await
}

/// The register clients' loop, over either API: `run` carries out one call at a member's
/// address (v2 requests here, v3 gateway calls in `workload_v3`).
pub async fn register_loop<F>(env: Env, client: u64, run: impl Fn(SocketAddr, Call) -> F) -> Vec<Op>
where
    F: std::future::Future<Output = Outcome>,
{
    let mut ops = Vec::new();
    let mut seq = 0u64;
    let mut last_seen: Vec<Option<String>> = vec![None; REGISTER_KEYS];
    while !env.stopped() {
        let k = rng().gen_range(0..REGISTER_KEYS);
        let key = register_key(k);
        seq += 1;
        let value = format!("c{client}-{seq}");
        let call = match rng().gen_range(0..10) {
            0..=3 => Call::Get { key },
            4..=6 => Call::Put { key, value },
            _ => Call::Cas { key, expected: last_seen[k].clone(), value },
        };
        let member = env.pick_member();
        let outcome = record_outcome(&env, client, member, call.clone(), &mut ops, run(env.addr(member), call)).await;
        if let Outcome::Ok(Return::Value { value, .. }) = outcome {
            last_seen[k] = value;
        }
        pause_ms(0, 60).await;
    }
    ops
}

/// A lock client: take the lock (create-if-absent with a TTL), hold it a while refreshing it,
/// release it; the lock checker proves no two clients held it at once.
pub async fn lock_client(env: Env, client: u64) -> Vec<Op> {
    let mut ops = Vec::new();
    let lock = LOCK_KEY.to_string();
    while !env.stopped() {
        let member = env.pick_member();
        let got = record(&env, client, member, Call::LockAcquire { lock: lock.clone(), ttl: TTL_S }, &mut ops).await;
        let Outcome::Ok(Return::Acquired { token }) = got else {
            pause_ms(100, 500).await;
            continue;
        };
        let mut prev_index = token;
        let rounds = rng().gen_range(0..4);
        let mut held = true;
        for _ in 0..rounds {
            pause_ms(200, 900).await;
            let call = Call::LockRefresh { lock: lock.clone(), token, prev_index };
            match record(&env, client, env.pick_member(), call, &mut ops).await {
                Outcome::Ok(Return::Written { index }) => prev_index = index.max(prev_index),
                _ => {
                    held = false;
                    break;
                }
            }
        }
        if held {
            let call = Call::LockRelease { lock: lock.clone(), token, prev_index };
            record(&env, client, env.pick_member(), call, &mut ops).await;
        }
        pause_ms(50, 400).await;
    }
    ops
}

/// A service instance: registers itself with a TTL, heartbeats, sometimes dies (stops
/// heartbeating) and comes back; others look it up. The lease checker judges expiry.
pub async fn service_client(env: Env, client: u64) -> Vec<Op> {
    let mut ops = Vec::new();
    let key = format!("/svc/c{client}");
    while !env.stopped() {
        let registered =
            record(&env, client, env.pick_member(), Call::Register { key: key.clone(), ttl: TTL_S }, &mut ops).await;
        if !matches!(registered, Outcome::Ok(_)) {
            pause_ms(200, 600).await;
            continue;
        }
        let beats = rng().gen_range(2..10);
        for _ in 0..beats {
            pause_ms(300, 900).await;
            let beat =
                record(&env, client, env.pick_member(), Call::Heartbeat { key: key.clone(), ttl: TTL_S }, &mut ops)
                    .await;
            if matches!(beat, Outcome::Ok(Return::Refused)) || env.stopped() {
                break;
            }
        }
        // Die quietly, and watch the registration go.
        for _ in 0..4 {
            if env.stopped() {
                break;
            }
            pause_ms(800, 1600).await;
            record(&env, client, env.pick_member(), Call::Lookup { key: key.clone() }, &mut ops).await;
        }
    }
    ops
}

/// A watcher on the register directory: v2 long polls (`wait=true&recursive=true`), each
/// resuming at the index after the last event seen.
pub async fn watch_client(env: Env, watcher: u64) -> Vec<WatchLog> {
    let mut logs = Vec::new();
    let mut log: Option<WatchLog> = None;
    while !env.stopped() {
        let member = env.pick_member();
        let Some(current) = log.as_mut() else {
            // Start from the directory's current index.
            let path = format!("/v2/keys{REGISTER_DIR}?quorum=true");
            if let Reply::Answered { index, .. } = request(env.addr(member), "GET", &path, &[], CLIENT_TIMEOUT).await {
                if index > 0 {
                    log =
                        Some(WatchLog { watcher, prefix: REGISTER_DIR.into(), start_index: index + 1, events: vec![] });
                }
            }
            pause_ms(50, 200).await;
            continue;
        };
        let next = current.events.last().map_or(current.start_index, |e| e.index + 1);
        let path = format!("/v2/keys{REGISTER_DIR}?wait=true&recursive=true&waitIndex={next}");
        match request(env.addr(member), "GET", &path, &[], CLIENT_TIMEOUT).await {
            Reply::Answered { status: 200, body, .. } => {
                let node = &body["node"];
                let event = SeenEvent {
                    index: node["modifiedIndex"].as_u64().unwrap_or(0),
                    key: node["key"].as_str().unwrap_or_default().to_string(),
                    value: node["value"].as_str().map(String::from),
                    at_ms: env.now_ms(),
                };
                current.events.push(event);
            }
            Reply::Answered { body, .. } if body["errorCode"].as_u64() == Some(401) => {
                // The history we need was compacted: this log ends, a new one starts.
                logs.extend(log.take());
            }
            _ => pause_ms(50, 300).await,
        }
    }
    logs.extend(log);
    logs
}

/// The queue producers and consumers share.
pub const QUEUE_DIR: &str = "/q";

/// A queue producer: appends unique items with POST (in-order keys).
pub async fn producer_client(env: Env, client: u64) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut seq = 0u64;
    while !env.stopped() {
        seq += 1;
        let call = Call::Enqueue { queue: QUEUE_DIR.into(), value: format!("c{client}-{seq}") };
        record(&env, client, env.pick_member(), call, &mut ops).await;
        pause_ms(50, 400).await;
    }
    ops
}

/// A queue consumer: takes the oldest item, again and again.
pub async fn consumer_client(env: Env, client: u64) -> Vec<Op> {
    let mut ops = Vec::new();
    while !env.stopped() {
        record(&env, client, env.pick_member(), Call::Dequeue { queue: QUEUE_DIR.into() }, &mut ops).await;
        pause_ms(50, 400).await;
    }
    ops
}

/// The queue's items (key, value, modified index), oldest first.
fn queue_items(body: &Value) -> Vec<(String, String, u64)> {
    body["node"]["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .map(|n| {
                    let key = n["key"].as_str().unwrap_or_default().to_string();
                    (key, n["value"].as_str().unwrap_or_default().to_string(), n["modifiedIndex"].as_u64().unwrap_or(0))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A dequeue: a sorted linearizable listing, then a delete of the oldest item guarded by its
/// index, so two consumers can never both take it.
async fn dequeue(addr: SocketAddr, queue: &str) -> Outcome {
    let listing = request(addr, "GET", &format!("/v2/keys{queue}?sorted=true&quorum=true"), &[], CLIENT_TIMEOUT).await;
    let (index, body) = match listing {
        Reply::Answered { status: 200, index, body } => (index, body),
        Reply::Answered { status: 404, index, .. } => return Outcome::Ok(Return::Value { value: None, index }),
        Reply::Answered { status, body, .. } => return Outcome::Failed(format!("{status} {body}")),
        Reply::NotSent(e) | Reply::Lost(e) => return Outcome::Failed(e),
    };
    let Some((key, value, modified)) = queue_items(&body).into_iter().next() else {
        return Outcome::Ok(Return::Value { value: None, index });
    };
    let path = format!("/v2/keys{key}?prevIndex={modified}");
    match request(addr, "DELETE", &path, &[], CLIENT_TIMEOUT).await {
        Reply::Answered { status: 200, index, .. } => Outcome::Ok(Return::Value { value: Some(value), index }),
        Reply::Answered { status: 404 | 412, ref body, .. } if refused(body) => Outcome::Ok(Return::Refused),
        Reply::Answered { status, body, .. } => Outcome::Unknown(format!("{status} {body}")),
        Reply::NotSent(e) => Outcome::Failed(e),
        Reply::Lost(e) => Outcome::Unknown(e),
    }
}

/// Every item left in `queue`.
async fn list_queue(addr: SocketAddr, queue: &str) -> Outcome {
    match request(addr, "GET", &format!("/v2/keys{queue}?sorted=true&quorum=true"), &[], CLIENT_TIMEOUT).await {
        Reply::Answered { status: 200, body, .. } => {
            Outcome::Ok(Return::Items(queue_items(&body).into_iter().map(|(_, v, _)| v).collect()))
        }
        Reply::Answered { status: 404, .. } => Outcome::Ok(Return::Items(vec![])),
        Reply::Answered { status, body, .. } => Outcome::Failed(format!("{status} {body}")),
        Reply::NotSent(e) | Reply::Lost(e) => Outcome::Failed(e),
    }
}

/// One client's work: the operations it did, once the run stops.
pub type ClientRun = std::pin::Pin<Box<dyn std::future::Future<Output = Vec<Op>> + Send>>;

/// Every client of a run with its id; the simulator and the partition suite run the same ones.
/// v2, v3 gateway and v3 gRPC clients share the register keys; v2 and v3 lock clients and v3
/// election clients the lock checker (each with its own lock name); then list appends, TTL
/// service registrations, and a queue's producers and consumers. Watchers are apart
/// ([`watch_client`]).
pub fn clients(env: &Env) -> Vec<(u64, ClientRun)> {
    use crate::{workload_append, workload_grpc, workload_v3};
    let mut out: Vec<(u64, ClientRun)> = Vec::new();
    let mut add = |ids: std::ops::Range<u64>, client: fn(Env, u64) -> ClientRun| {
        out.extend(ids.map(|c| (c, client(env.clone(), c))))
    };
    add(0..3, |e, c| Box::pin(register_client(e, c)));
    add(3..4, |e, c| Box::pin(workload_v3::register_client(e, c)));
    add(4..5, |e, c| Box::pin(workload_grpc::register_client(e, c)));
    add(10..12, |e, c| Box::pin(lock_client(e, c)));
    add(12..14, |e, c| Box::pin(workload_v3::lock_client(e, c)));
    add(14..16, |e, c| Box::pin(workload_v3::election_client(e, c)));
    add(16..18, |e, c| Box::pin(workload_append::append_client(e, c)));
    add(20..22, |e, c| Box::pin(service_client(e, c)));
    add(40..42, |e, c| Box::pin(producer_client(e, c)));
    add(42..44, |e, c| Box::pin(consumer_client(e, c)));
    add(50..51, |e, c| Box::pin(workload_v3::compactor_client(e, c)));
    out
}

/// Linearizable reads of every register key through every member, and the queue's and the
/// append lists' contents, after all faults healed: an acknowledged write lost shows up as a
/// violation.
pub async fn final_reads(env: &Env, members: &[usize]) -> Vec<Op> {
    let mut ops = Vec::new();
    for &m in members {
        for k in 0..REGISTER_KEYS {
            read_until_answered(env, 1000 + m as u64, m, Call::Get { key: register_key(k) }, &mut ops).await;
        }
    }
    let Some(&first) = members.first() else { return ops };
    read_until_answered(env, 1000, first, Call::ListQueue { queue: QUEUE_DIR.into() }, &mut ops).await;
    for k in 0..crate::workload_append::APPEND_KEYS {
        read_until_answered(env, 1000, first, Call::ReadList { key: crate::workload_append::append_key(k) }, &mut ops)
            .await;
    }
    ops
}

/// Record `call` at member `m` until it is answered: ten tries, half a second apart.
async fn read_until_answered(env: &Env, client: u64, m: usize, call: Call, ops: &mut Vec<Op>) {
    for _ in 0..10 {
        if let Outcome::Ok(_) = record(env, client, m, call.clone(), ops).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
