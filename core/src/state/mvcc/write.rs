//! One write transaction in progress: puts and deletes at one pending main revision, visible to
//! the transaction's own later reads, committed together or dropped together.

use super::key_history::{change_bytes, live_key_value, Change, Live, Revision};
use super::layout;
use super::range;
use super::view::View;
use super::MvccStore;
use crate::api::error::{Error, Result};
use crate::api::kv::{Event, EventType, KeyValue};
use crate::api::request::{
    DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse,
};
use crate::state::engine::{Batch, Overlay, Space};

/// Gathers changes under main revision `current + 1` in a batch of its own, read through on top
/// of the store; `commit` stages them in the store and makes that revision current (if anything
/// changed). Dropping a writer without committing leaves the store exactly as it was.
pub(crate) struct Writer<'s> {
    store: &'s mut MvccStore,
    main: i64,
    /// Changes made so far: the next change's sub-revision.
    changes: i64,
    local: Batch,
    /// What the changes add to the quota count.
    added: u64,
    events: Vec<Event>,
}

impl<'s> Writer<'s> {
    /// Starts a write transaction on `store`.
    pub(crate) fn begin(store: &'s mut MvccStore) -> Result<Self> {
        let main = store
            .meta
            .current_revision
            .checked_add(1)
            .ok_or_else(|| Error::Internal("mvcc: revision overflow".into()))?;
        Ok(Writer { store, main, changes: 0, local: Batch::default(), added: 0, events: Vec::new() })
    }

    /// The revision the transaction's reads see: its own pending revision once it has changes
    /// (read-your-writes), else the store's current one.
    pub(crate) fn read_revision(&self) -> i64 {
        if self.changes > 0 {
            self.main
        } else {
            self.store.meta.current_revision
        }
    }

    /// Runs `f` on the store as this transaction sees it.
    fn with_view<T>(&self, f: impl FnOnce(View<'_>) -> T) -> T {
        let base = self.store.reader();
        let overlay = Overlay { base: &base, top: &self.local };
        f(View::new(&overlay, self.store.meta.compact_revision))
    }

    /// A Range inside the transaction, seeing its earlier writes.
    pub(crate) fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        let (current, compacted) = (self.read_revision(), self.store.meta.compact_revision);
        self.with_view(|view| range::range(view, req, current, compacted))
    }

    fn next_revision(&mut self) -> Revision {
        let rev = Revision { main: self.main, sub: self.changes };
        self.changes = self.changes.saturating_add(1);
        rev
    }

    /// Stage `change` of `key` as its newest, retiring the previous newest (`prev`) to history.
    fn record(&mut self, key: &[u8], prev: Option<Revision>, prev_live: Option<&Live>, change: &Change) {
        if let (Some(rev), Some(live)) = (prev, prev_live) {
            let retired = Change { rev, live: Some(live.clone()) };
            self.local.put(Space::History, layout::history_key(key, rev), layout::encode_history(&retired));
        }
        match &change.live {
            Some(live) => self.local.put(Space::Latest, key.to_vec(), layout::encode_latest(change.rev, live)),
            None => {
                self.local.delete(Space::Latest, key.to_vec());
                self.local.put(Space::History, layout::history_key(key, change.rev), layout::encode_history(change));
            }
        }
        self.local.put(Space::Revisions, layout::revision_key(change.rev), layout::encode_revision_value(key));
        self.added += change_bytes(key, change);
    }

    /// Writes one key. The lease is checked first, then the existence of the key when
    /// `ignore_value`/`ignore_lease` need its current version (etcd's order for a lone Put).
    pub(crate) fn put(&mut self, req: &PutRequest, lease_exists: &dyn Fn(i64) -> bool) -> Result<PutResponse> {
        if req.lease != 0 && !lease_exists(req.lease) {
            return Err(Error::LeaseNotFound);
        }
        let prev = self.with_view(|v| v.latest_with_revision(&req.key))?;
        if (req.ignore_value || req.ignore_lease) && prev.is_none() {
            return Err(Error::KeyNotFound);
        }

        let rev = self.next_revision();
        let live = match &prev {
            Some((_, old)) => Live {
                create_revision: old.create_revision,
                version: old.version.saturating_add(1),
                value: if req.ignore_value { old.value.clone() } else { req.value.clone() },
                lease: if req.ignore_lease { old.lease } else { req.lease },
            },
            None => Live { create_revision: rev.main, version: 1, value: req.value.clone(), lease: req.lease },
        };
        let prev_kv = prev.as_ref().map(|(r, old)| live_key_value(&req.key, r.main, old));
        let kv = live_key_value(&req.key, rev.main, &live);
        let change = Change { rev, live: Some(live) };
        self.record(&req.key, prev.as_ref().map(|(r, _)| *r), prev.as_ref().map(|(_, l)| l), &change);
        self.events.push(Event { kind: EventType::Put, kv, prev_kv: prev_kv.clone() });
        Ok(PutResponse { header: Default::default(), prev_kv: if req.prev_kv { prev_kv } else { None } })
    }

    /// Deletes every live key in the request's range, one tombstone (and sub-revision) each.
    pub(crate) fn delete_range(&mut self, req: &DeleteRangeRequest) -> Result<DeleteRangeResponse> {
        let mut victims: Vec<(Revision, KeyValue, Live)> = Vec::new();
        self.with_view(|v| {
            v.for_each_latest(&req.key, &req.range_end, &mut |key, rev, live| {
                victims.push((rev, live_key_value(&key, rev.main, &live), live));
                Ok(true)
            })
        })?;
        for (prev_rev, prev, live) in &victims {
            let rev = self.next_revision();
            self.record(&prev.key, Some(*prev_rev), Some(live), &Change { rev, live: None });
            self.events.push(Event {
                kind: EventType::Delete,
                kv: KeyValue { key: prev.key.clone(), mod_revision: rev.main, ..KeyValue::default() },
                prev_kv: Some(prev.clone()),
            });
        }
        Ok(DeleteRangeResponse {
            header: Default::default(),
            deleted: i64::try_from(victims.len()).unwrap_or(i64::MAX),
            prev_kvs: if req.prev_kv { victims.into_iter().map(|(_, kv, _)| kv).collect() } else { Vec::new() },
        })
    }

    /// Stages the transaction's changes in the store and makes them current; returns the
    /// store's revision afterwards and the events in (revision, sub) order.
    pub(crate) fn commit(self) -> (i64, Vec<Event>) {
        if self.changes > 0 {
            self.store.staged.extend(self.local);
            self.store.meta.bytes += self.added;
            self.store.meta.current_revision = self.main;
        }
        (self.store.meta.current_revision, self.events)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::MvccStore;
    use crate::api::error::Error;
    use crate::api::kv::{EventType, KeyValue};
    use crate::api::request::{DeleteRangeRequest, PutRequest};

    #[test]
    fn revisions_versions_and_generations() {
        let mut s = MvccStore::new();
        assert_eq!((s.current_revision(), s.compact_revision()), (1, 0));
        assert_eq!(put(&mut s, "k", "v1").header.revision, 2);
        assert_eq!(get(&s, "k"), Some(kv("k", "v1", 2, 2, 1, 0)));
        put(&mut s, "k", "v2");
        assert_eq!(get(&s, "k"), Some(kv("k", "v2", 2, 3, 2, 0)));
        assert_eq!(del(&mut s, "k", "").header.revision, 4);
        assert_eq!(get(&s, "k"), None);
        put(&mut s, "k", "v3");
        assert_eq!(get(&s, "k"), Some(kv("k", "v3", 5, 5, 1, 0)), "new generation");
        assert_eq!(s.current_revision(), 5);
        // Old revisions stay readable.
        assert_eq!(get_at(&s, "k", 3), Some(kv("k", "v2", 2, 3, 2, 0)));
        assert_eq!(get_at(&s, "k", 4), None);
    }

    #[test]
    fn delete_of_nothing_does_not_bump_the_revision() {
        let mut s = MvccStore::new();
        put(&mut s, "a", "1");
        let applied = s.delete_range(&DeleteRangeRequest { key: b"zz".to_vec(), ..Default::default() }).unwrap();
        assert_eq!(applied.response.deleted, 0);
        assert_eq!(applied.response.header.revision, 2);
        assert!(applied.events.is_empty());
        assert_eq!(s.current_revision(), 2);
    }

    #[test]
    fn delete_range_shares_one_revision_and_reports_prev_kvs() {
        let mut s = MvccStore::new();
        for k in ["a", "b", "c", "d"] {
            put(&mut s, k, k);
        }
        let req = DeleteRangeRequest { key: b"b".to_vec(), range_end: b"d".to_vec(), prev_kv: true };
        let applied = s.delete_range(&req).unwrap();
        assert_eq!(applied.response.deleted, 2);
        assert_eq!(applied.response.header.revision, 6);
        assert_eq!(keys_of(&applied.response.prev_kvs), ["b", "c"]);
        assert_eq!(applied.events.len(), 2);
        for (e, (key, prev_mod)) in applied.events.iter().zip([("b", 3), ("c", 4)]) {
            assert_eq!(e.kind, EventType::Delete);
            assert_eq!(e.kv, KeyValue { key: key.into(), mod_revision: 6, ..Default::default() });
            assert_eq!(e.prev_kv.as_ref().map(|p| p.mod_revision), Some(prev_mod));
        }
        let quiet = DeleteRangeRequest { key: b"a".to_vec(), range_end: vec![0], prev_kv: false };
        let applied = s.delete_range(&quiet).unwrap();
        assert_eq!(applied.response.deleted, 2, "from-key: a and d");
        assert!(applied.response.prev_kvs.is_empty());
        assert!(applied.events.iter().all(|e| e.prev_kv.is_some()), "events always carry prev_kv");
    }

    #[test]
    fn put_prev_kv_and_events() {
        let mut s = MvccStore::new();
        let req = PutRequest { key: b"k".to_vec(), value: b"1".to_vec(), prev_kv: true, ..Default::default() };
        let first = s.put(&req, &leases).unwrap();
        assert_eq!(first.response.prev_kv, None);
        assert_eq!(first.events.len(), 1);
        assert_eq!(first.events[0].kind, EventType::Put);
        assert_eq!(first.events[0].kv, kv("k", "1", 2, 2, 1, 0));
        assert_eq!(first.events[0].prev_kv, None);

        let second = s.put(&PutRequest { value: b"2".to_vec(), ..req.clone() }, &leases).unwrap();
        assert_eq!(second.response.prev_kv, Some(kv("k", "1", 2, 2, 1, 0)));
        let quiet = PutRequest { prev_kv: false, ..req };
        let third = s.put(&quiet, &leases).unwrap();
        assert_eq!(third.response.prev_kv, None);
        assert_eq!(third.events[0].prev_kv, Some(kv("k", "2", 2, 3, 2, 0)), "events always carry prev_kv");
    }

    #[test]
    fn ignore_value_and_ignore_lease_keep_the_current_ones() {
        let mut s = MvccStore::new();
        put_lease(&mut s, "k", "v", 3);
        let keep_value = PutRequest { key: b"k".to_vec(), ignore_value: true, lease: 4, ..Default::default() };
        s.put(&keep_value, &leases).unwrap();
        assert_eq!(get(&s, "k"), Some(kv("k", "v", 2, 3, 2, 4)));
        let keep_lease =
            PutRequest { key: b"k".to_vec(), value: b"w".to_vec(), ignore_lease: true, ..Default::default() };
        s.put(&keep_lease, &leases).unwrap();
        assert_eq!(get(&s, "k"), Some(kv("k", "w", 2, 4, 3, 4)));

        let missing = PutRequest { key: b"nope".to_vec(), ignore_value: true, ..Default::default() };
        assert_eq!(s.put(&missing, &leases).unwrap_err(), Error::KeyNotFound);
        let missing = PutRequest { key: b"nope".to_vec(), ignore_lease: true, ..Default::default() };
        assert_eq!(s.put(&missing, &leases).unwrap_err(), Error::KeyNotFound);
        del(&mut s, "k", "");
        let deleted = PutRequest { key: b"k".to_vec(), ignore_value: true, ..Default::default() };
        assert_eq!(s.put(&deleted, &leases).unwrap_err(), Error::KeyNotFound);
        assert_eq!(s.current_revision(), 5, "failed puts change nothing");
    }

    #[test]
    fn unknown_lease_is_refused() {
        let mut s = MvccStore::new();
        let req = PutRequest { key: b"k".to_vec(), lease: 42, ..Default::default() };
        assert_eq!(s.put(&req, &leases).unwrap_err(), Error::LeaseNotFound);
        assert_eq!(s, MvccStore::new());
        // The lease is checked before the key (etcd's order for a lone put).
        let both = PutRequest { key: b"k".to_vec(), lease: 42, ignore_value: true, ..Default::default() };
        assert_eq!(s.put(&both, &leases).unwrap_err(), Error::LeaseNotFound);
    }

    #[test]
    fn values_may_be_empty() {
        let mut s = MvccStore::new();
        put(&mut s, "k", "");
        assert_eq!(get(&s, "k"), Some(kv("k", "", 2, 2, 1, 0)));
    }
}
