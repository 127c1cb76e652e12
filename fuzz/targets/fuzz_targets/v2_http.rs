//! cargo-fuzz target `v2_http`: see `keel_fuzz::v2_http`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keel_fuzz::v2_http::run(data));
