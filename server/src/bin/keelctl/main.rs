//! `keelctl`: a command-line client for Keel, in the spirit of etcdctl, over the v2 HTTP API.
//!
//! `put`, `get`, `del` and `watch` use the v2 keys API (`/v2/keys/...`); `member list|add|remove`
//! use `/v2/members`; `lease ...` uses the v3 JSON gateway (`lease.rs`); `endpoint health|status` use `/health`, `/version`, `/v2/stats/self` and
//! the `X-Raft-Term`/`X-Raft-Index` headers of a keys answer. `--endpoints` are tried in order
//! until one answers; `-w json` prints the server's JSON as it came. Failures print one
//! `Error: ...` line on stderr (etcd's errors as etcdctl v2 prints them) and exit with status 1.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use hyper::Method;
use keel_client::call::{encode_pairs, escape};
use keel_client::tls::Dial;
use keel_client::{Call, Client, Endpoint, Reply, Unreachable};
use keel_server::tls::TlsFiles;
use serde_json::{json, Value};

mod lease;
mod snapshot;

/// How long to wait for a TCP connection to an endpoint.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// How long to wait for an answer (watches wait as long as it takes).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------------

#[derive(Parser)]
#[command(name = "keelctl", version, about = "A command-line client for Keel (etcd's v2 API, and v3 for leases)")]
struct Cli {
    /// Client URLs, comma-separated, tried in order until one answers.
    #[arg(
        long,
        global = true,
        env = "KEELCTL_ENDPOINTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379"
    )]
    endpoints: Vec<String>,

    /// Authorities (PEM) that https:// endpoints' certificates must chain to [default: the system's].
    #[arg(long, global = true, env = "KEELCTL_CACERT")]
    cacert: Option<std::path::PathBuf>,

    /// A client certificate (PEM) for endpoints that ask for one (keel --client-cert-auth).
    #[arg(long = "cert", id = "cert_file", global = true, env = "KEELCTL_CERT", requires = "key_file")]
    cert: Option<std::path::PathBuf>,

    /// The client certificate's private key (PEM).
    #[arg(long = "key", id = "key_file", global = true, env = "KEELCTL_KEY", requires = "cert_file")]
    key: Option<std::path::PathBuf>,

    /// Output format: `simple` (etcdctl's lines) or `json` (the server's JSON as it came).
    #[arg(short = 'w', long, global = true, value_enum, default_value_t = Output::Simple)]
    write_out: Output,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Simple,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Put a key's value (prints OK).
    Put {
        /// The key (a v2 path; the leading `/` is optional).
        key: String,
        /// The value (may start with `-`).
        #[arg(allow_hyphen_values = true)]
        value: String,
        /// Let the key expire after this many seconds.
        #[arg(long)]
        ttl: Option<u64>,
    },
    /// Get a key (a directory: its keys) as key and value lines.
    Get {
        /// The key or directory.
        key: String,
        /// Everything below the key's directory, recursively.
        #[arg(long)]
        prefix: bool,
        /// A linearizable read (quorum=true) instead of the member's local state.
        #[arg(long)]
        consistent: bool,
    },
    /// Delete a key (prints OK).
    Del {
        /// The key (with --prefix, the directory).
        key: String,
        /// Delete the key's directory and everything below it.
        #[arg(long)]
        prefix: bool,
    },
    /// Print each change of a key as ACTION, KEY and VALUE lines until interrupted.
    Watch {
        /// The key (with --prefix, the directory).
        key: String,
        /// Changes anywhere below the key's directory.
        #[arg(long)]
        prefix: bool,
        /// Start at this revision (replays history from it).
        #[arg(long)]
        rev: Option<u64>,
    },
    /// List, add and remove cluster members.
    Member {
        #[command(subcommand)]
        command: MemberCommand,
    },
    /// Grant, revoke, inspect, list and keep alive leases (over the v3 API).
    Lease {
        #[command(subcommand)]
        command: lease::LeaseCommand,
    },
    /// Check the health and status of endpoints.
    Endpoint {
        #[command(subcommand)]
        command: EndpointCommand,
    },
    /// Restore a saved snapshot into a new member's data directory (offline).
    Snapshot {
        #[command(subcommand)]
        command: snapshot::SnapshotCommand,
    },
}

#[derive(Subcommand)]
enum MemberCommand {
    /// List the members as a table.
    List,
    /// Add a member; with NAME, print the settings to start it with.
    Add {
        /// The new member's name (only used for the printed settings).
        name: Option<String>,
        /// The new member's peer URLs, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        peer_urls: Vec<String>,
    },
    /// Remove the member with this (hex) id.
    Remove {
        /// The member's id, in hex as `member list` shows it.
        id: String,
    },
}

#[derive(Subcommand)]
enum EndpointCommand {
    /// Whether each endpoint is healthy (it knows a leader).
    Health(EndpointArgs),
    /// Each endpoint's id, version, leadership, Raft term and index.
    Status(EndpointArgs),
}

#[derive(Args)]
struct EndpointArgs {
    /// Check every member's client URLs (from the member list) instead of --endpoints.
    #[arg(long)]
    cluster: bool,
}

// ---------------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------------

/// Why a command failed.
enum Failure {
    /// No endpoint answered (their URLs).
    Unreachable(Vec<String>),
    /// The server answered with an error.
    Server(Box<Reply>),
    /// Anything else, as a sentence.
    Other(String),
    /// Whoever read the output went away (a closed pipe): nothing to tell.
    OutputClosed,
}

/// Print a failure on stderr: the server's JSON as is under `-w json`, else one `Error:` line.
fn report(failure: &Failure, output: Output) {
    match failure {
        Failure::Server(reply) if output == Output::Json && !reply.body.is_empty() => {
            warn(&reply.text());
        }
        // etcdctl v2 prints `fmt.Fprintln(os.Stderr, "Error: ", err)`: two spaces.
        Failure::Server(reply) => warn(&format!("Error:  {}", server_error(reply))),
        Failure::Unreachable(urls) => warn(&format!("Error: could not connect to {}", urls.join(","))),
        Failure::Other(message) => warn(&format!("Error: {message}")),
        Failure::OutputClosed => {}
    }
}

/// A server's error answer as a sentence: etcd's `<code>: <message> (<cause>) [<index>]` for
/// keys errors, the `message` of other JSON errors, else the status and body.
fn server_error(reply: &Reply) -> String {
    let value = reply.json().unwrap_or(Value::Null);
    if let Some(code) = value.get("errorCode") {
        let text = |field: &str| value.get(field).and_then(Value::as_str).unwrap_or("").to_string();
        let index = value.get("index").cloned().unwrap_or(json!(0));
        return format!("{code}: {} ({}) [{index}]", text("message"), text("cause"));
    }
    if let Some(message) = value.get("message").and_then(Value::as_str) {
        return message.to_string();
    }
    match reply.text().trim() {
        "" => format!("the server answered {}", reply.status),
        body => format!("the server answered {}: {body}", reply.status),
    }
}

impl From<Unreachable> for Failure {
    fn from(u: Unreachable) -> Failure {
        Failure::Unreachable(u.urls)
    }
}

/// A sentence saying what went wrong (an answer that is not JSON, a bad endpoint).
impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Other(message)
    }
}

/// A successful (2xx) reply, or the error it is.
fn success(reply: Reply) -> Result<Reply, Failure> {
    if (200..300).contains(&reply.status) {
        Ok(reply)
    } else {
        Err(Failure::Server(Box::new(reply)))
    }
}

// ---------------------------------------------------------------------------------------------
// URLs
// ---------------------------------------------------------------------------------------------

/// The keys API target for `key` (leading `/` optional) with a query.
fn keys_target(key: &str, query: &[(&str, String)]) -> String {
    let slash = if key.starts_with('/') { "" } else { "/" };
    let path = format!("/v2/keys{slash}{}", escape(key, b"/"));
    if query.is_empty() {
        path
    } else {
        format!("{path}?{}", encode_pairs(query))
    }
}

/// `(name, "true")` for each flag that is set.
fn flags(flags: &[(&'static str, bool)]) -> Vec<(&'static str, String)> {
    flags.iter().filter(|(_, on)| *on).map(|(name, _)| (*name, "true".to_string())).collect()
}

// ---------------------------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------------------------

/// `text`, ending in a newline.
fn with_newline(text: &str) -> String {
    if text.ends_with('\n') {
        text.to_string()
    } else {
        format!("{text}\n")
    }
}

/// Write `text` and a final newline (if missing) to stdout; a closed stdout is a failure.
fn emit(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(with_newline(text).as_bytes()).and_then(|()| stdout.flush()).map_err(|e| match e.kind() {
        std::io::ErrorKind::BrokenPipe => Failure::OutputClosed,
        _ => Failure::Other(format!("cannot write the output: {e}")),
    })
}

/// Write `text` and a final newline (if missing) to stderr, as well as it goes.
fn warn(text: &str) {
    let _ = std::io::stderr().lock().write_all(with_newline(text).as_bytes());
}

/// Print the reply's body as it came (nothing for an empty body).
fn print_raw(reply: &Reply) -> Result<(), Failure> {
    if reply.body.is_empty() {
        return Ok(());
    }
    emit(&reply.text())
}

/// Print the raw body under `-w json`, else `simple`.
fn print_reply(output: Output, reply: &Reply, simple: &str) -> Result<(), Failure> {
    match output {
        Output::Json => print_raw(reply),
        Output::Simple => emit(simple),
    }
}

/// Every file below (or at) a v2 node, as (key, value), in the order the server listed them.
fn files(node: &Value, out: &mut Vec<(String, String)>) {
    if node.get("dir").and_then(Value::as_bool) == Some(true) {
        for child in node.get("nodes").and_then(Value::as_array).into_iter().flatten() {
            files(child, out);
        }
    } else {
        out.push((field(node, "key"), field(node, "value")));
    }
}

/// A string field of a JSON object ("" if missing).
fn field(value: &Value, name: &str) -> String {
    value.get(name).and_then(Value::as_str).unwrap_or("").to_string()
}

/// A list of strings joined with commas.
fn joined(value: &Value) -> String {
    value.as_array().into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>().join(",")
}

/// A table with a header row, boxed as etcdctl's `-w table` draws it.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let rule = format!("+{}+\n", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("+"));
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!(" {c:<w$} ")).collect();
        format!("|{}|\n", padded.join("|"))
    };
    let mut out = rule.clone() + &line(headers.to_vec()) + &rule;
    for row in rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out + &rule
}

// ---------------------------------------------------------------------------------------------
// Keys: put, get, del, watch
// ---------------------------------------------------------------------------------------------

/// `put KEY VALUE [--ttl N]`: PUT the value.
async fn put(client: &mut Client, output: Output, key: &str, value: &str, ttl: Option<u64>) -> Result<(), Failure> {
    let mut form = vec![("value", value.to_string())];
    form.extend(ttl.map(|t| ("ttl", t.to_string())));
    let reply = success(client.call(&Call::form(Method::PUT, keys_target(key, &[]), &form)).await?)?;
    print_reply(output, &reply, "OK")
}

/// `get KEY [--prefix] [--consistent]`: key and value lines for every file in the answer.
async fn get(client: &mut Client, output: Output, key: &str, prefix: bool, consistent: bool) -> Result<(), Failure> {
    let query = flags(&[("recursive", prefix), ("sorted", true), ("quorum", consistent)]);
    let reply = success(client.call(&Call::new(Method::GET, keys_target(key, &query))).await?)?;
    if output == Output::Json {
        return print_raw(&reply);
    }
    let mut found = Vec::new();
    files(&reply.require_json()?["node"], &mut found);
    if found.is_empty() {
        return Ok(());
    }
    emit(&found.iter().map(|(key, value)| format!("{key}\n{value}\n")).collect::<String>())
}

/// `del KEY [--prefix]`: DELETE the key (the directory, recursively).
async fn del(client: &mut Client, output: Output, key: &str, prefix: bool) -> Result<(), Failure> {
    let query = flags(&[("recursive", prefix)]);
    let reply = success(client.call(&Call::new(Method::DELETE, keys_target(key, &query))).await?)?;
    print_reply(output, &reply, "OK")
}

/// `watch KEY [--prefix] [--rev N]`: long polls, each from the revision after the last event.
async fn watch(client: &mut Client, output: Output, key: &str, prefix: bool, rev: Option<u64>) -> Result<(), Failure> {
    let mut next = rev;
    loop {
        let mut query = vec![("wait", "true".to_string())];
        query.extend(flags(&[("recursive", prefix)]));
        query.extend(next.map(|index| ("waitIndex", index.to_string())));
        let call = Call { wait: true, ..Call::new(Method::GET, keys_target(key, &query)) };
        let reply = success(client.call(&call).await?)?;
        let event = reply.require_json()?;
        print_event(output, &reply, &event)?;
        next = Some(event_index(&event)? + 1);
    }
}

/// Print one watch event: the raw JSON, or etcdctl's `ACTION`, `KEY`, `VALUE` lines.
fn print_event(output: Output, reply: &Reply, event: &Value) -> Result<(), Failure> {
    if output == Output::Json {
        return print_raw(reply);
    }
    let node = &event["node"];
    emit(&format!("{}\n{}\n{}\n", event_kind(&field(event, "action")), field(node, "key"), field(node, "value")))
}

/// etcd v3's name for a v2 action: PUT for writes, DELETE for deletes and expiries.
fn event_kind(action: &str) -> &'static str {
    match action {
        "delete" | "compareAndDelete" | "expire" => "DELETE",
        _ => "PUT",
    }
}

/// The revision of a watch event (its node's `modifiedIndex`).
fn event_index(event: &Value) -> Result<u64, Failure> {
    event["node"]["modifiedIndex"]
        .as_u64()
        .ok_or_else(|| Failure::Other(format!("a watch event without a modifiedIndex: {event}")))
}

// ---------------------------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------------------------

/// GET `/v2/members` and return the reply with its `members` array.
async fn members(client: &mut Client) -> Result<(Reply, Vec<Value>), Failure> {
    let reply = success(client.call(&Call::new(Method::GET, "/v2/members".into())).await?)?;
    let list = reply.require_json()?.get("members").and_then(Value::as_array).cloned().unwrap_or_default();
    Ok((reply, list))
}

/// `member list`: a table of id, status, name, peer and client URLs.
async fn member_list(client: &mut Client, output: Output) -> Result<(), Failure> {
    let (reply, list) = members(client).await?;
    if output == Output::Json {
        return print_raw(&reply);
    }
    let rows: Vec<Vec<String>> = list.iter().map(member_row).collect();
    emit(&table(&["ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS"], &rows))
}

/// One member as a table row (unnamed members have not started yet).
fn member_row(m: &Value) -> Vec<String> {
    let name = field(m, "name");
    let status = if name.is_empty() { "unstarted" } else { "started" };
    vec![field(m, "id"), status.into(), name, joined(&m["peerURLs"]), joined(&m["clientURLs"])]
}

/// `member add [NAME] --peer-urls URL,...`: POST the member; with NAME, print its settings.
async fn member_add(
    client: &mut Client,
    output: Output,
    name: Option<&str>,
    peer_urls: &[String],
) -> Result<(), Failure> {
    let call = Call::json(Method::POST, "/v2/members".into(), &json!({ "peerURLs": peer_urls }));
    let reply = success(client.call(&call).await?)?;
    if output == Output::Json {
        return print_raw(&reply);
    }
    let added = reply.require_json()?;
    let id = field(&added, "id");
    emit(&format!("Member {id} added"))?;
    let Some(name) = name else { return Ok(()) };
    // The list may come from a member that has not applied the addition yet: the reply names it.
    let mut list = members(client).await?.1;
    if !list.iter().any(|m| field(m, "id") == id) {
        list.push(added);
    }
    emit(&start_settings(&list, &id, name, peer_urls))
}

/// The `ETCD_*` settings a new member starts with, as etcdctl prints them.
fn start_settings(list: &[Value], new_id: &str, name: &str, peer_urls: &[String]) -> String {
    let mut cluster = Vec::new();
    for m in list {
        let member_name = if field(m, "id") == new_id { name.to_string() } else { field(m, "name") };
        if member_name.is_empty() {
            continue;
        }
        for url in m["peerURLs"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            cluster.push(format!("{member_name}={url}"));
        }
    }
    format!(
        "\nETCD_NAME=\"{name}\"\nETCD_INITIAL_CLUSTER=\"{}\"\nETCD_INITIAL_ADVERTISE_PEER_URLS=\"{}\"\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n",
        cluster.join(","),
        peer_urls.join(",")
    )
}

/// `member remove ID`: DELETE the member.
async fn member_remove(client: &mut Client, output: Output, id: &str) -> Result<(), Failure> {
    let target = format!("/v2/members/{}", escape(id, b""));
    let reply = success(client.call(&Call::new(Method::DELETE, target)).await?)?;
    print_reply(output, &reply, &format!("Member {id} removed"))
}

// ---------------------------------------------------------------------------------------------
// Endpoints: health, status
// ---------------------------------------------------------------------------------------------

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

/// A failure as a short phrase (for per-endpoint lines).
fn failure_reason(failure: &Failure) -> String {
    match failure {
        Failure::Unreachable(_) => "could not connect".into(),
        Failure::Server(reply) => server_error(reply),
        Failure::Other(message) => message.clone(),
        Failure::OutputClosed => "the output was closed".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

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
    match cli.command {
        Command::Put { key, value, ttl } => put(&mut client, output, &key, &value, ttl).await,
        Command::Get { key, prefix, consistent } => get(&mut client, output, &key, prefix, consistent).await,
        Command::Del { key, prefix } => del(&mut client, output, &key, prefix).await,
        Command::Watch { key, prefix, rev } => until_interrupted(watch(&mut client, output, &key, prefix, rev)).await,
        Command::Member { command: MemberCommand::List } => member_list(&mut client, output).await,
        Command::Member { command: MemberCommand::Add { name, peer_urls } } => {
            member_add(&mut client, output, name.as_deref(), &peer_urls).await
        }
        Command::Member { command: MemberCommand::Remove { id } } => member_remove(&mut client, output, &id).await,
        Command::Lease { command: command @ lease::LeaseCommand::KeepAlive { .. } } => {
            until_interrupted(lease::run(&mut client, output, command)).await
        }
        Command::Lease { command } => lease::run(&mut client, output, command).await,
        Command::Endpoint { command: EndpointCommand::Health(a) } => {
            endpoint_health(endpoints, output, a.cluster).await
        }
        Command::Endpoint { command: EndpointCommand::Status(a) } => {
            endpoint_status(endpoints, output, a.cluster).await
        }
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
