//! cargo-fuzz target `storage_recovery`: see `keel_fuzz::storage_recovery`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keel_fuzz::storage_recovery::run(data));
