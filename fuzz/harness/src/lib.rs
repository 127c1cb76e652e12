//! # keel-fuzz
//!
//! The bodies of Keel's fuzz targets, one module each. cargo-fuzz's binaries (`fuzz/fuzz_targets`)
//! are one-line calls into these, and this crate's own test replays the checked-in corpora and
//! every past crash through the same functions, so the regressions protect builds without the
//! nightly toolchain too. A body panics exactly when it finds a bug: a panic in Keel's code, or a
//! check of its own that failed.
//!
//! Inputs are bytes; targets that need structure read it with [`arbitrary`], so the fuzzer's
//! mutations stay meaningful.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

pub mod auth;
pub mod config;
pub mod exec;
pub mod peer_frames;
pub mod raft_messages;
pub mod state_machine;
pub mod storage_recovery;
pub mod v2_http;
pub mod v3_api;

/// A target's body: it panics exactly when the input finds a bug.
pub type Body = fn(&[u8]);

/// Every target: its name (the cargo-fuzz binary, and its folders under `fuzz/corpus/` and
/// `fuzz/regressions/`) and its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("auth", auth::run),
    ("config", config::run),
    ("peer_frames", peer_frames::run),
    ("raft_messages", raft_messages::run),
    ("state_machine", state_machine::run),
    ("storage_recovery", storage_recovery::run),
    ("v2_http", v2_http::run),
    ("v3_api", v3_api::run),
];
