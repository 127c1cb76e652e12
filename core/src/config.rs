//! How a member is configured. Every field has etcd's default where etcd has one, so a Keel
//! member behaves like an etcd member started without flags.

use crate::api::request::Member;

/// Configuration of one [`crate::node::Node`]. Durations are in milliseconds of the clock the
/// shell feeds in through `Node::tick`.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This member's id (etcd derives it from the peer URLs and cluster token).
    pub id: u64,
    /// The cluster's id, stamped into every response header.
    pub cluster_id: u64,
    /// The members a new cluster starts with (all voters). Empty when joining an existing
    /// cluster or recovering: the configuration then comes from the log or a snapshot.
    pub initial_members: Vec<Member>,
    /// Milliseconds per tick: the shell calls `tick` this often (etcd's heartbeat interval).
    pub tick_ms: u64,
    /// Ticks without a leader before an election (etcd: election timeout / heartbeat interval).
    pub election_ticks: usize,
    /// Ticks between leader heartbeats.
    pub heartbeat_ticks: usize,
    /// Seeds the member's own random number generator (election timeouts, lease ids).
    pub seed: u64,
    /// Largest encoded request accepted (etcd's `--max-request-bytes`, 1.5 MiB).
    pub max_request_bytes: usize,
    /// Most operations in one txn branch (etcd's `--max-txn-ops`, 128).
    pub max_txn_ops: usize,
    /// Applied entries between state-machine snapshots (etcd's `--snapshot-count`).
    pub snapshot_count: u64,
    /// Entries kept in the log behind a snapshot so slightly lagging followers catch up from
    /// the log rather than a whole snapshot (etcd keeps 5000).
    pub snapshot_catchup_entries: u64,
    /// How often the leader records leases' remaining TTLs in the log.
    pub lease_checkpoint_ms: u64,
    /// How long a request may wait for commit or a read round before it fails with
    /// "request timed out" (etcd: 5 s plus two election timeouts).
    pub request_timeout_ms: u64,
    /// How often watchers that asked for progress notifications get one.
    pub progress_notify_ms: u64,
    /// Largest batch of entries in one append message.
    pub max_size_per_msg: u64,
    /// Most append messages in flight to one follower.
    pub max_inflight_msgs: usize,
    /// The space quota in bytes of retained key-space history (etcd's
    /// `--quota-backend-bytes`, 2 GiB by default); 0 means no quota.
    pub quota_bytes: u64,
    /// Most revisions whose discarded history one background batch deletes after a compaction
    /// (etcd's `--experimental-compaction-batch-limit`, 1000).
    pub compaction_batch_limit: usize,
    /// How long a simple token lives after its last use (etcd's `--auth-token-ttl`, 300 s).
    pub auth_token_ttl_ms: u64,
}

/// etcd's default space quota: 2 GiB.
pub const DEFAULT_QUOTA_BYTES: u64 = 2 * 1024 * 1024 * 1024;

impl NodeConfig {
    /// etcd's defaults for a member `id` of a new cluster of `members`.
    pub fn new(id: u64, members: Vec<Member>) -> Self {
        NodeConfig {
            id,
            cluster_id: 0,
            initial_members: members,
            tick_ms: 100,
            election_ticks: 10,
            heartbeat_ticks: 1,
            seed: id,
            max_request_bytes: 1536 * 1024,
            max_txn_ops: 128,
            snapshot_count: 100_000,
            snapshot_catchup_entries: 5_000,
            lease_checkpoint_ms: 5_000,
            request_timeout_ms: 7_000,
            progress_notify_ms: 600_000,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            quota_bytes: DEFAULT_QUOTA_BYTES,
            compaction_batch_limit: 1000,
            auth_token_ttl_ms: 300_000,
        }
    }

    /// The election timeout in milliseconds.
    pub fn election_timeout_ms(&self) -> u64 {
        self.election_ticks as u64 * self.tick_ms
    }
}
