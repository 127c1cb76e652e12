//! `keel`: one member of a Keel cluster. With no flags it founds a single-member cluster on
//! http://127.0.0.1:2379 (peers on 2380) with its data in ./default.keel.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use keel_core::config::NodeConfig;
use keel_core::node::Node;
use keel_net::http::{self, Api};
use keel_net::metrics::Metrics;
use keel_net::peer::{host_port, PeerTransport};
use keel_server::config::{Flags, ServerConfig};
use keel_server::driver::{Driver, Identity, Wiring};
use keel_server::storage::{FjallStorage, Storage};
use tokio::net::TcpListener;

fn main() -> ExitCode {
    let (flags, ignored) = match Flags::parse().with_config_file() {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("keel: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(&flags);
    if !ignored.is_empty() {
        tracing::warn!("--config-file keys Keel does not use were ignored: {}", ignored.join(", "));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keel: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("keel: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(flags: &Flags) {
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{},raft=warn", flags.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,raft=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if flags.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn bind(url: &str, what: &str) -> Result<TcpListener, String> {
    let addr = host_port(url).ok_or_else(|| format!("{what} {url:?} is not a URL like http://host:port"))?;
    TcpListener::bind(&addr).await.map_err(|e| format!("cannot listen for {what} on {addr}: {e}"))
}

async fn run(flags: Flags) -> Result<(), String> {
    let config = ServerConfig::from_flags(&flags).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("data directory {} is not writable: {e}", config.data_dir.display()))?;
    let mut storage = FjallStorage::open(&config.data_dir).map_err(|e| e.to_string())?;
    let recovery = storage.recover().map_err(|e| e.to_string())?;

    let mut node_config = NodeConfig::new(config.member_id, config.initial_members.clone());
    node_config.cluster_id = config.cluster_id;
    node_config.tick_ms = config.tick_ms;
    node_config.election_ticks = config.election_ticks;
    node_config.snapshot_count = config.snapshot_count;
    node_config.snapshot_catchup_entries = config.snapshot_catchup_entries;
    node_config.max_request_bytes = config.max_request_bytes;
    node_config.max_txn_ops = config.max_txn_ops;
    node_config.seed = seed(config.member_id);
    let request_timeout = Duration::from_millis(node_config.request_timeout_ms + 1000);
    let node = match recovery {
        Some(r) => {
            tracing::info!(member = %format!("{:x}", config.member_id), "restarting from {}", config.data_dir.display());
            Node::recover(node_config, r)
        }
        None => Node::new(node_config),
    }
    .map_err(|e| format!("cannot start the member: {e}"))?;

    let peer_listener = bind(&config.listen_peer, "peers").await?;
    let mut client_listeners = Vec::new();
    for url in &config.listen_client {
        client_listeners.push(bind(url, "clients").await?);
    }
    let (peer_tx, peer_rx) = tokio::sync::mpsc::channel(16 * 1024);
    let transport = PeerTransport::new(config.member_id, config.cluster_id, peer_tx);
    transport.serve(peer_listener);
    for peer in &config.peers {
        if let Some(url) = peer.peer_urls.first() {
            transport.set_peer(peer.id, url);
        }
    }

    let metrics = Metrics::new();
    let identity = Identity { name: config.name.clone(), client_urls: config.advertise_client_urls.clone() };
    let tick = Duration::from_millis(config.tick_ms);
    let wiring = Wiring { transport, peers: peer_rx, identity, metrics: metrics.clone(), tick, request_timeout };
    let (driver, handle) = Driver::new(node, storage, wiring);
    handle.set_cluster_id(config.cluster_id);
    let api = Arc::new(Api { backend: handle, metrics, store_stats: Default::default(), enable_v2: config.enable_v2, cluster_token: config.cluster_token.clone() });
    for listener in client_listeners {
        tokio::spawn(http::serve(listener, api.clone()));
    }
    tracing::info!(
        name = %config.name,
        member = %format!("{:x}", config.member_id),
        cluster = %format!("{:x}", config.cluster_id),
        "serving clients on {} and peers on {}",
        config.listen_client.join(","),
        config.listen_peer
    );
    tokio::select! {
        result = driver.run() => result.map_err(|e| format!("storage failed, stopping: {e}")),
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
    }
}

/// The member's random seed: elections must differ between members and runs in production
/// (the simulator passes fixed seeds instead).
fn seed(member_id: u64) -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    nanos ^ member_id.rotate_left(17)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
