//! cargo-fuzz target `config`: see `keel_fuzz::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keel_fuzz::config::run(data));
