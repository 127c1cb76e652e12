//! The one fault catalogue: every fault Keel is tested under, with whom it hits, shared by the
//! simulator's nemesis (`nemesis.rs`, carried out on madsim's network, clocks and disks) and the
//! partition suite's (keel-tests' `jepsen`, carried out on real processes with nftables, signals
//! and libfaketime). The two differ only in how they carry a fault out and which faults they
//! can; what a fault is, what it is called and how a log describes it are decided here once.
//! Builds without madsim.

use std::fmt;

/// One fault and whom it hits; members are indexes (m1 is 0).
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The leader cut off from every other member.
    IsolateLeader { leader: usize },
    /// The members split in two groups that cannot talk.
    Split { a: Vec<usize>, b: Vec<usize> },
    /// Two groups that cannot talk, both still reaching the members of `bridge`.
    Bridge { a: Vec<usize>, b: Vec<usize>, bridge: Vec<usize> },
    /// Everything from one member to another dropped; the other way works.
    OneWay { from: usize, to: usize },
    /// A member crashed (`kill -9`; in the simulator its unsynced writes are lost), restarted
    /// when the fault ends.
    Crash { member: usize },
    /// A member's process stopped (SIGSTOP, GC pause, stuck disk), resumed when the fault ends.
    Pause { member: usize },
    /// Packets lost at this rate on every link (TCP retransmits: delay and stalls).
    PacketLoss { rate: f64 },
    /// Every packet delayed by up to this many milliseconds (also reorders across links).
    Latency { max_ms: u64 },
    /// Raft messages between members delivered twice, or held back behind the next one, at
    /// these per-mille rates (proposals are never duplicated: Keel never resends a frame).
    MessageChaos { duplicate: u64, reorder: u64 },
    /// A member's clock runs at this rate (and jumped forward by `jump_ms` at the start).
    ClockSkew { member: usize, rate: f64, jump_ms: u64 },
    /// A member restarted with its clocks this many seconds off (either way).
    ClockOffset { member: usize, seconds: i64 },
    /// A member's fsyncs fail: it must stop rather than acknowledge; restarted at the end.
    DiskFailure { member: usize },
    /// A member's fsyncs each take this long (a slow or overloaded disk): it falls behind and,
    /// leading, slows every write; nothing it acknowledges may be lost.
    SlowDisk { member: usize, sync_ms: u64 },
    /// Leadership handed to another member (instantaneous).
    MoveLeader { to: usize },
    /// A new member added as a learner on a new host (instantaneous; faults go on around it).
    AddLearner,
    /// A learner promoted to voter.
    Promote { member: usize },
    /// A voter removed from the cluster (its host goes down).
    Remove { member: usize },
    /// A removed member added back as a learner at its old address, with an empty disk.
    AddBack { member: usize },
    /// A member removed, wiped, added back as a learner and promoted, in one go; with
    /// `cut_off`, another member is cut off from the rest meanwhile.
    Rejoin { member: usize, cut_off: Option<usize> },
}

/// A fault's kind without its targets: what a scenario lists and a plot colours by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    IsolateLeader,
    Split,
    Bridge,
    OneWay,
    Crash,
    Pause,
    PacketLoss,
    Latency,
    MessageChaos,
    ClockSkew,
    ClockOffset,
    DiskFailure,
    SlowDisk,
    MoveLeader,
    AddLearner,
    Promote,
    Remove,
    AddBack,
    Rejoin,
}

impl Fault {
    /// Its kind.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::IsolateLeader { .. } => FaultKind::IsolateLeader,
            Fault::Split { .. } => FaultKind::Split,
            Fault::Bridge { .. } => FaultKind::Bridge,
            Fault::OneWay { .. } => FaultKind::OneWay,
            Fault::Crash { .. } => FaultKind::Crash,
            Fault::Pause { .. } => FaultKind::Pause,
            Fault::PacketLoss { .. } => FaultKind::PacketLoss,
            Fault::Latency { .. } => FaultKind::Latency,
            Fault::MessageChaos { .. } => FaultKind::MessageChaos,
            Fault::ClockSkew { .. } => FaultKind::ClockSkew,
            Fault::ClockOffset { .. } => FaultKind::ClockOffset,
            Fault::DiskFailure { .. } => FaultKind::DiskFailure,
            Fault::SlowDisk { .. } => FaultKind::SlowDisk,
            Fault::MoveLeader { .. } => FaultKind::MoveLeader,
            Fault::AddLearner => FaultKind::AddLearner,
            Fault::Promote { .. } => FaultKind::Promote,
            Fault::Remove { .. } => FaultKind::Remove,
            Fault::AddBack { .. } => FaultKind::AddBack,
            Fault::Rejoin { .. } => FaultKind::Rejoin,
        }
    }

    /// Whether it cuts links between members (and so is healed by healing the network).
    pub fn is_partition(&self) -> bool {
        matches!(self, Fault::IsolateLeader { .. } | Fault::Split { .. } | Fault::Bridge { .. } | Fault::OneWay { .. })
    }

    /// Whether it acts on `member` itself: cuts it off (from the larger side, for a split; from the
    /// other group, for a bridge), stops,
    /// slows, restarts or moves it.
    pub fn hits(&self, member: usize) -> bool {
        match self {
            Fault::IsolateLeader { leader } => *leader == member,
            // The side that is not the larger one loses its majority (unless a bridge saves it).
            Fault::Split { a, b } => {
                (a.contains(&member) && a.len() <= b.len()) || (b.contains(&member) && b.len() <= a.len())
            }
            Fault::Bridge { a, b, .. } => a.contains(&member) || b.contains(&member),
            Fault::OneWay { from, .. } => *from == member,
            Fault::Crash { member: m }
            | Fault::Pause { member: m }
            | Fault::ClockSkew { member: m, .. }
            | Fault::ClockOffset { member: m, .. }
            | Fault::DiskFailure { member: m }
            | Fault::SlowDisk { member: m, .. }
            | Fault::Promote { member: m }
            | Fault::Remove { member: m }
            | Fault::AddBack { member: m }
            | Fault::Rejoin { member: m, .. } => *m == member,
            Fault::MoveLeader { .. } | Fault::AddLearner | Fault::PacketLoss { .. } => false,
            Fault::Latency { .. } | Fault::MessageChaos { .. } => false,
        }
    }
}

/// A member's name in logs: m1 for index 0.
pub fn name(member: usize) -> String {
    format!("m{}", member + 1)
}

/// Members' names, comma-separated.
pub fn names(group: &[usize]) -> String {
    group.iter().map(|&m| name(m)).collect::<Vec<_>>().join(",")
}

/// How every log (the simulator's timeline, the partition suite's `nemesis.txt`) describes a
/// fault.
impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::IsolateLeader { leader } => write!(f, "leader {} cut off from every other member", name(*leader)),
            Fault::Split { a, b } => write!(f, "{{{}}} | {{{}}}", names(a), names(b)),
            Fault::Bridge { a, b, bridge } => {
                write!(f, "{{{}}} | {{{}}}, {} reach both", names(a), names(b), names(bridge))
            }
            Fault::OneWay { from, to } => write!(f, "packets {} -> {} dropped", name(*from), name(*to)),
            Fault::Crash { member } => write!(f, "{} crashed (kill -9), restarted at the end", name(*member)),
            Fault::Pause { member } => write!(f, "{} paused (SIGSTOP), resumed at the end", name(*member)),
            Fault::PacketLoss { rate } => write!(f, "{:.1}% of packets lost", rate * 100.0),
            Fault::Latency { max_ms } => write!(f, "packets delayed by up to {max_ms} ms"),
            Fault::MessageChaos { duplicate, reorder } => {
                write!(f, "Raft messages duplicated at {duplicate}‰, held back at {reorder}‰")
            }
            Fault::ClockSkew { member, rate, jump_ms } => {
                write!(f, "{}'s clock runs at {rate:.3}, jumped {jump_ms} ms ahead", name(*member))
            }
            Fault::ClockOffset { member, seconds } => {
                write!(f, "{} restarted with its clocks {seconds:+} s off", name(*member))
            }
            Fault::DiskFailure { member } => write!(f, "{}'s fsyncs fail", name(*member)),
            Fault::SlowDisk { member, sync_ms } => write!(f, "{}'s fsyncs take {sync_ms} ms", name(*member)),
            Fault::MoveLeader { to } => write!(f, "leadership moved to {}", name(*to)),
            Fault::AddLearner => write!(f, "a learner added on a new host"),
            Fault::Promote { member } => write!(f, "learner {} promoted", name(*member)),
            Fault::Remove { member } => write!(f, "{} removed", name(*member)),
            Fault::AddBack { member } => write!(f, "{} added back as a learner with an empty disk", name(*member)),
            Fault::Rejoin { member, cut_off } => {
                if let Some(other) = cut_off {
                    write!(f, "{} cut off while ", name(*other))?;
                }
                write!(f, "{} is removed, wiped, added back as a learner and promoted", name(*member))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_described_with_member_names() {
        assert_eq!(Fault::Split { a: vec![0, 3], b: vec![1, 2] }.to_string(), "{m1,m4} | {m2,m3}");
        assert_eq!(Fault::OneWay { from: 1, to: 0 }.to_string(), "packets m2 -> m1 dropped");
        let bridge = Fault::Bridge { a: vec![0], b: vec![1, 2], bridge: vec![3] };
        assert_eq!(bridge.to_string(), "{m1} | {m2,m3}, m4 reach both");
        assert!(bridge.hits(0) && bridge.hits(2) && !bridge.hits(3) && bridge.is_partition());
        assert_eq!(
            Fault::Rejoin { member: 2, cut_off: Some(4) }.to_string(),
            "m5 cut off while m3 is removed, wiped, added back as a learner and promoted"
        );
        assert_eq!(
            Fault::ClockOffset { member: 0, seconds: -30 }.to_string(),
            "m1 restarted with its clocks -30 s off"
        );
    }

    #[test]
    fn a_split_hits_its_smaller_side() {
        let split = Fault::Split { a: vec![0, 1, 2], b: vec![3, 4] };
        assert!(split.hits(3) && split.hits(4) && !split.hits(0));
        assert!(Fault::IsolateLeader { leader: 2 }.hits(2));
        assert!(!Fault::PacketLoss { rate: 0.1 }.hits(0));
        assert!(split.is_partition() && !Fault::Crash { member: 0 }.is_partition());
    }
}
