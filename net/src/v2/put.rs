//! PUT: set, create (`prevExist=false`), update (`prevExist=true`) and compare-and-swap
//! (`prevValue`/`prevIndex`), dispatched as etcd's v2 applier does, plus what every write
//! shares (retries, ops, answers). TTL handling is in [`super::ttl`], POST in [`super::post`].

use keel_core::kv::KeyValue;
use keel_core::request::{DeleteRangeRequest, PutRequest, RequestOp};

use super::error::{self, V2Error};
use super::json::{Event, Node};
use super::params::{KeyRequest, StoreOp};
use super::spot::{self, fail, Existing, Spot};
use super::store::Store;
use super::tree::{self, Entry};
use super::ttl::{refresh_file, update_dir, with_grant, Grant};
use super::{path, Reply};
use crate::backend::Backend;

/// How many times a write is re-planned after its guards failed before giving up.
pub const MAX_ATTEMPTS: usize = 16;

/// The error when a write kept losing races.
pub fn contention() -> V2Error {
    keel_core::error::Error::Timeout.into()
}

/// Write `key` with `value` and `lease`.
pub fn put_op(key: &[u8], value: &[u8], lease: i64) -> RequestOp {
    RequestOp::Put(PutRequest { key: key.to_vec(), value: value.to_vec(), lease, ..PutRequest::default() })
}

/// Delete exactly `key`.
pub fn delete_op(key: &[u8]) -> RequestOp {
    RequestOp::DeleteRange(DeleteRangeRequest { key: key.to_vec(), ..DeleteRangeRequest::default() })
}

/// Move a key to another lease, keeping its value.
pub fn relabel_op(key: &[u8], lease: i64) -> RequestOp {
    RequestOp::Put(PutRequest { key: key.to_vec(), lease, ignore_value: true, ..PutRequest::default() })
}

fn root_read_only<B: Backend>(st: &Store<'_, B>) -> V2Error {
    V2Error::new(error::ROOT_READ_ONLY, "/", st.current_revision())
}

/// Finish a write's answer: TTL fields, then drop the lease the key left if nothing else uses
/// it (after the fields were read, so `prevNode` still shows its TTL).
pub async fn answer<B: Backend>(
    st: &mut Store<'_, B>,
    status: u16,
    index: i64,
    mut event: Event,
    old_lease: i64,
    new_lease: i64,
) -> Reply {
    fill(st, &mut event).await;
    if old_lease != 0 && old_lease != new_lease {
        st.revoke_if_unused(old_lease).await;
    }
    Reply { status, index, event }
}

/// Fill the TTL fields of an event's nodes.
pub async fn fill<B: Backend>(st: &mut Store<'_, B>, event: &mut Event) {
    let mut nodes: Vec<&mut Node> = event.node.iter_mut().chain(event.prev_node.iter_mut()).collect();
    st.fill_ttls(&mut nodes).await;
}

/// PUT, dispatched as etcd does: `prevExist` first, then compare fields, else a set. Every
/// form refuses the root alike, so that is checked once, here.
pub async fn put<B: Backend>(st: &mut Store<'_, B>, req: &KeyRequest) -> Result<Reply, V2Error> {
    if path::is_root(&req.path) {
        return Err(root_read_only(st));
    }
    with_grant(st, async |st, grant| match req.store_op() {
        Some(StoreOp::Update) => update(st, req, grant).await,
        Some(StoreOp::CompareAndSwap) => cas(st, req, grant).await,
        Some(StoreOp::Create) => create(st, req, grant).await,
        _ => set(st, req, grant).await,
    })
    .await
}

/// Create or replace a file (or create a directory with `dir=true`).
async fn set<B: Backend>(st: &mut Store<'_, B>, req: &KeyRequest, grant: &mut Grant) -> Result<Reply, V2Error> {
    let p = req.path.as_str();
    for attempt in 0..MAX_ATTEMPTS {
        let Some(spot) = spot::read_checked(st, p, attempt).await? else {
            continue;
        };
        let prev = match spot.entry() {
            Entry::Dir(_) => fail!(spot, V2Error::new(error::NOT_FILE, p, spot.rev)),
            Entry::Absent if req.refresh => fail!(spot, spot::missing(st, p, spot.rev).await),
            Entry::File(kv) if req.refresh => match refresh_file(st, &spot, &kv, req, "set", grant).await? {
                Some(reply) => return Ok(reply),
                None => continue,
            },
            Entry::File(kv) => Some(kv),
            Entry::Absent => None,
        };
        if let Some(reply) = put_node(st, &spot, prev.as_ref(), req, "set", grant).await? {
            return Ok(reply);
        }
    }
    Err(contention())
}

/// Create a file or directory that must not exist yet.
async fn create<B: Backend>(st: &mut Store<'_, B>, req: &KeyRequest, grant: &mut Grant) -> Result<Reply, V2Error> {
    let p = req.path.as_str();
    for attempt in 0..MAX_ATTEMPTS {
        let Some(spot) = spot::read_checked(st, p, attempt).await? else {
            continue;
        };
        if spot.entry() != Entry::Absent {
            fail!(spot, V2Error::new(error::NODE_EXIST, p, spot.rev));
        }
        if let Some(reply) = put_node(st, &spot, None, req, "create", grant).await? {
            return Ok(reply);
        }
    }
    Err(contention())
}

/// Put the node asked for (a file with the value, or with `dir` an empty directory) where
/// `spot` found nothing, or the file `prev`, and answer as `action`: 201 for a new node, else
/// 200 with the file as `prevNode`. What a set and a create commit alike. `None` when the
/// guards failed.
async fn put_node<B: Backend>(
    st: &mut Store<'_, B>,
    spot: &Spot,
    prev: Option<&KeyValue>,
    req: &KeyRequest,
    action: &'static str,
    grant: &mut Grant,
) -> Result<Option<Reply>, V2Error> {
    let lease = grant.lease_for(st, req.ttl, spot.inherited_lease()).await?;
    let p = spot.path.as_str();
    if !req.dir {
        if let Some(kv) = prev {
            return replace_file(st, spot, kv, req.value.as_bytes(), lease, action, grant).await;
        }
    }
    let mut ops = Vec::new();
    if req.dir {
        // A directory in place of a file: the file goes in the same revision.
        if prev.is_some() {
            ops.push(delete_op(p.as_bytes()));
        }
        ops.push(put_op(spot.prefix().as_bytes(), b"", lease));
    } else {
        ops.push(put_op(p.as_bytes(), req.value.as_bytes(), lease));
    }
    let Some(t) = st.txn(spot.guards(false), ops).await? else {
        return Ok(None);
    };
    grant.committed(lease);
    let rev = t.header.revision;
    let node = if req.dir { Node::dir(p, rev, rev, lease) } else { Node::file(p, req.value.clone(), rev, rev, lease) };
    let prev_node = prev.map(|kv| tree::file_node(p, kv));
    let status = if prev.is_some() { 200 } else { 201 };
    let old = prev.map_or(0, |kv| kv.lease);
    let event = Event::new(action, node, prev_node);
    Ok(Some(answer(st, status, rev, event, old, lease).await))
}

/// Change an existing file's value (and TTL), or an existing directory's TTL.
async fn update<B: Backend>(st: &mut Store<'_, B>, req: &KeyRequest, grant: &mut Grant) -> Result<Reply, V2Error> {
    let p = req.path.as_str();
    for attempt in 0..MAX_ATTEMPTS {
        let Some((spot, found)) = spot::read_existing(st, p, attempt).await? else {
            continue;
        };
        let written = match found {
            Existing::Dir(_) if !req.value.is_empty() => {
                fail!(spot, V2Error::new(error::NOT_FILE, p, spot.rev))
            }
            Existing::Dir(info) => update_dir(st, &spot, &info, req, grant).await?,
            Existing::File(kv) => change_file(st, &spot, &kv, req, "update", grant).await?,
        };
        if let Some(reply) = written {
            return Ok(reply);
        }
    }
    Err(contention())
}

/// Replace a file's value (or refresh its TTL) if it matches `prevValue`/`prevIndex`.
async fn cas<B: Backend>(st: &mut Store<'_, B>, req: &KeyRequest, grant: &mut Grant) -> Result<Reply, V2Error> {
    let p = req.path.as_str();
    for attempt in 0..MAX_ATTEMPTS {
        let read = spot::read_file(st, p, attempt, req.prev_value.as_deref(), req.prev_index);
        let Some((spot, kv)) = read.await? else {
            continue;
        };
        if let Some(reply) = change_file(st, &spot, &kv, req, "compareAndSwap", grant).await? {
            return Ok(reply);
        }
    }
    Err(contention())
}

/// Change an existing file as asked: with `refresh`, only its TTL ([`refresh_file`]), else its
/// value (and TTL). `None` when the guards failed.
async fn change_file<B: Backend>(
    st: &mut Store<'_, B>,
    spot: &Spot,
    kv: &KeyValue,
    req: &KeyRequest,
    action: &'static str,
    grant: &mut Grant,
) -> Result<Option<Reply>, V2Error> {
    if req.refresh {
        return refresh_file(st, spot, kv, req, action, grant).await;
    }
    let lease = grant.lease_for(st, req.ttl, spot.inherited_lease()).await?;
    replace_file(st, spot, kv, req.value.as_bytes(), lease, action, grant).await
}

/// Put `value` with `lease` at the path of `spot`, where the file `kv` is, and answer as
/// `action` with the old file as `prevNode`: the commit every change of an existing file ends
/// with, be it a new value or a refresh moving the file to a fresh lease. `None` when the
/// guards failed.
pub async fn replace_file<B: Backend>(
    st: &mut Store<'_, B>,
    spot: &Spot,
    kv: &KeyValue,
    value: &[u8],
    lease: i64,
    action: &'static str,
    grant: &mut Grant,
) -> Result<Option<Reply>, V2Error> {
    let p = spot.path.as_str();
    let op = put_op(p.as_bytes(), value, lease);
    let Some(t) = st.txn(spot.guards(false), vec![op]).await? else {
        return Ok(None);
    };
    grant.committed(lease);
    let rev = t.header.revision;
    let value = String::from_utf8_lossy(value).into_owned();
    let node = Node::file(p, value, rev, kv.create_revision, lease);
    let event = Event::new(action, node, Some(tree::file_node(p, kv)));
    Ok(Some(answer(st, 200, rev, event, kv.lease, lease).await))
}
