//! Writing keelctl's output: lines on stdout (a closed pipe ends the command quietly), warnings
//! on stderr, the server's JSON as it came, and etcdctl's boxed tables.

use std::io::Write;

use keel_client::Reply;
use serde_json::Value;

use crate::cli::Output;
use crate::failure::Failure;

/// `text`, ending in a newline.
fn with_newline(text: &str) -> String {
    if text.ends_with('\n') {
        text.to_string()
    } else {
        format!("{text}\n")
    }
}

/// Write `text` and a final newline (if missing) to stdout; a closed stdout is a failure.
pub fn emit(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(with_newline(text).as_bytes()).and_then(|()| stdout.flush()).map_err(|e| match e.kind() {
        std::io::ErrorKind::BrokenPipe => Failure::OutputClosed,
        _ => Failure::Other(format!("cannot write the output: {e}")),
    })
}

/// Write `text` and a final newline (if missing) to stderr, as well as it goes.
pub fn warn(text: &str) {
    let _ = std::io::stderr().lock().write_all(with_newline(text).as_bytes());
}

/// Print the reply's body as it came (nothing for an empty body).
pub fn print_raw(reply: &Reply) -> Result<(), Failure> {
    if reply.body.is_empty() {
        return Ok(());
    }
    emit(&reply.text())
}

/// Print the raw body under `-w json`, else `simple`.
pub fn print_reply(output: Output, reply: &Reply, simple: &str) -> Result<(), Failure> {
    match output {
        Output::Json => print_raw(reply),
        Output::Simple => emit(simple),
    }
}

/// A string field of a JSON object ("" if missing).
pub fn field(value: &Value, name: &str) -> String {
    value.get(name).and_then(Value::as_str).unwrap_or("").to_string()
}

/// A list of strings joined with commas.
pub fn joined(value: &Value) -> String {
    value.as_array().into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>().join(",")
}

/// A table with a header row, boxed as etcdctl's `-w table` draws it.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let rule = format!("+{}+\n", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("+"));
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!(" {c:<w$} ")).collect();
        format!("|{}|\n", padded.join("|"))
    };
    let mut out = rule.clone() + &line(headers.to_vec()) + &rule;
    for row in rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out + &rule
}
