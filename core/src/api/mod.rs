//! The member's vocabulary, shared by the core and every shell: the requests a client can make
//! and their answers (`request`), what travels through the Raft log (`command`), etcd's errors
//! (`error`), the checks a request passes before it is proposed (`validate`), the key-value
//! records (`kv`), alarms (`alarm`) and the v2 keys write (`v2`).

pub mod alarm;
pub mod auth;
pub mod command;
pub mod error;
pub mod kv;
pub mod request;
pub mod v2;
pub mod validate;
