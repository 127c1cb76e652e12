//! What a v2 path is (a file, a directory or nothing), decided from the keys at and under it.
//! Pure functions over what was read, shared by the state machine's v2 writes and the v2
//! API's reads, so both see the same tree.
//!
//! A directory's indexes are its marker's when it has one (it was created explicitly, or its
//! TTL was set); otherwise `created` is the oldest `create_revision` and `modified` the newest
//! `mod_revision` among the keys under it.

use crate::api::kv::KeyValue;

use crate::api::v2::path;

/// What a directory is made of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirInfo {
    /// Its marker key (`<dir>/`), if it has one.
    pub marker: Option<KeyValue>,
    pub created: i64,
    pub modified: i64,
    /// Whether any key other than the marker is inside.
    pub has_children: bool,
}

impl DirInfo {
    /// The lease of the marker (the directory's TTL), 0 for none.
    pub fn lease(&self) -> i64 {
        self.marker.as_ref().map_or(0, |m| m.lease)
    }
}

/// What a path is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Absent,
    File(KeyValue),
    Dir(DirInfo),
}

/// Describe the directory whose prefix is `prefix` from the keys under it.
pub fn dir_info(prefix: &[u8], subtree: &[&KeyValue]) -> DirInfo {
    let marker = subtree.iter().find(|kv| kv.key == prefix).map(|kv| (*kv).clone());
    let has_children = subtree.iter().any(|kv| kv.key != prefix);
    let (created, modified) = match &marker {
        Some(m) => (m.create_revision, m.mod_revision),
        None => (
            subtree.iter().map(|kv| kv.create_revision).min().unwrap_or(0),
            subtree.iter().map(|kv| kv.mod_revision).max().unwrap_or(0),
        ),
    };
    DirInfo { marker, created, modified, has_children }
}

/// What `path` is, given its own key (if any) and the keys under `<path>/`. The root is
/// always a directory (without indexes); a key at the path itself makes it a file.
pub fn classify(path: &str, exact: Option<&KeyValue>, subtree: &[KeyValue]) -> Entry {
    let prefix = path::dir_prefix(path);
    let refs: Vec<&KeyValue> = subtree.iter().collect();
    if path::is_root(path) {
        let info = dir_info(prefix.as_bytes(), &refs);
        return Entry::Dir(DirInfo { marker: None, created: 0, modified: 0, ..info });
    }
    match exact {
        Some(kv) => Entry::File(kv.clone()),
        None if !subtree.is_empty() => Entry::Dir(dir_info(prefix.as_bytes(), &refs)),
        None => Entry::Absent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, create: i64, modr: i64) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: b"x".to_vec(),
            create_revision: create,
            mod_revision: modr,
            version: 1,
            lease: 0,
        }
    }

    #[test]
    fn classification() {
        let f = kv("/a", 2, 3);
        assert_eq!(classify("/a", Some(&f), &[]), Entry::File(f.clone()));
        assert_eq!(classify("/a", None, &[]), Entry::Absent);
        let sub = vec![kv("/a/", 5, 5), kv("/a/b", 6, 9)];
        match classify("/a", None, &sub) {
            Entry::Dir(d) => assert_eq!((d.created, d.modified, d.has_children), (5, 5, true)),
            e => panic!("{e:?}"),
        }
        let sub = vec![kv("/a/b", 6, 9), kv("/a/c/d", 4, 7)];
        match classify("/a", None, &sub) {
            Entry::Dir(d) => assert_eq!((d.created, d.modified, d.marker), (4, 9, None)),
            e => panic!("{e:?}"),
        }
        // The file wins over keys below it.
        assert_eq!(classify("/a", Some(&f), &sub), Entry::File(f));
        assert!(matches!(classify("/", None, &[]), Entry::Dir(_)));
    }
}
