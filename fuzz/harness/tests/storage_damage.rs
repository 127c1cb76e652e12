//! Every file of a synced fjall store damaged at spread-out offsets and at both ends (one copy
//! per case): each damaged store opens as one of the states synced on the way or is refused as
//! corrupt (the judge panics otherwise), and some damage is detected at all.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use keel_fuzz::storage_recovery::{damage_every_file, Outcome};

fn check(tables: bool) {
    let outcomes = damage_every_file(tables);
    let corrupt = outcomes.iter().filter(|o| **o == Outcome::Corrupt).count();
    eprintln!("tables={tables}: {} cases, {corrupt} refused as corrupt", outcomes.len());
    assert!(corrupt > 0, "some damage must be detected");
}

#[test]
fn damaged_journal_reads_as_corrupt_or_an_earlier_state() {
    check(false);
}

#[test]
fn damaged_tables_read_as_corrupt_or_an_earlier_state() {
    check(true);
}
