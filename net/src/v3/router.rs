//! One member's v3 services, and the routing of gRPC calls (`POST /<package>.<Service>/<Method>`)
//! to their generated servers. Keel serves them on its own hyper connections instead of
//! tonic's transport, so gRPC and the HTTP APIs share the client port (as etcd's do) and the
//! same code runs under madsim. The JSON gateway calls the same service objects.

use std::sync::Arc;

use tonic::body::Body;
use tonic::codegen::Service;

use super::auth::AuthService;
use super::cluster::ClusterService;
use super::election::ElectionService;
use super::kv::KvService;
use super::lease::LeaseService;
use super::lock::LockService;
use super::maintenance::MaintenanceService;
use super::pb::{etcdserverpb as pb, v3electionpb, v3lockpb};
use super::watch::WatchService;
use crate::backend::Backend;
use crate::password::DEFAULT_BCRYPT_COST;

/// Whether a request is a gRPC call (by its content type, as etcd's multiplexer decides).
pub fn is_grpc<T>(req: &hyper::Request<T>) -> bool {
    req.headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// Every v3 service of one member, shared by the gRPC router and the JSON gateway.
pub struct Services<B: Backend> {
    pub kv: Arc<KvService<B>>,
    pub watch: Arc<WatchService<B>>,
    pub lease: Arc<LeaseService<B>>,
    pub cluster: Arc<ClusterService<B>>,
    pub maintenance: Arc<MaintenanceService<B>>,
    pub lock: Arc<LockService<B>>,
    pub election: Arc<ElectionService<B>>,
    pub auth: Arc<AuthService<B>>,
}

impl<B: Backend> Services<B> {
    /// The services over `backend`; `token` is the cluster token (for added members' ids).
    pub fn new(backend: B, token: String) -> Self {
        Services {
            kv: Arc::new(KvService { backend: backend.clone() }),
            watch: Arc::new(WatchService { backend: backend.clone() }),
            lease: Arc::new(LeaseService { backend: backend.clone() }),
            cluster: Arc::new(ClusterService { backend: backend.clone(), token }),
            maintenance: Arc::new(MaintenanceService { backend: backend.clone() }),
            lock: Arc::new(LockService { backend: backend.clone() }),
            election: Arc::new(ElectionService { backend: backend.clone() }),
            auth: Arc::new(AuthService { backend, bcrypt_cost: DEFAULT_BCRYPT_COST }),
        }
    }

    /// The services with passwords hashed at bcrypt `cost` (etcd's `--bcrypt-cost`).
    pub fn with_bcrypt_cost(mut self, cost: u32) -> Self {
        self.auth = Arc::new(AuthService { backend: self.auth.backend.clone(), bcrypt_cost: cost });
        self
    }

    /// Answer one gRPC call through the service's generated server (a thin wrapper around the
    /// shared service). Unknown services get `Unimplemented`. Any
    /// body will do: hyper's from a connection, or a whole one from the fuzzers.
    pub async fn call<In>(&self, req: hyper::Request<In>) -> hyper::Response<Body>
    where
        In: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        In::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        let service = req.uri().path().trim_start_matches('/').split('/').next().unwrap_or("").to_string();
        let result = match service.as_str() {
            "etcdserverpb.KV" => pb::kv_server::KvServer::from_arc(self.kv.clone()).call(req).await,
            "etcdserverpb.Watch" => pb::watch_server::WatchServer::from_arc(self.watch.clone()).call(req).await,
            "etcdserverpb.Lease" => pb::lease_server::LeaseServer::from_arc(self.lease.clone()).call(req).await,
            "etcdserverpb.Cluster" => pb::cluster_server::ClusterServer::from_arc(self.cluster.clone()).call(req).await,
            "etcdserverpb.Maintenance" => {
                pb::maintenance_server::MaintenanceServer::from_arc(self.maintenance.clone()).call(req).await
            }
            "etcdserverpb.Auth" => pb::auth_server::AuthServer::from_arc(self.auth.clone()).call(req).await,
            "v3lockpb.Lock" => v3lockpb::lock_server::LockServer::from_arc(self.lock.clone()).call(req).await,
            "v3electionpb.Election" => {
                v3electionpb::election_server::ElectionServer::from_arc(self.election.clone()).call(req).await
            }
            _ => Ok(tonic::Status::unimplemented(format!("unknown service {service}")).into_http()),
        };
        result.unwrap_or_else(|never| match never {})
    }
}
