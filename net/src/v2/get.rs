//! GET (and HEAD) without `wait`: a file, or a directory's listing.
//!
//! One range read over `[path, <path>0)` returns the path's own key and everything under
//! `<path>/` at one revision (keys that merely share the path as a string prefix, such as
//! `/foo!`, are read and skipped). `quorum=true` makes it linearizable; by default it is
//! served from the member's own state (serializable), as etcd v2 serves GETs.

use std::collections::HashMap;

use keel_core::api::kv::prefix_range_end;
use keel_core::api::request::RangeRequest;
use keel_core::api::v2::V2ErrorCode::KeyNotFound;
use keel_core::api::v2::MAX_DEPTH;

use super::error::V2Error;
use super::json::Event;
use super::params::KeyRequest;
use super::store::Store;
use super::tree;
use super::{path, Success};
use crate::backend::Backend;

pub async fn get<B: Backend>(st: &mut Store<'_, B>, req: &KeyRequest) -> Result<Success, V2Error> {
    let p = req.path.as_str();
    let prefix = path::dir_prefix(p);
    let r = st
        .range(RangeRequest {
            key: p.as_bytes().to_vec(),
            range_end: prefix_range_end(prefix.as_bytes()),
            serializable: !req.quorum,
            ..RangeRequest::default()
        })
        .await?;
    let rev = r.header.revision;
    let mut exact = None;
    let mut subtree = Vec::new();
    for kv in r.kvs {
        if !path::is_root(p) && kv.key == p.as_bytes() {
            exact = Some(kv);
        } else if kv.key.starts_with(prefix.as_bytes()) && kv.key.len() > 1 {
            subtree.push(kv);
        }
    }
    let node = match tree::classify(p, exact.as_ref(), &subtree) {
        tree::Entry::File(kv) => tree::file_node(p, &kv),
        tree::Entry::Dir(_) => tree::dir_listing(p, &subtree, req.recursive),
        tree::Entry::Absent => return Err(missing(st, p, rev).await),
    };
    let mut event = Event::new("get", node, None);
    st.fill_ttls(&mut event).await;
    Ok(Success { status: 200, index: rev, event })
}

/// The error for a path that does not exist, as etcd words it ([`keel_core::state::v2::missing`]),
/// asked of revision `rev`: whether each ancestor is a file or holds anything. When the walk
/// cannot be read, 100 for the path itself.
async fn missing<B: Backend>(st: &Store<'_, B>, p: &str, rev: i64) -> V2Error {
    let not_found = || V2Error::new(KeyNotFound.code(), p.to_string(), rev);
    let mut probes = HashMap::new();
    for a in path::ancestors(p).into_iter().take(MAX_DEPTH) {
        let file = st.get_key(a.as_bytes(), rev, true, true).await;
        let below = st.get_prefix(path::dir_prefix(a).as_bytes(), rev, true, true, 1).await;
        let (Ok(file), Ok(below)) = (file, below) else {
            return not_found();
        };
        let probe = (!file.kvs.is_empty(), !below.kvs.is_empty());
        probes.insert(a, probe);
        if probe != (false, true) {
            break;
        }
    }
    let refusal = keel_core::state::v2::missing(p, |a| probes.get(a).copied().unwrap_or((false, false)));
    V2Error::new(refusal.code.code(), refusal.cause, rev)
}
