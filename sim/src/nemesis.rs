//! The simulator's nemesis: faults from the one catalogue (`fault.rs`) chosen and timed by the
//! seed, several active at once, each undone after a while, carried out on madsim's network,
//! clocks and disks. Every start and end goes into the run's timeline.

use std::time::Duration;

use madsim::net::NetSim;
use madsim::rand::{thread_rng, Rng};
use tokio::time::Instant;

use crate::cluster::{Role, SimCluster};
use crate::fault::{name, Fault};

/// Most hosts a run creates (founders plus added members).
const MAX_HOSTS: usize = 10;

/// The timeline of what the nemesis did, in simulated milliseconds since the run began.
pub type Timeline = Vec<(u64, String)>;

/// Runs faults against a cluster.
pub struct Nemesis {
    start: Instant,
    active: Vec<(Fault, Instant)>,
    pub timeline: Timeline,
}

impl Nemesis {
    /// A nemesis whose timeline counts from `start`.
    pub fn new(start: Instant) -> Self {
        Nemesis { start, active: Vec::new(), timeline: Vec::new() }
    }

    fn log(&mut self, what: String) {
        self.timeline.push((self.start.elapsed().as_millis() as u64, what));
    }

    /// Draw a fault that makes sense for the cluster as it is now.
    pub fn draw(&self, cluster: &SimCluster) -> Fault {
        let mut rng = thread_rng();
        let members = cluster.members();
        let n = members.len();
        let any = |rng: &mut madsim::rand::GlobalRng| members[rng.gen_range(0..n)];
        let other = |rng: &mut madsim::rand::GlobalRng, m: usize| {
            let at = members.iter().position(|x| *x == m).unwrap_or(0);
            members[(at + rng.gen_range(1..n)) % n]
        };
        let leader = cluster.leader();
        match rng.gen_range(0..14) {
            0 => match leader {
                Some(leader) => Fault::IsolateLeader { leader },
                None => Fault::Crash { member: any(&mut rng) },
            },
            1 => {
                let mut shuffled = members.clone();
                for i in (1..n).rev() {
                    shuffled.swap(i, rng.gen_range(0..=i));
                }
                let cut = rng.gen_range(1..n);
                Fault::Split { a: shuffled[..cut].to_vec(), b: shuffled[cut..].to_vec() }
            }
            2 => {
                let from = leader.unwrap_or_else(|| any(&mut rng));
                Fault::OneWay { from, to: other(&mut rng, from) }
            }
            3 => {
                let (a, b) = {
                    let a = any(&mut rng);
                    (a, other(&mut rng, a))
                };
                let bridge = members.iter().copied().filter(|m| *m != a && *m != b).collect();
                Fault::Bridge { a: vec![a], b: vec![b], bridge }
            }
            4 => Fault::Crash { member: any(&mut rng) },
            5 => Fault::Pause { member: leader.unwrap_or_else(|| any(&mut rng)) },
            6 => Fault::PacketLoss { rate: rng.gen_range(0.05..0.3) },
            7 => Fault::Latency { max_ms: rng.gen_range(20..400) },
            8 => Fault::ClockSkew {
                member: any(&mut rng),
                rate: rng.gen_range(0.95..1.05),
                jump_ms: rng.gen_range(0..300),
            },
            9 => Fault::DiskFailure { member: any(&mut rng) },
            10 => Fault::MoveLeader { to: any(&mut rng) },
            11 => Fault::SlowDisk { member: leader.unwrap_or_else(|| any(&mut rng)), sync_ms: rng.gen_range(20..400) },
            12 => Fault::MessageChaos { duplicate: rng.gen_range(10..300), reorder: rng.gen_range(10..300) },
            _ => self.draw_membership(cluster),
        }
    }

    /// The next step of a membership cycle: add a learner (on a new host, or a removed member
    /// back at its old address), promote it, remove a voter, so voters never drop below the
    /// founders' count.
    fn draw_membership(&self, cluster: &SimCluster) -> Fault {
        let members = cluster.members();
        let voters: Vec<usize> = members.iter().copied().filter(|m| cluster.role(*m) == Role::Voter).collect();
        if let Some(learner) = members.iter().copied().find(|m| cluster.role(*m) == Role::Learner) {
            return Fault::Promote { member: learner };
        }
        if voters.len() > 3 {
            return Fault::Remove { member: voters[thread_rng().gen_range(0..voters.len())] };
        }
        let removed = (0..cluster.hosts()).find(|m| cluster.role(*m) == Role::Removed);
        if let Some(member) = removed.filter(|_| thread_rng().gen_bool(0.5) || cluster.hosts() >= MAX_HOSTS) {
            return Fault::AddBack { member };
        }
        if cluster.hosts() < MAX_HOSTS {
            return Fault::AddLearner;
        }
        Fault::MoveLeader { to: voters[0] }
    }

    /// Start `fault`; it ends at the next [`Nemesis::expire`] after `hold`.
    pub async fn inject(&mut self, cluster: &mut SimCluster, fault: Fault, hold: Duration) {
        self.log(format!("start {fault}"));
        match &fault {
            Fault::IsolateLeader { .. } | Fault::Split { .. } | Fault::Bridge { .. } | Fault::OneWay { .. } => {
                cut(cluster, &fault)
            }
            Fault::Crash { member } => cluster.crash(*member),
            Fault::Pause { member } => cluster.pause(*member),
            Fault::PacketLoss { rate } => NetSim::current().update_config(|c| c.packet_loss_rate = *rate),
            Fault::Latency { max_ms } => NetSim::current()
                .update_config(|c| c.send_latency = Duration::from_millis(1)..Duration::from_millis(*max_ms)),
            Fault::ClockSkew { member, rate, jump_ms } => {
                if let Some(clock) = cluster.clock(*member) {
                    clock.jump(*jump_ms);
                    clock.set_rate(*rate);
                }
            }
            Fault::DiskFailure { member } => cluster.disk(*member).set_failing(true),
            Fault::SlowDisk { member, sync_ms } => cluster.disk(*member).set_sync_ms(*sync_ms),
            Fault::MessageChaos { duplicate, reorder } => keel_server::chaos::set_rates(*duplicate, *reorder),
            Fault::MoveLeader { to } => {
                if let Some(leader) = cluster.leader() {
                    cluster.move_leader(leader, *to).await;
                }
                return;
            }
            Fault::AddLearner => {
                let added = cluster.add_learner().await;
                self.log(format!("added learner {:?}", added.map(name)));
                return;
            }
            Fault::Promote { member } => {
                let promoted = cluster.promote(*member).await;
                self.log(format!("promoted {}: {promoted}", name(*member)));
                return;
            }
            Fault::Remove { member } => {
                let removed = cluster.remove(*member).await;
                self.log(format!("removed {}: {removed}", name(*member)));
                return;
            }
            Fault::AddBack { member } => {
                let added = cluster.add_back(*member).await;
                self.log(format!("added {} back: {added}", name(*member)));
                return;
            }
            // The partition suite's faults (libfaketime restarts, a rejoin in one go): the
            // simulator never draws them; its clock skews and membership steps cover them.
            Fault::ClockOffset { .. } | Fault::Rejoin { .. } => {
                self.log(format!("not carried out in the simulator: {fault}"));
                return;
            }
        }
        self.active.push((fault, Instant::now() + hold));
    }

    /// How many faults are active.
    pub fn active(&self) -> usize {
        self.active.len()
    }

    /// End every fault whose time is up (all of them with `all`).
    pub fn expire(&mut self, cluster: &mut SimCluster, all: bool) {
        let now = Instant::now();
        let (done, keep): (Vec<_>, Vec<_>) = self.active.drain(..).partition(|(_, until)| all || *until <= now);
        self.active = keep;
        for (fault, _) in done {
            self.log(format!("end {fault}"));
            self.undo(cluster, &fault);
        }
    }

    fn undo(&mut self, cluster: &mut SimCluster, fault: &Fault) {
        match fault {
            Fault::IsolateLeader { .. } | Fault::Split { .. } | Fault::Bridge { .. } | Fault::OneWay { .. } => {
                // Heal only the links no other active partition still cuts.
                cluster.heal();
                let still: Vec<Fault> = self.active.iter().map(|(f, _)| f.clone()).collect();
                for f in still.iter().filter(|f| f.is_partition()) {
                    cut(cluster, f);
                }
            }
            Fault::Crash { member } => cluster.restart(*member),
            Fault::Pause { member } => cluster.resume(*member),
            Fault::PacketLoss { .. } => NetSim::current().update_config(|c| c.packet_loss_rate = 0.0),
            Fault::Latency { .. } => NetSim::current().update_config(|c| c.send_latency = default_latency()),
            Fault::ClockSkew { member, .. } => {
                if let Some(clock) = cluster.clock(*member) {
                    clock.set_rate(1.0);
                }
            }
            Fault::DiskFailure { member } => {
                cluster.disk(*member).set_failing(false);
                if !cluster.is_up(*member) {
                    cluster.crash(*member);
                    cluster.restart(*member);
                }
            }
            Fault::SlowDisk { member, .. } => cluster.disk(*member).set_sync_ms(0),
            Fault::MessageChaos { .. } => keel_server::chaos::set_rates(0, 0),
            Fault::MoveLeader { .. }
            | Fault::AddLearner
            | Fault::Promote { .. }
            | Fault::Remove { .. }
            | Fault::AddBack { .. }
            | Fault::ClockOffset { .. }
            | Fault::Rejoin { .. } => {}
        }
    }

    /// Restart members whose process stopped by itself (a failed disk): the supervisor's job.
    pub fn supervise(&mut self, cluster: &mut SimCluster) {
        for m in cluster.members() {
            let disk_failing = self.active.iter().any(|(f, _)| *f == Fault::DiskFailure { member: m });
            let crashed = self.active.iter().any(|(f, _)| *f == Fault::Crash { member: m });
            if !cluster.is_up(m) && !disk_failing && !crashed {
                self.log(format!("supervisor restarts {}", name(m)));
                cluster.crash(m);
                cluster.restart(m);
            }
        }
    }
}

/// Cut the links a partition fault cuts.
fn cut(cluster: &SimCluster, f: &Fault) {
    match f {
        Fault::IsolateLeader { leader } => {
            let rest: Vec<usize> = (0..cluster.hosts()).filter(|m| m != leader).collect();
            cluster.partition(&[*leader], &rest);
        }
        Fault::Split { a, b } | Fault::Bridge { a, b, .. } => cluster.partition(a, b),
        Fault::OneWay { from, to } => cluster.cut_one_way(*from, *to),
        _ => {}
    }
}

/// madsim's default packet latency.
pub fn default_latency() -> std::ops::Range<Duration> {
    Duration::from_millis(1)..Duration::from_millis(10)
}
