//! The client-facing server on the client URL: hyper connections speaking HTTP/1.1
//! (keep-alive) or HTTP/2 (what gRPC clients open), told apart by the connection preface.
//! gRPC calls (by content type) go to the v3 services; everything else to one router for the
//! v3 JSON gateway, the v2 keys API, membership, stats, `/health`, `/version` and `/metrics`.
//! Connections and HTTP/2 streams are driven by plain `tokio::spawn`, so the same code runs
//! under madsim.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tonic::body::Body;

use crate::backend::{AsCaller, Backend};
use crate::metrics::Metrics;
use crate::tls::Accept;
use crate::v3::auth::CertificateUser;
use crate::v3::router::{is_grpc, Services};
use crate::{v2, v3};

/// Largest request body accepted (etcd's default request size limit plus form overhead).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// How long a client may take to send a request's headers before the connection is closed
/// (a slow or stuck client must not hold a connection forever).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The etcd version Keel answers as: clients check it to choose features.
pub const ETCD_VERSION: &str = "3.4.0";

/// What the handlers share.
pub struct Api<B: Backend> {
    pub backend: B,
    pub metrics: Metrics,
    /// Requests answered, by kind, for `/v2/stats/store`.
    pub store_stats: v2::stats::StoreStats,
    /// Whether the v2 keys API is served (etcd's `--enable-v2`).
    pub enable_v2: bool,
    /// The cluster token, from which added members' ids are derived (see `ids`).
    pub cluster_token: String,
    /// The v3 services, behind both gRPC and the JSON gateway.
    pub v3: Services<B>,
}

impl<B: Backend> Api<B> {
    /// Every client API over one member.
    pub fn new(backend: B, metrics: Metrics, enable_v2: bool, cluster_token: String) -> Self {
        let v3 = Services::new(backend.clone(), cluster_token.clone());
        Api { backend, metrics, store_stats: Default::default(), enable_v2, cluster_token, v3 }
    }
}

/// hyper's executor for HTTP/2 streams: `tokio::spawn` (hyper-util's `TokioExecutor` does not
/// run under madsim).
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioSpawn;

impl<F> hyper::rt::Executor<F> for TokioSpawn
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(future);
    }
}

/// A response before it becomes a hyper one.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    /// A plain-text reply.
    pub fn text(status: u16, text: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: text.as_bytes().to_vec(),
        }
    }
}

/// Serve clients on `listener` until the task is dropped, over TLS if `accept` says so (an
/// `https://` client URL). HTTP/2 is offered to TLS clients by ALPN (gRPC needs it).
pub async fn serve<B: Backend>(listener: TcpListener, accept: Accept, api: Arc<Api<B>>) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                tracing::warn!("client listener: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let api = api.clone();
        let accept = accept.clone();
        tokio::spawn(async move {
            // A client that never finishes its TLS handshake is dropped like one that never
            // finishes its headers.
            let (stream, common_name) = match tokio::time::timeout(HEADER_READ_TIMEOUT, accept.accept(tcp)).await {
                Ok(Ok(accepted)) => accepted,
                Ok(Err(e)) => return tracing::debug!("client TLS handshake: {e}"),
                Err(_) => return tracing::debug!("client TLS handshake timed out"),
            };
            let service = service_fn(move |mut req: hyper::Request<Incoming>| {
                let api = api.clone();
                // A verified client certificate names the user, as etcd's --client-cert-auth.
                if let Some(name) = &common_name {
                    req.extensions_mut().insert(CertificateUser(name.clone()));
                }
                async move {
                    let response = if is_grpc(&req) { grpc(&api, req).await } else { route(&api, req).await };
                    Ok::<_, Infallible>(response)
                }
            });
            let mut builder = auto::Builder::new(TokioSpawn);
            builder.http1().keep_alive(true).timer(crate::timer::TokioTime).header_read_timeout(HEADER_READ_TIMEOUT);
            builder.http2().timer(crate::timer::TokioTime);
            // etcdctl's URL-shaped `:authority` is repaired before hyper's HTTP/2 sees it.
            let stream = crate::authority::AuthorityRepair::new(stream);
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!("client connection: {e}");
            }
        });
    }
}

/// One gRPC call, counted in the metrics.
async fn grpc<B: Backend>(api: &Api<B>, req: hyper::Request<Incoming>) -> hyper::Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let response = api.v3.call(req).await;
    record(api, "v3_grpc", &method, started, response.status().as_u16());
    response
}

fn to_hyper(reply: Reply) -> hyper::Response<Body> {
    let mut resp = hyper::Response::new(Body::new(Full::new(Bytes::from(reply.body))));
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in reply.headers {
        if let (Ok(k), Ok(v)) = (hyper::header::HeaderName::try_from(k), hyper::header::HeaderValue::try_from(v)) {
            resp.headers_mut().append(k, v);
        }
    }
    resp
}

/// Which API a path belongs to (the metrics label).
fn api_of(path: &str) -> &'static str {
    match path {
        p if p == "/v2/keys" || p.starts_with("/v2/keys/") => "v2_keys",
        p if p.starts_with("/v2/members") => "v2_members",
        p if p.starts_with("/v2/stats") => "v2_stats",
        "/health" => "health",
        "/version" => "version",
        "/metrics" => "metrics",
        _ => "other",
    }
}

async fn route<B: Backend>(api: &Api<B>, req: hyper::Request<Incoming>) -> hyper::Response<Body> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    match read_body(body).await {
        Ok(body) => answer(api, &parts, body).await,
        Err(too_large) => {
            let kind = if v3::gateway::call_name(parts.uri.path()).is_some() {
                "v3_gateway"
            } else {
                api_of(parts.uri.path())
            };
            to_hyper(finish(api, kind, &parts.method, started, too_large))
        }
    }
}

/// Answer one HTTP request that is not a gRPC call, its body already read: the v3 JSON gateway,
/// the v2 keys API, membership, stats, `/health`, `/version`, `/metrics`. The fuzzers call this
/// directly, without a connection.
pub async fn answer<B: Backend>(
    api: &Api<B>,
    parts: &hyper::http::request::Parts,
    body: Bytes,
) -> hyper::Response<Body> {
    let started = Instant::now();
    let (method, uri) = (&parts.method, &parts.uri);
    if let Some(name) = v3::gateway::call_name(uri.path()) {
        // The gateway takes a token in the Authorization header, as etcd's does.
        let token = parts.headers.get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let caller = v3::auth::caller_of(token, parts.extensions.get::<CertificateUser>());
        let response = v3::gateway::handle(&api.v3, name, &caller, &body).await;
        record(api, "v3_gateway", method, started, response.status().as_u16());
        return response;
    }
    let path = uri.path();
    let kind = api_of(path);
    let reply = match kind {
        "v2_keys" if !api.enable_v2 => Reply::text(404, "404 page not found\n"),
        "v2_keys" => {
            let key = path.strip_prefix("/v2/keys").unwrap_or("");
            let request = v2::V2Request {
                method: method.as_str().to_string(),
                path: percent_decode(key),
                query: parse_pairs(uri.query().unwrap_or("").as_bytes()),
                form: parse_pairs(&body),
            };
            let certificate = parts.extensions.get::<CertificateUser>();
            match v2::credentials::caller(&api.backend, &parts.headers, certificate).await {
                Ok(caller) => {
                    let resp = v2::handle(&AsCaller { backend: api.backend.clone(), caller }, request).await;
                    api.store_stats.record(resp.op, resp.status);
                    Reply { status: resp.status, headers: resp.headers, body: resp.body }
                }
                Err(e) => {
                    let resp = v2::error_response(&api.backend, &e);
                    Reply { status: resp.status, headers: resp.headers, body: resp.body }
                }
            }
        }
        "v2_members" => v2::members::handle(&api.backend, &api.cluster_token, method, path, &body).await,
        "v2_stats" => v2::stats::handle(api, path),
        "health" => health(&api.backend),
        "version" => Reply::json(200, &serde_json::json!({"etcdserver": ETCD_VERSION, "etcdcluster": ETCD_VERSION})),
        "metrics" => {
            let mut r = Reply::text(200, &api.metrics.render());
            r.headers = vec![("Content-Type".into(), "text/plain; version=0.0.4".into())];
            r
        }
        _ => Reply::text(404, "404 page not found\n"),
    };
    to_hyper(finish(api, kind, method, started, reply))
}

/// A request's whole body, or the 413 reply when it exceeds [`MAX_BODY_BYTES`].
async fn read_body(body: Incoming) -> Result<Bytes, Reply> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(Reply::text(413, "request body too large\n")),
    }
}

fn finish<B: Backend>(api: &Api<B>, kind: &str, method: &Method, started: Instant, reply: Reply) -> Reply {
    record(api, kind, method, started, reply.status);
    reply
}

/// Count a request and its latency under its API (`kind`).
fn record<B: Backend>(api: &Api<B>, kind: &str, method: &Method, started: Instant, status: u16) {
    api.metrics.http_requests.with_label_values(&[kind, method.as_str(), &status.to_string()]).inc();
    api.metrics.http_duration.with_label_values(&[kind]).observe(started.elapsed().as_secs_f64());
}

/// etcd's `/health`: healthy while the member knows a leader.
fn health<B: Backend>(backend: &B) -> Reply {
    if backend.status().leader != 0 {
        Reply::json(200, &serde_json::json!({"health": "true"}))
    } else {
        Reply::json(503, &serde_json::json!({"health": "false"}))
    }
}

/// `application/x-www-form-urlencoded` pairs (also the query string's form).
pub fn parse_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

/// Percent-decode a URL path (invalid escapes are kept as they are; invalid UTF-8 is replaced).
pub fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_decoded_and_bad_escapes_survive() {
        assert_eq!(percent_decode("/a%20b/c"), "/a b/c");
        assert_eq!(percent_decode("/100%"), "/100%");
        assert_eq!(percent_decode("/x%zz"), "/x%zz");
        assert_eq!(percent_decode("/%2"), "/%2");
        assert_eq!(percent_decode("%41"), "A");
    }

    #[test]
    fn forms_parse_like_etcds() {
        assert_eq!(parse_pairs(b"value=a+b&ttl=5"), vec![("value".into(), "a b".into()), ("ttl".into(), "5".into())]);
        assert!(parse_pairs(b"").is_empty());
    }
}
