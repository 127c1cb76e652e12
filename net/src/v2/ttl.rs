//! TTLs on the key space's leases.
//!
//! A key given `ttl=N` gets a fresh lease of N seconds; a key given none gets no lease of its
//! own but inherits the lease of the nearest ancestor directory that has a TTL, so it goes
//! when that directory expires. A refresh with the TTL the node's own lease already has is a
//! keep-alive (no write, no event, as etcd's refresh notifies no watcher); with another TTL the
//! node moves to a fresh lease. A lease a write leaves without keys is revoked.

use keel_core::kv::KeyValue;

use super::error::V2Error;
use super::json::{Event, Node};
use super::params::KeyRequest;
use super::put::{answer, fill, put_op, relabel_op, replace_file};
use super::spot::Spot;
use super::store::Store;
use super::tree::{self, DirInfo};
use super::Reply;
use crate::backend::Backend;

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

/// Run a write (PUT or POST) with a fresh [`Grant`], then revoke the lease it granted if no
/// committed write used it, whatever the outcome: one place, so no write path can leak one.
pub async fn with_grant<B: Backend>(
    st: &mut Store<'_, B>,
    write: impl AsyncFnOnce(&mut Store<'_, B>, &mut Grant) -> Result<Reply, V2Error>,
) -> Result<Reply, V2Error> {
    let mut grant = Grant::default();
    let result = write(st, &mut grant).await;
    grant.finish(st).await;
    result
}

/// The TTL asked for, as the core's lease TTL.
fn ttl_of(req: &KeyRequest) -> i64 {
    req.ttl.map_or(0, |t| i64::try_from(t).unwrap_or(i64::MAX))
}

/// Refresh a file's TTL keeping its value: a keep-alive of its own lease when the TTL is
/// unchanged, else a move to a fresh lease. `None` when the guards failed.
pub async fn refresh_file<B: Backend>(
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
    let own = if kv.lease != spot.inherited_lease() { kv.lease } else { 0 };
    if let Some(mut event) = keep_alive(st, own, ttl_of(req), tree::file_node(p, kv), action).await? {
        fill(st, &mut event).await;
        return Ok(Some(Reply { status: 200, index: spot.rev, event }));
    }
    let lease = grant.lease_for(st, req.ttl, 0).await?;
    replace_file(st, spot, kv, &kv.value, lease, action, grant).await
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
    let mut before = Event { action, node: None, prev_node: Some(node.clone()) };
    fill(st, &mut before).await;
    if st.keep_alive(own).await?.is_none() {
        return Ok(None);
    }
    // The TTL before the keep-alive is filled in; keep a later fill from overwriting it.
    let mut prev_node = before.prev_node.take();
    if let Some(n) = prev_node.as_mut() {
        n.lease = 0;
    }
    Ok(Some(Event { action, node: Some(node), prev_node }))
}

/// Update a directory's TTL (`ttl` given: a fresh lease; none: the directory's TTL is
/// removed). Keys inside that shared the directory's old lease move to the new one, so they
/// still go with it. `None` when the guards failed.
pub async fn update_dir<B: Backend>(
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
        if let Some(mut event) = keep_alive(st, own, ttl_of(req), prev_node.clone(), "update").await? {
            fill(st, &mut event).await;
            return Ok(Some(Reply { status: 200, index: spot.rev, event }));
        }
    }
    let lease = grant.lease_for(st, req.ttl, inherited).await?;
    let prefix = spot.prefix();
    let mut ops = vec![put_op(prefix.as_bytes(), b"", lease)];
    if old != 0 && old != lease {
        for kv in spot.subtree.iter().filter(|kv| kv.key != prefix.as_bytes() && kv.lease == old) {
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
