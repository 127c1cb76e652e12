//! `keel-sim`: run simulation seeds (see the README's "Simulation" section).
//!
//! `keel-sim --seed 1234` runs one seed and prints its summary; `keel-sim --seeds 100` sweeps
//! seeds 1..=100 across the cores and reports seeds per minute. A failing seed prints the command
//! that replays it, its fault timeline and what the checkers found.

#[cfg(madsim)]
mod cli;

#[cfg(madsim)]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(not(madsim))]
fn main() -> std::process::ExitCode {
    eprintln!("keel-sim runs only in the simulation build: use scripts/sim (it sets RUSTFLAGS=\"--cfg madsim\")");
    std::process::ExitCode::from(2)
}
