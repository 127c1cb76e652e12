//! Running the async API handlers inside one fuzz iteration, without letting a request that
//! legitimately waits (a v2 `wait=true`, a lock held by someone else, a watch) hang the fuzzer,
//! and without letting tasks it spawned outlive the iteration.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

/// How many times a future is polled before it counts as waiting for something that will not
/// come in this iteration.
pub const POLL_BUDGET: usize = 2_000;

/// A runtime for one input: dropping it drops every task the input's requests spawned.
pub struct Exec {
    runtime: tokio::runtime::Runtime,
}

impl Default for Exec {
    fn default() -> Self {
        Exec::new()
    }
}

impl Exec {
    /// A fresh current-thread runtime.
    pub fn new() -> Exec {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a current-thread runtime");
        Exec { runtime }
    }

    /// Run `future` until it finishes (`Some`) or has been polled [`POLL_BUDGET`] times without
    /// finishing (`None`, and the future is dropped, as when a client goes away). It asks to be
    /// polled again at once after every `Pending`, so a future waiting on a timer gives up
    /// promptly instead of sleeping.
    pub fn settle<F: Future>(&self, future: F) -> Option<F::Output> {
        self.runtime.block_on(async {
            let mut future = pin!(future);
            let mut polls = 0;
            std::future::poll_fn(|cx| {
                polls += 1;
                match future.as_mut().poll(cx) {
                    Poll::Ready(out) => Poll::Ready(Some(out)),
                    Poll::Pending if polls >= POLL_BUDGET => Poll::Ready(None),
                    Poll::Pending => {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                }
            })
            .await
        })
    }
}
