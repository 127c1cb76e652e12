//! `keelctl`: a command-line client for Keel, in the spirit of etcdctl, over the v2 HTTP API.
//!
//! One module per command family: `keys.rs` (`put`, `get`, `del`, `watch` over `/v2/keys/...`),
//! `member.rs` (`/v2/members`), `lease.rs` and `auth.rs` (`auth`, `user`, `role` and
//! `--user`; the v3 JSON gateway, through `gateway.rs`), `endpoint.rs` (`/health`,
//! `/version`, `/v2/stats/self` and the `X-Raft-*` headers), `snapshot.rs` (offline restore);
//! `cli.rs` is the command line, `print.rs` the output, `failure.rs` the errors. `--endpoints`
//! are tried in order until one answers (keel-client's failover); `-w json` prints the server's
//! JSON as it came. Failures print one `Error: ...` line on stderr (etcd's errors as etcdctl v2
//! prints them) and exit with status 1.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use keel_client::tls::Dial;
use keel_client::{Client, Endpoint};
use keel_server::tls::TlsFiles;

use cli::{Cli, Command};
use failure::{report, Failure};

mod auth;
mod cli;
mod endpoint;
mod failure;
mod gateway;
mod keys;
mod lease;
mod member;
mod print;
mod snapshot;

/// How long to wait for a TCP connection to an endpoint.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// How long to wait for an answer (watches wait as long as it takes).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

/// A client failing over across `endpoints` with keelctl's timeouts.
fn client(endpoints: Vec<Endpoint>) -> Client {
    Client::new(endpoints, DIAL_TIMEOUT, COMMAND_TIMEOUT)
}

/// Run the parsed command.
async fn run(cli: Cli) -> Result<(), Failure> {
    let files = TlsFiles {
        cert: cli.cert.clone(),
        key: cli.key.clone(),
        trusted_ca: cli.cacert.clone(),
        client_cert_auth: false,
    };
    // The system's authorities are read only when something is dialed over TLS.
    let https = cli.endpoints.iter().any(|e| e.trim().starts_with("https://"));
    let tls = if https || !files.is_empty() || files.trusted_ca.is_some() {
        files.dial().map_err(Failure::Other)?
    } else {
        Dial::default()
    };
    let endpoints = Endpoint::parse_list(&cli.endpoints, &tls)?;
    let output = cli.write_out;
    let mut client = client(endpoints.clone());
    if let (Some(user), false) = (&cli.user, matches!(cli.command, Command::Snapshot { .. })) {
        auth::log_in(&mut client, user).await?;
    }
    match cli.command {
        Command::Auth { command } => auth::auth(&mut client, output, command).await,
        Command::User { command } => auth::user(&mut client, output, command).await,
        Command::Role { command } => auth::role(&mut client, output, command).await,
        Command::Put { key, value, ttl } => keys::put(&mut client, output, &key, &value, ttl).await,
        Command::Get { key, prefix, consistent } => keys::get(&mut client, output, &key, prefix, consistent).await,
        Command::Del { key, prefix } => keys::del(&mut client, output, &key, prefix).await,
        Command::Watch { key, prefix, rev } => {
            until_interrupted(keys::watch(&mut client, output, &key, prefix, rev)).await
        }
        Command::Member { command } => member::run(&mut client, output, command).await,
        Command::Lease { command: command @ lease::LeaseCommand::KeepAlive { .. } } => {
            until_interrupted(lease::run(&mut client, output, command)).await
        }
        Command::Lease { command } => lease::run(&mut client, output, command).await,
        Command::Endpoint { command } => endpoint::run(endpoints, output, command).await,
        // Offline: the endpoints are not contacted.
        Command::Snapshot { command } => snapshot::run(command),
    }
}

/// Run `work` until it ends or Ctrl-C arrives (which ends it successfully).
async fn until_interrupted(work: impl std::future::Future<Output = Result<(), Failure>>) -> Result<(), Failure> {
    tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let output = cli.write_out;
    let result = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => Err(Failure::Other(format!("cannot start the runtime: {e}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            report(&failure, output);
            ExitCode::FAILURE
        }
    }
}
