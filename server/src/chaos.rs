//! Message faults for the simulator: Raft messages between members delivered twice, or held
//! back and delivered after the next one. TCP never does either on one connection, but a Raft
//! implementation must survive both (a message and its retransmission after a reconnect, or
//! messages of two connections to the same peer, arrive in any order). Proposals forwarded to
//! the leader are never duplicated: Keel never resends a frame, so a duplicate proposal cannot
//! happen, and Raft would rightly apply it twice.
//!
//! Only simulation builds (`--cfg madsim`) ever change a message; rates are per simulation
//! thread, set by the simulator's nemesis.

#[cfg(madsim)]
thread_local! {
    // Per-mille rates of duplicated and of held-back messages on this simulation thread.
    static RATES: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// Duplicate `duplicate` and hold back `reorder` of every thousand incoming Raft messages
/// (0, 0: deliver every message once, in order).
#[cfg(madsim)]
pub fn set_rates(duplicate: u64, reorder: u64) {
    RATES.with(|r| r.set((duplicate.min(1000), reorder.min(1000))));
}

/// One member's message faults: which message is held back, and a deterministic draw.
#[derive(Default)]
pub struct MessageChaos {
    #[cfg(madsim)]
    draws: u64,
    #[cfg(madsim)]
    held: Option<(u64, Vec<u8>)>,
}

impl MessageChaos {
    /// Hand an incoming message `bytes` from `from` to `step`: once and in order outside
    /// simulation builds; in them, possibly twice, or later, after the next message.
    pub fn deliver(&mut self, from: u64, bytes: Vec<u8>, mut step: impl FnMut(u64, &[u8])) {
        #[cfg(madsim)]
        {
            let (duplicate, reorder) = RATES.with(|r| r.get());
            if self.draw() < reorder && self.held.is_none() {
                self.held = Some((from, bytes));
                return;
            }
            if self.draw() < duplicate && !keel_core::node::is_proposal(&bytes) {
                step(from, &bytes);
            }
            step(from, &bytes);
            if let Some((from, bytes)) = self.held.take() {
                step(from, &bytes);
            }
        }
        #[cfg(not(madsim))]
        step(from, &bytes);
    }

    /// A number in 0..1000 from a splitmix64 sequence: the same run draws the same numbers.
    #[cfg(madsim)]
    fn draw(&mut self) -> u64 {
        self.draws = self.draws.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.draws;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % 1000
    }
}
