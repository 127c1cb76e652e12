//! The `keel` command line: etcd's flags and `ETCD_*` environment variables, so Keel can
//! replace etcd in a deployment, turned into a checked [`ServerConfig`].

// The flags' doc comments are their `--help` texts, written as etcd writes them (`<name>`), not
// as rustdoc would have them.
#![allow(rustdoc::invalid_html_tags)]

use std::path::PathBuf;

use clap::Parser;
use keel_core::api::request::Member;
use keel_core::state::auto_compaction::Retention;

use keel_net::ids;

use crate::tls::TlsFiles;

/// etcd-compatible flags. Every flag can also be set through its `ETCD_*` variable.
#[derive(Parser, Debug, Clone)]
#[command(name = "keel", version, about = "Keel: a Raft-replicated, etcd-compatible key-value store for coordination")]
pub struct Flags {
    /// Human-readable name of this member.
    #[arg(long, env = "ETCD_NAME", default_value = "default")]
    pub name: String,
    /// Where the member keeps its data [default: <name>.keel].
    #[arg(long, env = "ETCD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// URLs to serve clients on (comma-separated).
    #[arg(long, env = "ETCD_LISTEN_CLIENT_URLS", default_value = "http://127.0.0.1:2379")]
    pub listen_client_urls: String,
    /// Client URLs this member tells others about (comma-separated).
    #[arg(long, env = "ETCD_ADVERTISE_CLIENT_URLS", default_value = "http://127.0.0.1:2379")]
    pub advertise_client_urls: String,
    /// URL to listen on for peer traffic.
    #[arg(long, env = "ETCD_LISTEN_PEER_URLS", default_value = "http://127.0.0.1:2380")]
    pub listen_peer_urls: String,
    /// Peer URLs of this member, as the rest of the cluster reaches it (comma-separated).
    #[arg(long, env = "ETCD_INITIAL_ADVERTISE_PEER_URLS", default_value = "http://127.0.0.1:2380")]
    pub initial_advertise_peer_urls: String,
    /// The founding members: name=peerURL,... [default: <name>=<initial-advertise-peer-urls>].
    #[arg(long, env = "ETCD_INITIAL_CLUSTER")]
    pub initial_cluster: Option<String>,
    /// "new" to found a cluster, "existing" to join one (after `member add`).
    #[arg(long, env = "ETCD_INITIAL_CLUSTER_STATE", default_value = "new", value_parser = ["new", "existing"])]
    pub initial_cluster_state: String,
    /// Distinguishes clusters founded from the same URLs (feeds the member and cluster ids).
    #[arg(long, env = "ETCD_INITIAL_CLUSTER_TOKEN", default_value = "etcd-cluster")]
    pub initial_cluster_token: String,
    /// Milliseconds between leader heartbeats (one Raft tick).
    #[arg(long, env = "ETCD_HEARTBEAT_INTERVAL", default_value_t = 100)]
    pub heartbeat_interval: u64,
    /// Milliseconds without a leader before an election.
    #[arg(long, env = "ETCD_ELECTION_TIMEOUT", default_value_t = 1000)]
    pub election_timeout: u64,
    /// Applied entries between snapshots.
    #[arg(long, env = "ETCD_SNAPSHOT_COUNT", default_value_t = 100_000)]
    pub snapshot_count: u64,
    /// Space quota in bytes: past it writes are refused with a NOSPACE alarm (0: etcd's
    /// default of 2 GiB; negative: no quota).
    #[arg(long, env = "ETCD_QUOTA_BACKEND_BYTES", default_value_t = 0)]
    pub quota_backend_bytes: i64,
    /// The kind of auth token: "simple" (etcd's default: random tokens the members keep).
    #[arg(long, env = "ETCD_AUTH_TOKEN", default_value = "simple")]
    pub auth_token: String,
    /// Seconds a simple token lives after its last use.
    #[arg(long, env = "ETCD_AUTH_TOKEN_TTL", default_value_t = 300)]
    pub auth_token_ttl: u64,
    /// The bcrypt cost of password hashes (4 to 31; each step doubles the work of a login).
    #[arg(long, env = "ETCD_BCRYPT_COST", default_value_t = 10)]
    pub bcrypt_cost: u32,
    /// Log entries kept behind a snapshot for followers slightly behind (etcd 3.5's flag).
    #[arg(long, env = "ETCD_EXPERIMENTAL_SNAPSHOT_CATCHUP_ENTRIES", default_value_t = 5000)]
    pub experimental_snapshot_catchup_entries: u64,
    /// How --auto-compaction-retention is read: "periodic" (a duration, hours without a unit)
    /// or "revision" (a number of revisions).
    #[arg(long, env = "ETCD_AUTO_COMPACTION_MODE", default_value = "periodic")]
    pub auto_compaction_mode: String,
    /// How much history automatic compaction keeps; 0 turns it off.
    #[arg(long, env = "ETCD_AUTO_COMPACTION_RETENTION", default_value = "0")]
    pub auto_compaction_retention: String,
    /// Most revisions one background batch of a compaction deletes (0: 1000).
    #[arg(long, env = "ETCD_EXPERIMENTAL_COMPACTION_BATCH_LIMIT", default_value_t = 1000)]
    pub experimental_compaction_batch_limit: usize,
    /// Largest client request in bytes.
    #[arg(long, env = "ETCD_MAX_REQUEST_BYTES", default_value_t = 1_572_864)]
    pub max_request_bytes: usize,
    /// Most operations in one transaction branch.
    #[arg(long, env = "ETCD_MAX_TXN_OPS", default_value_t = 128)]
    pub max_txn_ops: usize,
    /// Serve the v2 keys API (Keel serves it by default: it is what `curl` users speak).
    #[arg(long, env = "ETCD_ENABLE_V2", default_value_t = true, action = clap::ArgAction::Set)]
    pub enable_v2: bool,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, env = "ETCD_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Log format: "text" for people, "json" for log pipelines.
    #[arg(long, env = "KEEL_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Client TLS: certificate (PEM) served on https:// client URLs.
    #[arg(long, env = "ETCD_CERT_FILE")]
    pub cert_file: Option<PathBuf>,
    /// Client TLS: the certificate's private key (PEM).
    #[arg(long, env = "ETCD_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Client TLS: authorities (PEM) that client certificates must chain to.
    #[arg(long, env = "ETCD_TRUSTED_CA_FILE")]
    pub trusted_ca_file: Option<PathBuf>,
    /// Client TLS: refuse clients without a certificate signed by --trusted-ca-file.
    #[arg(long, env = "ETCD_CLIENT_CERT_AUTH")]
    pub client_cert_auth: bool,
    /// Peer TLS: certificate (PEM) for https:// peer URLs, served and shown to other members.
    #[arg(long, env = "ETCD_PEER_CERT_FILE")]
    pub peer_cert_file: Option<PathBuf>,
    /// Peer TLS: the certificate's private key (PEM).
    #[arg(long, env = "ETCD_PEER_KEY_FILE")]
    pub peer_key_file: Option<PathBuf>,
    /// Peer TLS: authorities (PEM) other members' certificates must chain to [default: the
    /// system's].
    #[arg(long, env = "ETCD_PEER_TRUSTED_CA_FILE")]
    pub peer_trusted_ca_file: Option<PathBuf>,
    /// Peer TLS: refuse members without a certificate signed by --peer-trusted-ca-file.
    #[arg(long, env = "ETCD_PEER_CLIENT_CERT_AUTH")]
    pub peer_client_cert_auth: bool,
    /// A YAML file with etcd's configuration keys (name, data-dir, initial-cluster, ...); as
    /// with etcd, its keys take precedence over flags.
    #[arg(long, env = "ETCD_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,
}

/// The keys of etcd's YAML configuration file that Keel understands.
#[derive(serde::Deserialize, Default, Debug)]
#[serde(rename_all = "kebab-case")]
struct FileConfig {
    name: Option<String>,
    data_dir: Option<PathBuf>,
    listen_client_urls: Option<String>,
    advertise_client_urls: Option<String>,
    listen_peer_urls: Option<String>,
    initial_advertise_peer_urls: Option<String>,
    initial_cluster: Option<String>,
    initial_cluster_state: Option<String>,
    initial_cluster_token: Option<String>,
    heartbeat_interval: Option<u64>,
    election_timeout: Option<u64>,
    snapshot_count: Option<u64>,
    experimental_snapshot_catchup_entries: Option<u64>,
    experimental_compaction_batch_limit: Option<usize>,
    auto_compaction_mode: Option<String>,
    auto_compaction_retention: Option<String>,
    auth_token: Option<String>,
    auth_token_ttl: Option<u64>,
    bcrypt_cost: Option<u32>,
    quota_backend_bytes: Option<i64>,
    max_request_bytes: Option<usize>,
    max_txn_ops: Option<usize>,
    enable_v2: Option<bool>,
    log_level: Option<String>,
    client_transport_security: Option<FileTls>,
    peer_transport_security: Option<FileTls>,
    /// Everything else: reported, not fatal (etcd configs carry keys Keel has no use for).
    #[serde(flatten)]
    other: std::collections::BTreeMap<String, serde_yaml_ng::Value>,
}

/// etcd's `client-transport-security` and `peer-transport-security` blocks.
#[derive(serde::Deserialize, Default, Debug)]
#[serde(rename_all = "kebab-case")]
struct FileTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    trusted_ca_file: Option<PathBuf>,
    client_cert_auth: Option<bool>,
}

impl Flags {
    /// Apply `--config-file`, if given. Returns the flags to use and the file's keys that
    /// Keel ignored (for a warning).
    pub fn with_config_file(mut self) -> Result<(Flags, Vec<String>), ConfigError> {
        let Some(path) = self.config_file.clone() else { return Ok((self, vec![])) };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError(format!("cannot read --config-file {}: {e}", path.display())))?;
        let file: FileConfig = if text.trim().is_empty() {
            FileConfig::default()
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| ConfigError(format!("--config-file {}: {e}", path.display())))?
        };
        macro_rules! take {
            ($($field:ident),*) => { $( if let Some(v) = file.$field { self.$field = v; } )* };
        }
        take!(
            name,
            listen_client_urls,
            advertise_client_urls,
            listen_peer_urls,
            initial_advertise_peer_urls,
            initial_cluster_token,
            heartbeat_interval,
            election_timeout,
            snapshot_count,
            experimental_snapshot_catchup_entries,
            experimental_compaction_batch_limit,
            auto_compaction_mode,
            auto_compaction_retention,
            auth_token,
            auth_token_ttl,
            bcrypt_cost,
            quota_backend_bytes,
            max_request_bytes,
            max_txn_ops,
            enable_v2,
            log_level
        );
        if let Some(dir) = file.data_dir {
            self.data_dir = Some(dir);
        }
        if let Some(cluster) = file.initial_cluster {
            self.initial_cluster = Some(cluster);
        }
        if let Some(tls) = file.client_transport_security {
            self.cert_file = tls.cert_file.or(self.cert_file);
            self.key_file = tls.key_file.or(self.key_file);
            self.trusted_ca_file = tls.trusted_ca_file.or(self.trusted_ca_file);
            self.client_cert_auth = tls.client_cert_auth.unwrap_or(self.client_cert_auth);
        }
        if let Some(tls) = file.peer_transport_security {
            self.peer_cert_file = tls.cert_file.or(self.peer_cert_file);
            self.peer_key_file = tls.key_file.or(self.peer_key_file);
            self.peer_trusted_ca_file = tls.trusted_ca_file.or(self.peer_trusted_ca_file);
            self.peer_client_cert_auth = tls.client_cert_auth.unwrap_or(self.peer_client_cert_auth);
        }
        if let Some(state) = file.initial_cluster_state {
            if state != "new" && state != "existing" {
                return Err(ConfigError(format!(
                    "--config-file: initial-cluster-state must be new or existing, not {state:?}"
                )));
            }
            self.initial_cluster_state = state;
        }
        Ok((self, file.other.into_keys().collect()))
    }
}

/// A checked configuration: everything the server needs, with ids derived.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub name: String,
    pub data_dir: PathBuf,
    /// Derived from the peer URLs and token: right for founders; a joining member learns the id
    /// `member add` gave it from the cluster instead (see `member::start`).
    pub member_id: u64,
    /// 0 for a member joining an existing cluster: it learns the cluster's id when it joins.
    pub cluster_id: u64,
    /// `--initial-advertise-peer-urls`: how a joining member tells the cluster who it is.
    pub advertise_peer_urls: Vec<String>,
    /// The founding members, when founding a cluster; empty when joining.
    pub initial_members: Vec<Member>,
    /// Every member named by `--initial-cluster` (with derived ids): where to find peers
    /// before the membership is known from the log (a joining member needs this).
    pub peers: Vec<Member>,
    /// `--initial-cluster-token`: members added later get ids derived from it too (and from
    /// the moment of the addition).
    pub cluster_token: String,
    pub listen_client: Vec<String>,
    pub advertise_client_urls: Vec<String>,
    pub listen_peer: String,
    pub tick_ms: u64,
    pub election_ticks: usize,
    pub snapshot_count: u64,
    pub snapshot_catchup_entries: u64,
    pub max_request_bytes: usize,
    pub max_txn_ops: usize,
    /// The space quota in bytes, 0 for none.
    pub quota_bytes: u64,
    /// Revisions per background batch of a compaction's deletions.
    pub compaction_batch_limit: usize,
    /// What automatic compaction keeps, if it is on.
    pub auto_compaction: Option<Retention>,
    /// How long a simple token lives after its last use.
    pub auth_token_ttl_ms: u64,
    /// The bcrypt cost of new password hashes.
    pub bcrypt_cost: u32,
    pub enable_v2: bool,
    /// TLS for `https://` client URLs.
    pub client_tls: TlsFiles,
    /// TLS for `https://` peer URLs, both listening and dialing.
    pub peer_tls: TlsFiles,
}

/// A configuration mistake, worded for the person who made it.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn urls(list: &str, flag: &str) -> Result<Vec<String>, ConfigError> {
    let out: Vec<String> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
    if out.is_empty() {
        return Err(ConfigError(format!("--{flag} must name at least one URL")));
    }
    for u in &out {
        if keel_net::peer::host_port(u).is_none() {
            return Err(ConfigError(format!("--{flag}: {u:?} is not a URL like http://host:port")));
        }
    }
    Ok(out)
}

/// The cluster an `--initial-cluster`, its token and a member's name and advertised peer URLs
/// describe, with the ids etcd derives: what a founding member starts as, and what
/// `keelctl snapshot restore` writes.
pub struct InitialCluster {
    pub members: Vec<Member>,
    pub member_id: u64,
    pub cluster_id: u64,
}

impl InitialCluster {
    /// Parse `spec` (`name=url,...`) and check that it lists `name` with exactly `advertise_peer`.
    pub fn new(name: &str, spec: &str, advertise_peer: &[String], token: &str) -> Result<Self, ConfigError> {
        let cluster = parse_initial_cluster(spec)?;
        let Some((_, own_urls)) = cluster.iter().find(|(n, _)| n == name) else {
            return Err(ConfigError(format!("couldn't find local name {name:?} in the initial cluster configuration")));
        };
        let mut own = own_urls.clone();
        own.sort();
        let mut adv = advertise_peer.to_vec();
        adv.sort();
        if own != adv {
            return Err(ConfigError(format!(
                "--initial-cluster has {name}={} but --initial-advertise-peer-urls is {}",
                own.join(","),
                adv.join(",")
            )));
        }
        let members: Vec<Member> = cluster
            .iter()
            .map(|(name, peer_urls)| Member {
                id: ids::member_id(peer_urls, token),
                name: name.clone(),
                peer_urls: peer_urls.clone(),
                ..Default::default()
            })
            .collect();
        let cluster_id = ids::cluster_id(&members.iter().map(|m| m.id).collect::<Vec<_>>());
        Ok(InitialCluster { members, member_id: ids::member_id(advertise_peer, token), cluster_id })
    }
}

/// Parse `name=url,name=url,...` into (name, urls) in the order given.
pub fn parse_initial_cluster(spec: &str) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    let mut members: Vec<(String, Vec<String>)> = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((name, url)) = part.split_once('=') else {
            return Err(ConfigError(format!("--initial-cluster: {part:?} is not name=URL")));
        };
        let url = urls(url, "initial-cluster")?.remove(0);
        match members.iter_mut().find(|(n, _)| n == name) {
            Some((_, list)) => list.push(url),
            None => members.push((name.to_string(), vec![url])),
        }
    }
    if members.is_empty() {
        return Err(ConfigError("--initial-cluster is empty".into()));
    }
    Ok(members)
}

/// etcd's upper bound on `--election-timeout` (ms): longer ones are refused, as etcd does.
pub const MAX_ELECTION_MS: u64 = 50_000;

impl ServerConfig {
    /// Check the flags and derive ids, as etcd does.
    pub fn from_flags(f: &Flags) -> Result<ServerConfig, ConfigError> {
        if f.heartbeat_interval == 0 {
            return Err(ConfigError("--heartbeat-interval must be positive".into()));
        }
        if f.election_timeout < f.heartbeat_interval.saturating_mul(5) {
            return Err(ConfigError(format!(
                "--election-timeout[{}ms] should be at least as 5 times as --heartbeat-interval[{}ms]",
                f.election_timeout, f.heartbeat_interval
            )));
        }
        if f.election_timeout > MAX_ELECTION_MS {
            return Err(ConfigError(format!(
                "--election-timeout[{}ms] is too long, and should be set less than {MAX_ELECTION_MS}ms",
                f.election_timeout
            )));
        }
        let advertise_peer = urls(&f.initial_advertise_peer_urls, "initial-advertise-peer-urls")?;
        let listen_peer = urls(&f.listen_peer_urls, "listen-peer-urls")?.remove(0);
        let listen_client = urls(&f.listen_client_urls, "listen-client-urls")?;
        let advertise_client_urls = urls(&f.advertise_client_urls, "advertise-client-urls")?;
        let spec = f
            .initial_cluster
            .clone()
            .unwrap_or_else(|| format!("{}={}", f.name, advertise_peer.join(&format!(",{}=", f.name))));
        let initial = InitialCluster::new(&f.name, &spec, &advertise_peer, &f.initial_cluster_token)?;
        let (client_tls, peer_tls) = tls_files(f)?;
        if let Some(url) = listen_client.iter().find(|u| u.starts_with("https://")).filter(|_| client_tls.is_empty()) {
            return Err(ConfigError(format!(
                "TLS key/cert (--cert-file, --key-file) must be provided for client url {url} with HTTPS scheme"
            )));
        }
        if listen_peer.starts_with("https://") && peer_tls.is_empty() {
            let addr = keel_net::peer::host_port(&listen_peer).unwrap_or_default();
            return Err(ConfigError(format!(
                "cannot listen on TLS for {addr}: KeyFile and CertFile are not presented"
            )));
        }
        let token = &f.initial_cluster_token;
        let InitialCluster { members, member_id, cluster_id } = initial;
        let founding = f.initial_cluster_state == "new";
        let cluster_id = if founding { cluster_id } else { 0 };
        Ok(ServerConfig {
            name: f.name.clone(),
            data_dir: f.data_dir.clone().unwrap_or_else(|| PathBuf::from(format!("{}.keel", f.name))),
            member_id,
            cluster_id,
            advertise_peer_urls: advertise_peer.clone(),
            initial_members: if founding { members.clone() } else { vec![] },
            peers: members,
            cluster_token: token.clone(),
            listen_client,
            advertise_client_urls,
            listen_peer,
            tick_ms: f.heartbeat_interval,
            election_ticks: (f.election_timeout / f.heartbeat_interval) as usize,
            snapshot_count: f.snapshot_count.max(1),
            snapshot_catchup_entries: f.experimental_snapshot_catchup_entries,
            max_request_bytes: f.max_request_bytes,
            max_txn_ops: f.max_txn_ops,
            quota_bytes: quota_bytes(f.quota_backend_bytes),
            compaction_batch_limit: match f.experimental_compaction_batch_limit {
                0 => 1000,
                n => n,
            },
            auto_compaction: auto_compaction(&f.auto_compaction_mode, &f.auto_compaction_retention)?,
            auth_token_ttl_ms: auth_token_ttl_ms(&f.auth_token, f.auth_token_ttl)?,
            bcrypt_cost: bcrypt_cost(f.bcrypt_cost)?,
            enable_v2: f.enable_v2,
            client_tls,
            peer_tls,
        })
    }
}

/// What `--auto-compaction-mode` and `--auto-compaction-retention` ask for, read as etcd reads
/// them: a bare number is revisions or hours, anything else a Go duration; 0 turns it off.
fn auto_compaction(mode: &str, retention: &str) -> Result<Option<Retention>, ConfigError> {
    if mode != "periodic" && mode != "revision" {
        return Err(ConfigError(format!("unknown auto-compaction-mode {mode:?}")));
    }
    let retention = match (retention.parse::<i64>(), mode) {
        (Ok(n), "revision") if n >= 0 => Retention::Revisions(n),
        (Ok(n), _) if n >= 0 => Retention::Periodic { ms: (n as u64).saturating_mul(3_600_000) },
        _ => {
            let ms = crate::go_duration::parse_ms(retention)
                .map_err(|e| ConfigError(format!("error parsing CompactionRetention: {e}")))?;
            match mode {
                // etcd reads a duration in revision mode as that many nanoseconds' worth of revisions.
                "revision" => Retention::Revisions(ms.saturating_mul(1_000_000) as i64),
                _ => Retention::Periodic { ms },
            }
        }
    };
    Ok(match retention {
        Retention::Revisions(0) | Retention::Periodic { ms: 0 } => None,
        on => Some(on),
    })
}

/// The TTL of the tokens `--auth-token` and `--auth-token-ttl` ask for. Only etcd's simple
/// tokens are built so far: JWT is refused by name rather than silently replaced.
fn auth_token_ttl_ms(kind: &str, ttl_seconds: u64) -> Result<u64, ConfigError> {
    match kind.split(',').next().unwrap_or("") {
        "simple" => Ok(ttl_seconds.saturating_mul(1000)),
        "jwt" => Err(ConfigError("--auth-token jwt is not supported by this keel yet; use simple".into())),
        other => Err(ConfigError(format!("unknown token type: {other}"))),
    }
}

/// `--bcrypt-cost`, within bcrypt's bounds as etcd checks them.
fn bcrypt_cost(cost: u32) -> Result<u32, ConfigError> {
    match cost {
        4..=31 => Ok(cost),
        _ => Err(ConfigError(format!("invalid bcrypt-cost value {cost}"))),
    }
}

/// The space quota `--quota-backend-bytes` asks for, as etcd reads it: 0 is the default of
/// 2 GiB, a negative number turns the quota off (0 here).
fn quota_bytes(flag: i64) -> u64 {
    match flag {
        0 => keel_core::config::DEFAULT_QUOTA_BYTES,
        n => u64::try_from(n).unwrap_or(0),
    }
}

/// The client and peer TLS files, each certificate given with its key.
fn tls_files(f: &Flags) -> Result<(TlsFiles, TlsFiles), ConfigError> {
    let side = |cert: &Option<PathBuf>, key: &Option<PathBuf>, ca: &Option<PathBuf>, auth: bool, prefix: &str| {
        if cert.is_some() != key.is_some() {
            return Err(ConfigError(format!("--{prefix}cert-file and --{prefix}key-file must be given together")));
        }
        Ok(TlsFiles { cert: cert.clone(), key: key.clone(), trusted_ca: ca.clone(), client_cert_auth: auth })
    };
    Ok((
        side(&f.cert_file, &f.key_file, &f.trusted_ca_file, f.client_cert_auth, "")?,
        side(&f.peer_cert_file, &f.peer_key_file, &f.peer_trusted_ca_file, f.peer_client_cert_auth, "peer-")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        let mut all = vec!["keel"];
        all.extend_from_slice(args);
        Flags::try_parse_from(all).expect("flags parse")
    }

    #[test]
    fn no_flags_give_a_single_member_on_loopback_with_default_data_dir() {
        let c = ServerConfig::from_flags(&flags(&[])).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("default.keel"));
        assert_eq!(c.listen_client, vec!["http://127.0.0.1:2379".to_string()]);
        assert_eq!(c.initial_members.len(), 1);
        assert_eq!(c.initial_members[0].id, c.member_id);
        assert_eq!((c.tick_ms, c.election_ticks), (100, 10));
    }

    #[test]
    fn a_three_member_cluster_derives_the_same_cluster_id_on_every_member() {
        let cluster = "a=http://127.0.0.1:1,b=http://127.0.0.1:2,c=http://127.0.0.1:3";
        let ids: Vec<u64> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let peer = format!("http://127.0.0.1:{}", i + 1);
                let f = flags(&["--name", n, "--initial-cluster", cluster, "--initial-advertise-peer-urls", &peer]);
                ServerConfig::from_flags(&f).unwrap().cluster_id
            })
            .collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn auth_flags_are_read_and_checked_as_etcd() {
        let c = ServerConfig::from_flags(&flags(&[])).unwrap();
        assert_eq!((c.auth_token_ttl_ms, c.bcrypt_cost), (300_000, 10), "etcd's defaults");
        let c = ServerConfig::from_flags(&flags(&["--auth-token", "simple", "--auth-token-ttl", "5"])).unwrap();
        assert_eq!(c.auth_token_ttl_ms, 5000);
        let err = |args: &[&str]| ServerConfig::from_flags(&flags(args)).unwrap_err().0;
        assert_eq!(err(&["--bcrypt-cost", "3"]), "invalid bcrypt-cost value 3");
        assert_eq!(err(&["--auth-token", "paper"]), "unknown token type: paper");
        assert!(err(&["--auth-token", "jwt,pub-key=a,priv-key=b,sign-method=RS256"]).contains("not supported"));
    }

    #[test]
    fn mistakes_are_explained() {
        // Found reviewing the config fuzz target (fuzz/regressions/config/huge-heartbeat): five
        // heartbeats overflowed.
        let huge = flags(&["--heartbeat-interval", "4000000000000000000"]);
        assert!(ServerConfig::from_flags(&huge).unwrap_err().0.contains("at least as 5 times"));
        let long = flags(&["--heartbeat-interval", "100", "--election-timeout", "60000"]);
        assert_eq!(
            ServerConfig::from_flags(&long).unwrap_err().0,
            "--election-timeout[60000ms] is too long, and should be set less than 50000ms"
        );
        let err = |args: &[&str]| ServerConfig::from_flags(&flags(args)).unwrap_err().0;
        assert!(
            err(&["--name", "x", "--initial-cluster", "y=http://127.0.0.1:2380"]).contains("couldn't find local name")
        );
        assert!(err(&["--election-timeout", "200"]).contains("at least as 5 times"));
        assert!(err(&["--initial-cluster", "default"]).contains("is not name=URL"));
        assert!(err(&["--listen-client-urls", "nonsense"]).contains("is not a URL"));
        assert!(Flags::try_parse_from(["keel", "--no-such-flag"]).is_err());
        assert!(Flags::try_parse_from(["keel", "--initial-cluster-state", "maybe"]).is_err());
    }

    #[test]
    fn auto_compaction_flags_read_as_etcd_reads_them() {
        let retention = |args: &[&str]| ServerConfig::from_flags(&flags(args)).map(|c| c.auto_compaction);
        assert_eq!(retention(&[]), Ok(None), "off by default");
        assert_eq!(
            retention(&["--auto-compaction-retention", "1"]),
            Ok(Some(Retention::Periodic { ms: 3_600_000 })),
            "hours"
        );
        assert_eq!(retention(&["--auto-compaction-retention", "90s"]), Ok(Some(Retention::Periodic { ms: 90_000 })));
        let revisions = ["--auto-compaction-mode", "revision", "--auto-compaction-retention", "1000"];
        assert_eq!(retention(&revisions), Ok(Some(Retention::Revisions(1000))));
        assert_eq!(
            retention(&["--auto-compaction-retention", "soon"]).unwrap_err().0,
            r#"error parsing CompactionRetention: time: invalid duration "soon""#
        );
        assert_eq!(
            retention(&["--auto-compaction-mode", "daily"]).unwrap_err().0,
            r#"unknown auto-compaction-mode "daily""#
        );
        let batch = |args: &[&str]| ServerConfig::from_flags(&flags(args)).unwrap().compaction_batch_limit;
        assert_eq!((batch(&[]), batch(&["--experimental-compaction-batch-limit", "50"])), (1000, 50));
    }

    #[test]
    fn a_config_file_with_etcds_keys_sets_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keel.yaml");
        std::fs::write(
            &path,
            "name: infra1\ndata-dir: /var/lib/keel\nlisten-client-urls: http://127.0.0.1:12379\n\
             initial-advertise-peer-urls: http://127.0.0.1:12380\nlisten-peer-urls: http://127.0.0.1:12380\n\
             initial-cluster: infra1=http://127.0.0.1:12380\nheartbeat-interval: 50\nelection-timeout: 500\n\
             enable-v2: true\nwal-dir: /somewhere\n",
        )
        .unwrap();
        let (f, ignored) =
            flags(&["--name", "overridden", "--config-file", path.to_str().unwrap()]).with_config_file().unwrap();
        assert_eq!(ignored, vec!["wal-dir".to_string()]);
        let c = ServerConfig::from_flags(&f).unwrap();
        assert_eq!(c.name, "infra1");
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/keel"));
        assert_eq!(c.listen_client, vec!["http://127.0.0.1:12379".to_string()]);
        assert_eq!((c.tick_ms, c.election_ticks), (50, 10));
    }

    #[test]
    fn tls_comes_from_flags_or_etcds_transport_security_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tls.yaml");
        std::fs::write(
            &path,
            "listen-client-urls: https://127.0.0.1:2379\nclient-transport-security:\n  cert-file: /c.pem\n  key-file: /c-key.pem\n  \
             trusted-ca-file: /ca.pem\n  client-cert-auth: true\npeer-transport-security:\n  cert-file: /p.pem\n  key-file: /p-key.pem\n",
        )
        .unwrap();
        let (f, ignored) = flags(&["--config-file", path.to_str().unwrap()]).with_config_file().unwrap();
        assert!(ignored.is_empty(), "{ignored:?}");
        let c = ServerConfig::from_flags(&f).unwrap();
        let file = |p: &str| Some(PathBuf::from(p));
        let client = TlsFiles {
            cert: file("/c.pem"),
            key: file("/c-key.pem"),
            trusted_ca: file("/ca.pem"),
            client_cert_auth: true,
        };
        assert_eq!(c.client_tls, client);
        assert_eq!((c.peer_tls.cert.clone(), c.peer_tls.client_cert_auth), (file("/p.pem"), false));

        let half = ServerConfig::from_flags(&flags(&["--peer-cert-file", "/p.pem"])).unwrap_err().0;
        assert_eq!(half, "--peer-cert-file and --peer-key-file must be given together");
        let https =
            ServerConfig::from_flags(&flags(&["--listen-client-urls", "https://127.0.0.1:2379"])).unwrap_err().0;
        assert!(https.starts_with("TLS key/cert (--cert-file, --key-file) must be provided"), "{https}");
    }

    #[test]
    fn a_bad_config_file_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, "heartbeat-interval: often\n").unwrap();
        let err = flags(&["--config-file", path.to_str().unwrap()]).with_config_file().unwrap_err().0;
        assert!(err.contains("heartbeat-interval") || err.contains("invalid type"), "{err}");
        let missing = flags(&["--config-file", "/no/such/file.yaml"]).with_config_file().unwrap_err().0;
        assert!(missing.contains("cannot read --config-file"), "{missing}");
    }

    #[test]
    fn environment_variables_set_flags_like_etcds() {
        // clap reads ETCD_* only when the flag is absent; checked through the env attribute.
        let cmd = <Flags as clap::CommandFactory>::command();
        let env_of = |id: &str| {
            cmd.get_arguments()
                .find(|a| a.get_id() == id)
                .and_then(|a| a.get_env())
                .map(|e| e.to_string_lossy().into_owned())
        };
        assert_eq!(env_of("data_dir").as_deref(), Some("ETCD_DATA_DIR"));
        assert_eq!(env_of("initial_cluster").as_deref(), Some("ETCD_INITIAL_CLUSTER"));
    }
}
