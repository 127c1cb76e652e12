//! # keel-sim
//!
//! Deterministic simulation of whole Keel clusters. Built with `RUSTFLAGS="--cfg madsim"`, the
//! production shells (driver, peer transport, HTTP API) run on madsim's simulated network, clock
//! and disk, under faults a seed chooses; clients record histories that the [`checker`]s judge.
//! The history types, checkers, fault catalogue, v2 client and workloads build without madsim
//! too, so real-process tests (keel-tests' partition suite) reuse them on real tokio.

pub mod checker;
pub mod client;
pub mod fault;
pub mod history;
pub mod rng;
pub mod workload;
pub mod workload_append;
pub mod workload_grpc;
pub mod workload_v3;

#[cfg(madsim)]
pub mod cluster;
#[cfg(madsim)]
pub mod monitor;
#[cfg(madsim)]
pub mod nemesis;
#[cfg(madsim)]
pub mod run;
#[cfg(madsim)]
pub mod storage;
