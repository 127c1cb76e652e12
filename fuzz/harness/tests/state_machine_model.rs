//! The `state_machine` target's model check as a property test: random operation sequences
//! (random bytes, read as operations the way the fuzzer's are) against a real member and the
//! reference model, in every `cargo test`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_member_matches_the_model(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        keel_fuzz::state_machine::run(&data);
    }
}
