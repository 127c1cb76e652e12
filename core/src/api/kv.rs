//! The key-value records of the MVCC key space, shaped like etcd's `mvccpb` messages so that the
//! API layers can convert them field by field.

use serde::{Deserialize, Serialize};

/// One version of a key, as etcd's `mvccpb.KeyValue`: revisions are cluster-wide write counters,
/// `version` counts puts since the key was (re)created, `lease` is 0 when the key has none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub value: Vec<u8>,
    pub lease: i64,
}

/// Whether an event created a new version of a key or deleted it (etcd's `Event.EventType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    Put,
    Delete,
}

/// A change to one key at one revision. For a delete, `kv` holds only the key and `mod_revision`
/// (as etcd sends it); `prev_kv` is the version the change replaced, when it is still retained.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventType,
    pub kv: KeyValue,
    pub prev_kv: Option<KeyValue>,
}

/// The smallest key above every key starting with `prefix`; empty when there is none (the
/// prefix is all 0xff).
pub fn prefix_successor(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    Vec::new()
}

/// The `range_end` that selects every key starting with `prefix` (etcd's `GetPrefixRangeEnd`):
/// the prefix with its last byte below 0xff incremented; `[0]` ("all keys") when there is none.
pub fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    match prefix_successor(prefix) {
        end if end.is_empty() => vec![0],
        end => end,
    }
}

/// Whether `key` lies in the interval that etcd's (`key`, `range_end`) pair names: one key when
/// `range_end` is empty, every key `>= start` when it is `[0]`, else the half-open `[start, end)`.
pub fn in_range(key: &[u8], start: &[u8], range_end: &[u8]) -> bool {
    if range_end.is_empty() {
        key == start
    } else if range_end == [0] {
        key >= start
    } else {
        key >= start && key < range_end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successor_skips_trailing_ff() {
        assert_eq!(prefix_successor(b"ab"), b"ac");
        assert_eq!(prefix_successor(&[1, 0xff]), vec![2]);
        assert!(prefix_successor(&[0xff, 0xff]).is_empty());
    }

    #[test]
    fn prefix_end_increments_last_byte_below_ff() {
        assert_eq!(prefix_range_end(b"abc"), b"abd".to_vec());
        assert_eq!(prefix_range_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_range_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_range_end(b""), vec![0]);
    }

    #[test]
    fn range_membership_follows_etcd_conventions() {
        assert!(in_range(b"a", b"a", b""));
        assert!(!in_range(b"ab", b"a", b""));
        assert!(in_range(b"zzz", b"b", &[0]));
        assert!(!in_range(b"a", b"b", &[0]));
        assert!(in_range(b"b", b"a", b"c"));
        assert!(!in_range(b"c", b"a", b"c"));
    }
}
