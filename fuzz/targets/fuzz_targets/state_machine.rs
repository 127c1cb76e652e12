//! cargo-fuzz target `state_machine`: see `keel_fuzz::state_machine`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keel_fuzz::state_machine::run(data));
