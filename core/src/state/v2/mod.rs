//! etcd's v2 keys writes as replicated commands: each set, create, update, compare-and-swap,
//! delete, compare-and-delete, in-order create or refresh is one [`V2WriteRequest`](crate::api::v2::V2WriteRequest), one
//! Raft entry, decided and applied atomically by the state machine over the one MVCC key
//! space, its TTL lease included. Nothing is read, decided and retried by the API layer, so
//! a crash or a race cannot leave half a write (an orphan lease) behind.
//!
//! The request and its answers are API vocabulary ([`crate::api::v2`], with what a path is);
//! here is the v2 tree over the key space ([`tree`]), what a write needs to know about its path
//! (`place`) and what the write does (`plan`).

pub(crate) mod place;
pub(crate) mod plan;
pub mod tree;

pub use place::missing;
