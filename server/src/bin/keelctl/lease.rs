//! `lease grant|revoke|timetolive|list|keep-alive`: etcdctl's lease commands and their output
//! lines, over the v3 JSON gateway (`/v3/lease/...`), since the v2 API has no leases. Ids are
//! printed and read in hex, as etcdctl does; the gateway carries them as decimal strings.

use std::time::Duration;

use clap::Subcommand;
use serde_json::{json, Value};

use keel_client::Client;

use crate::cli::Output;
use crate::failure::Failure;
use crate::gateway::{call, decode_key};
use crate::print::{emit, print_reply as print};

#[derive(Subcommand)]
pub enum LeaseCommand {
    /// Grant a lease with a TTL in seconds.
    Grant {
        /// Seconds the lease lives without a keep-alive.
        ttl: i64,
    },
    /// Revoke a lease: the keys attached to it are deleted.
    Revoke {
        /// The lease id, in hex.
        id: String,
    },
    /// A lease's granted and remaining TTL.
    Timetolive {
        /// The lease id, in hex.
        id: String,
        /// Also list the keys attached to the lease.
        #[arg(long)]
        keys: bool,
    },
    /// List the live leases.
    List,
    /// Keep a lease alive (every third of its TTL) until interrupted or it is gone.
    KeepAlive {
        /// The lease id, in hex.
        id: String,
        /// Send one keep-alive and stop.
        #[arg(long)]
        once: bool,
    },
}

/// Run one lease command.
pub async fn run(client: &mut Client, output: Output, command: LeaseCommand) -> Result<(), Failure> {
    match command {
        LeaseCommand::Grant { ttl } => {
            let (reply, answer) = call(client, "/v3/lease/grant", json!({ "TTL": ttl })).await?;
            let line = format!("lease {:016x} granted with TTL({}s)", number(&answer, "ID"), number(&answer, "TTL"));
            print(output, &reply, &line)
        }
        LeaseCommand::Revoke { id } => {
            let id = parse_id(&id)?;
            let (reply, _) = call(client, "/v3/lease/revoke", json!({ "ID": id.to_string() })).await?;
            print(output, &reply, &format!("lease {id:016x} revoked"))
        }
        LeaseCommand::Timetolive { id, keys } => {
            let id = parse_id(&id)?;
            let (reply, answer) =
                call(client, "/v3/lease/timetolive", json!({ "ID": id.to_string(), "keys": keys })).await?;
            print(output, &reply, &time_to_live_line(id, &answer, keys))
        }
        LeaseCommand::List => {
            let (reply, answer) = call(client, "/v3/lease/leases", json!({})).await?;
            let leases = answer["leases"].as_array().cloned().unwrap_or_default();
            let mut text = format!("found {} leases\n", leases.len());
            for lease in &leases {
                text += &format!("{:016x}\n", number(lease, "ID"));
            }
            print(output, &reply, &text)
        }
        LeaseCommand::KeepAlive { id, once } => keep_alive(client, output, parse_id(&id)?, once).await,
    }
}

/// Send keep-alives until the lease is gone (or once): a line per answer, as etcdctl prints.
async fn keep_alive(client: &mut Client, output: Output, id: i64, once: bool) -> Result<(), Failure> {
    loop {
        let (reply, answer) = call(client, "/v3/lease/keepalive", json!({ "ID": id.to_string() })).await?;
        let ttl = number(&answer["result"], "TTL");
        if ttl <= 0 {
            // etcd answers a lease that is gone with TTL 0; etcdctl then says so and stops, or,
            // asked for one keep-alive, fails as the one-shot call does.
            if once {
                return Err(Failure::Other("etcdserver: requested lease not found".into()));
            }
            return emit(&format!("lease {id:016x} expired or revoked."));
        }
        print(output, &reply, &format!("lease {id:016x} keepalived with TTL({ttl})"))?;
        if once {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs((ttl as u64 / 3).max(1))).await;
    }
}

/// `timetolive`'s line: granted and remaining TTL (and the keys), or that the lease expired.
fn time_to_live_line(id: i64, answer: &Value, keys: bool) -> String {
    let remaining = number(answer, "TTL");
    if remaining == -1 {
        return format!("lease {id:016x} already expired");
    }
    let mut line =
        format!("lease {id:016x} granted with TTL({}s), remaining({remaining}s)", number(answer, "grantedTTL"));
    if keys {
        let names: Vec<String> =
            answer["keys"].as_array().into_iter().flatten().filter_map(Value::as_str).map(decode_key).collect();
        line += &format!(", attached keys([{}])", names.join(" "));
    }
    line
}

/// An int64 field as proto3 JSON carries it (a decimal string; absent when 0).
fn number(value: &Value, name: &str) -> i64 {
    match &value[name] {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

/// A lease id as etcdctl takes it: hex.
fn parse_id(raw: &str) -> Result<i64, Failure> {
    i64::from_str_radix(raw, 16).map_err(|e| Failure::Other(format!("bad lease ID arg ({e}), expecting ID in Hex")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_to_live_lines_match_etcdctl() {
        let live = json!({ "ID": "7587862072907264011", "TTL": "42", "grantedTTL": "60", "keys": ["Zm9v", "YmFy"] });
        assert_eq!(
            time_to_live_line(0x694d, &live, false),
            "lease 000000000000694d granted with TTL(60s), remaining(42s)"
        );
        assert_eq!(
            time_to_live_line(0x694d, &live, true),
            "lease 000000000000694d granted with TTL(60s), remaining(42s), attached keys([foo bar])"
        );
        assert_eq!(time_to_live_line(0x694d, &json!({ "TTL": "-1" }), true), "lease 000000000000694d already expired");
    }

    #[test]
    fn lease_ids_are_hex() {
        assert_eq!(parse_id("694d5765fc71500b").ok(), Some(0x694d5765fc71500b));
        assert!(matches!(parse_id("zz"), Err(Failure::Other(m)) if m.contains("expecting ID in Hex")));
    }
}
