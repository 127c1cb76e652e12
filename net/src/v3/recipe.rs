//! The queueing recipe under the Lock and Election services, on the key space as etcd's
//! `concurrency` package builds it: each contender writes `<name>/<lease in hex>` attached to its
//! lease, and holds the lock (or leads) once every key under `<name>/` created before its own
//! is gone. Contenders are served in creation order, and a holder whose lease expires is
//! replaced without anyone having to clean up.

use keel_core::api::kv::{prefix_range_end, EventType, KeyValue};
use keel_core::api::request::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, PutRequest, RangeRequest, Request, RequestOp, Response,
    ResponseHeader, ResponseOp, SortOrder, SortTarget, TxnRequest,
};
use keel_core::state::watch::WatchCreate;
use tonic::Status;

use super::{call, status};
use crate::backend::Backend;

/// A contender's key and when it was created.
pub struct Entry {
    pub key: Vec<u8>,
    pub create_revision: i64,
    pub header: ResponseHeader,
}

/// The prefix all contenders for `name` share.
pub fn prefix(name: &[u8]) -> Vec<u8> {
    let mut p = name.to_vec();
    p.push(b'/');
    p
}

/// Join the queue for `name` under `lease` with `value` (an existing key of this lease is
/// reused, its value replaced), then wait until it is first. If the wait is abandoned (the
/// client went away) or fails, the key is deleted so it blocks no one.
pub async fn acquire<B: Backend>(backend: &B, name: &[u8], lease: i64, value: &[u8]) -> Result<Entry, Status> {
    let mut key = prefix(name);
    key.extend_from_slice(format!("{lease:x}").as_bytes());
    let put = PutRequest { key: key.clone(), value: value.to_vec(), lease, ..Default::default() };
    let txn = TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal,
            target: CompareTarget::CreateRevision(0),
            key: key.clone(),
            range_end: vec![],
        }],
        success: vec![RequestOp::Put(put.clone())],
        failure: vec![RequestOp::Range(RangeRequest { key: key.clone(), ..Default::default() }), RequestOp::Put(put)],
    };
    let r = call(backend, Request::Txn(txn), pick!(Response::Txn)).await?;
    let create_revision = if r.succeeded {
        r.header.revision
    } else {
        match r.responses.first() {
            Some(ResponseOp::Range(range)) => range.kvs.first().map_or(r.header.revision, |kv| kv.create_revision),
            _ => r.header.revision,
        }
    };
    let mut guard = DeleteOnDrop { backend: backend.clone(), key: Some(key.clone()) };
    wait_for_earlier(backend, name, create_revision).await?;
    guard.key = None;
    Ok(Entry { key, create_revision, header: r.header })
}

/// Wait until no key under `name/` created before `revision` is left.
async fn wait_for_earlier<B: Backend>(backend: &B, name: &[u8], revision: i64) -> Result<(), Status> {
    let pfx = prefix(name);
    loop {
        let range = RangeRequest {
            key: pfx.clone(),
            range_end: prefix_range_end(&pfx),
            max_create_revision: revision - 1,
            sort_order: SortOrder::Descend,
            sort_target: SortTarget::Create,
            limit: 1,
            ..Default::default()
        };
        let r = call(backend, Request::Range(range), pick!(Response::Range)).await?;
        let Some(last) = r.kvs.into_iter().next() else { return Ok(()) };
        wait_for_delete(backend, &last.key, r.header.revision + 1).await?;
    }
}

/// Wait until `key` is deleted at or after `from`.
async fn wait_for_delete<B: Backend>(backend: &B, key: &[u8], from: i64) -> Result<(), Status> {
    let create = WatchCreate { key: key.to_vec(), start_revision: from, ..Default::default() };
    let mut stream = backend.watch(create).await.map_err(status)?;
    while let Some(response) = stream.events.recv().await {
        if response.canceled {
            return Err(Status::unavailable(format!("etcdserver: watch canceled: {}", response.cancel_reason)));
        }
        if response.events.iter().any(|e| e.kind == EventType::Delete) {
            return Ok(());
        }
    }
    Err(status(keel_core::api::error::Error::Stopped))
}

/// The first contender for `name` (the holder or leader), if any.
pub async fn first<B: Backend>(backend: &B, name: &[u8]) -> Result<(Option<KeyValue>, ResponseHeader), Status> {
    let pfx = prefix(name);
    let range = RangeRequest {
        key: pfx.clone(),
        range_end: prefix_range_end(&pfx),
        sort_order: SortOrder::Ascend,
        sort_target: SortTarget::Create,
        limit: 1,
        ..Default::default()
    };
    let r = call(backend, Request::Range(range), pick!(Response::Range)).await?;
    Ok((r.kvs.into_iter().next(), r.header))
}

/// Delete `key`, returning the header of the write.
pub async fn delete<B: Backend>(backend: &B, key: &[u8]) -> Result<ResponseHeader, Status> {
    let request = Request::DeleteRange(DeleteRangeRequest { key: key.to_vec(), ..Default::default() });
    Ok(call(backend, request, pick!(Response::DeleteRange)).await?.header)
}

/// Deletes its key when dropped unless disarmed (`key` taken): an abandoned contender leaves.
struct DeleteOnDrop<B: Backend> {
    backend: B,
    key: Option<Vec<u8>>,
}

impl<B: Backend> Drop for DeleteOnDrop<B> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let backend = self.backend.clone();
            tokio::spawn(async move {
                let _ = delete(&backend, &key).await;
            });
        }
    }
}
