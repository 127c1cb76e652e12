//! The WatchHub: one member's registry of watchers (not replicated).
//!
//! Every applied write produces the events of one revision; [`WatchHub::on_events`] routes them
//! to the watchers whose range they touch. A watcher created at a past revision first replays
//! history (through [`EventHistory`], which the MVCC store implements) and then follows live
//! events. Each watcher remembers the next revision it may receive, so the replay/live boundary
//! never yields an event twice and nothing ever goes back in time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::error::{Error, Result};
use crate::api::kv::{in_range, Event, EventType};

/// A watcher's id, assigned by the hub (the API layer maps its per-stream ids onto these).
pub type WatchId = i64;

/// Replayed events are packed into responses of at most this many events, except that one
/// revision's events always travel together (so a response may exceed it for a huge revision).
pub const MAX_REPLAY_EVENTS_PER_RESPONSE: usize = 1000;

/// Create a watcher (etcd's `WatchCreateRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchCreate {
    /// Start of the watched interval (same conventions as a Range: see [`crate::api::kv::in_range`]).
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    /// First revision to report; 0 (or negative) means "from the next revision".
    pub start_revision: i64,
    /// Receive periodic progress notifications.
    pub progress_notify: bool,
    /// Event kinds to leave out.
    pub filters: Vec<WatchFilter>,
    /// Send each event's previous key-value.
    pub prev_kv: bool,
    /// The client accepts fragmented responses; kept for the API layer (see
    /// [`WatchHub::request`]), the hub itself never splits a revision.
    pub fragment: bool,
}

/// Event kinds a watcher can leave out (etcd's `WatchCreateRequest.FilterType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchFilter {
    NoPut,
    NoDelete,
}

/// What the hub sends to a watcher (etcd's `WatchResponse`; `revision` is the header revision).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchResponse {
    pub watch_id: WatchId,
    pub created: bool,
    pub canceled: bool,
    /// Non-zero when the watcher asked for a compacted revision (it is then canceled too).
    pub compact_revision: i64,
    pub cancel_reason: String,
    pub events: Vec<Event>,
    pub revision: i64,
}

/// The history a watcher replays from when it starts at a past revision; the MVCC store
/// implements it.
pub trait EventHistory {
    /// The latest applied revision.
    fn current_revision(&self) -> i64;
    /// The revision history has been compacted to (0 if never).
    fn compact_revision(&self) -> i64;
    /// Every event at revision `>= start` on a key in (`key`, `range_end`), in
    /// (revision, order within the revision) order.
    fn events_since(&self, start: i64, key: &[u8], range_end: &[u8]) -> Result<Vec<Event>>;
}

/// One registered watcher.
#[derive(Clone, Debug)]
struct Watcher {
    req: WatchCreate,
    no_put: bool,
    no_delete: bool,
    /// The highest revision this watcher has passed: everything up to it has been delivered (or
    /// precedes its start); it only receives later revisions.
    passed: i64,
    /// Its client fell behind (the shell could not hand it a response): it receives nothing live
    /// until [`WatchHub::resume`] catches it up from history (etcd's unsynced watchers).
    behind: bool,
}

impl Watcher {
    /// Whether `ev` is for this watcher (range and filters), and if so the event as it is sent.
    fn admit(&self, ev: &Event) -> Option<Event> {
        if !in_range(&ev.kv.key, &self.req.key, &self.req.range_end) {
            return None;
        }
        match ev.kind {
            EventType::Put if self.no_put => return None,
            EventType::Delete if self.no_delete => return None,
            _ => {}
        }
        let mut ev = ev.clone();
        if !self.req.prev_kv {
            ev.prev_kv = None;
        }
        Some(ev)
    }
}

/// A member's registry of watchers: creates them (with replay), routes applied events, cancels
/// them and produces progress notifications. Deterministic: watchers are visited in id order.
#[derive(Clone, Debug, Default)]
pub struct WatchHub {
    next_id: WatchId,
    watchers: BTreeMap<WatchId, Watcher>,
    /// The latest revision the hub has seen (from history or applied events), used as the header
    /// revision of cancellations.
    revision: i64,
}

impl WatchHub {
    /// An empty hub; ids start at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a watcher and return its id with the responses to send now: a `created` one,
    /// then either a compaction cancel (the start revision is compacted; the watcher is removed)
    /// or the replay of history from the start revision up to the current one, grouped so that
    /// no revision's events are split across responses.
    pub fn create(&mut self, req: WatchCreate, history: &dyn EventHistory) -> (WatchId, Vec<WatchResponse>) {
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        let current = history.current_revision();
        self.revision = self.revision.max(current);
        let mut out = vec![WatchResponse { watch_id: id, created: true, revision: current, ..Default::default() }];
        // Replays from `start` (0: from the next revision); a compacted start cancels the watch.
        let start = req.start_revision.max(0);
        let mut watcher = Watcher {
            no_put: req.filters.contains(&WatchFilter::NoPut),
            no_delete: req.filters.contains(&WatchFilter::NoDelete),
            passed: if start == 0 { current } else { start - 1 },
            behind: false,
            req,
        };
        let keep = catch_up(id, &mut watcher, history, &mut out);
        if keep {
            self.watchers.insert(id, watcher);
        }
        (id, out)
    }

    /// After the member's state was replaced by a snapshot, bring every watcher up to the new
    /// current revision from history: the events it has not passed yet, each once, or a
    /// compaction cancel when the snapshot no longer holds them.
    pub fn resync(&mut self, history: &dyn EventHistory) -> Vec<WatchResponse> {
        self.revision = self.revision.max(history.current_revision());
        let mut out = Vec::new();
        // A watcher that is behind is caught up when it resumes.
        self.watchers.retain(|&id, w| w.behind || catch_up(id, w, history, &mut out));
        out
    }

    /// Route the events of one newly applied `revision`: for each watcher (in id order) that has
    /// not yet passed this revision, the events in its range that survive its filters (with
    /// `prev_kv` removed unless asked for), as one response; watchers with nothing to receive get
    /// no response. Every watcher then remembers it has passed `revision`.
    pub fn on_events(&mut self, events: &[Event], revision: i64) -> Vec<WatchResponse> {
        self.revision = self.revision.max(revision);
        let mut out = Vec::new();
        for (&id, w) in self.watchers.iter_mut() {
            if revision <= w.passed || w.behind {
                continue;
            }
            w.passed = revision;
            let evs: Vec<Event> = events.iter().filter_map(|e| w.admit(e)).collect();
            if !evs.is_empty() {
                out.push(WatchResponse { watch_id: id, events: evs, revision, ..Default::default() });
            }
        }
        out
    }

    /// The shell could not hand watcher `id` its response with events from `revision` on (its
    /// client reads too slowly): everything before `revision` was delivered. The watcher gets
    /// nothing live until [`WatchHub::resume`], which replays the rest from history, so a slow
    /// client costs no member memory and misses nothing. Responses without events (progress)
    /// pass `revision` 0 and rewind nothing.
    pub fn fell_behind(&mut self, id: WatchId, revision: i64) {
        if let Some(w) = self.watchers.get_mut(&id) {
            w.behind = true;
            if revision > 0 {
                w.passed = w.passed.min(revision - 1);
            }
        }
    }

    /// Whether watcher `id` is waiting to be caught up.
    pub fn is_behind(&self, id: WatchId) -> bool {
        self.watchers.get(&id).is_some_and(|w| w.behind)
    }

    /// Catch watcher `id` up from history (the shell has room for it again): every event it
    /// has not passed, up to the current revision, then live events as before; or, if that
    /// history was compacted meanwhile, etcd's compacted cancel (a plain cancel for a watcher
    /// that ended meanwhile).
    pub fn resume(&mut self, id: WatchId, history: &dyn EventHistory) -> Vec<WatchResponse> {
        let mut out = Vec::new();
        let Some(w) = self.watchers.get_mut(&id) else {
            // Ended while its client was behind (its cancel could not be handed over): say so now.
            out.push(WatchResponse { watch_id: id, canceled: true, revision: self.revision, ..Default::default() });
            return out;
        };
        if !w.behind {
            return out;
        }
        w.behind = false;
        if !catch_up(id, w, history, &mut out) {
            self.watchers.remove(&id);
        }
        out
    }

    /// Remove a watcher; the `canceled` response to send, or `None` if the id is unknown.
    pub fn cancel(&mut self, id: WatchId) -> Option<WatchResponse> {
        self.watchers.remove(&id).map(|_| WatchResponse {
            watch_id: id,
            canceled: true,
            revision: self.revision,
            ..Default::default()
        })
    }

    /// A progress notification (no events, header revision `revision`) for every watcher that
    /// asked for them, in id order; the node calls this periodically, after routing every
    /// revision up to `revision`.
    pub fn progress(&self, revision: i64) -> Vec<WatchResponse> {
        self.watchers
            .iter()
            // A watcher that is behind has not seen every revision up to `revision`.
            .filter(|(_, w)| w.req.progress_notify && !w.behind)
            .map(|(&id, _)| WatchResponse { watch_id: id, revision, ..Default::default() })
            .collect()
    }

    /// The request a live watcher was created with (e.g. for the API layer to honour
    /// `fragment`), or `None` if unknown.
    pub fn request(&self, id: WatchId) -> Option<&WatchCreate> {
        self.watchers.get(&id).map(|w| &w.req)
    }

    /// The number of live watchers.
    pub fn len(&self) -> usize {
        self.watchers.len()
    }

    /// Whether there are no live watchers.
    pub fn is_empty(&self) -> bool {
        self.watchers.is_empty()
    }
}

/// Pack events (sorted by revision) into responses of about [`MAX_REPLAY_EVENTS_PER_RESPONSE`]
/// events, never splitting a revision.
/// Deliver from history every event the watcher has not passed, up to the current revision,
/// into `out`. Returns false when the watcher must go (its history is compacted or unreadable);
/// the cancel response is then in `out`.
fn catch_up(id: WatchId, w: &mut Watcher, history: &dyn EventHistory, out: &mut Vec<WatchResponse>) -> bool {
    let current = history.current_revision();
    let from = w.passed.saturating_add(1);
    if from > current {
        return true;
    }
    let cancel = |compact_revision: i64, cancel_reason: String| WatchResponse {
        watch_id: id,
        canceled: true,
        compact_revision,
        cancel_reason,
        revision: current,
        ..Default::default()
    };
    if from < history.compact_revision() {
        out.push(cancel(history.compact_revision(), String::new()));
        return false;
    }
    match history.events_since(from, &w.req.key, &w.req.range_end) {
        Ok(mut events) => {
            events.retain(|e| e.kv.mod_revision >= from && e.kv.mod_revision <= current);
            // Stable: keeps the order within a revision.
            events.sort_by_key(|e| e.kv.mod_revision);
            if crate::bugs::enabled(crate::bugs::Bug::WatchOutOfOrder) {
                events.reverse();
            }
            let admitted: Vec<Event> = events.iter().filter_map(|e| w.admit(e)).collect();
            out.extend(pack_by_revision(id, current, admitted));
            w.passed = current;
            true
        }
        Err(Error::Compacted) => {
            out.push(cancel(history.compact_revision().max(1), String::new()));
            false
        }
        Err(e) => {
            out.push(cancel(0, e.to_string()));
            false
        }
    }
}

fn pack_by_revision(id: WatchId, header: i64, events: Vec<Event>) -> Vec<WatchResponse> {
    let mut out = Vec::new();
    let mut batch: Vec<Event> = Vec::new();
    let mut i = 0;
    while i < events.len() {
        let rev = events[i].kv.mod_revision;
        let mut j = i;
        while j < events.len() && events[j].kv.mod_revision == rev {
            j += 1;
        }
        if !batch.is_empty() && batch.len() + (j - i) > MAX_REPLAY_EVENTS_PER_RESPONSE {
            out.push(WatchResponse {
                watch_id: id,
                events: std::mem::take(&mut batch),
                revision: header,
                ..Default::default()
            });
        }
        batch.extend_from_slice(&events[i..j]);
        i = j;
    }
    if !batch.is_empty() {
        out.push(WatchResponse { watch_id: id, events: batch, revision: header, ..Default::default() });
    }
    out
}

#[cfg(test)]
mod tests;
