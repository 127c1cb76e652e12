//! What a v2 write needs to know about its path, read from the key space while the write is
//! applied: the path's own key, the keys under it and its ancestors. Reading and deciding in
//! the same apply step is what makes a v2 write atomic; nothing read can change in between.

use crate::api::error::Result;
use crate::api::kv::{prefix_range_end, KeyValue};
use crate::api::request::RangeRequest;
use crate::state::mvcc::MvccStore;

use super::tree::{self, Entry};
use crate::api::v2::{path, V2ErrorCode, V2Refusal, MAX_DEPTH};

/// An ancestor directory of the path: its own key (if it is a file) and its marker.
#[derive(Clone, Debug)]
pub(crate) struct Parent {
    pub path: String,
    pub file: Option<KeyValue>,
    pub marker: Option<KeyValue>,
}

/// A path and its surroundings in the current key space.
#[derive(Clone, Debug)]
pub(crate) struct Place {
    pub path: String,
    /// The key at the path itself (with its value).
    pub exact: Option<KeyValue>,
    /// Every key under `<path>/` (keys only: no values).
    pub subtree: Vec<KeyValue>,
    /// The ancestors, top-down, without the root.
    pub parents: Vec<Parent>,
}

/// The current version of exactly `key`, with or without its value.
fn key(store: &MvccStore, key: &[u8], keys_only: bool) -> Result<Option<KeyValue>> {
    let req = RangeRequest { key: key.to_vec(), keys_only, ..RangeRequest::default() };
    Ok(store.range(&req)?.kvs.into_iter().next())
}

/// The current keys under `prefix`, at most `limit` of them (0: all), without values.
fn under(store: &MvccStore, prefix: &[u8], limit: i64) -> Result<Vec<KeyValue>> {
    let range_end = prefix_range_end(prefix);
    let req = RangeRequest { key: prefix.to_vec(), range_end, keys_only: true, limit, ..RangeRequest::default() };
    Ok(store.range(&req)?.kvs)
}

impl Place {
    /// Read `p`'s surroundings (a normalized path no deeper than [`MAX_DEPTH`]).
    pub fn read(store: &MvccStore, p: &str) -> Result<Place> {
        let path = p.to_string();
        if path::is_root(p) {
            // Only a POST writes at the root, and it needs nothing from under it (the root has
            // no TTL): reading the whole key space would make that one write cost it all.
            return Ok(Place { path, exact: None, subtree: vec![], parents: vec![] });
        }
        let exact = key(store, p.as_bytes(), false)?;
        let subtree = under(store, path::dir_prefix(p).as_bytes(), 0)?;
        let mut parents = Vec::new();
        for a in path::ancestors(p) {
            let file = key(store, a.as_bytes(), true)?;
            let marker = key(store, path::dir_prefix(a).as_bytes(), true)?;
            parents.push(Parent { path: a.to_string(), file, marker });
        }
        Ok(Place { path, exact, subtree, parents })
    }

    /// What the path is.
    pub fn entry(&self) -> Entry {
        tree::classify(&self.path, self.exact.as_ref(), &self.subtree)
    }

    /// The marker key of the path as a directory (`<path>/`).
    pub fn prefix(&self) -> String {
        path::dir_prefix(&self.path)
    }

    /// 104 "Not a directory" when an ancestor is a file (etcd names the file).
    pub fn check_parents(&self) -> std::result::Result<(), V2Refusal> {
        match self.parents.iter().find(|p| p.file.is_some()) {
            Some(p) => Err(V2Refusal::new(V2ErrorCode::NotDir, p.path.clone())),
            None => Ok(()),
        }
    }

    /// The lease a key created at the path inherits: that of the nearest ancestor directory
    /// with a TTL (its marker's lease), so the key goes when the directory expires. 0 if none.
    pub fn inherited_lease(&self) -> i64 {
        self.parents.iter().rev().find_map(|p| p.marker.as_ref().filter(|m| m.lease != 0)).map_or(0, |m| m.lease)
    }

    /// The lease a key created *inside* the path (a POST) inherits: the path's own TTL if it
    /// has one, else what the path itself would inherit.
    pub fn inherited_lease_inside(&self) -> i64 {
        let prefix = self.prefix();
        match self.subtree.iter().find(|kv| kv.key == prefix.as_bytes()) {
            Some(m) if m.lease != 0 => m.lease,
            _ => self.inherited_lease(),
        }
    }
}

/// The error for a path that does not exist, as etcd words it: walking down from the root,
/// 104 at the first component that is a file, else 100 at the first one that is missing.
/// `probe(ancestor)` tells whether the ancestor's own key exists and whether any key lies
/// under it; the v2 API's reads ask the same question of a read revision.
pub fn missing(p: &str, mut probe: impl FnMut(&str) -> (bool, bool)) -> V2Refusal {
    for a in path::ancestors(p).into_iter().take(MAX_DEPTH) {
        match probe(a) {
            (true, _) => return V2Refusal::new(V2ErrorCode::NotDir, a),
            (false, false) => return V2Refusal::new(V2ErrorCode::KeyNotFound, a),
            (false, true) => {}
        }
    }
    V2Refusal::new(V2ErrorCode::KeyNotFound, p)
}

/// [`missing`] over the current key space.
pub(crate) fn missing_in(store: &MvccStore, p: &str) -> Result<V2Refusal> {
    let mut failure = None;
    let refusal = missing(p, |a| {
        let file = key(store, a.as_bytes(), true);
        let below = under(store, path::dir_prefix(a).as_bytes(), 1);
        match (file, below) {
            (Ok(file), Ok(below)) => (file.is_some(), !below.is_empty()),
            (Err(e), _) | (_, Err(e)) => {
                failure.get_or_insert(e);
                (false, false)
            }
        }
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(refusal),
    }
}

/// The cause etcd gives when a compare-and-swap/delete fails, `None` when it holds:
/// `[prevValue != value]`, `[prevIndex != modifiedIndex]`, or both separated by a space.
pub fn compare_failure(kv: &KeyValue, prev_value: Option<&str>, prev_index: u64) -> Option<String> {
    let index_ok = prev_index == 0 || u64::try_from(kv.mod_revision).ok() == Some(prev_index);
    let value_ok = match prev_value {
        None => true,
        Some(v) => v.as_bytes() == kv.value.as_slice(),
    };
    let value = String::from_utf8_lossy(&kv.value);
    let pv = prev_value.unwrap_or("");
    match (value_ok, index_ok) {
        (true, true) => None,
        (false, true) => Some(format!("[{pv} != {value}]")),
        (true, false) => Some(format!("[{prev_index} != {}]", kv.mod_revision)),
        (false, false) => Some(format!("[{pv} != {value}] [{prev_index} != {}]", kv.mod_revision)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &str, modr: i64, lease: i64) -> KeyValue {
        KeyValue { key: key.into(), value: value.into(), create_revision: 2, mod_revision: modr, version: 1, lease }
    }

    #[test]
    fn compare_causes_match_etcd() {
        let k = kv("/a", "one", 5, 0);
        assert_eq!(compare_failure(&k, Some("one"), 5), None);
        assert_eq!(compare_failure(&k, None, 0), None);
        assert_eq!(compare_failure(&k, Some("two"), 0).unwrap(), "[two != one]");
        assert_eq!(compare_failure(&k, None, 4).unwrap(), "[4 != 5]");
        assert_eq!(compare_failure(&k, Some("two"), 4).unwrap(), "[two != one] [4 != 5]");
    }

    #[test]
    fn inheritance_and_parents() {
        let place = Place {
            path: "/a/b/c".into(),
            exact: None,
            subtree: vec![],
            parents: vec![
                Parent { path: "/a".into(), file: None, marker: Some(kv("/a/", "", 3, 77)) },
                Parent { path: "/a/b".into(), file: None, marker: None },
            ],
        };
        assert_eq!(place.inherited_lease(), 77);
        assert!(place.check_parents().is_ok());
        let mut blocked = place.clone();
        blocked.parents[1].file = Some(kv("/a/b", "x", 4, 0));
        assert_eq!(blocked.check_parents().unwrap_err(), V2Refusal::new(V2ErrorCode::NotDir, "/a/b"));
    }

    #[test]
    fn missing_names_the_first_component_that_stops_the_walk() {
        let refusal = |probe: &dyn Fn(&str) -> (bool, bool)| missing("/a/b/c", probe);
        assert_eq!(refusal(&|_| (false, true)), V2Refusal::new(V2ErrorCode::KeyNotFound, "/a/b/c"));
        assert_eq!(refusal(&|a| (a == "/a/b", true)), V2Refusal::new(V2ErrorCode::NotDir, "/a/b"));
        assert_eq!(refusal(&|a| (false, a != "/a")), V2Refusal::new(V2ErrorCode::KeyNotFound, "/a"));
    }
}
