//! One simulation run: a cluster, its clients and the nemesis, for a seed; then healing, final
//! reads, convergence, and every checker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use keel_core::bugs::Bug;
use keel_core::digest::Fnv64;
use madsim::rand::{thread_rng, Rng};
use madsim::runtime::Handle as SimHandle;
use tokio::time::{sleep, Instant};

use crate::checker::{self, Violation};
use crate::cluster::{client_addr, SimCluster, Timing, SETTLE};
use crate::history::History;
use crate::monitor::Monitor;
use crate::nemesis::{Nemesis, Timeline};
use crate::workload::{self, Env};

/// What a run does.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub seed: u64,
    /// 3 or 5 members.
    pub members: usize,
    /// Simulated time the workload and faults run for.
    pub duration: Duration,
    /// Whether the nemesis injects faults.
    pub faults: bool,
    /// Planted bugs switched on for this run (see `keel_core::bugs`).
    pub bugs: Vec<Bug>,
}

impl RunOptions {
    /// The standard run for `seed`: the member count is drawn from the seed too.
    pub fn standard(seed: u64) -> Self {
        RunOptions {
            seed,
            members: if seed.is_multiple_of(4) { 5 } else { 3 },
            duration: Duration::from_secs(30),
            faults: true,
            bugs: vec![],
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunReport {
    pub options: RunOptions,
    pub history: History,
    pub timeline: Timeline,
    pub violations: Vec<Violation>,
    /// A digest of everything observable in the run: equal for equal seeds.
    pub trace_hash: u64,
    /// Simulated milliseconds the run took.
    pub sim_ms: u64,
}

impl RunReport {
    /// Whether every checker passed.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Run one seed to completion (blocking). The simulation gets a fresh thread of its own: std's
/// hash maps seed themselves per thread, so a thread that already ran something would make the
/// same seed run differently.
pub fn run(options: RunOptions) -> RunReport {
    let seed = options.seed;
    std::thread::spawn(move || {
        keel_core::bugs::set(&options.bugs);
        let runtime = madsim::runtime::Runtime::with_seed_and_config(options.seed, madsim::Config::default());
        runtime.block_on(simulate(options))
    })
    .join()
    .unwrap_or_else(|panic| {
        eprintln!("seed {seed} panicked; replay it with: scripts/sim --seed {seed}");
        std::panic::resume_unwind(panic)
    })
}

/// Options of the run [`check_determinism`] is checking (madsim's check takes a plain `fn`).
static CHECKED: std::sync::Mutex<Option<RunOptions>> = std::sync::Mutex::new(None);

/// Run one seed twice under madsim's own determinism check, which fails (panics) at the first
/// random draw that differs between the two runs. Runs one check at a time.
pub fn check_determinism(options: RunOptions) -> RunReport {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let seed = options.seed;
    *CHECKED.lock().unwrap_or_else(|p| p.into_inner()) = Some(options);
    madsim::runtime::Runtime::check_determinism(seed, madsim::Config::default(), || {
        let options =
            CHECKED.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_else(|| RunOptions::standard(0));
        keel_core::bugs::set(&options.bugs);
        simulate(options)
    })
}

/// Simulated hosts for clients get addresses apart from members'.
fn client_host(n: u64) -> madsim::runtime::NodeHandle {
    let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 1 + (n / 200) as u8, (n % 200) as u8 + 1));
    SimHandle::current().create_node().name(format!("client{n}")).ip(ip).build()
}

async fn simulate(options: RunOptions) -> RunReport {
    let start = Instant::now();
    let mut cluster = SimCluster::start(options.members, Timing::default());
    sleep(SETTLE).await;
    let addrs = (0..options.members).map(client_addr).collect();
    let env = Env { start, members: Arc::new(addrs), stop: Arc::new(AtomicBool::new(false)) };

    let clients: Vec<_> = workload::clients(&env).into_iter().map(|(c, run)| client_host(c).spawn(run)).collect();
    let watchers: Vec<_> = (30..32u64).map(|w| client_host(w).spawn(workload::watch_client(env.clone(), w))).collect();

    let mut nemesis = Nemesis::new(start);
    let mut monitor = Monitor::default();
    let deadline = Instant::now() + options.duration;
    let mut next_fault = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        sleep(Duration::from_millis(100)).await;
        monitor.sample(&cluster, start);
        nemesis.expire(&mut cluster, false);
        nemesis.supervise(&mut cluster);
        if options.faults && Instant::now() >= next_fault && nemesis.active() < 3 {
            let fault = nemesis.draw(&cluster);
            let hold = Duration::from_millis(thread_rng().gen_range(300..4000));
            nemesis.inject(&mut cluster, fault, hold).await;
            next_fault = Instant::now() + Duration::from_millis(thread_rng().gen_range(200..2500));
        }
    }
    nemesis.expire(&mut cluster, true);
    nemesis.supervise(&mut cluster);
    env.stop.store(true, Ordering::SeqCst);

    let mut history = History::default();
    for c in clients {
        history.ops.extend(c.await.unwrap_or_default());
    }
    for w in watchers {
        history.watches.extend(w.await.unwrap_or_default());
    }
    let mut violations = Vec::new();
    let converged = converge(&mut cluster, &mut monitor, start).await;
    if let Err(v) = converged {
        violations.push(v);
    }
    let founders: Vec<usize> = cluster.members().into_iter().filter(|m| *m < options.members).collect();
    history.ops.extend(workload::final_reads(&env, &founders).await);
    violations.extend(monitor.violations());
    violations.extend(checker::check_all(&history));

    let sim_ms = start.elapsed().as_millis() as u64;
    let mut digest = Fnv64::new();
    digest.write(format!("{history:?}{:?}{violations:?}{sim_ms}", nemesis.timeline).as_bytes());
    RunReport { options, history, timeline: nemesis.timeline, violations, trace_hash: digest.finish(), sim_ms }
}

/// After healing: every member must catch up to the same applied index and state hash.
async fn converge(cluster: &mut SimCluster, monitor: &mut Monitor, start: Instant) -> Result<(), Violation> {
    let mut last = Vec::new();
    for _ in 0..300 {
        sleep(Duration::from_millis(100)).await;
        monitor.sample(cluster, start);
        cluster.reconcile().await;
        let mut hashes = Vec::new();
        for m in cluster.members() {
            hashes.push(cluster.hash(m).await.map(|h| (h.applied_index, h.hash)));
        }
        if hashes.iter().all(|h| h.is_some() && *h == hashes[0]) && cluster.leader().is_some() {
            return Ok(());
        }
        last = hashes;
    }
    // Who each member follows and how many members it knows tell a stuck member's story.
    let views: Vec<String> = cluster
        .members()
        .into_iter()
        .map(|m| match cluster.status(m) {
            Some(s) => format!(
                "m{}: leader {:x}, term {}, commit {}, {} members known",
                m + 1,
                s.leader,
                s.term,
                s.commit_index,
                s.members.len()
            ),
            None => format!("m{}: down", m + 1),
        })
        .collect();
    Err(Violation::new(
        "convergence",
        format!(
            "members did not converge within 30 s of healing: (applied index, hash) per member {last:?}; {}",
            views.join("; ")
        ),
    ))
}
