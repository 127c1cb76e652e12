//! # keel-core
//!
//! The deterministic heart of Keel: Raft consensus (through raft-rs), the MVCC key space, leases
//! and watches, behind one sans-IO [`node::Node`] that takes inputs (peer messages, clock ticks,
//! client requests, persistence acknowledgements) and yields outputs (entries to persist, messages
//! to send, responses, watch events). It performs no I/O and reads no clock or global randomness,
//! so the same inputs always give the same outputs — which is what lets `keel-sim` replay a whole
//! cluster from a seed.

pub mod alarm;
pub mod auto_compaction;
pub mod backup;
pub mod bugs;
#[cfg(any(test, feature = "testing"))]
pub mod cluster;
pub mod command;
pub mod config;
pub mod digest;
pub mod engine;
pub mod error;
pub mod format;
pub mod kv;
pub mod lease;
pub mod mvcc;
pub mod node;
pub mod raft_log;
mod raft_logger;
pub mod request;
pub mod state_machine;
pub mod upgrade;
pub mod v2;
pub mod validate;
pub mod watch;
