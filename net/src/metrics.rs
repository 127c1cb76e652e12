//! The member's Prometheus metrics: one registry per member (not a global one, so several
//! members can live in one process, as in tests and the simulator), served at `/metrics`.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Every metric a member exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Client HTTP requests by API, method and status code.
    pub http_requests: IntCounterVec,
    /// Client HTTP request latency by API.
    pub http_duration: HistogramVec,
    /// 1 when the member knows a leader.
    pub has_leader: IntGauge,
    /// Leader changes this member has seen.
    pub leader_changes: IntCounter,
    pub raft_term: IntGauge,
    pub commit_index: IntGauge,
    pub applied_index: IntGauge,
    /// Requests waiting for their entry to be applied.
    pub proposals_pending: IntGauge,
    /// Requests that failed (timeouts, no leader, ...).
    pub proposals_failed: IntCounter,
    /// Duration of each group-commit fsync.
    pub fsync_duration: Histogram,
    /// Bytes the storage occupies.
    pub db_size: Gauge,
    /// Active watchers on this member.
    pub watchers: IntGauge,
}

impl Metrics {
    /// A fresh registry with every metric registered.
    #[allow(
        clippy::expect_used,
        reason = "the names, labels and buckets are constants; every test that starts a member checks them"
    )]
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new("keel_http_requests_total", "Client HTTP requests by API, method and status code."),
            &["api", "method", "code"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new("keel_http_request_duration_seconds", "Client HTTP request latency.")
                .buckets(prometheus::exponential_buckets(0.0001, 2.0, 18).expect("valid buckets")),
            &["api"],
        )
        .expect("valid metric");
        let int_gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let m = Metrics {
            http_requests,
            http_duration,
            has_leader: int_gauge("keel_server_has_leader", "Whether a leader exists (1) or not (0)."),
            leader_changes: counter("keel_server_leader_changes_seen_total", "Leader changes seen."),
            raft_term: int_gauge("keel_server_raft_term", "Current Raft term."),
            commit_index: int_gauge("keel_server_raft_commit_index", "Raft commit index."),
            applied_index: int_gauge("keel_server_raft_applied_index", "Raft applied index."),
            proposals_pending: int_gauge("keel_server_proposals_pending", "Requests waiting to be applied."),
            proposals_failed: counter("keel_server_proposals_failed_total", "Requests that failed."),
            fsync_duration: Histogram::with_opts(
                HistogramOpts::new("keel_disk_fsync_duration_seconds", "Duration of group-commit fsyncs.")
                    .buckets(prometheus::exponential_buckets(0.0001, 2.0, 16).expect("valid buckets")),
            )
            .expect("valid metric"),
            db_size: Gauge::new("keel_mvcc_db_total_size_in_bytes", "Bytes of storage used.").expect("valid metric"),
            watchers: int_gauge("keel_mvcc_watchers", "Active watchers."),
            registry,
        };
        let all: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.http_requests.clone()),
            Box::new(m.http_duration.clone()),
            Box::new(m.has_leader.clone()),
            Box::new(m.leader_changes.clone()),
            Box::new(m.raft_term.clone()),
            Box::new(m.commit_index.clone()),
            Box::new(m.applied_index.clone()),
            Box::new(m.proposals_pending.clone()),
            Box::new(m.proposals_failed.clone()),
            Box::new(m.fsync_duration.clone()),
            Box::new(m.db_size.clone()),
            Box::new(m.watchers.clone()),
        ];
        for c in all {
            m.registry.register(c).expect("metric names are unique");
        }
        m
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_text_names_every_metric() {
        let m = Metrics::new();
        m.http_requests.with_label_values(&["v2", "GET", "200"]).inc();
        m.fsync_duration.observe(0.001);
        let text = m.render();
        for name in [
            "keel_http_requests_total",
            "keel_disk_fsync_duration_seconds_bucket",
            "keel_server_has_leader",
            "keel_mvcc_watchers",
        ] {
            assert!(text.contains(name), "{name} missing from /metrics");
        }
    }
}
