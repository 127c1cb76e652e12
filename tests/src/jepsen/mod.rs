//! Jepsen-style partition scenarios against real `keel` processes: five members, each in its own
//! network namespace; clients (the simulator's own workloads, over v2 and the v3 gateway) record
//! a history with wall-clock times while a seeded nemesis partitions, kills, pauses, skews
//! clocks and changes membership; afterwards the simulator's checkers judge the history and
//! every member must converge to one state. Run it with `scripts/jepsen` (see the README).

pub mod hosts;
pub mod members;
pub mod nemesis;
pub mod plot;
pub mod report;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use keel_sim::checker::{self, Violation};
use keel_sim::history::History;
use keel_sim::workload::{self, Env};

use hosts::Hosts;
use keel_sim::fault::FaultKind;
use members::{client_addr, Members};
use nemesis::Nemesis;

/// A named set of faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Partition halves, isolate the leader, bridge, one-way loss.
    Partitions,
    /// kill -9 and restart, SIGSTOP/SIGCONT, clock offsets.
    Crashes,
    /// Remove a member and add it back as a learner, promote it; with leader isolation and kills.
    Membership,
    /// Every fault.
    All,
}

impl Scenario {
    /// The faults its nemesis draws from (clock offsets only where libfaketime is installed).
    pub fn faults(self) -> Vec<FaultKind> {
        use FaultKind::*;
        let mut kinds = match self {
            Scenario::Partitions => vec![Split, IsolateLeader, Bridge, OneWay],
            Scenario::Crashes => vec![Crash, Pause, ClockOffset],
            Scenario::Membership => vec![Rejoin, IsolateLeader, Crash],
            Scenario::All => vec![Split, IsolateLeader, Bridge, OneWay, Crash, Pause, ClockOffset, Rejoin],
        };
        if !members::faketime_available() {
            kinds.retain(|k| *k != ClockOffset);
        }
        kinds
    }

    /// Its name on the command line and in result folders.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Partitions => "partitions",
            Scenario::Crashes => "crashes",
            Scenario::Membership => "membership",
            Scenario::All => "all",
        }
    }
}

/// What one run does.
#[derive(Clone, Debug)]
pub struct Options {
    pub scenario: Scenario,
    /// How long clients run and the nemesis strikes.
    pub seconds: u64,
    pub seed: u64,
    pub members: usize,
    /// Results go to `<out>/<scenario>-seed<seed>/`.
    pub out: PathBuf,
    /// Members' election timeout (ms); the heartbeat is a tenth of it.
    pub election_ms: u64,
}

/// What one run found.
pub struct Outcome {
    pub dir: PathBuf,
    pub history: History,
    pub timeline: Vec<nemesis::Window>,
    pub violations: Vec<Violation>,
    pub span_ms: u64,
}

impl Outcome {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Run one scenario to the end and write its results folder.
pub fn run(options: &Options) -> Result<Outcome, String> {
    if let Some(why) = hosts::unavailable() {
        return Err(why);
    }
    let dir = options.out.join(format!("{}-seed{}", options.scenario.name(), options.seed));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let data = tempfile::tempdir().map_err(|e| e.to_string())?;

    let hosts = Hosts::create(options.members)?;
    let mut members = Members::start(options.members, data.path(), options.election_ms)?;
    keel_sim::rng::seed(options.seed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;

    let start = Instant::now();
    let env = Env {
        start: tokio::time::Instant::from_std(start),
        members: Arc::new((0..options.members).map(client_addr).collect()),
        stop: Arc::new(AtomicBool::new(false)),
    };
    // The simulator's clients (see `workload::clients`), on real sockets.
    let clients: Vec<_> = workload::clients(&env).into_iter().map(|(_, run)| runtime.spawn(run)).collect();
    let watchers: Vec<_> = (30..32).map(|w| runtime.spawn(workload::watch_client(env.clone(), w))).collect();

    let mut nemesis = Nemesis::new(options.seed, options.scenario.faults(), start);
    let deadline = start + Duration::from_secs(options.seconds);
    let mut fault_error = None;
    while Instant::now() < deadline && fault_error.is_none() {
        fault_error = nemesis.strike(&hosts, &mut members).err();
    }
    let mut violations = Vec::new();
    if let Some(e) = fault_error {
        violations.push(Violation::new("nemesis", format!("a fault could not be carried out: {e}")));
    }
    // A failure to heal is a finding too: the history, timeline and logs still get written.
    if let Err(e) = hosts.heal().and_then(|()| members.restore()) {
        violations.push(Violation::new("healing", e));
    }
    // Let clients see the healed cluster a little before they stop.
    sleep(Duration::from_secs(2));
    env.stop.store(true, Ordering::SeqCst);

    let mut history = History::default();
    runtime.block_on(async {
        for c in clients {
            match c.await {
                Ok(ops) => history.ops.extend(ops),
                Err(e) => violations.push(Violation::new("client", format!("a client stopped: {e}"))),
            }
        }
        for w in watchers {
            match w.await {
                Ok(watch) => history.watches.extend(watch),
                Err(e) => violations.push(Violation::new("client", format!("a watcher stopped: {e}"))),
            }
        }
    });
    if let Err(v) = converge(&members) {
        violations.push(v);
    }
    let everyone: Vec<usize> = (0..options.members).collect();
    history.ops.extend(runtime.block_on(workload::final_reads(&env, &everyone)));
    violations.extend(checker::check_all(&history));
    let span_ms = start.elapsed().as_millis() as u64;

    members.save_logs(&dir);
    drop(members);
    drop(hosts);
    let outcome = Outcome { dir, history, timeline: nemesis.timeline, violations, span_ms };
    report::write(options, &outcome)?;
    Ok(outcome)
}

/// After healing: every member must reach the same revision and key-space hash.
fn converge(members: &Members) -> Result<(), Violation> {
    let mut last = Vec::new();
    for _ in 0..60 {
        let hashes = members.hashes();
        if hashes.iter().all(|h| h.is_some() && *h == hashes[0]) {
            return Ok(());
        }
        last = hashes;
        sleep(Duration::from_millis(500));
    }
    Err(Violation::new(
        "convergence",
        format!("members did not converge within 30 s of healing: (revision, hash) per member {last:?}"),
    ))
}
