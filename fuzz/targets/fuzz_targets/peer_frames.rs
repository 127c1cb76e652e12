//! cargo-fuzz target `peer_frames`: see `keel_fuzz::peer_frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keel_fuzz::peer_frames::run(data));
