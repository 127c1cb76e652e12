//! `endpoint health|status [--cluster]`: `/health`, `/version`, `/v2/stats/self` and the
//! `X-Raft-Term`/`X-Raft-Index` headers of a keys answer, asked of each endpoint on its own.

use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use hyper::Method;
use keel_client::tls::Dial;
use keel_client::{Call, Endpoint};
use serde_json::{json, Value};

use crate::cli::Output;
use crate::client;
use crate::failure::{failure_reason, success, Failure};
use crate::keys::keys_target;
use crate::member::members;
use crate::print::{emit, field, table, warn};

#[derive(Subcommand)]
pub enum EndpointCommand {
    /// Whether each endpoint is healthy (it knows a leader).
    Health(EndpointArgs),
    /// Each endpoint's id, version, leadership, Raft term and index.
    Status(EndpointArgs),
}

#[derive(Args)]
pub struct EndpointArgs {
    /// Check every member's client URLs (from the member list) instead of --endpoints.
    #[arg(long)]
    pub cluster: bool,
}

/// The endpoints to check: `--endpoints`, or with `--cluster` every member's client URLs.
async fn targets(endpoints: Vec<Endpoint>, cluster: bool) -> Result<Vec<Endpoint>, Failure> {
    if !cluster {
        return Ok(endpoints);
    }
    let tls = endpoints.first().map_or_else(Dial::default, |e| e.tls.clone());
    let (_, list) = members(&mut client(endpoints)).await?;
    let urls: Vec<String> = list
        .iter()
        .flat_map(|m| m["clientURLs"].as_array().cloned().unwrap_or_default())
        .filter_map(|u| u.as_str().map(String::from))
        .collect();
    Ok(Endpoint::parse_list(&urls, &tls)?)
}

/// One endpoint's health check.
struct Health {
    url: String,
    took: Duration,
    /// `None` when healthy, else why not.
    error: Option<String>,
}

/// GET `/health` on one endpoint: healthy when it answers 200 with `"health":"true"`.
async fn check_health(endpoint: Endpoint) -> Health {
    let url = endpoint.url.clone();
    let started = Instant::now();
    let result = client(vec![endpoint]).call(&Call::new(Method::GET, "/health".into())).await;
    let error = match result {
        Ok(r) if r.status == 200 && r.json().is_some_and(|v| v["health"] == "true") => None,
        Ok(r) => Some(format!("answered {}: {}", r.status, r.text().trim())),
        Err(_) => Some("could not connect".into()),
    };
    Health { url, took: started.elapsed(), error }
}

/// `endpoint health [--cluster]`: one line per endpoint; fails if any is unhealthy.
async fn endpoint_health(endpoints: Vec<Endpoint>, output: Output, cluster: bool) -> Result<(), Failure> {
    let mut checks = Vec::new();
    for endpoint in targets(endpoints, cluster).await? {
        checks.push(check_health(endpoint).await);
    }
    match output {
        Output::Json => emit(&Value::Array(checks.iter().map(health_json).collect()).to_string())?,
        Output::Simple => {
            for check in &checks {
                print_health(check)?;
            }
        }
    }
    if checks.iter().any(|h| h.error.is_some()) {
        return Err(Failure::Other("unhealthy cluster".into()));
    }
    Ok(())
}

/// A health check as etcdctl's line: healthy ones on stdout, unhealthy ones on stderr.
fn print_health(h: &Health) -> Result<(), Failure> {
    match &h.error {
        None => emit(&format!("{} is healthy: successfully answered /health: took = {:?}", h.url, h.took)),
        Some(e) => {
            warn(&format!("{} is unhealthy: {e}", h.url));
            Ok(())
        }
    }
}

/// A health check as etcdctl's JSON object.
fn health_json(h: &Health) -> Value {
    let mut v = json!({ "endpoint": h.url, "health": h.error.is_none(), "took": format!("{:?}", h.took) });
    if let Some(e) = &h.error {
        v["error"] = json!(e);
    }
    v
}

/// One endpoint's status.
struct Status {
    url: String,
    /// `/v2/stats/self` as the member answered it.
    stats: Value,
    version: String,
    term: u64,
    index: u64,
}

/// Ask one endpoint for its stats, version, and the Raft headers of a keys answer.
async fn fetch_status(endpoint: Endpoint) -> Result<Status, Failure> {
    let url = endpoint.url.clone();
    let mut client = client(vec![endpoint]);
    let stats = success(client.call(&Call::new(Method::GET, "/v2/stats/self".into())).await?)?.require_json()?;
    let version = success(client.call(&Call::new(Method::GET, "/version".into())).await?)?.require_json()?;
    let keys = client.call(&Call::new(Method::GET, keys_target("/", &[]))).await?;
    let raft = |name: &str| {
        let missing = || Failure::Other(format!("no {name} header on a keys answer (is the v2 API enabled?)"));
        keys.header(name).and_then(|v| v.parse().ok()).ok_or_else(missing)
    };
    let (term, index) = (raft("X-Raft-Term")?, raft("X-Raft-Index")?);
    Ok(Status { url, stats, version: field(&version, "etcdserver"), term, index })
}

impl Status {
    /// Whether the member says it leads.
    fn leader(&self) -> bool {
        self.stats["state"] == "StateLeader"
    }

    /// The status as a table row.
    fn row(&self) -> Vec<String> {
        let id = field(&self.stats, "id");
        vec![
            self.url.clone(),
            id,
            self.version.clone(),
            self.leader().to_string(),
            self.term.to_string(),
            self.index.to_string(),
        ]
    }

    /// The status as JSON (the member's stats included as it answered them).
    fn to_json(&self) -> Value {
        json!({
            "endpoint": self.url, "id": self.stats["id"], "version": self.version, "leader": self.leader(),
            "raftTerm": self.term, "raftIndex": self.index, "stats": self.stats,
        })
    }
}

/// `endpoint status [--cluster]`: a table row per endpoint; fails if any did not answer.
async fn endpoint_status(endpoints: Vec<Endpoint>, output: Output, cluster: bool) -> Result<(), Failure> {
    let mut found = Vec::new();
    let mut failed = false;
    for endpoint in targets(endpoints, cluster).await? {
        let url = endpoint.url.clone();
        match fetch_status(endpoint).await {
            Ok(status) => found.push(status),
            Err(e) => {
                failed = true;
                warn(&format!("Failed to get the status of endpoint {url} ({})", failure_reason(&e)));
            }
        }
    }
    match output {
        Output::Json => emit(&Value::Array(found.iter().map(Status::to_json).collect()).to_string())?,
        Output::Simple => {
            let rows: Vec<Vec<String>> = found.iter().map(Status::row).collect();
            emit(&table(&["ENDPOINT", "ID", "VERSION", "IS LEADER", "RAFT TERM", "RAFT INDEX"], &rows))?
        }
    }
    if failed {
        return Err(Failure::Other("could not get the status of every endpoint".into()));
    }
    Ok(())
}

/// Run an `endpoint` command against `endpoints` (each asked on its own, never failed over).
pub async fn run(endpoints: Vec<Endpoint>, output: Output, command: EndpointCommand) -> Result<(), Failure> {
    match command {
        EndpointCommand::Health(a) => endpoint_health(endpoints, output, a.cluster).await,
        EndpointCommand::Status(a) => endpoint_status(endpoints, output, a.cluster).await,
    }
}
