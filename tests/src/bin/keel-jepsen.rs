//! `keel-jepsen`: run Jepsen-style partition scenarios against real `keel` processes and write
//! each run's history, nemesis timeline, verdict and latency plot to a results folder. Needs
//! root (network namespaces, nftables). See the README's "Partition suite".

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use keel_tests::jepsen::{self, report, Options, Scenario};

#[derive(Parser)]
#[command(name = "keel-jepsen", about = "Jepsen-style partition scenarios against real keel processes")]
struct Args {
    /// Scenarios to run, one after another (repeatable).
    #[arg(long = "scenario", value_enum, default_values_t = [Scenario::All])]
    scenarios: Vec<Scenario>,
    /// Seconds of faults and client load per scenario.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seed of the nemesis schedule and the clients' choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Members per cluster.
    #[arg(long, default_value_t = 5)]
    members: usize,
    /// Where results folders go.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// The members' election timeout, ms.
    #[arg(long, default_value_t = 1000)]
    election_timeout: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut failed = false;
    for scenario in args.scenarios {
        let options = Options {
            scenario,
            seconds: args.seconds,
            seed: args.seed,
            members: args.members,
            out: args.out.clone(),
            election_ms: args.election_timeout,
        };
        println!("== {} seed {} for {} s", scenario.name(), args.seed, args.seconds);
        match jepsen::run(&options) {
            Ok(outcome) => {
                print!("{}", report::verdict(&options, &outcome).split("\n\n").next().unwrap_or_default());
                for v in &outcome.violations {
                    println!("\n{v}");
                }
                println!("\nresults: {}", outcome.dir.display());
                failed |= !outcome.passed();
            }
            Err(e) => {
                eprintln!("keel-jepsen: {} could not run: {e}", scenario.name());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
