//! Why a keelctl command failed, and how that is told: one `Error:` line on stderr as etcdctl v2
//! prints it, or the server's JSON under `-w json`.

use keel_client::{Reply, Unreachable};
use serde_json::{json, Value};

use crate::cli::Output;
use crate::print::warn;

/// Why a command failed.
pub enum Failure {
    /// No endpoint answered (their URLs).
    Unreachable(Vec<String>),
    /// The server answered with an error.
    Server(Box<Reply>),
    /// Anything else, as a sentence.
    Other(String),
    /// Whoever read the output went away (a closed pipe): nothing to tell.
    OutputClosed,
}

/// Print a failure on stderr: the server's JSON as is under `-w json`, else one `Error:` line.
pub fn report(failure: &Failure, output: Output) {
    match failure {
        Failure::Server(reply) if output == Output::Json && !reply.body.is_empty() => {
            warn(&reply.text());
        }
        // etcdctl v2 prints `fmt.Fprintln(os.Stderr, "Error: ", err)`: two spaces.
        Failure::Server(reply) => warn(&format!("Error:  {}", server_error(reply))),
        Failure::Unreachable(urls) => warn(&format!("Error: could not connect to {}", urls.join(","))),
        Failure::Other(message) => warn(&format!("Error: {message}")),
        Failure::OutputClosed => {}
    }
}

/// A server's error answer as a sentence: etcd's `<code>: <message> (<cause>) [<index>]` for
/// keys errors, the `message` of other JSON errors, else the status and body.
pub fn server_error(reply: &Reply) -> String {
    let value = reply.json().unwrap_or(Value::Null);
    if let Some(code) = value.get("errorCode") {
        let text = |field: &str| value.get(field).and_then(Value::as_str).unwrap_or("").to_string();
        let index = value.get("index").cloned().unwrap_or(json!(0));
        return format!("{code}: {} ({}) [{index}]", text("message"), text("cause"));
    }
    if let Some(message) = value.get("message").and_then(Value::as_str) {
        return message.to_string();
    }
    match reply.text().trim() {
        "" => format!("the server answered {}", reply.status),
        body => format!("the server answered {}: {body}", reply.status),
    }
}

impl From<Unreachable> for Failure {
    fn from(u: Unreachable) -> Failure {
        Failure::Unreachable(u.urls)
    }
}

/// A sentence saying what went wrong (an answer that is not JSON, a bad endpoint).
impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Other(message)
    }
}

/// A successful (2xx) reply, or the error it is.
pub fn success(reply: Reply) -> Result<Reply, Failure> {
    if (200..300).contains(&reply.status) {
        Ok(reply)
    } else {
        Err(Failure::Server(Box::new(reply)))
    }
}

/// A failure as a short phrase (for per-endpoint lines).
pub fn failure_reason(failure: &Failure) -> String {
    match failure {
        Failure::Unreachable(_) => "could not connect".into(),
        Failure::Server(reply) => server_error(reply),
        Failure::Other(message) => message.clone(),
        Failure::OutputClosed => "the output was closed".into(),
    }
}
