//! Deliberate bugs, for the simulator's proof that its checkers catch real mistakes.
//!
//! Each [`Bug`] names a classic consensus-system mistake planted at the place it would be made.
//! They can be switched on only in simulation builds (`--cfg madsim`): in every other build
//! [`enabled`] is the constant `false`, so the planted code is unreachable and compiled away.
//! The switch is per thread, because a seed sweep runs one simulation per thread.

/// A planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bug {
    /// The driver acknowledges writes without fsyncing them: a crash loses acknowledged data.
    AckBeforeFsync,
    /// The leader answers linearizable reads from its own state without a ReadIndex round: a
    /// deposed leader serves stale reads.
    LocalLinearizableRead,
    /// Snapshots are labelled [`UNDERCLAIMED_ENTRIES`] entries older than the state they hold,
    /// so after a restart from one, committed entries already in the state are applied again.
    DoubleApplyAfterRestart,
    /// The leader expires leases two seconds before their TTL runs out.
    EarlyLeaseExpiry,
    /// A watch catching up on history gets its events newest first.
    WatchOutOfOrder,
    /// Term and vote are not made durable: a member that restarts goes back to an old term and
    /// may vote twice in one.
    ForgetTermAndVote,
}

impl Bug {
    /// Every planted bug.
    pub const ALL: [Bug; 6] = [
        Bug::AckBeforeFsync,
        Bug::LocalLinearizableRead,
        Bug::DoubleApplyAfterRestart,
        Bug::EarlyLeaseExpiry,
        Bug::WatchOutOfOrder,
        Bug::ForgetTermAndVote,
    ];

    /// The bug's name on the command line (`keel-sim --bug <name>`).
    pub fn name(self) -> &'static str {
        match self {
            Bug::AckBeforeFsync => "ack-before-fsync",
            Bug::LocalLinearizableRead => "local-linearizable-read",
            Bug::DoubleApplyAfterRestart => "double-apply-after-restart",
            Bug::EarlyLeaseExpiry => "early-lease-expiry",
            Bug::WatchOutOfOrder => "watch-out-of-order",
            Bug::ForgetTermAndVote => "forget-term-and-vote",
        }
    }

    #[cfg(madsim)]
    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// How many entries [`Bug::DoubleApplyAfterRestart`] applies twice.
pub const UNDERCLAIMED_ENTRIES: u64 = 10;

#[cfg(madsim)]
std::thread_local! {
    static ENABLED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Switch on exactly `bugs` for simulations on this thread (simulation builds only).
#[cfg(madsim)]
pub fn set(bugs: &[Bug]) {
    ENABLED.with(|e| e.set(bugs.iter().fold(0, |acc, b| acc | b.bit())));
}

/// Whether `bug` is planted (always `false` outside simulation builds).
#[inline]
pub fn enabled(bug: Bug) -> bool {
    #[cfg(madsim)]
    {
        ENABLED.with(|e| e.get() & bug.bit() != 0)
    }
    #[cfg(not(madsim))]
    {
        let _ = bug;
        false
    }
}
