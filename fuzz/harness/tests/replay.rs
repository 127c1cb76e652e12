//! Replays every checked-in input of every fuzz target — the seed corpora under `fuzz/corpus/`
//! and the inputs of past crashes under `fuzz/regressions/` — through the targets' bodies, so
//! a normal `cargo test` (no nightly, no cargo-fuzz) guards against every bug the fuzzers found.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use std::path::{Path, PathBuf};

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return vec![] };
    let mut files: Vec<PathBuf> =
        entries.map(|e| e.expect("a directory entry").path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn every_checked_in_input_passes_its_target() {
    let mut replayed = 0;
    for (target, body) in keel_fuzz::TARGETS {
        let corpus = inputs("corpus", target);
        assert!(!corpus.is_empty(), "target {target} has a seed corpus");
        for path in corpus.iter().chain(&inputs("regressions", target)) {
            let data = std::fs::read(path).expect("reading an input");
            eprintln!("{target}: {}", path.display());
            body(&data);
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} inputs");
}
