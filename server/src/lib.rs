//! # keel-server
//!
//! The production shell around `keel-core`: storage (fjall on disk, or in memory for tests and
//! the simulator), the driver loop that feeds the core and carries out its outputs, and the
//! etcd-compatible configuration of the `keel` binary, with TLS for `https://` URLs.

pub mod auto_compaction;
pub mod chaos;
pub mod clock;
pub mod config;
pub mod driver;
pub mod go_duration;
pub mod member;
pub mod storage;
pub mod tls;
