//! raft-rs logs through `slog`; Keel logs through `tracing`. This is the one bridge between
//! them, so raft-rs's messages land in the same subscriber as everything else.

use slog::{Drain, Level, OwnedKVList, Record, KV};

/// A slog drain that re-emits every record as a `tracing` event under the `raft` target.
struct TracingDrain;

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        let level = match record.level() {
            Level::Critical | Level::Error => tracing::Level::ERROR,
            Level::Warning => tracing::Level::WARN,
            Level::Info => tracing::Level::INFO,
            Level::Debug => tracing::Level::DEBUG,
            Level::Trace => tracing::Level::TRACE,
        };
        // raft-rs logs on hot paths: format nothing unless someone listens.
        if !enabled(level) {
            return Ok(());
        }
        let mut fields = FieldText(String::new());
        let _ = record.kv().serialize(record, &mut fields);
        let _ = values.serialize(record, &mut fields);
        let msg = record.msg();
        let fields = fields.0;
        match level {
            tracing::Level::ERROR => tracing::error!(target: "raft", "{msg}{fields}"),
            tracing::Level::WARN => tracing::warn!(target: "raft", "{msg}{fields}"),
            tracing::Level::INFO => tracing::info!(target: "raft", "{msg}{fields}"),
            tracing::Level::DEBUG => tracing::debug!(target: "raft", "{msg}{fields}"),
            _ => tracing::trace!(target: "raft", "{msg}{fields}"),
        }
        Ok(())
    }
}

/// Whether a `raft` event at `level` would be recorded by the current subscriber.
fn enabled(level: tracing::Level) -> bool {
    match level {
        tracing::Level::ERROR => tracing::enabled!(target: "raft", tracing::Level::ERROR),
        tracing::Level::WARN => tracing::enabled!(target: "raft", tracing::Level::WARN),
        tracing::Level::INFO => tracing::enabled!(target: "raft", tracing::Level::INFO),
        tracing::Level::DEBUG => tracing::enabled!(target: "raft", tracing::Level::DEBUG),
        _ => tracing::enabled!(target: "raft", tracing::Level::TRACE),
    }
}

/// Collects a record's key-value pairs as ` key=value` text.
struct FieldText(String);

impl slog::Serializer for FieldText {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments<'_>) -> slog::Result {
        use std::fmt::Write;
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}

/// The logger handed to raft-rs, tagged with the member's id.
pub fn logger(member_id: u64) -> slog::Logger {
    slog::Logger::root(TracingDrain.fuse(), slog::o!("member" => format!("{member_id:x}")))
}
