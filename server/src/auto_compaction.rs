//! The automatic compactor (`--auto-compaction-mode`, `--auto-compaction-retention`): a task
//! beside the driver that feeds [`AutoCompactor`] the member's revision and leadership and,
//! when it decides, compacts through the replicated path like a client's `Compact`.

use std::time::Duration;

use keel_core::api::error::Error;
use keel_core::api::request::{CompactionRequest, Request};
use keel_core::state::auto_compaction::{AutoCompactor, Retention};
use keel_net::backend::Backend;

use crate::clock::Clock;

/// Runs until the member stops (a request then fails with `Stopped`).
pub async fn run(backend: impl Backend, retention: Retention, clock: Clock) {
    let mut compactor = AutoCompactor::new(retention);
    let mut ticker = tokio::time::interval(Duration::from_millis(compactor.poll_ms()));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let status = backend.status();
        let now = clock.now_ms();
        let Some(revision) = compactor.observe(now, status.revision, status.leader == status.id) else { continue };
        tracing::info!("Starting auto-compaction at revision {revision} (retention: {})", describe(retention));
        match backend.call(Request::Compact(CompactionRequest { revision, ..Default::default() })).await {
            Ok(_) => {
                compactor.compacted(now, revision);
                tracing::info!("Finished auto-compaction at revision {revision}");
            }
            Err(Error::Compacted) => compactor.compacted(now, revision),
            Err(Error::Stopped) => return,
            Err(e) => tracing::warn!("Failed auto-compaction at revision {revision}: {e}"),
        }
    }
}

/// The retention as etcd prints it (a Go duration, or a count of revisions).
fn describe(retention: Retention) -> String {
    match retention {
        Retention::Revisions(n) => n.to_string(),
        Retention::Periodic { ms } => crate::go_duration::format_ms(ms),
    }
}
