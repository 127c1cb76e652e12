//! One HTTP/1.1 connection to one endpoint, kept for the calls that follow.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use crate::call::{Call, Reply};
use crate::endpoint::Endpoint;

/// Why a call got no answer, told apart because a caller recording history must know whether
/// the request may have taken effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// Nothing was sent (no connection, a bad request): it did not happen.
    NotSent(String),
    /// Sent, but no whole answer came (timeout, broken connection): it may have happened.
    Lost(String),
}

impl CallError {
    /// The sentence inside, whichever it is.
    pub fn message(&self) -> &str {
        match self {
            CallError::NotSent(m) | CallError::Lost(m) => m,
        }
    }
}

/// An open connection; the task driving it stops when this is dropped.
pub struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    authority: String,
    driver: JoinHandle<()>,
}

impl Connection {
    /// Connect (the TLS handshake included) within `timeout`.
    pub async fn open(endpoint: &Endpoint, timeout: Duration) -> Result<Connection, CallError> {
        let stream = match tokio::time::timeout(timeout, endpoint.tls.connect(&endpoint.authority)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(CallError::NotSent(e.to_string())),
            Err(_) => return Err(CallError::NotSent("connect timed out".into())),
        };
        let (sender, conn) =
            http1::handshake(TokioIo::new(stream)).await.map_err(|e| CallError::NotSent(e.to_string()))?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connection { sender, authority: endpoint.authority.clone(), driver })
    }

    /// Send `call` and read the whole answer, within `timeout` unless the call is a long poll.
    pub async fn send(&mut self, call: &Call, timeout: Duration) -> Result<Reply, CallError> {
        let mut builder =
            hyper::Request::builder().method(call.method.clone()).uri(&call.target).header("Host", &self.authority);
        if let Some(authorization) = &call.authorization {
            builder = builder.header("Authorization", authorization);
        }
        let body = match &call.body {
            Some((content_type, body)) => {
                builder = builder.header("Content-Type", *content_type);
                Bytes::from(body.clone())
            }
            None => Bytes::new(),
        };
        let request = builder.body(Full::new(body)).map_err(|e| CallError::NotSent(e.to_string()))?;
        self.sender.ready().await.map_err(|e| CallError::NotSent(e.to_string()))?;
        let exchange = async {
            let response = self.sender.send_request(request).await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok::<_, String>(Reply { status, headers, body })
        };
        let answer = match call.wait {
            true => Ok(exchange.await),
            false => tokio::time::timeout(timeout, exchange).await,
        };
        match answer {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(CallError::Lost(e)),
            Err(_) => Err(CallError::Lost("timed out".into())),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}
