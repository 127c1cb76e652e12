//! Checkers: each reads a [`History`] and says what, if anything, went wrong.

pub mod append;
pub mod lease;
pub mod linearizability;
pub mod lock;
pub mod queue;
pub mod register;
pub mod revisions;
pub mod watch;

#[cfg(test)]
pub(crate) mod testing;

use std::fmt;

use crate::history::History;

/// One thing a checker found wrong.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Violation {
    /// Which property broke.
    pub property: &'static str,
    /// What was seen, readably (the minimal failing sub-history where there is one).
    pub detail: String,
}

impl Violation {
    /// A violation of `property`.
    pub fn new(property: &'static str, detail: String) -> Self {
        Violation { property, detail }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} violated:\n{}", self.property, self.detail)
    }
}

/// Every checker over one history.
pub fn check_all(history: &History) -> Vec<Violation> {
    let mut out = Vec::new();
    out.extend(register::check(&history.ops));
    out.extend(revisions::check(&history.ops));
    out.extend(watch::check(history));
    out.extend(lock::check(&history.ops));
    out.extend(lease::check(&history.ops));
    out.extend(queue::check(&history.ops));
    out.extend(append::check(&history.ops));
    out
}
