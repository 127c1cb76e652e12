//! What the simulated clients did: every operation with its invoke and complete times (simulated
//! milliseconds since the run began) and its outcome, and every watcher's stream of events. The
//! checkers read nothing else, so the same checkers can judge histories from real processes.

use std::fmt;

/// An operation a client invoked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    /// A linearizable read of a register key.
    Get { key: String },
    /// An unconditional write.
    Put { key: String, value: String },
    /// A write that happens only if the key holds `expected` (`None`: only if absent).
    Cas { key: String, expected: Option<String>, value: String },
    /// Take a lock: create its key only if absent, with a TTL.
    LockAcquire { lock: String, ttl: u64 },
    /// Keep a held lock (refresh its TTL) only while its key is still the one we created:
    /// `token` is the created index of our acquisition, `prev_index` the key's modified index as
    /// we last left it (the compare that proves the key is still ours).
    LockRefresh { lock: String, token: u64, prev_index: u64 },
    /// Release a held lock, again only if its key is still ours.
    LockRelease { lock: String, token: u64, prev_index: u64 },
    /// Register a service instance: a key with a TTL.
    Register { key: String, ttl: u64 },
    /// Heartbeat: refresh the instance's TTL (fails if the key is gone).
    Heartbeat { key: String, ttl: u64 },
    /// Look the instance up (a linearizable read).
    Lookup { key: String },
    /// Append an item to a FIFO queue (POST: an in-order key).
    Enqueue { queue: String, value: String },
    /// Take the queue's oldest item: list it, then delete that key only if unchanged.
    Dequeue { queue: String },
    /// List every item left in the queue (after the run).
    ListQueue { queue: String },
    /// Append a unique element to a list key by read-modify-write (a txn on its mod revision).
    Append { key: String, element: String },
    /// Read a list key's elements.
    ReadList { key: String },
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It took effect (or, for reads, observed this) at the given index.
    Ok(Return),
    /// It definitely did not take effect (a refused connection, a definite error).
    Failed(String),
    /// Unknown: timed out, or the connection broke after the request was sent.
    Unknown(String),
}

/// What a successful operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Return {
    /// A read's value (`None`: absent) and the index it was read at.
    Value { value: Option<String>, index: u64 },
    /// A write, refresh or release that happened; `index` is the key's modified index.
    Written { index: u64 },
    /// A conditional write whose condition did not hold (etcd errors 100, 101, 105).
    Refused,
    /// A lock acquired: its key's created index is the fencing token.
    Acquired { token: u64 },
    /// A queue's items, oldest first; a list's elements (read, or as an append wrote them).
    Items(Vec<String>),
}

/// One operation, from invocation to completion.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Op {
    pub client: u64,
    /// Which member the client sent it to.
    pub member: usize,
    pub call: Call,
    pub invoke_ms: u64,
    pub complete_ms: u64,
    pub outcome: Outcome,
}

impl Op {
    /// Whether the operation certainly took effect (or read what it reports).
    pub fn ok(&self) -> Option<&Return> {
        match &self.outcome {
            Outcome::Ok(r) => Some(r),
            _ => None,
        }
    }
}

/// One change a watcher saw.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SeenEvent {
    /// The change's index (revision).
    pub index: u64,
    pub key: String,
    /// The new value; `None` for deletions and expiries.
    pub value: Option<String>,
    pub at_ms: u64,
}

/// A watcher's whole stream: everything under `prefix` from `start_index` on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WatchLog {
    pub watcher: u64,
    pub prefix: String,
    pub start_index: u64,
    pub events: Vec<SeenEvent>,
}

/// Everything a run recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct History {
    pub ops: Vec<Op>,
    pub watches: Vec<WatchLog>,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:>7} ms .. {:>7} ms] client {} via m{}: {:?} -> {:?}",
            self.invoke_ms,
            self.complete_ms,
            self.client,
            self.member + 1,
            self.call,
            self.outcome
        )
    }
}
