//! `keelctl snapshot restore`: a new member's data directory from a saved snapshot, as
//! `etcdctl snapshot restore` makes one for etcd (same flags). Run it once per member of the
//! new cluster, with the same `--initial-cluster` and token, then start each member with
//! `--initial-cluster-state new` on its directory. Offline: no endpoint is contacted.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use keel_core::node::Persist;
use keel_server::config::InitialCluster;
use keel_server::storage::{FjallStorage, MemberIdentity, Storage};

use crate::failure::Failure;
use crate::print::emit;

/// `snapshot ...`
#[derive(Subcommand)]
pub enum SnapshotCommand {
    /// Make a new member's data directory from a snapshot file (`etcdctl snapshot save`'s).
    Restore(RestoreArgs),
}

/// Where and as whom a snapshot is restored (etcdctl's flags and defaults).
#[derive(Args)]
pub struct RestoreArgs {
    /// The snapshot file.
    file: PathBuf,
    /// The directory to create (default: `<name>.keel`); it must not exist or be empty.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// This member's name in --initial-cluster.
    #[arg(long, default_value = "default")]
    name: String,
    /// The new cluster's members, `name=peer-url,...`.
    #[arg(long, default_value = "default=http://localhost:2380")]
    initial_cluster: String,
    /// The new cluster's token (its ids derive from it).
    #[arg(long, default_value = "etcd-cluster")]
    initial_cluster_token: String,
    /// This member's peer URLs, as in --initial-cluster.
    #[arg(long, value_delimiter = ',', default_value = "http://localhost:2380")]
    initial_advertise_peer_urls: Vec<String>,
    /// Restore a file without (or with a wrong) SHA-256 trailer.
    #[arg(long)]
    skip_hash_check: bool,
}

/// Run one snapshot command.
pub fn run(command: SnapshotCommand) -> Result<(), Failure> {
    let SnapshotCommand::Restore(a) = command;
    let file = std::fs::read(&a.file).map_err(|e| Failure::Other(format!("cannot read {}: {e}", a.file.display())))?;
    let state = keel_net::v3::maintenance::backup_state(&file, a.skip_hash_check).map_err(Failure::Other)?;
    let initial =
        InitialCluster::new(&a.name, &a.initial_cluster, &a.initial_advertise_peer_urls, &a.initial_cluster_token)
            .map_err(|e| Failure::Other(e.0))?;
    let identity = MemberIdentity { member_id: initial.member_id, cluster_id: initial.cluster_id };
    let restored = keel_core::node::backup::restore(state, initial.members)
        .map_err(|e| Failure::Other(format!("cannot restore {}: {e}", a.file.display())))?;

    let dir = a.data_dir.unwrap_or_else(|| PathBuf::from(format!("{}.keel", a.name)));
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(Failure::Other(format!("data-dir {:?} exists", dir.display().to_string())));
    }
    // The identity last: a directory cut short by a failure holds no identity, so starting on
    // it derives the same ids from the flags instead of founding an empty cluster under them.
    let stored = FjallStorage::open(&dir).and_then(|mut storage| {
        let persist = Persist {
            number: 1,
            must_sync: true,
            snapshot: Some(restored.snapshot),
            entries: vec![],
            hard_state: Some(restored.hard_state),
        };
        storage.write(&persist)?;
        storage.sync()?;
        storage.keep_identity(identity)
    });
    stored.map_err(|e| Failure::Other(format!("cannot write {}: {e}", dir.display())))?;
    emit(&format!(
        "restored snapshot {} (revision {}) to {} as member {:x} of cluster {:x}",
        a.file.display(),
        restored.revision,
        dir.display(),
        identity.member_id,
        identity.cluster_id
    ))
}
