//! # keel-core
//!
//! The deterministic heart of Keel: Raft consensus (through raft-rs), the MVCC key space, leases
//! and watches, behind one sans-IO [`node::Node`] that takes inputs (peer messages, clock ticks,
//! client requests, persistence acknowledgements) and yields outputs (entries to persist, messages
//! to send, responses, watch events). It performs no I/O and reads no clock or global randomness,
//! so the same inputs always give the same outputs — which is what lets `keel-sim` replay a whole
//! cluster from a seed.

pub mod api;
pub mod bugs;
#[cfg(any(test, feature = "testing"))]
pub mod cluster;
pub mod config;
pub mod digest;
pub mod format;
pub mod node;
pub mod state;
pub mod upgrade;
