//! What a write needs to know about a path, read at one revision, and the transaction guards
//! that make the write apply only if that knowledge still holds.
//!
//! Writes are optimistic: read the path, its subtree and its ancestors, decide, then commit a
//! transaction guarded by compares that fail if anything the decision rested on changed in
//! between. A failed guard means "read again and decide again". The first read is served by
//! the member from its own state (cheap, possibly stale: the guards catch that); an outcome
//! that commits nothing (an error, a keep-alive) is only ever decided from a linearizable read,
//! so clients never see an error based on stale state.

use keel_core::error::Error as CoreError;
use keel_core::kv::{prefix_range_end, KeyValue};
use keel_core::request::{Compare, CompareResult, CompareTarget};

use super::error::{self, V2Error};
use super::path;
use super::store::Store;
use super::tree::{self, DirInfo, Entry};
use crate::backend::Backend;

/// The deepest path a write accepts: every ancestor costs two guards and a transaction holds
/// at most 128 compares. Deeper writes fail as the core would (too many operations).
pub const MAX_DEPTH: usize = 60;

/// An ancestor directory of the path: its own key (if it is a file) and its marker.
#[derive(Clone, Debug)]
pub struct Parent {
    pub path: String,
    pub file: Option<KeyValue>,
    pub marker: Option<KeyValue>,
}

/// A path and its surroundings at revision `rev`.
#[derive(Clone, Debug)]
pub struct Spot {
    pub rev: i64,
    /// Whether the read was linearizable (else it may be stale).
    pub linearizable: bool,
    pub path: String,
    /// The key at the path itself (with its value).
    pub exact: Option<KeyValue>,
    /// Every key under `<path>/` (keys only: no values).
    pub subtree: Vec<KeyValue>,
    /// The ancestors, top-down, without the root.
    pub parents: Vec<Parent>,
}

/// Read a path's surroundings: the path's key (linearizably if asked) at the current
/// revision, then the rest at that revision.
pub async fn read<B: Backend>(st: &Store<'_, B>, p: &str, linearizable: bool) -> Result<Spot, V2Error> {
    let ancestors = path::ancestors(p);
    if ancestors.len() > MAX_DEPTH {
        return Err(CoreError::TooManyOps.into());
    }
    if path::is_root(p) {
        let r = st.get_key(b"/", 0, !linearizable, true).await?;
        let rev = r.header.revision;
        return Ok(Spot { rev, linearizable, path: p.to_string(), exact: None, subtree: vec![], parents: vec![] });
    }
    let r = st.get_key(p.as_bytes(), 0, !linearizable, false).await?;
    let rev = r.header.revision;
    let exact = r.kvs.into_iter().next();
    let prefix = path::dir_prefix(p);
    let subtree = st.get_prefix(prefix.as_bytes(), rev, true, true, 0).await?.kvs;
    let mut parents = Vec::with_capacity(ancestors.len());
    for a in ancestors {
        let file = st.get_key(a.as_bytes(), rev, true, true).await?.kvs.into_iter().next();
        let marker = st.get_key(path::dir_prefix(a).as_bytes(), rev, true, true).await?.kvs.into_iter().next();
        parents.push(Parent { path: a.to_string(), file, marker });
    }
    Ok(Spot { rev, linearizable, path: p.to_string(), exact, subtree, parents })
}

/// Inside a write's retry loop: fail with `$err` if `$spot` was read linearizably, else read
/// again, linearizably, and decide again.
macro_rules! fail {
    ($spot:expr, $err:expr) => {{
        if !$spot.linearizable {
            continue;
        }
        return Err($err);
    }};
}
pub(crate) use fail;

/// Whether attempt number `attempt` of a write reads linearizably (all but the first).
pub fn linearizable_attempt(attempt: usize) -> bool {
    attempt > 0
}

/// The read that starts attempt number `attempt` of a write: the spot, once no ancestor is a
/// file (else 104, from [`Spot::check_parents`]). `Ok(None)` means "read again, linearizably,
/// and decide again", as `fail!` does; every write starts so, hence one place.
pub async fn read_checked<B: Backend>(st: &Store<'_, B>, p: &str, attempt: usize) -> Result<Option<Spot>, V2Error> {
    let spot = read(st, p, linearizable_attempt(attempt)).await?;
    match spot.check_parents() {
        Ok(()) => Ok(Some(spot)),
        Err(e) => spot.refuse(e),
    }
}

/// What a write that needs its path to exist found there.
#[derive(Clone, Debug)]
pub enum Existing {
    File(KeyValue),
    Dir(DirInfo),
}

/// As [`read_checked`], for a write that needs its path to exist (update, delete,
/// compare-and-swap/delete): the spot and what is there, else the error etcd gives for a
/// missing path, worded by [`missing`].
pub async fn read_existing<B: Backend>(
    st: &Store<'_, B>,
    p: &str,
    attempt: usize,
) -> Result<Option<(Spot, Existing)>, V2Error> {
    let Some(spot) = read_checked(st, p, attempt).await? else {
        return Ok(None);
    };
    let found = match spot.entry() {
        Entry::Dir(info) => Existing::Dir(info),
        Entry::File(kv) => Existing::File(kv),
        // Checked before `missing` reads anything, as `fail!` evaluates its error lazily.
        Entry::Absent if !spot.linearizable => return Ok(None),
        Entry::Absent => return Err(missing(st, p, spot.rev).await),
    };
    Ok(Some((spot, found)))
}

/// As [`read_existing`], for a write that acts on a file only if it matches `prev_value` and
/// `prev_index` (compare-and-swap/delete): a directory is 102 "Not a file", a mismatch 101
/// with etcd's cause ([`compare_failure`]).
pub async fn read_file<B: Backend>(
    st: &Store<'_, B>,
    p: &str,
    attempt: usize,
    prev_value: Option<&str>,
    prev_index: u64,
) -> Result<Option<(Spot, KeyValue)>, V2Error> {
    let Some((spot, found)) = read_existing(st, p, attempt).await? else {
        return Ok(None);
    };
    let err = match found {
        Existing::Dir(_) => V2Error::new(error::NOT_FILE, p, spot.rev),
        Existing::File(kv) => match compare_failure(&kv, prev_value, prev_index) {
            None => return Ok(Some((spot, kv))),
            Some(cause) => V2Error::new(error::TEST_FAILED, cause, spot.rev),
        },
    };
    spot.refuse(err)
}

fn cmp(key: Vec<u8>, range_end: Vec<u8>, result: CompareResult, target: CompareTarget) -> Compare {
    Compare { result, target, key, range_end }
}

impl Spot {
    /// What the path is.
    pub fn entry(&self) -> Entry {
        tree::classify(&self.path, self.exact.as_ref(), &self.subtree)
    }

    /// The marker key of the path as a directory (`<path>/`).
    pub fn prefix(&self) -> String {
        path::dir_prefix(&self.path)
    }

    /// `fail!` outside a loop: `err` if this spot was read linearizably, else `Ok(None)`
    /// (read again, linearizably), so no client sees an error decided on a stale read.
    pub fn refuse<T>(&self, err: V2Error) -> Result<Option<T>, V2Error> {
        if self.linearizable {
            Err(err)
        } else {
            Ok(None)
        }
    }

    /// 104 "Not a directory" when an ancestor is a file (etcd names the file).
    pub fn check_parents(&self) -> Result<(), V2Error> {
        match self.parents.iter().find(|p| p.file.is_some()) {
            Some(p) => Err(V2Error::new(error::NOT_DIR, p.path.clone(), self.rev)),
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

    /// Guards that hold while everything read still holds: no ancestor became a file or
    /// changed its TTL, and the path is still what it was (the same file version, still absent,
    /// or still a directory). With `frozen_subtree`, a directory's contents must also be
    /// unchanged (no key added or modified under it).
    pub fn guards(&self, frozen_subtree: bool) -> Vec<Compare> {
        let mut out = Vec::new();
        for p in &self.parents {
            out.push(cmp(p.path.as_bytes().to_vec(), vec![], CompareResult::Equal, CompareTarget::CreateRevision(0)));
            let lease = p.marker.as_ref().map_or(0, |m| m.lease);
            out.push(cmp(
                path::dir_prefix(&p.path).into_bytes(),
                vec![],
                CompareResult::Equal,
                CompareTarget::Lease(lease),
            ));
        }
        if path::is_root(&self.path) {
            return out;
        }
        let key = self.path.as_bytes().to_vec();
        let prefix = self.prefix().into_bytes();
        let end = prefix_range_end(&prefix);
        match self.entry() {
            Entry::File(kv) => {
                out.push(cmp(key, vec![], CompareResult::Equal, CompareTarget::ModRevision(kv.mod_revision)));
            }
            Entry::Absent => {
                out.push(cmp(key, vec![], CompareResult::Equal, CompareTarget::CreateRevision(0)));
                out.push(cmp(prefix, end, CompareResult::Equal, CompareTarget::CreateRevision(0)));
            }
            Entry::Dir(info) => {
                out.push(cmp(key, vec![], CompareResult::Equal, CompareTarget::CreateRevision(0)));
                if let Some(m) = &info.marker {
                    out.push(cmp(
                        prefix.clone(),
                        vec![],
                        CompareResult::Equal,
                        CompareTarget::ModRevision(m.mod_revision),
                    ));
                }
                if frozen_subtree {
                    let next = self.rev.saturating_add(1);
                    out.push(cmp(prefix, end, CompareResult::Less, CompareTarget::ModRevision(next)));
                }
            }
        }
        out
    }
}

/// The error for a path that does not exist, as etcd words it: walking down from the root,
/// 104 at the first component that is a file, else 100 at the first one that is missing.
/// Read at revision `rev`; when the walk cannot be made, 100 for the path itself.
pub async fn missing<B: Backend>(st: &Store<'_, B>, p: &str, rev: i64) -> V2Error {
    let not_found = || V2Error::new(error::KEY_NOT_FOUND, p.to_string(), rev);
    let ancestors = path::ancestors(p);
    if ancestors.len() > MAX_DEPTH {
        return not_found();
    }
    for a in ancestors {
        match st.get_key(a.as_bytes(), rev, true, true).await {
            Ok(r) if !r.kvs.is_empty() => return V2Error::new(error::NOT_DIR, a.to_string(), rev),
            Ok(_) => {}
            Err(_) => return not_found(),
        }
        match st.get_prefix(path::dir_prefix(a).as_bytes(), rev, true, true, 1).await {
            Ok(r) if r.kvs.is_empty() => return V2Error::new(error::KEY_NOT_FOUND, a.to_string(), rev),
            Ok(_) => {}
            Err(_) => return not_found(),
        }
    }
    not_found()
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
    fn guards_and_inheritance() {
        let spot = Spot {
            rev: 9,
            linearizable: true,
            path: "/a/b/c".into(),
            exact: None,
            subtree: vec![],
            parents: vec![
                Parent { path: "/a".into(), file: None, marker: Some(kv("/a/", "", 3, 77)) },
                Parent { path: "/a/b".into(), file: None, marker: None },
            ],
        };
        assert_eq!(spot.inherited_lease(), 77);
        assert!(spot.check_parents().is_ok());
        let g = spot.guards(false);
        assert_eq!(g.len(), 6);
        assert_eq!(g[1].target, CompareTarget::Lease(77));
        assert_eq!(g[3].target, CompareTarget::Lease(0));
        assert_eq!(g[5].key, b"/a/b/c/".to_vec());
        let mut blocked = spot.clone();
        blocked.parents[1].file = Some(kv("/a/b", "x", 4, 0));
        assert_eq!(blocked.check_parents().unwrap_err(), V2Error::new(104, "/a/b", 9));
    }
}
