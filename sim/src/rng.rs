//! Where the clients' random choices come from. Under madsim it is madsim's seeded generator, so
//! a seed replays the same run; against real processes (keel-tests' partition suite) it is a
//! per-thread generator derived from the seed given to [`seed`], since real timing makes the
//! run unrepeatable anyway and only the draws themselves need to be reproducible.

/// The generator for the current client.
#[cfg(madsim)]
pub fn rng() -> impl rand::RngCore {
    madsim::rand::thread_rng()
}

#[cfg(not(madsim))]
pub use real::{rng, seed};

#[cfg(not(madsim))]
mod real {
    use std::cell::RefCell;
    use std::sync::atomic::{AtomicU64, Ordering};

    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    static SEED: AtomicU64 = AtomicU64::new(0);
    static THREADS: AtomicU64 = AtomicU64::new(0);

    thread_local! {
        static RNG: RefCell<ChaCha8Rng> = RefCell::new(ChaCha8Rng::seed_from_u64(
            SEED.load(Ordering::SeqCst) ^ THREADS.fetch_add(1, Ordering::SeqCst).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        ));
    }

    /// Seed the generators of threads that draw for the first time from now on.
    pub fn seed(seed: u64) {
        SEED.store(seed, Ordering::SeqCst);
    }

    /// The current thread's generator.
    pub fn rng() -> impl RngCore {
        ThreadRng
    }

    struct ThreadRng;

    impl RngCore for ThreadRng {
        fn next_u32(&mut self) -> u32 {
            RNG.with(|r| r.borrow_mut().next_u32())
        }
        fn next_u64(&mut self) -> u64 {
            RNG.with(|r| r.borrow_mut().next_u64())
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            RNG.with(|r| r.borrow_mut().fill_bytes(dest))
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
            RNG.with(|r| r.borrow_mut().try_fill_bytes(dest))
        }
    }
}
