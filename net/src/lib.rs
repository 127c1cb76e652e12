//! # keel-net
//!
//! Keel's wire protocols, written against tokio and hyper only (no executor or timer of
//! hyper-util's), so the simulator can run the same code under madsim: the client APIs (v2
//! keys over HTTP/JSON, `/health`, `/version`, `/metrics`) and the peer transport that carries
//! Raft messages between members. Handlers reach the member through the [`backend::Backend`]
//! trait, which the server's driver implements; [`local::LocalBackend`] implements it over an
//! in-process member for tests and fuzzing.

mod authority;
pub mod backend;
pub mod http;
pub mod ids;
#[cfg(any(test, feature = "testing"))]
pub mod local;
pub mod metrics;
pub mod password;
pub mod peer;
pub mod timer;
pub mod tls;
pub mod v2;
pub mod v3;
