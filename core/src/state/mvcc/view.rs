//! Reading the key space out of the engine's records (laid out as `layout` says): a key's newest
//! version, the versions in effect at a revision over a key range, a key's whole retained
//! history, and one change with its predecessor.

use std::ops::Bound;

use super::key_history::{is_discarded, Change, KeyHistory, Live, Revision};
use super::layout;
use crate::api::error::{Error, Result};
use crate::state::engine::{EngineResult, KeyBounds, Reader, Space};

/// The key space as the records of `reader` hold it, compacted at `compacted`: what compaction
/// discarded but the background deletion has not reached yet is never seen.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub(crate) reader: &'a dyn Reader,
    compacted: i64,
}

pub(crate) fn storage_error(e: crate::state::engine::EngineError) -> Error {
    Error::Internal(format!("storage: {e}"))
}

/// The user keys etcd's (`key`, `range_end`) selects, as bounds over `Latest`: one key, every key
/// `>= key` for `[0]`, else `[key, range_end)`; `None` when the interval is empty.
fn user_bounds<'a>(key: &'a [u8], range_end: &'a [u8]) -> Option<KeyBounds<'a>> {
    if range_end.is_empty() {
        Some(KeyBounds { start: Bound::Included(key), end: Bound::Included(key) })
    } else if range_end == [0] {
        Some(KeyBounds { start: Bound::Included(key), end: Bound::Unbounded })
    } else if range_end <= key {
        None
    } else {
        Some(KeyBounds { start: Bound::Included(key), end: Bound::Excluded(range_end) })
    }
}

/// The same interval as bounds over `History` keys (owned: they are escaped).
fn history_bounds(key: &[u8], range_end: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    if range_end.is_empty() {
        let prefix = layout::history_prefix(key);
        let end = crate::api::kv::prefix_successor(&prefix);
        Some((prefix, Some(end)))
    } else if range_end == [0] {
        Some((layout::escape(key), None))
    } else if range_end <= key {
        None
    } else {
        Some((layout::escape(key), Some(layout::escape(range_end))))
    }
}

impl<'a> View<'a> {
    pub(crate) fn new(reader: &'a dyn Reader, compacted: i64) -> Self {
        View { reader, compacted }
    }

    /// The key's newest version, if the key is live.
    pub(crate) fn latest(&self, key: &[u8]) -> Result<Option<(i64, Live)>> {
        Ok(self.latest_with_revision(key)?.map(|(rev, l)| (rev.main, l)))
    }

    /// The key's newest version with its whole revision, if the key is live.
    pub(crate) fn latest_with_revision(&self, key: &[u8]) -> Result<Option<(Revision, Live)>> {
        Ok(self.latest_change(key)?.and_then(|c| c.live.map(|l| (c.rev, l))))
    }

    /// Calls `f` with every live key of (`key`, `range_end`) and its newest version, in key
    /// order; stops early when `f` returns false.
    pub(crate) fn for_each_latest(
        &self,
        key: &[u8],
        range_end: &[u8],
        f: &mut dyn FnMut(Vec<u8>, Revision, Live) -> Result<bool>,
    ) -> Result<()> {
        let Some(bounds) = user_bounds(key, range_end) else { return Ok(()) };
        for pair in self.reader.scan(Space::Latest, bounds, false) {
            let (k, v) = pair.map_err(storage_error)?;
            let change = layout::decode_latest(&v).map_err(storage_error)?;
            if let Some(live) = change.live {
                if !f(k, change.rev, live)? {
                    break;
                }
            }
        }
        Ok(())
    }

    fn latest_change(&self, key: &[u8]) -> Result<Option<Change>> {
        stored_latest(self.reader, key)
    }

    /// Calls `f` with every key of (`key`, `range_end`) live at revision `rev` of a store whose
    /// current revision is `current`, in key order, with its mod revision and version; stops
    /// early when `f` returns false.
    pub(crate) fn for_each_live(
        &self,
        key: &[u8],
        range_end: &[u8],
        rev: i64,
        current: i64,
        f: &mut dyn FnMut(Vec<u8>, i64, Live) -> Result<bool>,
    ) -> Result<()> {
        if rev >= current {
            return self.for_each_latest(key, range_end, &mut |k, r, live| f(k, r.main, live));
        }
        self.for_each_history(key, range_end, &mut |k, history| match history.live_at(rev) {
            Some((mod_revision, live)) => f(k, mod_revision, live.clone()),
            None => Ok(true),
        })
    }

    /// Calls `f` with every key of (`key`, `range_end`) that has retained changes, in key order,
    /// with all of them in revision order; stops early when `f` returns false.
    pub(crate) fn for_each_history(
        &self,
        key: &[u8],
        range_end: &[u8],
        f: &mut dyn FnMut(Vec<u8>, KeyHistory) -> Result<bool>,
    ) -> Result<()> {
        let (Some(latest_bounds), Some((h_start, h_end))) =
            (user_bounds(key, range_end), history_bounds(key, range_end))
        else {
            return Ok(());
        };
        let h_bounds = KeyBounds {
            start: Bound::Included(h_start.as_slice()),
            end: h_end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        };
        let mut latest = self.reader.scan(Space::Latest, latest_bounds, false).peekable();
        let mut history = self.reader.scan(Space::History, h_bounds, false).peekable();
        let decode_latest = |pair: EngineResult<(Vec<u8>, Vec<u8>)>| -> Result<(Vec<u8>, Change)> {
            let (k, v) = pair.map_err(storage_error)?;
            Ok((k, layout::decode_latest(&v).map_err(storage_error)?))
        };
        let decode_history = |pair: EngineResult<(Vec<u8>, Vec<u8>)>| -> Result<(Vec<u8>, Change)> {
            let (k, v) = pair.map_err(storage_error)?;
            let (user, rev) = layout::decode_history_key(&k).map_err(storage_error)?;
            Ok((user, layout::decode_history(rev, &v).map_err(storage_error)?))
        };
        let mut next_history = history.next().map(decode_history).transpose()?;
        let mut next_latest = latest.next().map(decode_latest).transpose()?;
        loop {
            // The next user key is the smaller of the two streams' heads.
            let current = match (&next_history, &next_latest) {
                (None, None) => return Ok(()),
                (Some((h, _)), Some((l, _))) => h.min(l).clone(),
                (Some((h, _)), None) => h.clone(),
                (None, Some((l, _))) => l.clone(),
            };
            let mut changes = Vec::new();
            while next_history.as_ref().is_some_and(|(k, _)| *k == current) {
                if let Some((_, change)) = next_history.take() {
                    changes.push(change);
                }
                next_history = history.next().map(decode_history).transpose()?;
            }
            if next_latest.as_ref().is_some_and(|(k, _)| *k == current) {
                if let Some((_, change)) = next_latest.take() {
                    changes.push(change);
                }
                next_latest = latest.next().map(decode_latest).transpose()?;
            }
            let history = KeyHistory { changes }.without_discarded(self.compacted);
            if !history.changes.is_empty() && !f(current, history)? {
                return Ok(());
            }
        }
    }

    /// Every retained change of `key`, in revision order.
    pub(crate) fn history(&self, key: &[u8]) -> Result<KeyHistory> {
        let mut found = KeyHistory::default();
        self.for_each_history(key, &[], &mut |_, h| {
            found = h;
            Ok(false)
        })?;
        Ok(found)
    }

    /// `key`'s change at exactly `rev`, if it is retained.
    pub(crate) fn change_at(&self, key: &[u8], rev: Revision) -> Result<Option<Change>> {
        if rev.main <= self.compacted {
            // Whether compaction discarded it depends on what follows: read the whole history.
            return Ok(self.history(key)?.changes.into_iter().find(|c| c.rev == rev));
        }
        if let Some(latest) = self.latest_change(key)? {
            if latest.rev == rev {
                return Ok(Some(latest));
            }
        }
        stored_history_change(self.reader, key, rev)
    }

    /// The retained change of `key` just before `rev` (a change of `key` that exists), if any.
    pub(crate) fn change_before(&self, key: &[u8], rev: Revision) -> Result<Option<Change>> {
        let start = layout::history_prefix(key);
        let end = layout::history_key(key, rev);
        let bounds = KeyBounds { start: Bound::Included(start.as_slice()), end: Bound::Excluded(end.as_slice()) };
        let previous = first_history_change(self.reader, bounds, true)?;
        Ok(previous.filter(|p| !is_discarded(p, Some(rev.main), self.compacted)))
    }
}

/// `key`'s newest version as stored in `Latest` (compaction never discards it).
pub(crate) fn stored_latest(reader: &dyn Reader, key: &[u8]) -> Result<Option<Change>> {
    match reader.get(Space::Latest, key).map_err(storage_error)? {
        Some(bytes) => Ok(Some(layout::decode_latest(&bytes).map_err(storage_error)?)),
        None => Ok(None),
    }
}

/// `key`'s `History` record at `rev` as stored, whether or not compaction discarded it.
pub(crate) fn stored_history_change(reader: &dyn Reader, key: &[u8], rev: Revision) -> Result<Option<Change>> {
    match reader.get(Space::History, &layout::history_key(key, rev)).map_err(storage_error)? {
        Some(bytes) => Ok(Some(layout::decode_history(rev, &bytes).map_err(storage_error)?)),
        None => Ok(None),
    }
}

/// The first `History` record within `bounds` (the last with `reverse`) as stored, whether or
/// not compaction discarded it.
pub(crate) fn first_history_change(
    reader: &dyn Reader,
    bounds: KeyBounds<'_>,
    reverse: bool,
) -> Result<Option<Change>> {
    match reader.scan(Space::History, bounds, reverse).next() {
        Some(pair) => {
            let (k, v) = pair.map_err(storage_error)?;
            let (_, rev) = layout::decode_history_key(&k).map_err(storage_error)?;
            Ok(Some(layout::decode_history(rev, &v).map_err(storage_error)?))
        }
        None => Ok(None),
    }
}
