//! [`Overlay`]: changes not yet committed, read as if they were, on top of an engine. A write
//! transaction reads its own writes through one, and the state machine reads the current entry's
//! writes through one until it commits them with the applied index.

use std::cmp::Ordering;
use std::iter::Peekable;
use std::ops::Bound;

use super::{Batch, EngineResult, KeyBounds, Pair, Reader, Scan, Space};

/// `top`'s changes over `base`'s contents.
pub(crate) struct Overlay<'a> {
    pub(crate) base: &'a dyn Reader,
    pub(crate) top: &'a Batch,
}

impl Reader for Overlay<'_> {
    fn get(&self, space: Space, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        match self.top.ops.get(&(space, key.to_vec())) {
            Some(change) => Ok(change.clone()),
            None if self.top.clear => Ok(None),
            None => self.base.get(space, key),
        }
    }

    fn scan<'s>(&'s self, space: Space, bounds: KeyBounds<'s>, reverse: bool) -> Scan<'s> {
        let start = match bounds.start {
            Bound::Included(k) => Bound::Included((space, k.to_vec())),
            Bound::Excluded(k) => Bound::Excluded((space, k.to_vec())),
            Bound::Unbounded => Bound::Included((space, Vec::new())),
        };
        let in_space = {
            let bounds = bounds.clone();
            move |((s, k), _): &(&(Space, Vec<u8>), &Option<Vec<u8>>)| *s == space && bounds.contains(k)
        };
        let top: Vec<(Vec<u8>, Option<Vec<u8>>)> = if bounds.is_ordered() {
            let range = self.top.ops.range((start, Bound::Unbounded));
            let pick = |((_, k), v): (&(Space, Vec<u8>), &Option<Vec<u8>>)| (k.clone(), v.clone());
            // Keys of one space are contiguous, so the first key outside the bounds ends it.
            let ascending: Vec<_> = range.take_while(in_space).map(pick).collect();
            match reverse {
                false => ascending,
                true => ascending.into_iter().rev().collect(),
            }
        } else {
            Vec::new()
        };
        let base: Scan<'s> = match self.top.clear {
            true => Box::new(std::iter::empty()),
            false => self.base.scan(space, bounds, reverse),
        };
        Box::new(Merge { base: base.peekable(), top: top.into_iter().peekable(), reverse })
    }
}

/// Staged changes of one space in scan order: a key and its new value (`None`: removed).
type Changes = std::vec::IntoIter<(Vec<u8>, Option<Vec<u8>>)>;

/// Two sorted streams as one, `top` winning on equal keys and hiding removed ones.
struct Merge<'a> {
    base: Peekable<Scan<'a>>,
    top: Peekable<Changes>,
    reverse: bool,
}

impl Iterator for Merge<'_> {
    type Item = EngineResult<Pair>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let order = match (self.base.peek(), self.top.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) => return self.base.next(),
                (Some(_), None) => return self.base.next(),
                (None, Some(_)) => Ordering::Greater,
                (Some(Ok((b, _))), Some((t, _))) => match self.reverse {
                    false => b.cmp(t),
                    true => t.cmp(b),
                },
            };
            match order {
                Ordering::Less => return self.base.next(),
                Ordering::Equal => {
                    self.base.next();
                }
                Ordering::Greater => {}
            }
            if let Some((key, Some(value))) = self.top.next() {
                return Some(Ok((key, value)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Engine, MemEngine};
    use super::*;

    fn keys(r: &dyn Reader, bounds: KeyBounds<'_>, reverse: bool) -> Vec<(String, String)> {
        r.scan(Space::Latest, bounds, reverse)
            .map(|p| {
                let (k, v) = p.unwrap();
                (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap())
            })
            .collect()
    }

    #[test]
    fn pending_changes_win_and_removals_hide_the_base() {
        let mut e = MemEngine::new();
        let mut base = Batch::default();
        for k in ["a", "c", "e"] {
            base.put(Space::Latest, k.into(), b"base".to_vec());
        }
        base.put(Space::Meta, b"b".to_vec(), b"other space".to_vec());
        e.commit(base).unwrap();
        let mut top = Batch::default();
        top.put(Space::Latest, b"b".to_vec(), b"top".to_vec());
        top.put(Space::Latest, b"c".to_vec(), b"top".to_vec());
        top.delete(Space::Latest, b"e".to_vec());
        top.put(Space::Latest, b"f".to_vec(), b"top".to_vec());
        let o = Overlay { base: &e, top: &top };
        let want = |ks: &[(&str, &str)]| ks.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        assert_eq!(keys(&o, KeyBounds::all(), false), want(&[("a", "base"), ("b", "top"), ("c", "top"), ("f", "top")]));
        assert_eq!(keys(&o, KeyBounds::all(), true), want(&[("f", "top"), ("c", "top"), ("b", "top"), ("a", "base")]));
        let mid = KeyBounds { start: Bound::Excluded(b"a"), end: Bound::Excluded(b"f") };
        assert_eq!(keys(&o, mid, false), want(&[("b", "top"), ("c", "top")]));
        assert_eq!(o.get(Space::Latest, b"e").unwrap(), None);
        assert_eq!(o.get(Space::Latest, b"a").unwrap(), Some(b"base".to_vec()));
        let cleared = Batch { clear: true, ..top.clone() };
        let o = Overlay { base: &e, top: &cleared };
        assert_eq!(keys(&o, KeyBounds::all(), false), want(&[("b", "top"), ("c", "top"), ("f", "top")]));
        assert_eq!(o.get(Space::Meta, b"b").unwrap(), None);
    }
}
