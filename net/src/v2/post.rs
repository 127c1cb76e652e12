//! POST: in-order keys, named by their creation revision zero-padded to 20 digits, as etcd v2
//! names them; the revision is chosen by the applying state machine (`PutInOrder`), so names
//! increase strictly in commit order.

use keel_core::request::{Compare, CompareResult, CompareTarget, PutInOrderRequest, Request, Response};

use super::error::{self, V2Error};
use super::json::{Event, Node};
use super::params::KeyRequest;
use super::put::{answer, contention, delete_op, put_op};
use super::spot::{self, fail};
use super::store::Store;
use super::ttl::{with_grant, Grant};
use super::{path, Reply};
use crate::backend::Backend;

/// POST: create an in-order key in the directory.
pub async fn post<B: Backend>(st: &mut Store<'_, B>, req: &KeyRequest) -> Result<Reply, V2Error> {
    with_grant(st, async |st, grant| in_order(st, req, grant).await).await
}

/// POST: a key (or directory) named by its creation revision, zero-padded to 20 digits,
/// inside the directory at the path. The directory need not exist; it must not be a file.
async fn in_order<B: Backend>(st: &mut Store<'_, B>, req: &KeyRequest, grant: &mut Grant) -> Result<Reply, V2Error> {
    let p = req.path.as_str();
    let mut found = None;
    for attempt in 0..2 {
        let Some(spot) = spot::read_checked(st, p, attempt).await? else {
            continue;
        };
        if !path::is_root(p) && spot.exact.is_some() {
            fail!(spot, V2Error::new(error::NOT_DIR, p, spot.rev))
        }
        found = Some(spot);
        break;
    }
    let Some(spot) = found else {
        return Err(contention());
    };
    let lease = grant.lease_for(st, req.ttl, spot.inherited_lease_inside()).await?;
    let value = if req.dir { Vec::new() } else { req.value.as_bytes().to_vec() };
    let put = PutInOrderRequest { prefix: spot.prefix().into_bytes(), value, lease };
    let kv = match st.backend().call(Request::PutInOrder(put)).await? {
        Response::PutInOrder(r) => r.kv,
        _ => return Err(V2Error::new(error::RAFT_INTERNAL, "etcdserver: unexpected response to put", 0)),
    };
    grant.committed(lease);
    let key = String::from_utf8_lossy(&kv.key).into_owned();
    if !req.dir {
        let node = Node::file(&key, req.value.clone(), kv.mod_revision, kv.create_revision, lease);
        return Ok(answer(st, 201, kv.mod_revision, Event::new("create", node, None), 0, lease).await);
    }
    // An in-order directory: the name is fixed by the first write; turn it into a marker.
    let marker = path::dir_prefix(&key);
    let guard = vec![Compare {
        result: CompareResult::Equal,
        target: CompareTarget::ModRevision(kv.mod_revision),
        key: kv.key.clone(),
        range_end: vec![],
    }];
    let ops = vec![delete_op(&kv.key), put_op(marker.as_bytes(), b"", lease)];
    let Some(t) = st.txn(guard, ops).await? else {
        return Err(contention());
    };
    let rev = t.header.revision;
    Ok(answer(st, 201, rev, Event::new("create", Node::dir(&key, rev, rev, lease), None), 0, lease).await)
}
