//! Routes gRPC calls (`POST /<package>.<Service>/<Method>`) to the generated servers. Keel
//! serves them on its own hyper connections instead of tonic's transport, so gRPC and the
//! HTTP APIs share the client port (as etcd's do) and the same code runs under madsim.

use hyper::body::Incoming;
use tonic::body::Body;
use tonic::codegen::Service;

use super::cluster::ClusterService;
use super::election::ElectionService;
use super::kv::KvService;
use super::lease::LeaseService;
use super::lock::LockService;
use super::maintenance::MaintenanceService;
use super::pb::{etcdserverpb as pb, v3electionpb, v3lockpb};
use super::watch::WatchService;
use crate::backend::Backend;

/// Whether a request is a gRPC call (by its content type, as etcd's multiplexer decides).
pub fn is_grpc<T>(req: &hyper::Request<T>) -> bool {
    req.headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// Every v3 service of one member.
pub struct GrpcRouter<B: Backend> {
    kv: pb::kv_server::KvServer<KvService<B>>,
    watch: pb::watch_server::WatchServer<WatchService<B>>,
    lease: pb::lease_server::LeaseServer<LeaseService<B>>,
    cluster: pb::cluster_server::ClusterServer<ClusterService<B>>,
    maintenance: pb::maintenance_server::MaintenanceServer<MaintenanceService<B>>,
    lock: v3lockpb::lock_server::LockServer<LockService<B>>,
    election: v3electionpb::election_server::ElectionServer<ElectionService<B>>,
}

impl<B: Backend> GrpcRouter<B> {
    /// The services over `backend`; `token` is the cluster token (for added members' ids).
    pub fn new(backend: B, token: String) -> Self {
        GrpcRouter {
            kv: pb::kv_server::KvServer::new(KvService { backend: backend.clone() }),
            watch: pb::watch_server::WatchServer::new(WatchService { backend: backend.clone() }),
            lease: pb::lease_server::LeaseServer::new(LeaseService { backend: backend.clone() }),
            cluster: pb::cluster_server::ClusterServer::new(ClusterService { backend: backend.clone(), token }),
            maintenance: pb::maintenance_server::MaintenanceServer::new(MaintenanceService { backend: backend.clone() }),
            lock: v3lockpb::lock_server::LockServer::new(LockService { backend: backend.clone() }),
            election: v3electionpb::election_server::ElectionServer::new(ElectionService { backend }),
        }
    }

    /// Answer one gRPC call. Unknown services (Auth among them, for now) get `Unimplemented`.
    pub async fn call(&self, req: hyper::Request<Incoming>) -> hyper::Response<Body> {
        let service = req.uri().path().trim_start_matches('/').split('/').next().unwrap_or("").to_string();
        let result = match service.as_str() {
            "etcdserverpb.KV" => self.kv.clone().call(req).await,
            "etcdserverpb.Watch" => self.watch.clone().call(req).await,
            "etcdserverpb.Lease" => self.lease.clone().call(req).await,
            "etcdserverpb.Cluster" => self.cluster.clone().call(req).await,
            "etcdserverpb.Maintenance" => self.maintenance.clone().call(req).await,
            "v3lockpb.Lock" => self.lock.clone().call(req).await,
            "v3electionpb.Election" => self.election.clone().call(req).await,
            _ => Ok(tonic::Status::unimplemented(format!("unknown service {service}")).into_http()),
        };
        result.unwrap_or_else(|never| match never {})
    }
}
