//! The gRPC register client: the register workload once more, through etcd's v3 gRPC API (the
//! generated tonic `KV` client, HTTP/2 framing, protobuf messages) rather than the v2 API or the
//! JSON gateway, so faults are tested through the path etcdctl and every etcd client library
//! take. Its operations land on the same register keys, in the same history, as the others'.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::client::conn::http2;
use hyper_util::rt::TokioIo;
use keel_net::http::TokioSpawn;
use keel_net::v3::pb::etcdserverpb::{
    compare, kv_client::KvClient, request_op, Compare, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tonic::body::Body;
use tonic::codegen::http::{Request, Response};
use tonic::codegen::Service;

use crate::history::{Call, Op, Outcome, Return};
use crate::workload::{register_loop, Env, CLIENT_TIMEOUT};

/// One HTTP/2 connection as the service tonic's generated clients call through (tonic's own
/// channel needs its transport, which does not run on madsim's network).
#[derive(Clone)]
struct Connection(http2::SendRequest<Body>);

impl Service<Request<Body>> for Connection {
    type Response = Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        Box::pin(self.0.send_request(request))
    }
}

/// A `KV` client on a new connection to `addr` and the task driving the connection (abort it
/// when done), or why none could be made (nothing was sent).
async fn connect(addr: SocketAddr) -> Result<(KvClient<Connection>, JoinHandle<()>), String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (sender, connection) = http2::handshake(TokioSpawn, TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let origin = format!("http://{addr}").parse().map_err(|e| format!("{e}"))?;
    Ok((KvClient::with_origin(Connection(sender), origin), driver))
}

/// One register operation over gRPC: a linearizable range, a put, or a txn compare-and-swap.
async fn register_op(addr: SocketAddr, call: Call) -> Outcome {
    let reading = matches!(call, Call::Get { .. });
    let mut driver = None;
    let exchange = async {
        let (mut kv, connection) = connect(addr).await.map_err(|e| Outcome::Failed(format!("not sent: {e}")))?;
        driver = Some(connection);
        let status =
            |e: tonic::Status| if reading { Outcome::Failed(e.to_string()) } else { Outcome::Unknown(e.to_string()) };
        Ok::<_, Outcome>(match call {
            Call::Get { key } => {
                let r = kv
                    .range(RangeRequest { key: key.into_bytes(), ..Default::default() })
                    .await
                    .map_err(status)?
                    .into_inner();
                let value = r.kvs.first().map(|kv| String::from_utf8_lossy(&kv.value).into_owned());
                Return::Value { value, index: revision(r.header) }
            }
            Call::Put { key, value } => {
                let put = PutRequest { key: key.into_bytes(), value: value.into_bytes(), ..Default::default() };
                Return::Written { index: revision(kv.put(put).await.map_err(status)?.into_inner().header) }
            }
            Call::Cas { key, expected, value } => {
                let key = key.into_bytes();
                let compare = match expected {
                    Some(prev) => Compare {
                        key: key.clone(),
                        result: compare::CompareResult::Equal as i32,
                        target: compare::CompareTarget::Value as i32,
                        target_union: Some(compare::TargetUnion::Value(prev.into_bytes())),
                        ..Default::default()
                    },
                    None => Compare {
                        key: key.clone(),
                        result: compare::CompareResult::Equal as i32,
                        target: compare::CompareTarget::Create as i32,
                        target_union: Some(compare::TargetUnion::CreateRevision(0)),
                        ..Default::default()
                    },
                };
                let put = RequestOp {
                    request: Some(request_op::Request::RequestPut(PutRequest {
                        key,
                        value: value.into_bytes(),
                        ..Default::default()
                    })),
                };
                let r = kv
                    .txn(TxnRequest { compare: vec![compare], success: vec![put], failure: vec![] })
                    .await
                    .map_err(status)?
                    .into_inner();
                if r.succeeded {
                    Return::Written { index: revision(r.header) }
                } else {
                    Return::Refused
                }
            }
            other => return Err(Outcome::Failed(format!("not a register operation: {other:?}"))),
        })
    };
    let outcome = tokio::time::timeout(CLIENT_TIMEOUT, exchange).await;
    if let Some(driver) = driver {
        driver.abort();
    }
    match outcome {
        Ok(Ok(done)) => Outcome::Ok(done),
        Ok(Err(failed)) => failed,
        Err(_) if reading => Outcome::Failed("timed out".into()),
        Err(_) => Outcome::Unknown("timed out".into()),
    }
}

fn revision(header: Option<keel_net::v3::pb::etcdserverpb::ResponseHeader>) -> u64 {
    header.map_or(0, |h| u64::try_from(h.revision).unwrap_or(0))
}

/// A gRPC register client: the same calls on the same keys as the v2 and gateway clients.
pub async fn register_client(env: Env, client: u64) -> Vec<Op> {
    register_loop(env, client, register_op).await
}
