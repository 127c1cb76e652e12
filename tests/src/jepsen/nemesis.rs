//! The nemesis: faults drawn from a seeded generator, one at a time, each held for a while and
//! then healed, every one logged with its start and end (milliseconds since the run began).

use std::fmt;
use std::thread::sleep;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::hosts::Hosts;
use super::members::{name, Members};

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// Split the members into a minority and a majority.
    PartitionHalves,
    /// Cut the leader off from every other member.
    IsolateLeader,
    /// Two halves that only one member (the bridge) still connects.
    Bridge,
    /// Packets from one member to another are lost; the other way works.
    OneWayLoss,
    /// `kill -9` a member (the leader half the time), restart it when the fault ends.
    Kill,
    /// SIGSTOP a member (the leader half the time), SIGCONT it when the fault ends.
    Pause,
    /// Restart a member with its clocks shifted by libfaketime.
    ClockOffset,
    /// Remove a member, wipe it, add it back as a learner and promote it, while another member
    /// is cut off.
    Membership,
}

/// One fault as it happened.
#[derive(Clone, Debug)]
pub struct Window {
    /// What kind of fault.
    pub kind: FaultKind,
    /// When the nemesis began injecting it, ms into the run.
    pub start_ms: u64,
    /// When it had taken hold (write stalls are measured from here).
    pub effect_ms: u64,
    /// When it was healed.
    pub end_ms: u64,
    /// Whom it hit, and how.
    pub detail: String,
    /// Whether it hit the leader of the moment.
    pub hit_leader: bool,
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>7} ms .. {:>7} ms  {:?}: {}", self.start_ms, self.end_ms, self.kind, self.detail)
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

fn names(group: &[usize]) -> String {
    group.iter().map(|&i| name(i)).collect::<Vec<_>>().join(",")
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
        let start_ms = self.now_ms();
        // When the fault took hold (injecting one takes a few nft or kill commands).
        let effect_ms;
        let (detail, hit_leader) = match kind {
            FaultKind::PartitionHalves => {
                let (minority, majority) = order.split_at(n / 2);
                hosts.partition(minority, majority)?;
                effect_ms = self.now_ms();
                sleep(hold);
                (
                    format!("{{{}}} | {{{}}}", names(minority), names(majority)),
                    leader.is_some_and(|l| minority.contains(&l)),
                )
            }
            FaultKind::IsolateLeader => {
                let l = leader.unwrap_or(order[0]);
                let rest: Vec<usize> = (0..n).filter(|&i| i != l).collect();
                hosts.partition(&[l], &rest)?;
                effect_ms = self.now_ms();
                sleep(hold);
                (format!("{} cut off from {}", name(l), names(&rest)), leader.is_some())
            }
            FaultKind::Bridge => {
                let bridge = order[0];
                let (a, b) = order[1..].split_at((n - 1) / 2);
                hosts.partition(a, b)?;
                effect_ms = self.now_ms();
                sleep(hold);
                (
                    format!("{{{}}} | {{{}}}, {} reaches both", names(a), names(b), name(bridge)),
                    leader.is_some_and(|l| l != bridge),
                )
            }
            FaultKind::OneWayLoss => {
                let (from, to) = (target, order.iter().copied().find(|&i| i != target).unwrap_or(0));
                hosts.drop_packets(from, to)?;
                effect_ms = self.now_ms();
                sleep(hold);
                (format!("packets {} -> {} dropped", name(from), name(to)), leader == Some(from))
            }
            FaultKind::Kill => {
                members.kill(target);
                effect_ms = self.now_ms();
                sleep(hold);
                members.restart(target, 0)?;
                (format!("kill -9 {}, restarted", name(target)), leader == Some(target))
            }
            FaultKind::Pause => {
                members.pause(target);
                effect_ms = self.now_ms();
                sleep(hold);
                members.resume(target);
                (format!("SIGSTOP {}, SIGCONT", name(target)), leader == Some(target))
            }
            FaultKind::ClockOffset => {
                let offset = self.rng.gen_range(5..120) * if self.rng.gen_bool(0.5) { 1 } else { -1 };
                members.restart(target, offset)?;
                effect_ms = self.now_ms();
                sleep(hold);
                (
                    format!(
                        "{} restarted with its clocks {offset:+} s off (libfaketime); stays so until the run heals",
                        name(target)
                    ),
                    leader == Some(target),
                )
            }
            FaultKind::Membership => {
                // With five members, one more can be cut off and the four left still have a
                // quorum; with three, the change alone is the fault.
                let (target, other) = (order[0], order[1]);
                let rest: Vec<usize> = (0..n).filter(|&i| i != other).collect();
                let cut = n >= 5;
                if cut {
                    hosts.partition(&[other], &rest)?;
                }
                effect_ms = self.now_ms();
                let done = members.remove_and_rejoin(target);
                hosts.heal()?;
                let during = if cut { format!("{} cut off while: ", name(other)) } else { String::new() };
                (format!("{during}{}", done?), leader == Some(target))
            }
        };
        hosts.heal()?;
        let end_ms = self.now_ms();
        self.timeline.push(Window { kind, start_ms, effect_ms, end_ms, detail, hit_leader });
        Ok(())
    }
}
