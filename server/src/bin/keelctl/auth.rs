//! `auth`, `user` and `role`: etcdctl's commands for authentication and roles and their output
//! lines, over the v3 JSON gateway (`/v3/auth/...`), and `--user`: logging in before the command
//! (a token for v3 calls, HTTP basic auth for v2 ones).

use base64::Engine as _;
use clap::Subcommand;
use serde_json::{json, Value};

use keel_client::Client;

use crate::cli::Output;
use crate::failure::Failure;
use crate::gateway::{call, decode_key, post};
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
        #[command(flatten)]
        range: KeyRange,
    },
    /// Revoke the permission on a key, a range, a prefix or from a key on.
    RevokePermission {
        name: String,
        #[command(flatten)]
        range: KeyRange,
    },
}

/// The keys a permission is on, named as etcdctl names them.
#[derive(clap::Args)]
pub struct KeyRange {
    key: String,
    range_end: Option<String>,
    /// Every key starting with the key.
    #[arg(long)]
    prefix: bool,
    /// Every key from the key on.
    #[arg(long)]
    from_key: bool,
}

impl KeyRange {
    /// The range end the flags make: the one given, the prefix's end, or `\0` (from the key on).
    fn end(&self) -> Result<Vec<u8>, Failure> {
        match (&self.range_end, self.prefix, self.from_key) {
            (Some(_), true, _) | (Some(_), _, true) | (None, true, true) => {
                Err(Failure::Other("--from-key, --prefix and a range end exclude each other".into()))
            }
            (Some(end), false, false) => Ok(end.clone().into_bytes()),
            (None, true, false) => Ok(keel_core::api::kv::prefix_range_end(self.key.as_bytes())),
            (None, false, true) => Ok(vec![0]),
            (None, false, false) => Ok(vec![]),
        }
    }
}

/// `--user name:password`: log in before the command. With auth off there is nothing to log in
/// to, and the command runs without credentials, as etcdctl's does.
pub async fn log_in(client: &mut Client, user: &str) -> Result<(), Failure> {
    let (name, password) = user.split_once(':').ok_or_else(|| Failure::Other("--user takes name:password".into()))?;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    let reply = post(client, "/v3/auth/authenticate", &json!({ "name": name, "password": password })).await?;
    let token = match reply {
        Ok((_, answer)) => Some(field(&answer, "token")),
        Err(text) if text == "etcdserver: authentication is not enabled" => None,
        Err(text) => return Err(Failure::Other(text)),
    };
    client.set_credentials(Some(format!("Basic {basic}")), token);
    Ok(())
}

/// A call whose answer is only a header: print `line` when it succeeds.
async fn done(client: &mut Client, output: Output, path: &str, body: Value, line: &str) -> Result<(), Failure> {
    print(output, &call(client, path, body).await?.0, line)
}

/// A listing (users or roles): one name per line.
async fn listing(client: &mut Client, output: Output, path: &str, field: &str) -> Result<(), Failure> {
    let (reply, answer) = call(client, path, json!({})).await?;
    print(output, &reply, &names(&answer[field]).join("\n"))
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
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
        AuthCommand::Disable => done(client, output, "/v3/auth/disable", json!({}), "Authentication Disabled").await,
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
            done(client, output, "/v3/auth/user/add", body, &format!("User {name} created")).await
        }
        UserCommand::Get { name } => {
            let (reply, answer) = call(client, "/v3/auth/user/get", json!({ "name": name })).await?;
            let roles: String = names(&answer["roles"]).iter().map(|r| format!(" {r}")).collect();
            print(output, &reply, &format!("User: {name}\nRoles:{roles}"))
        }
        UserCommand::List => listing(client, output, "/v3/auth/user/list", "users").await,
        UserCommand::Delete { name } => {
            done(client, output, "/v3/auth/user/delete", json!({ "name": name }), &format!("User {name} deleted")).await
        }
        UserCommand::GrantRole { name, role } => {
            let line = format!("Role {role} is granted to user {name}");
            done(client, output, "/v3/auth/user/grant", json!({ "user": name, "role": role }), &line).await
        }
        UserCommand::RevokeRole { name, role } => {
            let line = format!("Role {role} is revoked from user {name}");
            done(client, output, "/v3/auth/user/revoke", json!({ "name": name, "role": role }), &line).await
        }
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
        RoleCommand::Add { name } => {
            done(client, output, "/v3/auth/role/add", json!({ "name": name }), &format!("Role {name} created")).await
        }
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
                        permission_line(&decode_key(p["key"].as_str().unwrap_or("")), &end)
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
        RoleCommand::List => listing(client, output, "/v3/auth/role/list", "roles").await,
        RoleCommand::Delete { name } => {
            done(client, output, "/v3/auth/role/delete", json!({ "role": name }), &format!("Role {name} deleted")).await
        }
        RoleCommand::GrantPermission { name, kind, range } => {
            let perm_type = match kind.to_ascii_lowercase().as_str() {
                "read" => "READ",
                "write" => "WRITE",
                "readwrite" => "READWRITE",
                other => return Err(Failure::Other(format!("invalid permission type {other}"))),
            };
            let end = range.end()?;
            let perm = json!({ "permType": perm_type, "key": b64(&range.key), "range_end": b64_bytes(&end) });
            let body = json!({ "name": name, "perm": perm });
            done(client, output, "/v3/auth/role/grant", body, &format!("Role {name} updated")).await
        }
        RoleCommand::RevokePermission { name, range } => {
            let (key, end) = (&range.key, range.end()?);
            let body = json!({ "role": name, "key": b64(key), "range_end": b64_bytes(&end) });
            let what = match end.as_slice() {
                [] => format!("key {key}"),
                [0] => format!("range [{key}, <open ended>"),
                end => format!("range [{key}, {})", String::from_utf8_lossy(end)),
            };
            let line = format!("Permission of {what} is revoked from role {name}");
            done(client, output, "/v3/auth/role/revoke", body, &line).await
        }
    }
}
