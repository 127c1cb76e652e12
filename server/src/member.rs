//! One member, assembled: storage recovered, node built, listeners bound, peer transport and
//! client API started, driver ready to run. The `keel` binary and the simulator both start
//! members through [`start`], so the simulator runs exactly what production runs.

use std::sync::Arc;
use std::time::Duration;

use keel_core::config::NodeConfig;
use keel_core::node::Node;
use keel_net::http::{self, Api};
use keel_net::metrics::Metrics;
use keel_net::peer::{self, host_port, PeerTransport};
use keel_net::tls::Dial;
use tokio::net::TcpListener;

use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::driver::{Driver, Handle, Identity, Wiring};
use crate::storage::{MemberIdentity, Storage};

/// How long a joining member keeps asking the cluster for its id before giving up.
const JOIN_PATIENCE: Duration = Duration::from_secs(60);

/// A started member: run `driver` to completion; `handle` reaches it in-process.
pub struct Started<S: Storage> {
    pub driver: Driver<S>,
    pub handle: Handle,
}

/// Start the member `config` describes on `storage`. `seed` feeds its election timeouts (it must
/// differ between members); `clock` is what its ticks read. Client and peer listeners are bound
/// and served before this returns, so a port in use is reported here.
pub async fn start<S: Storage>(
    config: &ServerConfig,
    mut storage: S,
    seed: u64,
    clock: Clock,
) -> Result<Started<S>, String> {
    let recovery = storage.recover().map_err(|e| e.to_string())?;
    let stored = storage.identity().map_err(|e| e.to_string())?;
    let mut peers: Vec<(u64, Vec<String>)> = config.peers.iter().map(|p| (p.id, p.peer_urls.clone())).collect();
    let dial = if config.peer_tls.is_empty() { Dial::default() } else { config.peer_tls.dial()? };
    let founding = !config.initial_members.is_empty();
    let peer_urls: Vec<String> = peers.iter().flat_map(|(_, urls)| urls.clone()).collect();
    let identity = match (stored, &recovery) {
        // A log exists: the ids it was written under win over the flags, as etcd's WAL does.
        (Some(kept), Some(_)) => {
            warn_if_flags_differ(config, kept);
            kept
        }
        // Nothing written yet: a joiner keeps the id the cluster told it...
        (Some(kept), None) if !founding => kept,
        // ...or asks for it: `member add` chose it.
        (None, None) if !founding => {
            let found = peer::discover_identity(&peer_urls, &config.advertise_peer_urls, &dial, JOIN_PATIENCE).await?;
            peers = found.members;
            MemberIdentity { member_id: found.id, cluster_id: found.cluster_id }
        }
        // A founder with no log (at most an identity kept before a crash): its flags' ids,
        // unless the cluster it names already runs.
        (_, None) => {
            peer::check_founding(&peer_urls, &config.advertise_peer_urls, (config.member_id, config.cluster_id), &dial)
                .await?;
            MemberIdentity { member_id: config.member_id, cluster_id: config.cluster_id }
        }
        // A log from before data directories kept their ids: the flags must still derive them.
        (None, Some(_)) => MemberIdentity { member_id: config.member_id, cluster_id: config.cluster_id },
    };
    // Kept before anything else is written, so a data directory knows whose it is (a cluster
    // id of 0, a joiner's from before ids were kept, is not worth keeping).
    if stored != Some(identity) && identity.cluster_id != 0 {
        storage.keep_identity(identity).map_err(|e| e.to_string())?;
    }
    let MemberIdentity { member_id, cluster_id } = identity;
    let mut node_config = NodeConfig::new(member_id, config.initial_members.clone());
    node_config.cluster_id = cluster_id;
    node_config.tick_ms = config.tick_ms;
    node_config.election_ticks = config.election_ticks;
    node_config.snapshot_count = config.snapshot_count;
    node_config.snapshot_catchup_entries = config.snapshot_catchup_entries;
    node_config.max_request_bytes = config.max_request_bytes;
    node_config.max_txn_ops = config.max_txn_ops;
    node_config.quota_bytes = config.quota_bytes;
    node_config.compaction_batch_limit = config.compaction_batch_limit;
    node_config.auth_token_ttl_ms = config.auth_token_ttl_ms;
    node_config.seed = seed;
    let request_timeout = Duration::from_millis(node_config.request_timeout_ms + 1000);
    let node = match recovery {
        Some(r) => {
            tracing::info!(member = %format!("{member_id:x}"), "restarting from stored state");
            Node::recover(node_config, r, storage.engine())
        }
        None => Node::new(node_config, storage.engine()),
    }
    .map_err(|e| format!("cannot start the member: {e}"))?;

    let peer_listener = bind(&config.listen_peer, "peers").await?;
    let peer_accept = config.peer_tls.accept(&config.listen_peer, &[])?;
    let mut client_listeners = Vec::new();
    for url in &config.listen_client {
        // HTTP/2 first: gRPC clients insist on it; curl and browsers fall back to HTTP/1.1.
        client_listeners.push((bind(url, "clients").await?, config.client_tls.accept(url, &[b"h2", b"http/1.1"])?));
    }
    let (peer_tx, peer_rx) = tokio::sync::mpsc::channel(16 * 1024);
    let own_url = config.advertise_peer_urls.first().cloned().unwrap_or_default();
    let transport =
        PeerTransport::new(member_id, cluster_id, peer_tx).with_tls(peer_accept, dial).advertising(&own_url);
    transport.serve(peer_listener);
    for (id, urls) in &peers {
        if let Some(url) = urls.first() {
            transport.set_peer(*id, url);
        }
    }

    let metrics = Metrics::new();
    let identity = Identity { name: config.name.clone(), client_urls: config.advertise_client_urls.clone() };
    let tick = Duration::from_millis(config.tick_ms);
    let compactor_clock = clock.clone();
    let wiring = Wiring {
        transport,
        peers: peer_rx,
        identity,
        metrics: metrics.clone(),
        tick,
        request_timeout,
        clock,
        watch_buffer: crate::driver::WATCH_BUFFER,
    };
    let (driver, handle) = Driver::new(node, storage, wiring);
    handle.set_cluster_id(cluster_id);
    if let Some(retention) = config.auto_compaction {
        tokio::spawn(crate::auto_compaction::run(handle.clone(), retention, compactor_clock));
    }
    let mut api = Api::new(handle.clone(), metrics, config.enable_v2, config.cluster_token.clone());
    api.v3 = api.v3.with_bcrypt_cost(config.bcrypt_cost);
    let api = Arc::new(api);
    for (listener, accept) in client_listeners {
        tokio::spawn(http::serve(listener, accept, api.clone()));
    }
    tracing::info!(
        name = %config.name,
        member = %format!("{member_id:x}"),
        cluster = %format!("{cluster_id:x}"),
        "serving clients on {} and peers on {}",
        config.listen_client.join(","),
        config.listen_peer
    );
    Ok(Started { driver, handle })
}

/// A founding member's flags derive its ids, but once a data directory holds a log, the ids it
/// was written under are the member's (etcd likewise ignores `--initial-*` flags on a restart:
/// after `member update` or a grown `--initial-cluster` they no longer derive the same ids).
/// Different ones are worth a warning: the flags may name another cluster by mistake.
fn warn_if_flags_differ(config: &ServerConfig, kept: MemberIdentity) {
    let founding = !config.initial_members.is_empty();
    if founding && (kept.cluster_id, kept.member_id) != (config.cluster_id, config.member_id) {
        tracing::warn!(
            "data directory {} belongs to member {:x} of cluster {:x}; the --initial-* flags, which describe member {:x} \
             of cluster {:x}, are ignored",
            config.data_dir.display(),
            kept.member_id,
            kept.cluster_id,
            config.member_id,
            config.cluster_id
        );
    }
}

async fn bind(url: &str, what: &str) -> Result<TcpListener, String> {
    let addr = host_port(url).ok_or_else(|| format!("{what} {url:?} is not a URL like http://host:port"))?;
    TcpListener::bind(&addr).await.map_err(|e| format!("cannot listen for {what} on {addr}: {e}"))
}
