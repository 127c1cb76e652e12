//! # keel-client
//!
//! The one HTTP/1 client every Keel tool speaks through: `keelctl`, the simulator's workloads
//! (over madsim's network), the partition suite and `keel-bench`. It knows endpoints and how to
//! dial them (plain or TLS by scheme, as etcd chooses), sends one [`Call`] on a kept
//! [`Connection`] and reads the whole [`Reply`], and fails over across endpoints
//! ([`Client`]). The member's peer transport dials through the same [`tls::Dial`].
//!
//! What a reply means (etcd's errors, JSON shapes) is left to the caller: this crate moves
//! requests and answers, nothing else.

pub mod call;
pub mod connection;
pub mod endpoint;
pub mod failover;
pub mod tls;

pub use call::{Call, Reply};
pub use connection::{CallError, Connection};
pub use endpoint::Endpoint;
pub use failover::{Client, Unreachable};
