//! GET with `wait=true`: a watch that answers with the first matching change.
//!
//! Without `recursive` the watch covers the path's own key and its marker (`[path, path/\0)`;
//! other keys in that interval are skipped); with `recursive` everything under `<path>/` too,
//! except hidden parts of the tree. `waitIndex` is the watch's start revision (0: the next
//! change). A compacted start answers 401. Dropping the future drops the watch (cancel).
//!
//! Actions are reconstructed from the key-value events, since the key space does not record
//! which v2 call made a change: a put is `create` when it created the key (version 1) and `set`
//! otherwise; a delete is `expire` when the deleted key's lease no longer exists when the event
//! is seen, else `delete` (best effort: a lease revoked through v3 also reads as `expire`).

use keel_core::api::kv::{prefix_range_end, Event as KvEvent, EventType};
use keel_core::state::watch::WatchCreate;

use super::error::{self, V2Error};
use super::json::{Event, Node};
use super::params::KeyRequest;
use super::store::Store;
use super::{path, Success};
use crate::backend::Backend;

/// The watched interval for a path.
pub fn watch_range(p: &str, recursive: bool) -> (Vec<u8>, Vec<u8>) {
    match (recursive, path::is_root(p)) {
        (true, _) => {
            let prefix = path::dir_prefix(p);
            let end = prefix_range_end(prefix.as_bytes());
            (p.as_bytes().to_vec(), end)
        }
        // The root itself never changes: a single key no write can make.
        (false, true) => (b"/".to_vec(), vec![]),
        (false, false) => {
            let mut end = path::dir_prefix(p).into_bytes();
            end.push(0);
            (p.as_bytes().to_vec(), end)
        }
    }
}

/// Whether a key (as a v2 path) is one the watch reports.
pub fn matches(watch_path: &str, recursive: bool, key_path: &str) -> bool {
    if key_path == watch_path {
        return true;
    }
    if !recursive {
        return false;
    }
    let inside = path::is_root(watch_path) || key_path.starts_with(&path::dir_prefix(watch_path));
    inside && !path::hidden_below(watch_path, key_path)
}

pub async fn wait<B: Backend>(st: &mut Store<'_, B>, req: &KeyRequest) -> Result<Success, V2Error> {
    let p = req.path.as_str();
    let (key, range_end) = watch_range(p, req.recursive);
    let start = i64::try_from(req.wait_index).unwrap_or(i64::MAX);
    let create = WatchCreate { key, range_end, start_revision: start, prev_kv: true, ..WatchCreate::default() };
    let mut stream = st.backend().watch(create).await?;
    let mut index = st.current_revision();
    loop {
        let Some(resp) = stream.events.recv().await else {
            return Err(V2Error::new(error::WATCHER_CLEARED, "", index));
        };
        if resp.created {
            index = resp.revision;
        }
        if resp.compact_revision != 0 {
            let cause =
                format!("the requested history has been cleared [{}/{}]", resp.compact_revision, req.wait_index);
            return Err(V2Error::new(error::EVENT_INDEX_CLEARED, cause, index.max(resp.revision)));
        }
        if resp.canceled {
            return Err(V2Error::new(error::WATCHER_CLEARED, resp.cancel_reason, index.max(resp.revision)));
        }
        for ev in &resp.events {
            if let Some(mut event) = convert(st, ev, p, req.recursive).await {
                st.fill_ttls(&mut event).await;
                return Ok(Success { status: 200, index, event });
            }
        }
    }
}

/// A key-value event as the v2 event a watch on `watch_path` reports, if it reports it.
async fn convert<B: Backend>(st: &mut Store<'_, B>, ev: &KvEvent, watch_path: &str, recursive: bool) -> Option<Event> {
    let (key_path, is_dir) = path::key_to_path(&ev.kv.key)?;
    if !matches(watch_path, recursive, &key_path) {
        return None;
    }
    let node_of = |kv: &keel_core::api::kv::KeyValue| {
        if is_dir {
            Node::dir(&key_path, kv.mod_revision, kv.create_revision, kv.lease)
        } else {
            Node::file(
                &key_path,
                String::from_utf8_lossy(&kv.value).into_owned(),
                kv.mod_revision,
                kv.create_revision,
                kv.lease,
            )
        }
    };
    let prev_node = ev.prev_kv.as_ref().map(node_of);
    match ev.kind {
        EventType::Put => {
            let action = if ev.kv.version == 1 { "create" } else { "set" };
            Some(Event::new(action, node_of(&ev.kv), prev_node))
        }
        EventType::Delete => {
            let prev = ev.prev_kv.as_ref();
            let lease = prev.map_or(0, |kv| kv.lease);
            let expired = lease != 0 && !st.lease_exists(lease).await;
            let action = if expired { "expire" } else { "delete" };
            let node = Node::bare(&key_path, is_dir, ev.kv.mod_revision, prev.map_or(0, |kv| kv.create_revision));
            Some(Event::new(action, node, prev_node))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_matching() {
        assert_eq!(watch_range("/a", false), (b"/a".to_vec(), b"/a/\0".to_vec()));
        assert_eq!(watch_range("/a", true), (b"/a".to_vec(), b"/a0".to_vec()));
        assert_eq!(watch_range("/", true), (b"/".to_vec(), b"0".to_vec()));
        assert_eq!(watch_range("/", false), (b"/".to_vec(), vec![]));
        assert!(matches("/a", false, "/a"));
        assert!(!matches("/a", false, "/a/b"));
        assert!(!matches("/a", true, "/a!"));
        assert!(matches("/a", true, "/a/b/c"));
        assert!(!matches("/a", true, "/a/_b/c"));
        assert!(matches("/", true, "/x"));
        assert!(!matches("/", true, "/_x"));
        assert!(matches("/_a", true, "/_a/b"));
    }
}
