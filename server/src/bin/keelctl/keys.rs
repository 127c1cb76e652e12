//! `put`, `get`, `del` and `watch` over the v2 keys API (`/v2/keys/...`).

use hyper::Method;
use keel_client::call::{encode_pairs, escape};
use keel_client::{Call, Client, Reply};
use serde_json::Value;

use crate::cli::Output;
use crate::failure::{success, Failure};
use crate::print::{emit, field, print_raw, print_reply};

/// The keys API target for `key` (leading `/` optional) with a query.
pub fn keys_target(key: &str, query: &[(&str, String)]) -> String {
    let slash = if key.starts_with('/') { "" } else { "/" };
    let path = format!("/v2/keys{slash}{}", escape(key, true));
    if query.is_empty() {
        path
    } else {
        format!("{path}?{}", encode_pairs(query))
    }
}

/// `(name, "true")` for each flag that is set.
fn flags(flags: &[(&'static str, bool)]) -> Vec<(&'static str, String)> {
    flags.iter().filter(|(_, on)| *on).map(|(name, _)| (*name, "true".to_string())).collect()
}

/// `put KEY VALUE [--ttl N]`: PUT the value.
pub async fn put(client: &mut Client, output: Output, key: &str, value: &str, ttl: Option<u64>) -> Result<(), Failure> {
    let mut form = vec![("value", value.to_string())];
    form.extend(ttl.map(|t| ("ttl", t.to_string())));
    let reply = success(client.call(&Call::form(Method::PUT, keys_target(key, &[]), &form)).await?)?;
    print_reply(output, &reply, "OK")
}

/// `get KEY [--prefix] [--consistent]`: key and value lines for every file in the answer.
pub async fn get(
    client: &mut Client,
    output: Output,
    key: &str,
    prefix: bool,
    consistent: bool,
) -> Result<(), Failure> {
    let query = flags(&[("recursive", prefix), ("sorted", true), ("quorum", consistent)]);
    let reply = success(client.call(&Call::new(Method::GET, keys_target(key, &query))).await?)?;
    if output == Output::Json {
        return print_raw(&reply);
    }
    let mut found = Vec::new();
    files(&reply.require_json()?["node"], &mut found);
    if found.is_empty() {
        return Ok(());
    }
    emit(&found.iter().map(|(key, value)| format!("{key}\n{value}\n")).collect::<String>())
}

/// `del KEY [--prefix]`: DELETE the key (the directory, recursively).
pub async fn del(client: &mut Client, output: Output, key: &str, prefix: bool) -> Result<(), Failure> {
    let query = flags(&[("recursive", prefix)]);
    let reply = success(client.call(&Call::new(Method::DELETE, keys_target(key, &query))).await?)?;
    print_reply(output, &reply, "OK")
}

/// `watch KEY [--prefix] [--rev N]`: long polls, each from the revision after the last event.
pub async fn watch(
    client: &mut Client,
    output: Output,
    key: &str,
    prefix: bool,
    rev: Option<u64>,
) -> Result<(), Failure> {
    let mut next = rev;
    loop {
        let mut query = vec![("wait", "true".to_string())];
        query.extend(flags(&[("recursive", prefix)]));
        query.extend(next.map(|index| ("waitIndex", index.to_string())));
        let call = Call { wait: true, ..Call::new(Method::GET, keys_target(key, &query)) };
        let reply = success(client.call(&call).await?)?;
        let event = reply.require_json()?;
        print_event(output, &reply, &event)?;
        next = Some(event_index(&event)? + 1);
    }
}

/// Print one watch event: the raw JSON, or etcdctl's `ACTION`, `KEY`, `VALUE` lines.
fn print_event(output: Output, reply: &Reply, event: &Value) -> Result<(), Failure> {
    if output == Output::Json {
        return print_raw(reply);
    }
    let node = &event["node"];
    emit(&format!("{}\n{}\n{}\n", event_kind(&field(event, "action")), field(node, "key"), field(node, "value")))
}

/// etcd v3's name for a v2 action: PUT for writes, DELETE for deletes and expiries.
fn event_kind(action: &str) -> &'static str {
    match action {
        "delete" | "compareAndDelete" | "expire" => "DELETE",
        _ => "PUT",
    }
}

/// The revision of a watch event (its node's `modifiedIndex`).
fn event_index(event: &Value) -> Result<u64, Failure> {
    event["node"]["modifiedIndex"]
        .as_u64()
        .ok_or_else(|| Failure::Other(format!("a watch event without a modifiedIndex: {event}")))
}

/// Every file below (or at) a v2 node, as (key, value), in the order the server listed them.
fn files(node: &Value, out: &mut Vec<(String, String)>) {
    if node.get("dir").and_then(Value::as_bool) == Some(true) {
        for child in node.get("nodes").and_then(Value::as_array).into_iter().flatten() {
            files(child, out);
        }
    } else {
        out.push((field(node, "key"), field(node, "value")));
    }
}
