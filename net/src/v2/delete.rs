//! DELETE: delete a file, or a directory (`dir=true`; non-empty ones also `recursive=true`),
//! or compare-and-delete a file (`prevValue`/`prevIndex`).
//!
//! Deleting a directory deletes every key under its prefix, marker included, in one
//! revision. The leases of deleted keys are left to expire on their own (they hold no keys),
//! which keeps "was this key deleted or did it expire?" answerable for watchers.

use keel_core::kv::prefix_range_end;
use keel_core::request::{DeleteRangeRequest, RequestOp};

use super::error::{self, V2Error};
use super::json::{Event, Node};
use super::params::{KeyRequest, StoreOp};
use super::put::{contention, fill, MAX_ATTEMPTS};
use super::spot::{self, fail, Existing};
use super::store::Store;
use super::tree;
use super::{path, Reply};
use crate::backend::Backend;

fn delete_range(key: &[u8], range_end: Vec<u8>) -> RequestOp {
    RequestOp::DeleteRange(DeleteRangeRequest { key: key.to_vec(), range_end, prev_kv: false })
}

/// DELETE, dispatched as etcd does: a compare field makes it a compare-and-delete.
pub async fn delete<B: Backend>(st: &mut Store<'_, B>, req: &KeyRequest) -> Result<Reply, V2Error> {
    if req.store_op() == Some(StoreOp::CompareAndDelete) {
        return compare_and_delete(st, req).await;
    }
    let p = req.path.as_str();
    if path::is_root(p) {
        return Err(V2Error::new(error::ROOT_READ_ONLY, "/", st.current_revision()));
    }
    let dir = req.dir || req.recursive;
    for attempt in 0..MAX_ATTEMPTS {
        let Some((spot, found)) = spot::read_existing(st, p, attempt).await? else {
            continue;
        };
        let (op, frozen, node_dir, created, mut prev) = match found {
            Existing::File(kv) => {
                (delete_range(p.as_bytes(), vec![]), false, false, kv.create_revision, tree::file_node(p, &kv))
            }
            Existing::Dir(_) if !dir => fail!(spot, V2Error::new(error::NOT_FILE, p, spot.rev)),
            Existing::Dir(info) if info.has_children && !req.recursive => {
                fail!(spot, V2Error::new(error::DIR_NOT_EMPTY, p, spot.rev))
            }
            Existing::Dir(info) => {
                let prefix = spot.prefix().into_bytes();
                let end = prefix_range_end(&prefix);
                // A non-recursive delete must find the directory still empty.
                let frozen = !req.recursive;
                (
                    delete_range(&prefix, end),
                    frozen,
                    true,
                    info.created,
                    Node::dir(p, info.modified, info.created, info.lease()),
                )
            }
        };
        // The TTL of the node as it was, read before it goes.
        let mut before = Event { action: "delete", node: None, prev_node: Some(prev) };
        fill(st, &mut before).await;
        prev = before.prev_node.take().unwrap_or_default();
        let Some(t) = st.txn(spot.guards(frozen), vec![op]).await? else {
            continue;
        };
        let rev = t.header.revision;
        let node = Node::bare(p, node_dir, rev, created);
        return Ok(Reply { status: 200, index: rev, event: Event::new("delete", node, Some(prev)) });
    }
    Err(contention())
}

/// Delete a file if it matches `prevValue`/`prevIndex`.
async fn compare_and_delete<B: Backend>(st: &mut Store<'_, B>, req: &KeyRequest) -> Result<Reply, V2Error> {
    let p = req.path.as_str();
    if path::is_root(p) {
        return Err(V2Error::new(error::NOT_FILE, "/", st.current_revision()));
    }
    for attempt in 0..MAX_ATTEMPTS {
        let read = spot::read_file(st, p, attempt, req.prev_value.as_deref(), req.prev_index);
        let Some((spot, kv)) = read.await? else {
            continue;
        };
        let mut before = Event { action: "compareAndDelete", node: None, prev_node: Some(tree::file_node(p, &kv)) };
        fill(st, &mut before).await;
        let Some(t) = st.txn(spot.guards(false), vec![delete_range(p.as_bytes(), vec![])]).await? else {
            continue;
        };
        let rev = t.header.revision;
        let node = Node::bare(p, false, rev, kv.create_revision);
        return Ok(Reply {
            status: 200,
            index: rev,
            event: Event { action: "compareAndDelete", node: Some(node), prev_node: before.prev_node },
        });
    }
    Err(contention())
}
