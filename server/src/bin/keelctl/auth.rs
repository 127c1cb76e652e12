//! `auth`, `user` and `role`: etcdctl's commands for authentication and roles and their output
//! lines, over the v3 JSON gateway (`/v3/auth/...`), and `--user`: logging in before the command
//! (a token for v3 calls, HTTP basic auth for v2 ones).

use base64::Engine as _;
use clap::Subcommand;
use hyper::Method;
use serde_json::{json, Value};

use keel_client::{Call, Client, Reply};

use crate::cli::Output;
use crate::failure::{server_error, Failure};
use crate::print::{field, print_reply as print};

#[derive(Subcommand)]
pub enum AuthCommand {
    /// Turn auth on (needs the root user; the root role is made and granted to it if missing).
    Enable,
    /// Turn auth off.
    Disable,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user.
    Add {
        name: String,
        /// Its password.
        #[arg(long)]
        new_user_password: Option<String>,
        /// A user without a password (it can only be a TLS client certificate's name).
        #[arg(long)]
        no_password: bool,
    },
    /// A user's roles.
    Get { name: String },
    /// Every user.
    List,
    /// Delete a user.
    Delete { name: String },
    /// Grant a role to a user.
    GrantRole { name: String, role: String },
    /// Revoke a role from a user.
    RevokeRole { name: String, role: String },
}

#[derive(Subcommand)]
pub enum RoleCommand {
    /// Add a role.
    Add { name: String },
    /// A role's permissions.
    Get { name: String },
    /// Every role.
    List,
    /// Delete a role.
    Delete { name: String },
    /// Grant `read`, `write` or `readwrite` on a key, a range, a prefix or from a key on.
    GrantPermission {
        name: String,
        kind: String,
        key: String,
        range_end: Option<String>,
        #[arg(long)]
        prefix: bool,
        #[arg(long)]
        from_key: bool,
    },
    /// Revoke the permission on a key, a range, a prefix or from a key on.
    RevokePermission {
        name: String,
        key: String,
        range_end: Option<String>,
        #[arg(long)]
        prefix: bool,
        #[arg(long)]
        from_key: bool,
    },
}

/// `--user name:password`: log in before the command. With auth off there is nothing to log in
/// to, and the command runs without credentials, as etcdctl's does.
pub async fn log_in(client: &mut Client, user: &str) -> Result<(), Failure> {
    let (name, password) = user.split_once(':').ok_or_else(|| Failure::Other("--user takes name:password".into()))?;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    let reply = post(client, "/v3/auth/authenticate", json!({ "name": name, "password": password })).await?;
    let token = match reply {
        Ok(answer) => Some(field(&answer, "token")),
        Err(text) if text == "etcdserver: authentication is not enabled" => None,
        Err(text) => return Err(Failure::Other(text)),
    };
    client.set_credentials(Some(format!("Basic {basic}")), token);
    Ok(())
}

/// POST to a gateway path: the answer's JSON, or etcd's error text.
async fn post(client: &mut Client, path: &str, body: Value) -> Result<Result<Value, String>, Failure> {
    let reply = client.call(&Call::json(Method::POST, path.into(), &body)).await?;
    Ok(match (200..300).contains(&reply.status) {
        true => Ok(reply.require_json()?),
        false => Err(server_error(&reply)),
    })
}

/// POST and insist on success: the reply and its JSON.
async fn call(client: &mut Client, path: &str, body: Value) -> Result<(Reply, Value), Failure> {
    let reply = client.call(&Call::json(Method::POST, path.into(), &body)).await?;
    if !(200..300).contains(&reply.status) {
        return Err(Failure::Other(server_error(&reply)));
    }
    let answer = reply.require_json()?;
    Ok((reply, answer))
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn unb64(value: &Value) -> String {
    let bytes = base64::engine::general_purpose::STANDARD.decode(value.as_str().unwrap_or("")).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn names(value: &Value) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect()
}

/// Run one auth command.
pub async fn auth(client: &mut Client, output: Output, command: AuthCommand) -> Result<(), Failure> {
    match command {
        AuthCommand::Enable => {
            let mut attempt = call(client, "/v3/auth/enable", json!({})).await;
            // etcdctl gives root the root role, making it first, and tries again.
            if matches!(&attempt, Err(Failure::Other(t)) if t == "etcdserver: root user does not have root role") {
                let _ = call(client, "/v3/auth/role/add", json!({ "name": "root" })).await;
                call(client, "/v3/auth/user/grant", json!({ "user": "root", "role": "root" })).await?;
                attempt = call(client, "/v3/auth/enable", json!({})).await;
            }
            print(output, &attempt?.0, "Authentication Enabled")
        }
        AuthCommand::Disable => {
            print(output, &call(client, "/v3/auth/disable", json!({})).await?.0, "Authentication Disabled")
        }
    }
}

/// Run one user command.
pub async fn user(client: &mut Client, output: Output, command: UserCommand) -> Result<(), Failure> {
    match command {
        UserCommand::Add { name, new_user_password, no_password } => {
            let password = match (new_user_password, no_password) {
                (_, true) => String::new(),
                (Some(p), false) => p,
                (None, false) => return Err(Failure::Other("--new-user-password (or --no-password) is needed".into())),
            };
            let body = json!({ "name": name, "password": password, "options": { "no_password": no_password } });
            print(output, &call(client, "/v3/auth/user/add", body).await?.0, &format!("User {name} created"))
        }
        UserCommand::Get { name } => {
            let (reply, answer) = call(client, "/v3/auth/user/get", json!({ "name": name })).await?;
            let roles: String = names(&answer["roles"]).iter().map(|r| format!(" {r}")).collect();
            print(output, &reply, &format!("User: {name}\nRoles:{roles}"))
        }
        UserCommand::List => {
            let (reply, answer) = call(client, "/v3/auth/user/list", json!({})).await?;
            print(output, &reply, &names(&answer["users"]).join("\n"))
        }
        UserCommand::Delete { name } => print(
            output,
            &call(client, "/v3/auth/user/delete", json!({ "name": name })).await?.0,
            &format!("User {name} deleted"),
        ),
        UserCommand::GrantRole { name, role } => {
            let reply = call(client, "/v3/auth/user/grant", json!({ "user": name, "role": role })).await?.0;
            print(output, &reply, &format!("Role {role} is granted to user {name}"))
        }
        UserCommand::RevokeRole { name, role } => {
            let reply = call(client, "/v3/auth/user/revoke", json!({ "name": name, "role": role })).await?.0;
            print(output, &reply, &format!("Role {role} is revoked from user {name}"))
        }
    }
}

/// The range end etcdctl's flags make: the one given, the prefix's end, or `\0` (from the key on).
fn range_end(key: &str, given: Option<String>, prefix: bool, from_key: bool) -> Result<Vec<u8>, Failure> {
    match (given, prefix, from_key) {
        (Some(_), true, _) | (Some(_), _, true) | (None, true, true) => {
            Err(Failure::Other("--from-key, --prefix and a range end exclude each other".into()))
        }
        (Some(end), false, false) => Ok(end.into_bytes()),
        (None, true, false) => Ok(keel_core::api::kv::prefix_range_end(key.as_bytes())),
        (None, false, true) => Ok(vec![0]),
        (None, false, false) => Ok(vec![]),
    }
}

/// One permission as `role get` lists it.
fn permission_line(key: &str, end: &[u8]) -> String {
    match end {
        [] => format!("\t{key}"),
        [0] => format!("\t[{key}, <open ended>"),
        end => {
            let end_text = String::from_utf8_lossy(end);
            let prefix = keel_core::api::kv::prefix_range_end(key.as_bytes()) == end;
            match prefix {
                true => format!("\t[{key}, {end_text}) (prefix {key})"),
                false => format!("\t[{key}, {end_text})"),
            }
        }
    }
}

/// Run one role command.
pub async fn role(client: &mut Client, output: Output, command: RoleCommand) -> Result<(), Failure> {
    let b64_bytes = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    match command {
        RoleCommand::Add { name } => print(
            output,
            &call(client, "/v3/auth/role/add", json!({ "name": name })).await?.0,
            &format!("Role {name} created"),
        ),
        RoleCommand::Get { name } => {
            let (reply, answer) = call(client, "/v3/auth/role/get", json!({ "role": name })).await?;
            let perms = answer["perm"].as_array().cloned().unwrap_or_default();
            let listed = |wanted: [&str; 2]| -> String {
                let lines: Vec<String> = perms
                    .iter()
                    .filter(|p| wanted.contains(&p["permType"].as_str().unwrap_or("READ")))
                    .map(|p| {
                        let end = base64::engine::general_purpose::STANDARD
                            .decode(p["range_end"].as_str().unwrap_or(""))
                            .unwrap_or_default();
                        permission_line(&unb64(&p["key"]), &end)
                    })
                    .collect();
                lines.iter().map(|l| format!("{l}\n")).collect()
            };
            let text = format!(
                "Role {name}\nKV Read:\n{}KV Write:\n{}",
                listed(["READ", "READWRITE"]),
                listed(["WRITE", "READWRITE"])
            );
            print(output, &reply, &text)
        }
        RoleCommand::List => {
            let (reply, answer) = call(client, "/v3/auth/role/list", json!({})).await?;
            print(output, &reply, &names(&answer["roles"]).join("\n"))
        }
        RoleCommand::Delete { name } => print(
            output,
            &call(client, "/v3/auth/role/delete", json!({ "role": name })).await?.0,
            &format!("Role {name} deleted"),
        ),
        RoleCommand::GrantPermission { name, kind, key, range_end: given, prefix, from_key } => {
            let perm_type = match kind.to_ascii_lowercase().as_str() {
                "read" => "READ",
                "write" => "WRITE",
                "readwrite" => "READWRITE",
                other => return Err(Failure::Other(format!("invalid permission type {other}"))),
            };
            let end = range_end(&key, given, prefix, from_key)?;
            let perm = json!({ "permType": perm_type, "key": b64(&key), "range_end": b64_bytes(&end) });
            let reply = call(client, "/v3/auth/role/grant", json!({ "name": name, "perm": perm })).await?.0;
            print(output, &reply, &format!("Role {name} updated"))
        }
        RoleCommand::RevokePermission { name, key, range_end: given, prefix, from_key } => {
            let end = range_end(&key, given, prefix, from_key)?;
            let body = json!({ "role": name, "key": b64(&key), "range_end": b64_bytes(&end) });
            let reply = call(client, "/v3/auth/role/revoke", body).await?.0;
            let what = match end.as_slice() {
                [] => format!("key {key}"),
                [0] => format!("range [{key}, <open ended>"),
                end => format!("range [{key}, {})", String::from_utf8_lossy(end)),
            };
            print(output, &reply, &format!("Permission of {what} is revoked from role {name}"))
        }
    }
}
