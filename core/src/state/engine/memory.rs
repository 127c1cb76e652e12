//! [`MemEngine`]: the engine contract in memory, with a power-loss model, for the simulator and
//! tests (no files, no threads).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Batch, Engine, EngineResult, KeyBounds, Pair, Reader, Scan, Space, View};

/// Every space's contents.
type Spaces = BTreeMap<Space, BTreeMap<Vec<u8>, Vec<u8>>>;

#[derive(Clone, Debug, Default)]
struct Inner {
    /// What reads see: every committed batch.
    current: Spaces,
    /// What survives a crash: the batches covered by a sync.
    durable: Spaces,
    /// Batches committed since the last sync, in order.
    pending: Vec<Batch>,
}

/// An in-memory [`Engine`]. Clones are handles to the same engine (the node reads and writes
/// through one, the member's storage syncs and crashes it through another), so that a crash
/// drops exactly the batches no sync covered; [`MemEngine::fork`] makes an independent copy.
#[derive(Clone, Debug, Default)]
pub struct MemEngine {
    inner: Arc<Mutex<Inner>>,
}

fn apply(spaces: &mut Spaces, batch: &Batch) {
    if batch.clear {
        spaces.clear();
    }
    for ((space, key), value) in &batch.ops {
        let map = spaces.entry(*space).or_default();
        match value {
            Some(v) => {
                map.insert(key.clone(), v.clone());
            }
            None => {
                map.remove(key);
            }
        }
    }
}

impl MemEngine {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-changed (every change is a
        // plain assignment), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Make every committed batch survive a crash (the member's storage calls this when it
    /// syncs, as one journal covers the log and the state on disk).
    pub fn sync(&self) {
        let mut inner = self.lock();
        let pending = std::mem::take(&mut inner.pending);
        for batch in &pending {
            apply(&mut inner.durable, batch);
        }
    }

    /// A power loss: every batch committed since the last sync is gone.
    pub fn crash(&self) {
        let mut inner = self.lock();
        inner.pending.clear();
        inner.current = inner.durable.clone();
    }

    /// An independent copy, sharing nothing with this engine.
    pub fn fork(&self) -> MemEngine {
        MemEngine { inner: Arc::new(Mutex::new(self.lock().clone())) }
    }

    /// How many records the engine holds, over every space (for tests).
    pub fn len(&self) -> usize {
        self.lock().current.values().map(BTreeMap::len).sum()
    }

    /// The bytes of every key and value the engine holds (what a disk would roughly take).
    pub fn size_bytes(&self) -> u64 {
        let inner = self.lock();
        inner.current.values().flat_map(|m| m.iter()).map(|(k, v)| (k.len() + v.len()) as u64).sum()
    }

    /// Whether the engine holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn get_in(spaces: &Spaces, space: Space, key: &[u8]) -> Option<Vec<u8>> {
    spaces.get(&space).and_then(|m| m.get(key)).cloned()
}

/// The pairs within `bounds`, copied out (so no lock is held while a caller iterates).
fn scan_in(spaces: &Spaces, space: Space, bounds: KeyBounds<'_>, reverse: bool) -> Vec<EngineResult<Pair>> {
    let Some(map) = spaces.get(&space) else { return Vec::new() };
    if !bounds.is_ordered() {
        return Vec::new();
    }
    let range = map.range::<[u8], _>((bounds.start, bounds.end));
    match reverse {
        false => range.map(|(k, v)| Ok((k.clone(), v.clone()))).collect(),
        true => range.rev().map(|(k, v)| Ok((k.clone(), v.clone()))).collect(),
    }
}

impl Reader for MemEngine {
    fn get(&self, space: Space, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        Ok(get_in(&self.lock().current, space, key))
    }

    fn scan<'a>(&'a self, space: Space, bounds: KeyBounds<'a>, reverse: bool) -> Scan<'a> {
        Box::new(scan_in(&self.lock().current, space, bounds, reverse).into_iter())
    }
}

impl Engine for MemEngine {
    fn commit(&mut self, batch: Batch) -> EngineResult<()> {
        let mut inner = self.lock();
        apply(&mut inner.current, &batch);
        inner.pending.push(batch);
        Ok(())
    }

    /// A copy of the current contents (in memory there is no cheaper way to freeze them).
    fn view(&self) -> EngineResult<View> {
        Ok(Arc::new(Frozen(self.lock().current.clone())))
    }
}

/// The contents of a [`MemEngine`] at one moment.
struct Frozen(Spaces);

impl Reader for Frozen {
    fn get(&self, space: Space, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        Ok(get_in(&self.0, space, key))
    }

    fn scan<'a>(&'a self, space: Space, bounds: KeyBounds<'a>, reverse: bool) -> Scan<'a> {
        Box::new(scan_in(&self.0, space, bounds, reverse).into_iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(key: &str, value: &str) -> Batch {
        let mut b = Batch::default();
        b.put(Space::Latest, key.as_bytes().to_vec(), value.as_bytes().to_vec());
        b
    }

    #[test]
    fn a_crash_keeps_what_a_sync_covered() {
        let mut e = MemEngine::new();
        e.commit(batch("a", "1")).unwrap();
        e.sync();
        e.commit(batch("b", "1")).unwrap();
        assert_eq!(e.len(), 2);
        e.crash();
        assert_eq!(e.get(Space::Latest, b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(e.get(Space::Latest, b"b").unwrap(), None);
    }

    #[test]
    fn scans_in_order_and_reversed_and_forks_are_apart() {
        let mut e = MemEngine::new();
        for k in ["c", "a", "b"] {
            e.commit(batch(k, k)).unwrap();
        }
        let keys = |rev| e.scan(Space::Latest, KeyBounds::all(), rev).map(|p| p.unwrap().0).collect::<Vec<_>>();
        assert_eq!(keys(false), vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(keys(true), vec![b"c".to_vec(), b"b".to_vec(), b"a".to_vec()]);
        let fork = e.fork();
        e.commit(Batch { clear: true, ..Default::default() }).unwrap();
        assert!(e.is_empty());
        assert_eq!(fork.len(), 3);
        let inverted = KeyBounds { start: std::ops::Bound::Included(b"c"), end: std::ops::Bound::Excluded(b"a") };
        assert_eq!(fork.scan(Space::Latest, inverted, false).count(), 0);
    }

    #[test]
    fn a_view_keeps_the_contents_it_was_taken_with() {
        let mut e = MemEngine::new();
        e.commit(batch("a", "1")).unwrap();
        let view = e.view().unwrap();
        e.commit(batch("a", "2")).unwrap();
        e.commit(batch("b", "2")).unwrap();
        assert_eq!(view.get(Space::Latest, b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(view.scan(Space::Latest, KeyBounds::all(), false).count(), 1);
        assert_eq!(e.get(Space::Latest, b"a").unwrap(), Some(b"2".to_vec()));
    }
}
