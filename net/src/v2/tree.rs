//! From keys to v2 nodes: what a path is (file, directory or nothing) and the listing of a
//! directory, built from the keys under its prefix. Pure functions over what was read.
//!
//! A directory's indexes are its marker's when it has one (it was created explicitly, or its
//! TTL was set); otherwise `createdIndex` is the oldest `create_revision` and `modifiedIndex`
//! the newest `mod_revision` among the keys under it.

use std::collections::BTreeMap;

use keel_core::api::kv::KeyValue;

use super::json::Node;
use super::path;

pub use keel_core::state::v2::tree::{classify, dir_info, DirInfo, Entry};

/// A file node from its key.
pub fn file_node(path: &str, kv: &KeyValue) -> Node {
    Node::file(path, String::from_utf8_lossy(&kv.value).into_owned(), kv.mod_revision, kv.create_revision, kv.lease)
}

/// A directory node without children.
pub fn dir_node(path: &str, info: &DirInfo) -> Node {
    if path::is_root(path) {
        let mut n = Node::default();
        n.dir = true;
        return n;
    }
    Node::dir(path, info.modified, info.created, info.lease())
}

/// How many levels below the listed directory a recursive listing shows; deeper directories
/// are shown without their children. Every node carries its full key, so the size of a listing
/// grows with depth times key length; this keeps it linear in the data (v2 paths cannot be
/// that deep anyway: only keys written through v3 can).
pub const MAX_LISTING_DEPTH: usize = 64;

/// The children of one directory: by name, its file key and the keys below it (indexes into
/// the listing's keys).
#[derive(Default)]
struct Child {
    file: Option<usize>,
    below: Vec<usize>,
}

/// Group keys (all under `prefix`, which is `prefix_len` bytes of each) by the name of the
/// child of the directory they belong to. Hidden names, the directory's own marker and empty
/// names (`//` in a key) are left out.
fn children(names: &[String], prefix_len: usize, members: &[usize]) -> BTreeMap<String, Child> {
    let mut out: BTreeMap<String, Child> = BTreeMap::new();
    for &i in members {
        let Some(rest) = names[i].get(prefix_len..) else {
            continue;
        };
        let (name, is_file) = match rest.find('/') {
            Some(j) => (&rest[..j], false),
            None => (rest, true),
        };
        if name.is_empty() || path::is_hidden_name(name) {
            continue;
        }
        let child = out.entry(name.to_string()).or_default();
        if is_file {
            child.file = Some(i);
        } else {
            child.below.push(i);
        }
    }
    out
}

/// The node of directory `path` with its listing, built from every key under it: immediate
/// children only, or the whole tree when `recursive` (down to [`MAX_LISTING_DEPTH`]).
/// Children are sorted by key (etcd sorts only when asked; sorting always is one of the orders
/// it may answer with).
pub fn dir_listing(path: &str, subtree: &[KeyValue], recursive: bool) -> Node {
    let prefix = path::dir_prefix(path);
    let info = match classify(path, None, subtree) {
        Entry::Dir(info) => info,
        _ => DirInfo::default(),
    };
    let names: Vec<String> = subtree.iter().map(|kv| String::from_utf8_lossy(&kv.key).into_owned()).collect();
    // An arena of nodes with their parent, filled without recursion; children always come
    // after their parent.
    let mut arena: Vec<(Node, usize)> = vec![(dir_node(path, &info), 0)];
    let all: Vec<usize> = (0..subtree.len()).filter(|&i| names[i].starts_with(&prefix)).collect();
    let mut work: Vec<(usize, String, Vec<usize>, usize)> = vec![(0, prefix, all, 1)];
    while let Some((parent, prefix, members, depth)) = work.pop() {
        for (name, child) in children(&names, prefix.len(), &members) {
            let child_path = format!("{prefix}{name}");
            match child.file {
                // A key at the child's own path makes it a file (the file wins).
                Some(i) => arena.push((file_node(&child_path, &subtree[i]), parent)),
                None => {
                    let child_prefix = format!("{child_path}/");
                    let below: Vec<&KeyValue> = child.below.iter().map(|&i| &subtree[i]).collect();
                    let info = dir_info(child_prefix.as_bytes(), &below);
                    arena.push((dir_node(&child_path, &info), parent));
                    if recursive && depth < MAX_LISTING_DEPTH {
                        work.push((arena.len() - 1, child_prefix, child.below, depth + 1));
                    }
                }
            }
        }
    }
    // Attach children to parents from the last node back: a node's children all come after
    // it, so they are attached by the time it is reached.
    while arena.len() > 1 {
        let Some((node, parent)) = arena.pop() else {
            break;
        };
        arena[parent].0.nodes.push(node);
    }
    let Some((mut root, _)) = arena.pop() else {
        return Node::default();
    };
    sort_levels(&mut root);
    root
}

/// Order every level's children by key (they were attached in reverse discovery order).
fn sort_levels(root: &mut Node) {
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        n.nodes.sort_by(|a, b| a.key.cmp(&b.key));
        stack.extend(n.nodes.iter_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &str, create: i64, modr: i64) -> KeyValue {
        KeyValue {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            create_revision: create,
            mod_revision: modr,
            version: 1,
            lease: 0,
        }
    }

    fn keys(n: &Node) -> Vec<String> {
        n.nodes.iter().map(|c| c.key.clone()).collect()
    }

    #[test]
    fn listing_immediate_and_recursive() {
        let sub = vec![
            kv("/d/", "", 2, 2),
            kv("/d/_hidden", "h", 3, 3),
            kv("/d/b", "vb", 4, 4),
            kv("/d/a/", "", 5, 5),
            kv("/d/a/x", "vx", 6, 8),
            kv("/d/c/y/z", "vz", 7, 7),
            kv("/d/c!", "bang", 9, 9),
            kv("/d//odd", "o", 10, 10),
        ];
        let n = dir_listing("/d", &sub, false);
        assert_eq!((n.key.as_str(), n.dir, n.created_index, n.modified_index), ("/d", true, 2, 2));
        assert_eq!(keys(&n), vec!["/d/a", "/d/b", "/d/c", "/d/c!"]);
        assert!(n.nodes[0].dir && n.nodes[0].nodes.is_empty());
        assert_eq!((n.nodes[0].created_index, n.nodes[0].modified_index), (5, 5));
        assert_eq!(n.nodes[1].value.as_deref(), Some("vb"));
        assert_eq!((n.nodes[2].created_index, n.nodes[2].modified_index), (7, 7));
        let r = dir_listing("/d", &sub, true);
        assert_eq!(keys(&r.nodes[0]), vec!["/d/a/x"]);
        assert_eq!(keys(&r.nodes[2]), vec!["/d/c/y"]);
        assert_eq!(keys(&r.nodes[2].nodes[0]), vec!["/d/c/y/z"]);
        let root = dir_listing("/", &[kv("/x", "1", 2, 2), kv("/_y", "1", 3, 3), kv("/z/w", "", 4, 4)], false);
        assert_eq!((root.key.as_str(), root.created_index), ("", 0));
        assert_eq!(keys(&root), vec!["/x", "/z"]);
    }

    #[test]
    fn deep_listing_does_not_recurse() {
        let key = "/a".repeat(50_000);
        let sub = vec![kv(&key, "v", 2, 2)];
        let n = dir_listing("/a", &sub, true);
        let mut depth = 0;
        let mut cur = &n;
        while let Some(c) = cur.nodes.first() {
            depth += 1;
            cur = c;
        }
        assert_eq!(depth, MAX_LISTING_DEPTH);
        assert!(cur.dir && cur.nodes.is_empty());
        let short = "/a".repeat(10);
        let n = dir_listing("/a", &[kv(&short, "v", 2, 2)], true);
        let mut cur = &n;
        while let Some(c) = cur.nodes.first() {
            cur = c;
        }
        assert_eq!(cur.value.as_deref(), Some("v"));
    }
}
