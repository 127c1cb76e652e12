//! The applied state and its parts: the state machine that applies committed commands
//! (`machine`), the MVCC key space (`mvcc`), leases (`lease`), watches (`watch`), alarms and
//! the space quota (`alarm`), users and roles (`auth`), the v2 keys API's rules (`v2`), the ordered store it all lives in
//! (`engine`), and what is decided over it: automatic compaction (`auto_compaction`).

pub mod alarm;
pub mod auth;
pub mod auto_compaction;
pub mod engine;
pub mod lease;
pub mod machine;
pub mod mvcc;
pub mod v2;
pub mod watch;
