//! Shorthands for the unit tests of the MVCC modules.

use super::MvccStore;
use crate::api::kv::KeyValue;
use crate::api::request::*;

/// Leases 1..=9 exist in the tests; anything else does not.
pub(crate) fn leases(id: i64) -> bool {
    (1..=9).contains(&id)
}

pub(crate) fn put(s: &mut MvccStore, key: &str, value: &str) -> PutResponse {
    put_lease(s, key, value, 0)
}

pub(crate) fn put_lease(s: &mut MvccStore, key: &str, value: &str, lease: i64) -> PutResponse {
    let req = PutRequest { key: key.into(), value: value.into(), lease, ..Default::default() };
    s.put(&req, &leases).expect("put").response
}

pub(crate) fn del(s: &mut MvccStore, key: &str, range_end: &str) -> DeleteRangeResponse {
    let req = DeleteRangeRequest { key: key.into(), range_end: range_end.into(), prev_kv: true };
    s.delete_range(&req).expect("delete").response
}

pub(crate) fn get(s: &MvccStore, key: &str) -> Option<KeyValue> {
    let req = RangeRequest { key: key.into(), ..Default::default() };
    s.range(&req).expect("range").kvs.into_iter().next()
}

pub(crate) fn get_at(s: &MvccStore, key: &str, revision: i64) -> Option<KeyValue> {
    let req = RangeRequest { key: key.into(), revision, ..Default::default() };
    s.range(&req).expect("range").kvs.into_iter().next()
}

pub(crate) fn keys_of(kvs: &[KeyValue]) -> Vec<String> {
    kvs.iter().map(|kv| String::from_utf8_lossy(&kv.key).into_owned()).collect()
}

pub(crate) fn kv(key: &str, value: &str, create: i64, modr: i64, version: i64, lease: i64) -> KeyValue {
    KeyValue { key: key.into(), value: value.into(), create_revision: create, mod_revision: modr, version, lease }
}
