//! cargo-fuzz target `v3_api`: see `keel_fuzz::v3_api`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keel_fuzz::v3_api::run(data));
