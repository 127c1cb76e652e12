//! The generated v3 API: prost messages, tonic services and clients, and pbjson's serde impls,
//! from Keel's definitions of etcd's wire protocol in `net/proto/`. Module names are etcd's
//! proto packages, so the generated cross-package paths (`super::mvccpb::...`) resolve.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// Keys, versions and change events (etcd's `mvccpb`).
pub mod mvccpb {
    include!(concat!(env!("OUT_DIR"), "/mvccpb.rs"));
    include!(concat!(env!("OUT_DIR"), "/mvccpb.serde.rs"));
}

/// Users, roles and permissions (etcd's `authpb`), referenced by the Auth service.
pub mod authpb {
    include!(concat!(env!("OUT_DIR"), "/authpb.rs"));
    include!(concat!(env!("OUT_DIR"), "/authpb.serde.rs"));
}

/// The KV, Watch, Lease, Cluster, Maintenance and Auth services (etcd's `etcdserverpb`).
pub mod etcdserverpb {
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.rs"));
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.serde.rs"));
}

/// The Lock service (etcd's `v3lockpb`).
pub mod v3lockpb {
    include!(concat!(env!("OUT_DIR"), "/v3lockpb.rs"));
    include!(concat!(env!("OUT_DIR"), "/v3lockpb.serde.rs"));
}

/// The Election service (etcd's `v3electionpb`).
pub mod v3electionpb {
    include!(concat!(env!("OUT_DIR"), "/v3electionpb.rs"));
    include!(concat!(env!("OUT_DIR"), "/v3electionpb.serde.rs"));
}
