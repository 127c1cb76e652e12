//! Endpoint failover: a call goes to the first endpoint that answers, starting with the one
//! that answered last, as etcdctl does with `--endpoints`.

use std::time::Duration;

use crate::call::{Call, Reply};
use crate::connection::{CallError, Connection};
use crate::endpoint::Endpoint;

/// Endpoints tried in order until one answers, keeping the connection that last answered.
pub struct Client {
    endpoints: Vec<Endpoint>,
    conn: Option<(usize, Connection)>,
    dial_timeout: Duration,
    call_timeout: Duration,
    /// `Authorization` headers for the v2 API (HTTP basic) and the v3 gateway (a token).
    credentials: (Option<String>, Option<String>),
}

/// No endpoint answered: their URLs, and what the last one said.
#[derive(Debug)]
pub struct Unreachable {
    pub urls: Vec<String>,
    pub last: Option<CallError>,
}

impl Client {
    /// A client over `endpoints` (not connected yet): connecting may take `dial_timeout`, an
    /// answer `call_timeout` (long polls wait as long as it takes).
    pub fn new(endpoints: Vec<Endpoint>, dial_timeout: Duration, call_timeout: Duration) -> Client {
        Client { endpoints, conn: None, dial_timeout, call_timeout, credentials: (None, None) }
    }

    /// Send these `Authorization` headers from now on: `v2` on v2 and other HTTP calls (etcd's
    /// HTTP basic auth), `v3` on calls to the v3 gateway (`/v3/...`: a token from Authenticate).
    pub fn set_credentials(&mut self, v2: Option<String>, v3: Option<String>) {
        self.credentials = (v2, v3);
    }

    /// Send `call` to the first endpoint that answers, starting with the connected one.
    pub async fn call(&mut self, call: &Call) -> Result<Reply, Unreachable> {
        let header = match call.target.starts_with("/v3/") {
            true => &self.credentials.1,
            false => &self.credentials.0,
        };
        let with_credentials;
        let call = match header {
            Some(h) if call.authorization.is_none() => {
                with_credentials = Call { authorization: Some(h.clone()), ..call.clone() };
                &with_credentials
            }
            _ => call,
        };
        let start = self.conn.as_ref().map_or(0, |(i, _)| *i);
        let n = self.endpoints.len();
        let mut last = None;
        for i in (start..n).chain(0..start) {
            match self.call_endpoint(i, call).await {
                Ok(reply) => return Ok(reply),
                Err(e) => last = Some(e),
            }
        }
        Err(Unreachable { urls: self.endpoints.iter().map(|e| e.url.clone()).collect(), last })
    }

    /// Send `call` to endpoint `i`: on its open connection, or on a new one if that fails.
    async fn call_endpoint(&mut self, i: usize, call: &Call) -> Result<Reply, CallError> {
        if let Some((j, mut conn)) = self.conn.take() {
            if j == i {
                if let Ok(reply) = conn.send(call, self.call_timeout).await {
                    self.conn = Some((i, conn));
                    return Ok(reply);
                }
            }
        }
        let mut conn = Connection::open(&self.endpoints[i], self.dial_timeout).await?;
        let reply = conn.send(call, self.call_timeout).await?;
        self.conn = Some((i, conn));
        Ok(reply)
    }
}
