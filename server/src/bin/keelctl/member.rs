//! `member list|add|remove` over `/v2/members`.

use clap::Subcommand;
use hyper::Method;
use keel_client::call::escape;
use keel_client::{Call, Client, Reply};
use serde_json::{json, Value};

use crate::cli::Output;
use crate::failure::{success, Failure};
use crate::print::{emit, field, joined, print_raw, print_reply, table};

#[derive(Subcommand)]
pub enum MemberCommand {
    /// List the members as a table.
    List,
    /// Add a member; with NAME, print the settings to start it with.
    Add {
        /// The new member's name (only used for the printed settings).
        name: Option<String>,
        /// The new member's peer URLs, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        peer_urls: Vec<String>,
    },
    /// Remove the member with this (hex) id.
    Remove {
        /// The member's id, in hex as `member list` shows it.
        id: String,
    },
}

/// GET `/v2/members` and return the reply with its `members` array.
pub async fn members(client: &mut Client) -> Result<(Reply, Vec<Value>), Failure> {
    let reply = success(client.call(&Call::new(Method::GET, "/v2/members".into())).await?)?;
    let list = reply.require_json()?.get("members").and_then(Value::as_array).cloned().unwrap_or_default();
    Ok((reply, list))
}

/// `member list`: a table of id, status, name, peer and client URLs.
async fn member_list(client: &mut Client, output: Output) -> Result<(), Failure> {
    let (reply, list) = members(client).await?;
    if output == Output::Json {
        return print_raw(&reply);
    }
    let rows: Vec<Vec<String>> = list.iter().map(member_row).collect();
    emit(&table(&["ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS"], &rows))
}

/// One member as a table row (unnamed members have not started yet).
fn member_row(m: &Value) -> Vec<String> {
    let name = field(m, "name");
    let status = if name.is_empty() { "unstarted" } else { "started" };
    vec![field(m, "id"), status.into(), name, joined(&m["peerURLs"]), joined(&m["clientURLs"])]
}

/// `member add [NAME] --peer-urls URL,...`: POST the member; with NAME, print its settings.
async fn member_add(
    client: &mut Client,
    output: Output,
    name: Option<&str>,
    peer_urls: &[String],
) -> Result<(), Failure> {
    let call = Call::json(Method::POST, "/v2/members".into(), &json!({ "peerURLs": peer_urls }));
    let reply = success(client.call(&call).await?)?;
    if output == Output::Json {
        return print_raw(&reply);
    }
    let added = reply.require_json()?;
    let id = field(&added, "id");
    emit(&format!("Member {id} added"))?;
    let Some(name) = name else { return Ok(()) };
    // The list may come from a member that has not applied the addition yet: the reply names it.
    let mut list = members(client).await?.1;
    if !list.iter().any(|m| field(m, "id") == id) {
        list.push(added);
    }
    emit(&start_settings(&list, &id, name, peer_urls))
}

/// The `ETCD_*` settings a new member starts with, as etcdctl prints them.
fn start_settings(list: &[Value], new_id: &str, name: &str, peer_urls: &[String]) -> String {
    let mut cluster = Vec::new();
    for m in list {
        let member_name = if field(m, "id") == new_id { name.to_string() } else { field(m, "name") };
        if member_name.is_empty() {
            continue;
        }
        for url in m["peerURLs"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            cluster.push(format!("{member_name}={url}"));
        }
    }
    format!(
        "\nETCD_NAME=\"{name}\"\nETCD_INITIAL_CLUSTER=\"{}\"\nETCD_INITIAL_ADVERTISE_PEER_URLS=\"{}\"\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n",
        cluster.join(","),
        peer_urls.join(",")
    )
}

/// `member remove ID`: DELETE the member.
async fn member_remove(client: &mut Client, output: Output, id: &str) -> Result<(), Failure> {
    let target = format!("/v2/members/{}", escape(id, false));
    let reply = success(client.call(&Call::new(Method::DELETE, target)).await?)?;
    print_reply(output, &reply, &format!("Member {id} removed"))
}

/// Run a `member` command.
pub async fn run(client: &mut Client, output: Output, command: MemberCommand) -> Result<(), Failure> {
    match command {
        MemberCommand::List => member_list(client, output).await,
        MemberCommand::Add { name, peer_urls } => member_add(client, output, name.as_deref(), &peer_urls).await,
        MemberCommand::Remove { id } => member_remove(client, output, &id).await,
    }
}
