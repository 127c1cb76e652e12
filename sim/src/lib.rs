//! # keel-sim
//!
//! Deterministic simulation of whole Keel clusters. Built with `RUSTFLAGS="--cfg madsim"`, the
//! production shells (driver, peer transport, HTTP API) run on madsim's simulated network, clock
//! and disk, under faults a seed chooses; clients record histories that the [`checker`]s judge.
//! The history types and checkers build without madsim too, so real-process tests reuse them.

pub mod checker;
pub mod history;

#[cfg(madsim)]
pub mod client;
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
#[cfg(madsim)]
pub mod workload;
