//! The command line of `keel-sim`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Parser;
use keel_core::bugs::Bug;
use keel_sim::run::{check_determinism, run, RunOptions, RunReport};

#[derive(Parser, Debug)]
#[command(name = "keel-sim", about = "Run Keel clusters under deterministic simulation with faults")]
struct Args {
    /// Run this one seed and print its summary.
    #[arg(long)]
    seed: Option<u64>,
    /// Sweep this many seeds (starting at --first).
    #[arg(long, default_value_t = 0)]
    seeds: u64,
    /// First seed of a sweep.
    #[arg(long, default_value_t = 1)]
    first: u64,
    /// Parallel runs in a sweep (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Simulated seconds of workload and faults per seed.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Run each seed twice under madsim's determinism check (which stops at the first random
    /// draw that differs), then once more, and fail unless the trace hashes of the plain runs
    /// are the same.
    #[arg(long)]
    check_determinism: bool,
    /// Plant this bug (repeatable): ack-before-fsync, local-linearizable-read,
    /// double-apply-after-restart, early-lease-expiry, watch-out-of-order, forget-term-and-vote.
    #[arg(long = "bug", value_parser = parse_bug)]
    bugs: Vec<Bug>,
    /// For every planted bug (or those given with --bug), run seeds from --first until one
    /// fails, at most --seeds of them; report how many each needed.
    #[arg(long)]
    prove_bugs: bool,
}

fn parse_bug(name: &str) -> Result<Bug, String> {
    Bug::ALL.into_iter().find(|b| b.name() == name).ok_or_else(|| {
        let names: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
        format!("unknown bug {name:?}; one of: {}", names.join(", "))
    })
}

fn options(args: &Args, seed: u64) -> RunOptions {
    RunOptions { duration: Duration::from_secs(args.duration), bugs: args.bugs.clone(), ..RunOptions::standard(seed) }
}

fn replay_command(args: &Args, seed: u64) -> String {
    let bugs: String = args.bugs.iter().map(|b| format!(" --bug {}", b.name())).collect();
    format!("scripts/sim --seed {seed} --duration {}{bugs}", args.duration)
}

/// Run a seed (twice if determinism is checked); `Err` with a readable summary when it fails.
fn run_seed(args: &Args, seed: u64) -> Result<RunReport, String> {
    let report = run(options(args, seed));
    if !report.passed() {
        return Err(summary(args, &report));
    }
    if args.check_determinism {
        // madsim's own check panics at the first random draw that differs between two runs.
        check_determinism(options(args, seed));
        let again = run(options(args, seed));
        if again.trace_hash != report.trace_hash {
            return Err(format!(
                "seed {seed} is not deterministic: trace hash {:016x} then {:016x}\nreplay: {}",
                report.trace_hash,
                again.trace_hash,
                replay_command(args, seed)
            ));
        }
    }
    Ok(report)
}

fn summary(args: &Args, report: &RunReport) -> String {
    let mut s = format!(
        "seed {} FAILED ({} members)\nreplay: {}\n\nfault timeline:\n",
        report.options.seed,
        report.options.members,
        replay_command(args, report.options.seed)
    );
    for (at, what) in &report.timeline {
        s.push_str(&format!("  {at:>7} ms  {what}\n"));
    }
    s.push_str("\nviolations:\n");
    for v in &report.violations {
        s.push_str(&format!("{v}\n\n"));
    }
    s
}

fn describe(report: &RunReport) -> String {
    let ops = report.history.ops.len();
    let ok = report.history.ops.iter().filter(|o| o.ok().is_some()).count();
    let events: usize = report.history.watches.iter().map(|w| w.events.len()).sum();
    let faults = report.timeline.iter().filter(|(_, w)| w.starts_with("start")).count();
    format!(
        "seed {} passed: {} members, {ops} ops ({ok} ok), {events} watch events, {faults} faults, {:.1} simulated s, trace {:016x}",
        report.options.seed,
        report.options.members,
        report.sim_ms as f64 / 1000.0,
        report.trace_hash
    )
}

/// Entry point.
pub fn main() -> ExitCode {
    let args = Args::parse();
    // Members' logs, when asked for (RUST_LOG=info, say): they go to stderr with simulated time.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    if let Some(seed) = args.seed {
        return match run_seed(&args, seed) {
            Ok(report) => {
                println!("{}", describe(&report));
                for (at, what) in &report.timeline {
                    println!("  {at:>7} ms  {what}");
                }
                ExitCode::SUCCESS
            }
            Err(summary) => {
                eprintln!("{summary}");
                ExitCode::FAILURE
            }
        };
    }
    if args.seeds == 0 {
        eprintln!("nothing to do: give --seed N or --seeds N");
        return ExitCode::from(2);
    }
    if args.prove_bugs {
        return prove_bugs(&args);
    }
    sweep(&args)
}

/// Hunt each planted bug: the first failing seed, or none within the bound.
fn hunt(args: &Args, bug: Bug) -> Option<(u64, RunReport)> {
    (args.first..args.first + args.seeds).find_map(|seed| {
        let report = run(RunOptions { bugs: vec![bug], ..options(args, seed) });
        (!report.passed()).then_some((seed, report))
    })
}

fn prove_bugs(args: &Args) -> ExitCode {
    let bugs = if args.bugs.is_empty() { Bug::ALL.to_vec() } else { args.bugs.clone() };
    let next = AtomicU64::new(0);
    let results = Mutex::new(Vec::new());
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst) as usize;
                let Some(&bug) = bugs.get(i) else { break };
                let found = hunt(args, bug);
                results.lock().unwrap_or_else(|p| p.into_inner()).push((i, bug, found));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(i, _, _)| *i);
    let mut missed = 0;
    println!("{:<28} {:>6} {:>6}  first violation", "bug", "seed", "seeds");
    for (_, bug, found) in &results {
        match found {
            Some((seed, report)) => {
                let property = report.violations.first().map_or("", |v| v.property);
                println!("{:<28} {seed:>6} {:>6}  {property}", bug.name(), seed - args.first + 1);
            }
            None => {
                missed += 1;
                println!("{:<28} {:>6} {:>6}  NOT CAUGHT", bug.name(), "-", args.seeds);
            }
        }
    }
    if missed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn sweep(args: &Args) -> ExitCode {
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let next = AtomicU64::new(args.first);
    let end = args.first + args.seeds;
    let failures = Mutex::new(Vec::new());
    let sim_ms = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::SeqCst);
                if seed >= end {
                    break;
                }
                match run_seed(args, seed) {
                    Ok(report) => {
                        sim_ms.fetch_add(report.sim_ms, Ordering::SeqCst);
                        println!("{}", describe(&report));
                    }
                    Err(summary) => {
                        eprintln!("{summary}");
                        failures.lock().unwrap_or_else(|p| p.into_inner()).push(seed);
                    }
                }
            });
        }
    });
    let wall = started.elapsed().as_secs_f64();
    let failures = failures.into_inner().unwrap_or_else(|p| p.into_inner());
    println!(
        "{} seeds in {wall:.1} s: {:.1} seeds/minute, {:.1} simulated s per wall s; {} failed {:?}",
        args.seeds,
        args.seeds as f64 * 60.0 / wall,
        sim_ms.load(Ordering::SeqCst) as f64 / 1000.0 / wall,
        failures.len(),
        failures
    );
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
