//! keelctl's command line: the global flags and the commands (each command's own subcommands
//! live beside its code).

use clap::{Parser, Subcommand, ValueEnum};

use crate::{auth, endpoint, lease, member, snapshot};

#[derive(Parser)]
#[command(name = "keelctl", version, about = "A command-line client for Keel (etcd's v2 API, and v3 for leases)")]
pub struct Cli {
    /// Client URLs, comma-separated, tried in order until one answers.
    #[arg(
        long,
        global = true,
        env = "KEELCTL_ENDPOINTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379"
    )]
    pub endpoints: Vec<String>,

    /// Authorities (PEM) that https:// endpoints' certificates must chain to [default: the system's].
    #[arg(long, global = true, env = "KEELCTL_CACERT")]
    pub cacert: Option<std::path::PathBuf>,

    /// A client certificate (PEM) for endpoints that ask for one (keel --client-cert-auth).
    #[arg(long = "cert", id = "cert_file", global = true, env = "KEELCTL_CERT", requires = "key_file")]
    pub cert: Option<std::path::PathBuf>,

    /// The client certificate's private key (PEM).
    #[arg(long = "key", id = "key_file", global = true, env = "KEELCTL_KEY", requires = "cert_file")]
    pub key: Option<std::path::PathBuf>,

    /// Log in as `name:password` first (when the cluster has auth on).
    #[arg(long, global = true, env = "KEELCTL_USER")]
    pub user: Option<String>,

    /// Output format: `simple` (etcdctl's lines) or `json` (the server's JSON as it came).
    #[arg(short = 'w', long, global = true, value_enum, default_value_t = Output::Simple)]
    pub write_out: Output,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Simple,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
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
        command: member::MemberCommand,
    },
    /// Grant, revoke, inspect, list and keep alive leases (over the v3 API).
    Lease {
        #[command(subcommand)]
        command: lease::LeaseCommand,
    },
    /// Turn authentication on or off.
    Auth {
        #[command(subcommand)]
        command: auth::AuthCommand,
    },
    /// Add, list, inspect and delete users, and grant and revoke their roles.
    User {
        #[command(subcommand)]
        command: auth::UserCommand,
    },
    /// Add, list, inspect and delete roles, and grant and revoke their permissions.
    Role {
        #[command(subcommand)]
        command: auth::RoleCommand,
    },
    /// Check the health and status of endpoints.
    Endpoint {
        #[command(subcommand)]
        command: endpoint::EndpointCommand,
    },
    /// Restore a saved snapshot into a new member's data directory (offline).
    Snapshot {
        #[command(subcommand)]
        command: snapshot::SnapshotCommand,
    },
}
