//! cargo-fuzz target `auth`: see `keel_fuzz::auth`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keel_fuzz::auth::run(data));
