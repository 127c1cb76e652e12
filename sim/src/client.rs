//! A v2 HTTP client: what the workloads use to reach members, through the same hyper server and
//! handlers users reach with curl. Over madsim's network in the simulation, over real sockets
//! in the partition suite.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// How a request ended, before the workload interprets it.
#[derive(Debug)]
pub enum Reply {
    /// The member answered: status, its `X-Etcd-Index` (0 if absent) and JSON body (`Null` when
    /// the body is not JSON).
    Answered { status: u16, index: u64, body: Value },
    /// The connection could not be made: the request was never sent.
    NotSent(String),
    /// Sent, but no answer came (timeout, broken connection): it may or may not have happened.
    Lost(String),
}

/// One v2 HTTP request (a form body) with a deadline.
pub async fn request(addr: SocketAddr, method: &str, path: &str, form: &[(&str, &str)], timeout: Duration) -> Reply {
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    exchange(addr, method, path, "application/x-www-form-urlencoded", body, timeout).await
}

/// One v3 gateway call (`call` is the path after `/v3/`, the body a JSON request message)
/// with a deadline.
pub async fn post_json(addr: SocketAddr, call: &str, body: &Value, timeout: Duration) -> Reply {
    exchange(addr, "POST", &format!("/v3/{call}"), "application/json", body.to_string(), timeout).await
}

async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: String,
    timeout: Duration,
) -> Reply {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Reply::NotSent(e.to_string()),
        Err(_) => return Reply::NotSent("connect timed out".into()),
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
        Ok(pair) => pair,
        Err(e) => return Reply::NotSent(e.to_string()),
    };
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)));
    let Ok(req) = req else { return Reply::NotSent(format!("bad request {method} {path}")) };
    let exchange = async {
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let index = resp.headers().get("x-etcd-index").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(0);
        let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok::<_, String>((status, index, bytes))
    };
    let reply = match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok((status, index, bytes))) => {
            Reply::Answered { status, index, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
        }
        Ok(Err(e)) => Reply::Lost(e),
        Err(_) => Reply::Lost("timed out".into()),
    };
    driver.abort();
    reply
}
