//! cargo-fuzz target `raft_messages`: see `keel_fuzz::raft_messages`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keel_fuzz::raft_messages::run(data));
