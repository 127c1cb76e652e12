//! The member's clock: milliseconds since the member started, as the core's `tick` wants them.
//!
//! Lease expiry is the one place Keel trusts a clock, so the simulator must be able to make one
//! member's clock run fast or slow, or jump forward (a VM pause, an NTP step), and watch what
//! leases do. Production never skews it: [`Clock::new`] is the plain monotonic clock.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::time::Instant;

/// A monotonic millisecond clock that can be skewed. Clones share one clock.
#[derive(Clone, Debug)]
pub struct Clock {
    start: Instant,
    skew: Arc<Mutex<Skew>>,
}

/// How the reported time departs from the real one, as a line through (`real_ms`, `value_ms`).
#[derive(Debug)]
struct Skew {
    real_ms: u64,
    value_ms: u64,
    /// Reported milliseconds per real millisecond.
    rate: f64,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock that starts at zero now and runs true.
    pub fn new() -> Self {
        Clock { start: Instant::now(), skew: Arc::new(Mutex::new(Skew { real_ms: 0, value_ms: 0, rate: 1.0 })) }
    }

    fn real_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Milliseconds since the clock started, as this (possibly skewed) clock sees them.
    pub fn now_ms(&self) -> u64 {
        let real = self.real_ms();
        let skew = self.skew.lock();
        skew.value_ms + ((real.saturating_sub(skew.real_ms)) as f64 * skew.rate) as u64
    }

    /// From now on, run at `rate` reported milliseconds per real one (clamped to 0.1..=10; the
    /// clock never runs backwards).
    pub fn set_rate(&self, rate: f64) {
        let now = self.now_ms();
        let real = self.real_ms();
        let mut skew = self.skew.lock();
        *skew = Skew { real_ms: real, value_ms: now, rate: rate.clamp(0.1, 10.0) };
    }

    /// Jump forward by `ms` at once.
    pub fn jump(&self, ms: u64) {
        let now = self.now_ms();
        let real = self.real_ms();
        let mut skew = self.skew.lock();
        skew.real_ms = real;
        skew.value_ms = now + ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_true_clock_never_goes_backwards_and_skews_only_forward() {
        let clock = Clock::new();
        let a = clock.now_ms();
        clock.jump(1000);
        let b = clock.now_ms();
        assert!(b >= a + 1000);
        clock.set_rate(0.5);
        assert!(clock.now_ms() >= b);
        clock.set_rate(-3.0);
        assert!(clock.now_ms() >= b, "a negative rate is clamped, the clock never runs backwards");
    }
}
