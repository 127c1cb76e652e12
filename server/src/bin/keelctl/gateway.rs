//! Calls to the v3 JSON gateway (leases, users, roles, auth), shared by those commands: a POST
//! of a JSON body, the answer's JSON or etcd's error text, and the gateway's base64 keys as text.

use base64::Engine as _;
use hyper::Method;
use serde_json::Value;

use keel_client::{Call, Client, Reply};

use crate::failure::{server_error, Failure};

/// POST `body` to a gateway path: the reply and its JSON, or etcd's error text (the rest of a
/// failure, such as no endpoint answering, is the `Failure`).
pub async fn post(client: &mut Client, path: &str, body: &Value) -> Result<Result<(Reply, Value), String>, Failure> {
    let reply = client.call(&Call::json(Method::POST, path.into(), body)).await?;
    if !(200..300).contains(&reply.status) {
        return Ok(Err(server_error(&reply)));
    }
    let answer = reply.require_json()?;
    Ok(Ok((reply, answer)))
}

/// POST and insist on success: a refusal is etcd's error text on one `Error: ` line, as
/// etcdctl v3 prints it.
pub async fn call(client: &mut Client, path: &str, body: Value) -> Result<(Reply, Value), Failure> {
    post(client, path, &body).await?.map_err(Failure::Other)
}

/// A key as the gateway sends it (base64), shown as text.
pub fn decode_key(encoded: &str) -> String {
    match base64::engine::general_purpose::STANDARD.decode(encoded) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => encoded.to_string(),
    }
}
