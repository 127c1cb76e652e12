//! `keel`: one member of a Keel cluster. With no flags it founds a single-member cluster on
//! http://127.0.0.1:2379 (peers on 2380) with its data in ./default.keel.

use std::process::ExitCode;

use clap::Parser;
use keel_server::clock::Clock;
use keel_server::config::{Flags, ServerConfig};
use keel_server::member;
use keel_server::storage::FjallStorage;

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

async fn run(flags: Flags) -> Result<(), String> {
    let config = ServerConfig::from_flags(&flags).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("data directory {} is not writable: {e}", config.data_dir.display()))?;
    let storage = FjallStorage::open(&config.data_dir).map_err(|e| e.to_string())?;
    tracing::info!("data directory {}", config.data_dir.display());
    let started = member::start(&config, storage, seed(config.member_id), Clock::new()).await?;
    tokio::select! {
        result = started.driver.run() => result.map_err(|e| format!("storage failed, stopping: {e}")),
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
    }
}

/// The member's random seed: elections must differ between members and runs in production
/// (the simulator passes fixed seeds instead).
fn seed(member_id: u64) -> u64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
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
