//! Whether granted key ranges cover a requested one. Grants and requests use a Range request's
//! conventions: an empty `range_end` is the single key, `[0]` is every key from `key` on, and
//! otherwise the range is `[key, range_end)`. A request is allowed when one stretch of merged,
//! overlapping or touching grants holds all of it (etcd merges a user's grants the same way).

/// A half-open interval of keys; `end` `None` is open-ended.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Interval {
    start: Vec<u8>,
    end: Option<Vec<u8>>,
}

impl Interval {
    fn new(key: &[u8], range_end: &[u8]) -> Self {
        let end = match range_end {
            [] => {
                // The single key k is [k, k\0): nothing sorts between them.
                let mut next = key.to_vec();
                next.push(0);
                Some(next)
            }
            [0] => None,
            end => Some(end.to_vec()),
        };
        Interval { start: key.to_vec(), end }
    }

    fn is_empty(&self) -> bool {
        self.end.as_ref().is_some_and(|end| *end <= self.start)
    }

    /// Whether this interval ends before `key`, leaving a gap (ending at it touches it).
    fn ends_before(&self, key: &[u8]) -> bool {
        self.end.as_deref().is_some_and(|end| end < key)
    }

    fn contains(&self, other: &Interval) -> bool {
        if other.start < self.start {
            return false;
        }
        match (&self.end, &other.end) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(mine), Some(theirs)) => theirs <= mine,
        }
    }
}

/// Whether `granted` (pairs of key and range end) covers the request `[key, range_end)`.
pub fn covers<'a>(granted: impl Iterator<Item = (&'a [u8], &'a [u8])>, key: &[u8], range_end: &[u8]) -> bool {
    let wanted = Interval::new(key, range_end);
    let mut grants: Vec<Interval> = granted.map(|(k, e)| Interval::new(k, e)).filter(|i| !i.is_empty()).collect();
    grants.sort_by(|a, b| a.start.cmp(&b.start));
    let mut merged: Vec<Interval> = Vec::with_capacity(grants.len());
    for grant in grants {
        match merged.last_mut() {
            // Touching or overlapping the stretch so far: extend it.
            Some(last) if !last.ends_before(&grant.start) => {
                last.end = match (last.end.take(), grant.end) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
            _ => merged.push(grant),
        }
    }
    // A request for nothing (an empty range) is covered by any grant, as in etcd it checks no key.
    if wanted.is_empty() {
        return !merged.is_empty();
    }
    merged.iter().any(|stretch| stretch.contains(&wanted))
}

#[cfg(test)]
mod tests {
    use super::covers;

    fn check(grants: &[(&str, &str)], key: &str, range_end: &str) -> bool {
        covers(grants.iter().map(|(k, e)| (k.as_bytes(), e.as_bytes())), key.as_bytes(), range_end.as_bytes())
    }

    #[test]
    fn single_keys_ranges_and_open_ends() {
        assert!(check(&[("/x", "")], "/x", ""));
        assert!(!check(&[("/x", "")], "/y", ""));
        assert!(!check(&[("/x", "")], "/x", "/y"), "one key does not cover the range after it");
        assert!(check(&[("/a/", "/a0")], "/a/b", ""));
        assert!(check(&[("/a/", "/a0")], "/a/b", "/a/c"));
        assert!(!check(&[("/a/", "/a0")], "/b/", ""));
        assert!(!check(&[("/a/", "/a0")], "/a/", "\0"), "a prefix grant does not cover from-key");
        assert!(check(&[("/q", "\0")], "/q/zzz", "\0"));
        assert!(check(&[("/q", "\0")], "/r", "/s"));
        assert!(!check(&[("/q", "\0")], "/p", ""));
        assert!(!check(&[], "/x", ""));
    }

    #[test]
    fn touching_and_overlapping_grants_merge() {
        assert!(check(&[("a", "c"), ("c", "e")], "b", "d"), "touching");
        assert!(check(&[("a", "d"), ("b", "e")], "a", "e"), "overlapping");
        assert!(!check(&[("a", "c"), ("d", "e")], "b", "d"), "a gap at c");
        assert!(check(&[("a", "b"), ("a\0", "")], "a", "a\0\0"), "a single key right after a range end");
        assert!(check(&[("a", "b"), ("b", "\0")], "a", "\0"), "a range then an open end");
    }
}
