//! PUT and POST: set, create (`prevExist=false`), update (`prevExist=true`), compare-and-swap
//! (`prevValue`/`prevIndex`), refresh (`refresh=true`), and in-order keys (POST), dispatched
//! as etcd's v2 applier does.
//!
//! TTLs: a key given `ttl=N` gets a fresh lease of N seconds; a key given none gets no lease of
//! its own but inherits the lease of the nearest ancestor directory that has a TTL, so it goes
//! when that directory expires. A refresh with the TTL the key's own lease already has is a
//! keep-alive (no write, no event, as etcd's refresh notifies no watcher); with another TTL the
//! key moves to a fresh lease. A lease left without keys by a PUT is revoked.

use keel_core::kv::KeyValue;
use keel_core::request::{
    DeleteRangeRequest, PutInOrderRequest, PutRequest, Request, RequestOp, Response,
};

use super::error::{self, V2Error};
use super::json::{Event, Node};
use super::params::KeyRequest;
use super::spot::{self, fail, Spot};
use super::store::Store;
use super::tree::{self, DirInfo, Entry};
use super::{path, Reply};
use crate::backend::Backend;

/// How many times a write is re-planned after its guards failed before giving up.
pub const MAX_ATTEMPTS: usize = 16;

/// The error when a write kept losing races.
pub fn contention() -> V2Error {
    keel_core::error::Error::Timeout.into()
}

/// A lease granted for this request (at most one), revoked at the end unless a write used it.
#[derive(Default)]
pub struct Grant {
    lease: Option<(i64, i64)>,
    used: bool,
}

impl Grant {
    /// The lease for a key given `ttl` (granted once), else the `inherited` one.
    pub async fn lease_for<B: Backend>(
        &mut self,
        st: &mut Store<'_, B>,
        ttl: Option<u64>,
        inherited: i64,
    ) -> Result<i64, V2Error> {
        let Some(ttl) = ttl else { return Ok(inherited) };
        if let Some((id, _)) = self.lease {
            return Ok(id);
        }
        let (id, granted) = st.grant(ttl).await?;
        self.lease = Some((id, granted));
        Ok(id)
    }

    /// Note that a committed write attached `lease`.
    pub fn committed(&mut self, lease: i64) {
        if self.lease.is_some_and(|(id, _)| id == lease) {
            self.used = true;
        }
    }

    /// Revoke the granted lease if nothing uses it.
    pub async fn finish<B: Backend>(self, st: &mut Store<'_, B>) {
        if let (Some((id, _)), false) = (self.lease, self.used) {
            st.revoke(id).await;
        }
    }
}

pub fn put_op(key: &[u8], value: &[u8], lease: i64) -> RequestOp {
    RequestOp::Put(PutRequest {
        key: key.to_vec(),
        value: value.to_vec(),
        lease,
        ..PutRequest::default()
    })
}

fn delete_op(key: &[u8]) -> RequestOp {
    RequestOp::DeleteRange(DeleteRangeRequest {
        key: key.to_vec(),
        ..DeleteRangeRequest::default()
    })
}

/// Move a key to another lease, keeping its value.
fn relabel_op(key: &[u8], lease: i64) -> RequestOp {
    RequestOp::Put(PutRequest {
        key: key.to_vec(),
        lease,
        ignore_value: true,
        ..PutRequest::default()
    })
}

fn root_read_only<B: Backend>(st: &Store<'_, B>) -> V2Error {
    V2Error::new(error::ROOT_READ_ONLY, "/", st.current_revision())
}

/// Finish a write's answer: TTL fields, then drop the lease the key left if nothing else uses
/// it (after the fields were read, so `prevNode` still shows its TTL).
async fn answer<B: Backend>(
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
    Reply {
        status,
        index,
        event,
    }
}

/// Fill the TTL fields of an event's nodes.
pub async fn fill<B: Backend>(st: &mut Store<'_, B>, event: &mut Event) {
    let mut nodes: Vec<&mut Node> = event
        .node
        .iter_mut()
        .chain(event.prev_node.iter_mut())
        .collect();
    st.fill_ttls(&mut nodes).await;
}

/// PUT, dispatched as etcd does: `prevExist` first, then compare fields, else a set.
pub async fn put<B: Backend>(st: &mut Store<'_, B>, req: &KeyRequest) -> Result<Reply, V2Error> {
    let mut grant = Grant::default();
    let result = match req.prev_exist {
        Some(true) if req.prev_index == 0 && req.prev_value.is_none() => {
            update(st, req, &mut grant).await
        }
        Some(true) => cas(st, req, &mut grant).await,
        Some(false) => create(st, req, &mut grant).await,
        None if req.prev_index > 0 || req.prev_value.is_some() => cas(st, req, &mut grant).await,
        None => set(st, req, &mut grant).await,
    };
    grant.finish(st).await;
    result
}

/// POST: create an in-order key in the directory.
pub async fn post<B: Backend>(st: &mut Store<'_, B>, req: &KeyRequest) -> Result<Reply, V2Error> {
    let mut grant = Grant::default();
    let result = in_order(st, req, &mut grant).await;
    grant.finish(st).await;
    result
}

/// Create or replace a file (or create a directory with `dir=true`).
async fn set<B: Backend>(
    st: &mut Store<'_, B>,
    req: &KeyRequest,
    grant: &mut Grant,
) -> Result<Reply, V2Error> {
    let p = req.path.as_str();
    if path::is_root(p) {
        return Err(root_read_only(st));
    }
    for attempt in 0..MAX_ATTEMPTS {
        let spot = spot::read(st, p, spot::linearizable_attempt(attempt)).await?;
        if let Err(e) = spot.check_parents() {
            fail!(spot, e)
        }
        let prev = match spot.entry() {
            Entry::Dir(_) => fail!(spot, V2Error::new(error::NOT_FILE, p, spot.rev)),
            Entry::Absent if req.refresh => fail!(spot, spot::missing(st, p, spot.rev).await),
            Entry::File(kv) if req.refresh => {
                match refresh_file(st, &spot, &kv, req, "set", grant).await? {
                    Some(reply) => return Ok(reply),
                    None => continue,
                }
            }
            Entry::File(kv) => Some(kv),
            Entry::Absent => None,
        };
        let lease = grant.lease_for(st, req.ttl, spot.inherited_lease()).await?;
        let mut ops = Vec::new();
        if req.dir {
            if prev.is_some() {
                ops.push(delete_op(p.as_bytes()));
            }
            ops.push(put_op(spot.prefix().as_bytes(), b"", lease));
        } else {
            ops.push(put_op(p.as_bytes(), req.value.as_bytes(), lease));
        }
        let Some(t) = st.txn(spot.guards(false), ops).await? else {
            continue;
        };
        grant.committed(lease);
        let rev = t.header.revision;
        let node = match (&prev, req.dir) {
            (_, true) => Node::dir(p, rev, rev, lease),
            (Some(kv), false) => Node::file(p, req.value.clone(), rev, kv.create_revision, lease),
            (None, false) => Node::file(p, req.value.clone(), rev, rev, lease),
        };
        let prev_node = prev.as_ref().map(|kv| tree::file_node(p, kv));
        let status = if prev.is_some() { 200 } else { 201 };
        let old = prev.map_or(0, |kv| kv.lease);
        return Ok(answer(
            st,
            status,
            rev,
            Event::new("set", node, prev_node),
            old,
            lease,
        )
        .await);
    }
    Err(contention())
}

/// Create a file or directory that must not exist yet.
async fn create<B: Backend>(
    st: &mut Store<'_, B>,
    req: &KeyRequest,
    grant: &mut Grant,
) -> Result<Reply, V2Error> {
    let p = req.path.as_str();
    if path::is_root(p) {
        return Err(root_read_only(st));
    }
    for attempt in 0..MAX_ATTEMPTS {
        let spot = spot::read(st, p, spot::linearizable_attempt(attempt)).await?;
        if let Err(e) = spot.check_parents() {
            fail!(spot, e)
        }
        if spot.entry() != Entry::Absent {
            fail!(spot, V2Error::new(error::NODE_EXIST, p, spot.rev));
        }
        let lease = grant.lease_for(st, req.ttl, spot.inherited_lease()).await?;
        let op = if req.dir {
            put_op(spot.prefix().as_bytes(), b"", lease)
        } else {
            put_op(p.as_bytes(), req.value.as_bytes(), lease)
        };
        let Some(t) = st.txn(spot.guards(false), vec![op]).await? else {
            continue;
        };
        grant.committed(lease);
        let rev = t.header.revision;
        let node = if req.dir {
            Node::dir(p, rev, rev, lease)
        } else {
            Node::file(p, req.value.clone(), rev, rev, lease)
        };
        return Ok(answer(st, 201, rev, Event::new("create", node, None), 0, lease).await);
    }
    Err(contention())
}

/// Change an existing file's value (and TTL), or an existing directory's TTL.
async fn update<B: Backend>(
    st: &mut Store<'_, B>,
    req: &KeyRequest,
    grant: &mut Grant,
) -> Result<Reply, V2Error> {
    let p = req.path.as_str();
    if path::is_root(p) {
        return Err(root_read_only(st));
    }
    for attempt in 0..MAX_ATTEMPTS {
        let spot = spot::read(st, p, spot::linearizable_attempt(attempt)).await?;
        if let Err(e) = spot.check_parents() {
            fail!(spot, e)
        }
        let kv = match spot.entry() {
            Entry::Absent => fail!(spot, spot::missing(st, p, spot.rev).await),
            Entry::Dir(_) if !req.value.is_empty() => {
                fail!(spot, V2Error::new(error::NOT_FILE, p, spot.rev))
            }
            Entry::Dir(info) => match update_dir(st, &spot, &info, req, grant).await? {
                Some(reply) => return Ok(reply),
                None => continue,
            },
            Entry::File(kv) => kv,
        };
        if req.refresh {
            match refresh_file(st, &spot, &kv, req, "update", grant).await? {
                Some(reply) => return Ok(reply),
                None => continue,
            }
        }
        if let Some(reply) = write_file(st, &spot, &kv, req, "update", grant).await? {
            return Ok(reply);
        }
    }
    Err(contention())
}

/// Replace a file's value if it matches `prevValue`/`prevIndex`.
async fn cas<B: Backend>(
    st: &mut Store<'_, B>,
    req: &KeyRequest,
    grant: &mut Grant,
) -> Result<Reply, V2Error> {
    let p = req.path.as_str();
    if path::is_root(p) {
        return Err(root_read_only(st));
    }
    for attempt in 0..MAX_ATTEMPTS {
        let spot = spot::read(st, p, spot::linearizable_attempt(attempt)).await?;
        if let Err(e) = spot.check_parents() {
            fail!(spot, e)
        }
        let kv = match spot.entry() {
            Entry::Absent => fail!(spot, spot::missing(st, p, spot.rev).await),
            Entry::Dir(_) => fail!(spot, V2Error::new(error::NOT_FILE, p, spot.rev)),
            Entry::File(kv) => kv,
        };
        if let Some(cause) = spot::compare_failure(&kv, req.prev_value.as_deref(), req.prev_index) {
            fail!(spot, V2Error::new(error::TEST_FAILED, cause, spot.rev));
        }
        if req.refresh {
            match refresh_file(st, &spot, &kv, req, "compareAndSwap", grant).await? {
                Some(reply) => return Ok(reply),
                None => continue,
            }
        }
        if let Some(reply) = write_file(st, &spot, &kv, req, "compareAndSwap", grant).await? {
            return Ok(reply);
        }
    }
    Err(contention())
}

/// Write a new value (and TTL) to an existing file; `None` when the guards failed.
async fn write_file<B: Backend>(
    st: &mut Store<'_, B>,
    spot: &Spot,
    kv: &KeyValue,
    req: &KeyRequest,
    action: &'static str,
    grant: &mut Grant,
) -> Result<Option<Reply>, V2Error> {
    let p = spot.path.as_str();
    let lease = grant.lease_for(st, req.ttl, spot.inherited_lease()).await?;
    let op = put_op(p.as_bytes(), req.value.as_bytes(), lease);
    let Some(t) = st.txn(spot.guards(false), vec![op]).await? else {
        return Ok(None);
    };
    grant.committed(lease);
    let rev = t.header.revision;
    let node = Node::file(p, req.value.clone(), rev, kv.create_revision, lease);
    let event = Event::new(action, node, Some(tree::file_node(p, kv)));
    Ok(Some(answer(st, 200, rev, event, kv.lease, lease).await))
}

/// The TTL asked for, as the core's lease TTL.
fn ttl_of(req: &KeyRequest) -> i64 {
    req.ttl.map_or(0, |t| i64::try_from(t).unwrap_or(i64::MAX))
}

/// Refresh a file's TTL keeping its value: a keep-alive of its own lease when the TTL is
/// unchanged, else a move to a fresh lease. `None` when the guards failed.
async fn refresh_file<B: Backend>(
    st: &mut Store<'_, B>,
    spot: &Spot,
    kv: &KeyValue,
    req: &KeyRequest,
    action: &'static str,
    grant: &mut Grant,
) -> Result<Option<Reply>, V2Error> {
    let p = spot.path.as_str();
    // A refresh may commit nothing (a keep-alive): decide it on a linearizable read only.
    if !spot.linearizable {
        return Ok(None);
    }
    let own = if kv.lease != spot.inherited_lease() {
        kv.lease
    } else {
        0
    };
    if let Some(mut event) =
        keep_alive(st, own, ttl_of(req), tree::file_node(p, kv), action).await?
    {
        fill(st, &mut event).await;
        return Ok(Some(Reply {
            status: 200,
            index: spot.rev,
            event,
        }));
    }
    let lease = grant.lease_for(st, req.ttl, 0).await?;
    let op = put_op(p.as_bytes(), &kv.value, lease);
    let Some(t) = st.txn(spot.guards(false), vec![op]).await? else {
        return Ok(None);
    };
    grant.committed(lease);
    let rev = t.header.revision;
    let mut node = tree::file_node(p, kv);
    node.modified_index = rev;
    node.lease = lease;
    let event = Event::new(action, node, Some(tree::file_node(p, kv)));
    Ok(Some(answer(st, 200, rev, event, kv.lease, lease).await))
}

/// The keep-alive form of a refresh: when `own` (the node's own lease) was granted with `ttl`,
/// renew it and answer with the node unchanged but its TTL restored; `prevNode` shows the TTL
/// before. `None` when a keep-alive does not apply (or the lease is gone).
async fn keep_alive<B: Backend>(
    st: &mut Store<'_, B>,
    own: i64,
    ttl: i64,
    node: Node,
    action: &'static str,
) -> Result<Option<Event>, V2Error> {
    if own == 0 {
        return Ok(None);
    }
    match st.lease_info(own).await {
        Some(info) if info.granted_ttl == ttl => {}
        _ => return Ok(None),
    }
    let mut before = Event {
        action,
        node: None,
        prev_node: Some(node.clone()),
    };
    fill(st, &mut before).await;
    if st.keep_alive(own).await?.is_none() {
        return Ok(None);
    }
    // The TTL before the keep-alive is filled in; keep a later fill from overwriting it.
    let mut prev_node = before.prev_node.take();
    if let Some(n) = prev_node.as_mut() {
        n.lease = 0;
    }
    Ok(Some(Event {
        action,
        node: Some(node),
        prev_node,
    }))
}

/// Update a directory's TTL (`ttl` given: a fresh lease; none: the directory's TTL is
/// removed). Keys inside that shared the directory's old lease move to the new one, so they
/// still go with it. `None` when the guards failed.
async fn update_dir<B: Backend>(
    st: &mut Store<'_, B>,
    spot: &Spot,
    info: &DirInfo,
    req: &KeyRequest,
    grant: &mut Grant,
) -> Result<Option<Reply>, V2Error> {
    let p = spot.path.as_str();
    let old = info.lease();
    let inherited = spot.inherited_lease();
    let prev_node = Node::dir(p, info.modified, info.created, old);
    if req.refresh {
        if !spot.linearizable {
            return Ok(None);
        }
        let own = if old != inherited { old } else { 0 };
        if let Some(mut event) =
            keep_alive(st, own, ttl_of(req), prev_node.clone(), "update").await?
        {
            fill(st, &mut event).await;
            return Ok(Some(Reply {
                status: 200,
                index: spot.rev,
                event,
            }));
        }
    }
    let lease = grant.lease_for(st, req.ttl, inherited).await?;
    let prefix = spot.prefix();
    let mut ops = vec![put_op(prefix.as_bytes(), b"", lease)];
    if old != 0 && old != lease {
        for kv in spot
            .subtree
            .iter()
            .filter(|kv| kv.key != prefix.as_bytes() && kv.lease == old)
        {
            ops.push(relabel_op(&kv.key, lease));
        }
    }
    let Some(t) = st.txn(spot.guards(true), ops).await? else {
        return Ok(None);
    };
    grant.committed(lease);
    let rev = t.header.revision;
    let created = info.marker.as_ref().map_or(rev, |m| m.create_revision);
    let event = Event::new("update", Node::dir(p, rev, created, lease), Some(prev_node));
    Ok(Some(answer(st, 200, rev, event, old, lease).await))
}

/// POST: a key (or directory) named by its creation revision, zero-padded to 20 digits,
/// inside the directory at the path. The directory need not exist; it must not be a file.
async fn in_order<B: Backend>(
    st: &mut Store<'_, B>,
    req: &KeyRequest,
    grant: &mut Grant,
) -> Result<Reply, V2Error> {
    let p = req.path.as_str();
    let mut found = None;
    for attempt in 0..2 {
        let spot = spot::read(st, p, spot::linearizable_attempt(attempt)).await?;
        if let Err(e) = spot.check_parents() {
            fail!(spot, e)
        }
        if !path::is_root(p) && spot.exact.is_some() {
            fail!(spot, V2Error::new(error::NOT_DIR, p, spot.rev))
        }
        found = Some(spot);
        break;
    }
    let Some(spot) = found else {
        return Err(contention());
    };
    let lease = grant
        .lease_for(st, req.ttl, spot.inherited_lease_inside())
        .await?;
    let value = if req.dir {
        Vec::new()
    } else {
        req.value.as_bytes().to_vec()
    };
    let put = PutInOrderRequest {
        prefix: spot.prefix().into_bytes(),
        value,
        lease,
    };
    let kv = match st.backend().call(Request::PutInOrder(put)).await? {
        Response::PutInOrder(r) => r.kv,
        _ => {
            return Err(V2Error::new(
                error::RAFT_INTERNAL,
                "etcdserver: unexpected response to put",
                0,
            ))
        }
    };
    grant.committed(lease);
    let key = String::from_utf8_lossy(&kv.key).into_owned();
    if !req.dir {
        let node = Node::file(
            &key,
            req.value.clone(),
            kv.mod_revision,
            kv.create_revision,
            lease,
        );
        return Ok(answer(
            st,
            201,
            kv.mod_revision,
            Event::new("create", node, None),
            0,
            lease,
        )
        .await);
    }
    // An in-order directory: the name is fixed by the first write; turn it into a marker.
    let marker = path::dir_prefix(&key);
    let guard = vec![keel_core::request::Compare {
        result: keel_core::request::CompareResult::Equal,
        target: keel_core::request::CompareTarget::ModRevision(kv.mod_revision),
        key: kv.key.clone(),
        range_end: vec![],
    }];
    let ops = vec![delete_op(&kv.key), put_op(marker.as_bytes(), b"", lease)];
    let Some(t) = st.txn(guard, ops).await? else {
        return Err(contention());
    };
    let rev = t.header.revision;
    Ok(answer(
        st,
        201,
        rev,
        Event::new("create", Node::dir(&key, rev, rev, lease), None),
        0,
        lease,
    )
    .await)
}
