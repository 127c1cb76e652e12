//! The partition suite's nemesis: faults from keel-sim's catalogue (`keel_sim::fault`) drawn
//! from a seeded generator, one at a time, carried out on real processes (nftables, signals,
//! libfaketime), each held for a while and then healed, every one logged with its start and end
//! (milliseconds since the run began).

use std::fmt;
use std::thread::sleep;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use keel_sim::fault::{Fault, FaultKind};

use super::hosts::Hosts;
use super::members::Members;

/// One fault as it happened.
#[derive(Clone, Debug)]
pub struct Window {
    /// The fault, with whom it hit.
    pub fault: Fault,
    /// When the nemesis began injecting it, ms into the run.
    pub start_ms: u64,
    /// When it had taken hold (write stalls are measured from here).
    pub effect_ms: u64,
    /// When it was healed.
    pub end_ms: u64,
    /// What carrying it out reported, when there is more to say than the fault itself.
    pub note: Option<String>,
    /// Whether it hit the leader of the moment.
    pub hit_leader: bool,
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>7} ms .. {:>7} ms  {:?}: {}", self.start_ms, self.end_ms, self.fault.kind(), self.fault)?;
        match &self.note {
            Some(note) => write!(f, " ({note})"),
            None => Ok(()),
        }
    }
}

/// The faults of one run.
pub struct Nemesis {
    rng: ChaCha8Rng,
    kinds: Vec<FaultKind>,
    /// The kinds still to come in this round: every kind once per round, in a seeded order, so
    /// even a short run injects each.
    deck: Vec<FaultKind>,
    start: Instant,
    /// Every fault so far, in order.
    pub timeline: Vec<Window>,
}

impl Nemesis {
    /// A nemesis drawing from `kinds` with `seed`; times are relative to `start`.
    pub fn new(seed: u64, kinds: Vec<FaultKind>, start: Instant) -> Nemesis {
        Nemesis { rng: ChaCha8Rng::seed_from_u64(seed), kinds, deck: Vec::new(), start, timeline: Vec::new() }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Wait a quiet spell, then inject one fault, hold it, heal it and log it.
    pub fn strike(&mut self, hosts: &Hosts, members: &mut Members) -> Result<(), String> {
        sleep(Duration::from_millis(self.rng.gen_range(1000..3000)));
        if self.deck.is_empty() {
            self.deck = self.kinds.clone();
            self.deck.shuffle(&mut self.rng);
        }
        let Some(kind) = self.deck.pop() else { return Ok(()) };
        let hold = Duration::from_millis(self.rng.gen_range(2000..6000));
        let n = members.count();
        let leader = members.leader();
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut self.rng);
        // The member a targeted fault hits: the leader half the time, else any.
        let target = match leader {
            Some(l) if self.rng.gen_bool(0.5) => l,
            _ => order[0],
        };
        let fault = match kind {
            FaultKind::Split => {
                let (minority, majority) = order.split_at(n / 2);
                Fault::Split { a: minority.to_vec(), b: majority.to_vec() }
            }
            FaultKind::IsolateLeader => Fault::IsolateLeader { leader: leader.unwrap_or(order[0]) },
            FaultKind::Bridge => {
                let (a, b) = order[1..].split_at((n - 1) / 2);
                Fault::Bridge { a: a.to_vec(), b: b.to_vec(), bridge: vec![order[0]] }
            }
            FaultKind::OneWay => {
                Fault::OneWay { from: target, to: order.iter().copied().find(|&i| i != target).unwrap_or(0) }
            }
            FaultKind::Crash => Fault::Crash { member: target },
            FaultKind::Pause => Fault::Pause { member: target },
            FaultKind::ClockOffset => {
                let seconds = self.rng.gen_range(5..120) * if self.rng.gen_bool(0.5) { 1 } else { -1 };
                Fault::ClockOffset { member: target, seconds }
            }
            // With five members, one more can be cut off and the four left still have a
            // quorum; with three, the change alone is the fault.
            FaultKind::Rejoin => Fault::Rejoin { member: order[0], cut_off: (n >= 5).then_some(order[1]) },
            other => return Err(format!("the partition suite cannot carry out {other:?} faults")),
        };
        let start_ms = self.now_ms();
        let (effect_ms, note) = self.carry_out(&fault, hold, hosts, members)?;
        hosts.heal()?;
        let end_ms = self.now_ms();
        let hit_leader = leader.is_some_and(|l| fault.hits(l));
        self.timeline.push(Window { fault, start_ms, effect_ms, end_ms, note, hit_leader });
        Ok(())
    }

    /// Inject `fault` on the real processes, hold it, and undo what healing the network does
    /// not. Returns when it took hold (injecting takes a few nft or kill commands) and what there
    /// is to say beyond the fault itself.
    fn carry_out(
        &mut self,
        fault: &Fault,
        hold: Duration,
        hosts: &Hosts,
        members: &mut Members,
    ) -> Result<(u64, Option<String>), String> {
        let n = members.count();
        match fault {
            Fault::Split { a, b } | Fault::Bridge { a, b, .. } => hosts.partition(a, b)?,
            Fault::IsolateLeader { leader } => {
                let rest: Vec<usize> = (0..n).filter(|i| i != leader).collect();
                hosts.partition(&[*leader], &rest)?
            }
            Fault::OneWay { from, to } => hosts.drop_packets(*from, *to)?,
            Fault::Crash { member } => members.kill(*member),
            Fault::Pause { member } => members.pause(*member),
            // Stays so until the run heals.
            Fault::ClockOffset { member, seconds } => members.restart(*member, *seconds)?,
            Fault::Rejoin { member, cut_off } => {
                if let Some(other) = cut_off {
                    let rest: Vec<usize> = (0..n).filter(|i| i != other).collect();
                    hosts.partition(&[*other], &rest)?;
                }
                let effect_ms = self.now_ms();
                let done = members.remove_and_rejoin(*member);
                hosts.heal()?;
                return Ok((effect_ms, Some(done?)));
            }
            other => return Err(format!("the partition suite cannot carry out {other}")),
        }
        let effect_ms = self.now_ms();
        sleep(hold);
        match fault {
            Fault::Crash { member } => members.restart(*member, 0)?,
            Fault::Pause { member } => members.resume(*member),
            _ => {}
        }
        Ok((effect_ms, None))
    }
}
