//! [`View`]: a frozen, shareable read view of an engine, and [`ViewEngine`], the engine that
//! reads one (and refuses writes), so a store can be opened over the state as it was.

use std::sync::Arc;

use super::{Batch, Engine, EngineError, EngineResult, KeyBounds, Reader, Scan, Space};

/// The applied state as [`Engine::view`] found it. Later commits do not show through, so a
/// snapshot built from it is consistent however long the building takes.
pub type View = Arc<dyn Reader + Send + Sync>;

/// An engine over a [`View`]: reads see the view, every commit fails (nothing may change a
/// state that is being copied).
pub struct ViewEngine(pub View);

impl Reader for ViewEngine {
    fn get(&self, space: Space, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        self.0.get(space, key)
    }

    fn scan<'a>(&'a self, space: Space, bounds: KeyBounds<'a>, reverse: bool) -> Scan<'a> {
        self.0.scan(space, bounds, reverse)
    }
}

impl Engine for ViewEngine {
    fn commit(&mut self, batch: Batch) -> EngineResult<()> {
        match batch.is_empty() {
            true => Ok(()),
            false => Err(EngineError("a view of the state is read-only".into())),
        }
    }

    fn view(&self) -> EngineResult<View> {
        Ok(self.0.clone())
    }
}
