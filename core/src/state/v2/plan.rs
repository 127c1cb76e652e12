//! What a v2 write does, decided from what [`Place`] read: etcd's v2 applier's rules, turned
//! into one set of key-space operations (applied in one revision) and at most one lease to
//! grant, or a keep-alive, or etcd's error. Pure: no state changes here.

use crate::api::kv::KeyValue;
use crate::api::request::{DeleteRangeRequest, PutRequest, RequestOp};

use super::place::{compare_failure, Place};
use super::tree::{DirInfo, Entry};
use crate::api::v2::{path, V2Action, V2ErrorCode, V2Node, V2Refusal, V2WriteRequest};

/// What a write was decided to be.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Change the key space.
    Write(Write),
    /// A refresh with the TTL the node's own lease already has: write nothing, notify no
    /// watcher (etcd's refresh); the lease is to be renewed (see [`V2Outcome::KeepAlive`](crate::api::v2::V2Outcome::KeepAlive)).
    KeepAlive {
        lease: i64,
        node: V2Node,
    },
    Refused(V2Refusal),
    /// The path does not exist: refused with etcd's wording of where the walk down stops.
    Missing,
}

/// A write to the key space.
#[derive(Debug)]
pub(crate) struct Write {
    /// A lease to grant first, `(id, ttl)`: the node's own TTL.
    pub grant: Option<(i64, i64)>,
    /// Applied as one transaction: one revision.
    pub ops: Vec<RequestOp>,
    /// A lease the node left, revoked if no key holds it afterwards (0: none).
    pub release: i64,
    /// A node was created (201), not changed.
    pub created: bool,
    /// The node as the write leaves it; index 0 stands for the write's own revision.
    pub node: V2Node,
    pub prev_node: Option<V2Node>,
}

/// What the lessor tells a decision: a lease's granted TTL, `None` when it does not exist.
pub(crate) type GrantedTtl<'a> = &'a dyn Fn(i64) -> Option<i64>;

fn put_op(key: &[u8], value: &[u8], lease: i64) -> RequestOp {
    RequestOp::Put(PutRequest { key: key.to_vec(), value: value.to_vec(), lease, ..PutRequest::default() })
}

fn delete_op(key: &[u8], range_end: Vec<u8>) -> RequestOp {
    RequestOp::DeleteRange(DeleteRangeRequest { key: key.to_vec(), range_end, prev_kv: false })
}

/// Move a key to another lease, keeping its value.
fn relabel_op(key: &[u8], lease: i64) -> RequestOp {
    RequestOp::Put(PutRequest { key: key.to_vec(), lease, ignore_value: true, ..PutRequest::default() })
}

fn file_node(p: &str, kv: &KeyValue) -> V2Node {
    let value = Some(String::from_utf8_lossy(&kv.value).into_owned());
    V2Node {
        path: p.into(),
        value,
        modified: kv.mod_revision,
        created: kv.create_revision,
        lease: kv.lease,
        ..V2Node::default()
    }
}

/// A file the write leaves with `value`; `created` 0 stands for the write's own revision.
fn new_file(p: &str, value: &[u8], created: i64, lease: i64) -> V2Node {
    let value = Some(String::from_utf8_lossy(value).into_owned());
    V2Node { path: p.into(), value, created, lease, ..V2Node::default() }
}

fn dir_node(p: &str, modified: i64, created: i64, lease: i64) -> V2Node {
    V2Node { path: p.into(), dir: true, modified, created, lease, ..V2Node::default() }
}

fn refused(code: V2ErrorCode, cause: impl Into<String>) -> Decision {
    Decision::Refused(V2Refusal::new(code, cause))
}

/// One write being decided.
struct Decide<'a> {
    place: &'a Place,
    req: &'a V2WriteRequest,
    granted_ttl: GrantedTtl<'a>,
}

/// Decide `req` at `place`; `next_revision` is the revision a write would get (in-order
/// names are made of it).
pub(crate) fn decide(place: &Place, req: &V2WriteRequest, granted_ttl: GrantedTtl<'_>, next_revision: i64) -> Decision {
    let d = Decide { place, req, granted_ttl };
    let root = path::is_root(&req.path);
    if let Err(refusal) = place.check_parents() {
        if !root {
            return Decision::Refused(refusal);
        }
    }
    match req.action {
        V2Action::Create if req.in_order => d.in_order(next_revision),
        V2Action::CompareAndDelete if root => refused(V2ErrorCode::NotFile, "/"),
        _ if root => refused(V2ErrorCode::RootReadOnly, "/"),
        V2Action::Set => d.set(),
        V2Action::Create => d.create(),
        V2Action::Update => d.update(),
        V2Action::CompareAndSwap => d.compare_and_swap(),
        V2Action::Delete => d.delete(),
        V2Action::CompareAndDelete => d.compare_and_delete(),
    }
}

impl Decide<'_> {
    fn path(&self) -> &str {
        &self.req.path
    }

    /// The lease for the node: a fresh one with `ttl`, else `inherited`.
    fn lease(&self, inherited: i64) -> (i64, Option<(i64, i64)>) {
        match self.req.ttl {
            Some(ttl) => (self.req.lease, Some((self.req.lease, ttl))),
            None => (inherited, None),
        }
    }

    /// Create or replace a file (or create a directory with `dir=true`).
    fn set(&self) -> Decision {
        match self.place.entry() {
            Entry::Dir(_) => refused(V2ErrorCode::NotFile, self.path()),
            Entry::Absent if self.req.refresh => Decision::Missing,
            Entry::File(kv) if self.req.refresh => self.refresh_file(&kv),
            Entry::File(kv) => self.put_node(Some(&kv)),
            Entry::Absent => self.put_node(None),
        }
    }

    /// Create a file or directory that must not exist yet.
    fn create(&self) -> Decision {
        match self.place.entry() {
            Entry::Absent => self.put_node(None),
            _ => refused(V2ErrorCode::NodeExist, self.path()),
        }
    }

    /// Put the node asked for (a file with the value, or with `dir` an empty directory) where
    /// nothing is, or where the file `prev` is: 201 for a new node, else 200 with the file as
    /// `prevNode`.
    fn put_node(&self, prev: Option<&KeyValue>) -> Decision {
        let (lease, grant) = self.lease(self.place.inherited_lease());
        let p = self.path();
        if let (false, Some(kv)) = (self.req.dir, prev) {
            return self.replace_file(kv, self.req.value.as_bytes(), lease, grant);
        }
        let mut ops = Vec::new();
        let node = if self.req.dir {
            // A directory in place of a file: the file goes in the same revision.
            if prev.is_some() {
                ops.push(delete_op(p.as_bytes(), vec![]));
            }
            ops.push(put_op(self.place.prefix().as_bytes(), b"", lease));
            dir_node(p, 0, 0, lease)
        } else {
            ops.push(put_op(p.as_bytes(), self.req.value.as_bytes(), lease));
            new_file(p, self.req.value.as_bytes(), 0, lease)
        };
        Decision::Write(Write {
            grant,
            ops,
            release: prev.map_or(0, |kv| kv.lease),
            created: prev.is_none(),
            node,
            prev_node: prev.map(|kv| file_node(p, kv)),
        })
    }

    /// Put `value` with `lease` where the file `kv` is, keeping its creation: every change of
    /// an existing file ends so, be it a new value or a refresh moving it to a fresh lease.
    fn replace_file(&self, kv: &KeyValue, value: &[u8], lease: i64, grant: Option<(i64, i64)>) -> Decision {
        let p = self.path();
        Decision::Write(Write {
            grant,
            ops: vec![put_op(p.as_bytes(), value, lease)],
            release: kv.lease,
            created: false,
            node: new_file(p, value, kv.create_revision, lease),
            prev_node: Some(file_node(p, kv)),
        })
    }

    /// Change an existing file's value (and TTL), or an existing directory's TTL.
    fn update(&self) -> Decision {
        match self.place.entry() {
            Entry::Absent => Decision::Missing,
            Entry::Dir(_) if !self.req.value.is_empty() => refused(V2ErrorCode::NotFile, self.path()),
            Entry::Dir(info) => self.update_dir(&info),
            Entry::File(kv) => self.change_file(&kv),
        }
    }

    /// Replace a file's value (or refresh its TTL) if it matches `prevValue`/`prevIndex`.
    fn compare_and_swap(&self) -> Decision {
        match self.matching_file() {
            Ok(kv) => self.change_file(&kv),
            Err(d) => *d,
        }
    }

    /// The file at the path if it matches `prevValue`/`prevIndex`, else the refusal: 100 when
    /// missing, 102 for a directory, 101 with etcd's cause for a mismatch.
    fn matching_file(&self) -> Result<KeyValue, Box<Decision>> {
        match self.place.entry() {
            Entry::Absent => Err(Box::new(Decision::Missing)),
            Entry::Dir(_) => Err(Box::new(refused(V2ErrorCode::NotFile, self.path()))),
            Entry::File(kv) => match compare_failure(&kv, self.req.prev_value.as_deref(), self.req.prev_index) {
                None => Ok(kv),
                Some(cause) => Err(Box::new(refused(V2ErrorCode::TestFailed, cause))),
            },
        }
    }

    /// Change an existing file as asked: with `refresh` only its TTL, else its value (and TTL).
    fn change_file(&self, kv: &KeyValue) -> Decision {
        if self.req.refresh {
            return self.refresh_file(kv);
        }
        let (lease, grant) = self.lease(self.place.inherited_lease());
        self.replace_file(kv, self.req.value.as_bytes(), lease, grant)
    }

    /// The keep-alive a refresh is when the node has a lease of its own (not the one it
    /// inherits) granted with the TTL asked for (unless that lease was found gone).
    fn keep_alive(&self, own: i64, inherited: i64, node: V2Node) -> Option<Decision> {
        let ttl = self.req.ttl.filter(|_| !self.req.no_keep_alive)?;
        let own_ttl = (own != 0 && own != inherited).then(|| (self.granted_ttl)(own)).flatten();
        (own_ttl == Some(ttl)).then_some(Decision::KeepAlive { lease: own, node })
    }

    /// Refresh a file's TTL keeping its value: a keep-alive, else a move to a fresh lease.
    fn refresh_file(&self, kv: &KeyValue) -> Decision {
        let p = self.path();
        if let Some(keep) = self.keep_alive(kv.lease, self.place.inherited_lease(), file_node(p, kv)) {
            return keep;
        }
        let (lease, grant) = self.lease(0);
        self.replace_file(kv, &kv.value, lease, grant)
    }

    /// Update a directory's TTL (`ttl` given: a fresh lease; none: the TTL it inherits).
    /// Keys inside that shared the directory's old lease move to the new one, so they still go
    /// with it.
    fn update_dir(&self, info: &DirInfo) -> Decision {
        let p = self.path();
        let old = info.lease();
        let inherited = self.place.inherited_lease();
        let prev_node = dir_node(p, info.modified, info.created, old);
        if self.req.refresh {
            if let Some(keep) = self.keep_alive(old, inherited, prev_node.clone()) {
                return keep;
            }
        }
        let (lease, grant) = self.lease(inherited);
        let prefix = self.place.prefix();
        let mut ops = vec![put_op(prefix.as_bytes(), b"", lease)];
        if old != 0 && old != lease {
            let inside = self.place.subtree.iter().filter(|kv| kv.key != prefix.as_bytes() && kv.lease == old);
            ops.extend(inside.map(|kv| relabel_op(&kv.key, lease)));
        }
        let created = info.marker.as_ref().map_or(0, |m| m.create_revision);
        Decision::Write(Write {
            grant,
            ops,
            release: old,
            created: false,
            node: dir_node(p, 0, created, lease),
            prev_node: Some(prev_node),
        })
    }

    /// Delete a file, or a directory (`dir`; a non-empty one also `recursive`) with every key
    /// under it. The leases of deleted keys are left to expire on their own (they hold no
    /// keys), which keeps "was this key deleted or did it expire?" answerable for watchers.
    fn delete(&self) -> Decision {
        let p = self.path();
        let (op, prev) = match self.place.entry() {
            Entry::Absent => return Decision::Missing,
            Entry::File(kv) => (delete_op(p.as_bytes(), vec![]), file_node(p, &kv)),
            Entry::Dir(_) if !self.req.dir && !self.req.recursive => return refused(V2ErrorCode::NotFile, p),
            Entry::Dir(info) if info.has_children && !self.req.recursive => {
                return refused(V2ErrorCode::DirNotEmpty, p)
            }
            Entry::Dir(info) => {
                let prefix = self.place.prefix().into_bytes();
                let end = crate::api::kv::prefix_range_end(&prefix);
                (delete_op(&prefix, end), dir_node(p, info.modified, info.created, info.lease()))
            }
        };
        self.deleted(op, prev)
    }

    /// Delete a file if it matches `prevValue`/`prevIndex`.
    fn compare_and_delete(&self) -> Decision {
        match self.matching_file() {
            Ok(kv) => self.deleted(delete_op(self.path().as_bytes(), vec![]), file_node(self.path(), &kv)),
            Err(d) => *d,
        }
    }

    /// The write of a delete: the node is bare (key, kind and indexes), `prev` as it was.
    fn deleted(&self, op: RequestOp, prev: V2Node) -> Decision {
        let node = V2Node { path: prev.path.clone(), dir: prev.dir, created: prev.created, ..V2Node::default() };
        Decision::Write(Write { grant: None, ops: vec![op], release: 0, created: false, node, prev_node: Some(prev) })
    }

    /// POST: a file (or directory) named by the write's revision, zero-padded to 20 digits,
    /// inside the directory at the path. The directory need not exist; it must not be a file.
    fn in_order(&self, next_revision: i64) -> Decision {
        let p = self.path();
        if !path::is_root(p) && self.place.exact.is_some() {
            return refused(V2ErrorCode::NotDir, p);
        }
        let (lease, grant) = self.lease(self.place.inherited_lease_inside());
        let name = format!("{}{next_revision:020}", self.place.prefix());
        let (op, node) = if self.req.dir {
            (put_op(path::dir_prefix(&name).as_bytes(), b"", lease), dir_node(&name, 0, 0, lease))
        } else {
            let value = self.req.value.as_bytes();
            (put_op(name.as_bytes(), value, lease), new_file(&name, value, 0, lease))
        };
        Decision::Write(Write { grant, ops: vec![op], release: 0, created: true, node, prev_node: None })
    }
}
