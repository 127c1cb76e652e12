//! How the key space's records are laid out in the engine's spaces (see [`crate::state::engine`]).
//! These bytes outlive the process, so every value starts with a format version and every
//! decoder is strict: anything it does not recognise is corruption, never a guess.
//!
//! - `Latest`: user key → `[1][mod main][mod sub][create][version][lease][value…]`, one record
//!   per live key (numbers are big-endian `i64`s).
//! - `History`: `escape(user key) 00 01 [main][sub]` → `[1][0]` (a tombstone) or
//!   `[1][1][create][version][lease][value…]`: every retained change that is not a live key's
//!   newest. The escaping (`00` → `00 ff`) keeps user-key order, so one key's changes are
//!   contiguous and in revision order, and a key range is one scan.
//! - `Revisions`: `[main][sub]` → `[1][user key…]`: every retained change at or after the
//!   compaction revision, in revision order, for watch replay and compaction.

use super::key_history::{Change, Live, Revision};
use crate::state::engine::{EngineError, EngineResult};

/// The version byte every record value starts with.
const FORMAT: u8 = 1;
const TOMBSTONE: u8 = 0;
const LIVE: u8 = 1;
/// Ends an escaped user key inside a `History` key.
const TERMINATOR: [u8; 2] = [0, 1];

fn corrupt(what: &str) -> EngineError {
    EngineError(format!("corrupt {what} record in the state store"))
}

/// The revision as 16 big-endian bytes (main, then sub): key order is revision order.
pub(crate) fn revision_key(rev: Revision) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&rev.main.to_be_bytes());
    out.extend_from_slice(&rev.sub.to_be_bytes());
    out
}

/// The first `Revisions` key of main revision `main`.
pub(crate) fn revision_floor(main: i64) -> Vec<u8> {
    revision_key(Revision { main, sub: 0 })
}

pub(crate) fn decode_revision(bytes: &[u8]) -> EngineResult<Revision> {
    let (main, sub) = bytes.split_at_checked(8).filter(|(_, s)| s.len() == 8).ok_or_else(|| corrupt("revision"))?;
    let num = |b: &[u8]| i64::from_be_bytes(b.try_into().unwrap_or_default());
    Ok(Revision { main: num(main), sub: num(sub) })
}

/// `key` with every `00` written `00 ff` (order-preserving and prefix-free once terminated).
pub(crate) fn escape(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 2);
    for &b in key {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
    out
}

/// Every `History` key of `key` starts with this.
pub(crate) fn history_prefix(key: &[u8]) -> Vec<u8> {
    let mut out = escape(key);
    out.extend_from_slice(&TERMINATOR);
    out
}

/// The `History` key of `key`'s change at `rev`.
pub(crate) fn history_key(key: &[u8], rev: Revision) -> Vec<u8> {
    let mut out = history_prefix(key);
    out.extend_from_slice(&revision_key(rev));
    out
}

/// The user key and revision of a `History` key.
pub(crate) fn decode_history_key(bytes: &[u8]) -> EngineResult<(Vec<u8>, Revision)> {
    let mut key = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (0, Some(0xff)) => {
                key.push(0);
                i += 2;
            }
            (0, Some(1)) => return Ok((key, decode_revision(&bytes[i + 2..])?)),
            (0, _) => break,
            (b, _) => {
                key.push(b);
                i += 1;
            }
        }
    }
    Err(corrupt("history key"))
}

fn put_live(out: &mut Vec<u8>, live: &Live) {
    out.extend_from_slice(&live.create_revision.to_be_bytes());
    out.extend_from_slice(&live.version.to_be_bytes());
    out.extend_from_slice(&live.lease.to_be_bytes());
    out.extend_from_slice(&live.value);
}

fn take_live(bytes: &[u8], what: &str) -> EngineResult<Live> {
    if bytes.len() < 24 {
        return Err(corrupt(what));
    }
    let num = |i: usize| i64::from_be_bytes(bytes[i..i + 8].try_into().unwrap_or_default());
    Ok(Live { create_revision: num(0), version: num(8), lease: num(16), value: bytes[24..].to_vec() })
}

/// A live key's newest version as its `Latest` value.
pub(crate) fn encode_latest(rev: Revision, live: &Live) -> Vec<u8> {
    let mut out = Vec::with_capacity(41 + live.value.len());
    out.push(FORMAT);
    out.extend_from_slice(&revision_key(rev));
    put_live(&mut out, live);
    out
}

pub(crate) fn decode_latest(bytes: &[u8]) -> EngineResult<Change> {
    match bytes.split_first() {
        Some((&FORMAT, rest)) if rest.len() >= 16 => {
            let rev = decode_revision(&rest[..16])?;
            Ok(Change { rev, live: Some(take_live(&rest[16..], "latest")?) })
        }
        _ => Err(corrupt("latest")),
    }
}

/// A change as its `History` value (the revision is in the key).
pub(crate) fn encode_history(change: &Change) -> Vec<u8> {
    let mut out = vec![FORMAT];
    match &change.live {
        None => out.push(TOMBSTONE),
        Some(live) => {
            out.push(LIVE);
            put_live(&mut out, live);
        }
    }
    out
}

pub(crate) fn decode_history(rev: Revision, bytes: &[u8]) -> EngineResult<Change> {
    match bytes {
        [FORMAT, TOMBSTONE] => Ok(Change { rev, live: None }),
        [FORMAT, LIVE, rest @ ..] => Ok(Change { rev, live: Some(take_live(rest, "history")?) }),
        _ => Err(corrupt("history")),
    }
}

/// The user key a `Revisions` record names.
pub(crate) fn encode_revision_value(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.push(FORMAT);
    out.extend_from_slice(key);
    out
}

pub(crate) fn decode_revision_value(bytes: &[u8]) -> EngineResult<Vec<u8>> {
    match bytes.split_first() {
        Some((&FORMAT, key)) => Ok(key.to_vec()),
        _ => Err(corrupt("revision index")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(value: &[u8]) -> Live {
        Live { create_revision: 2, version: 3, lease: 7, value: value.to_vec() }
    }

    #[test]
    fn golden_bytes() {
        let rev = Revision { main: 5, sub: 1 };
        assert_eq!(
            history_key(b"a\0b", rev),
            [b'a', 0, 0xff, b'b', 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1]
        );
        let latest = encode_latest(rev, &live(b"v"));
        let mut want = vec![1];
        for n in [5i64, 1, 2, 3, 7] {
            want.extend_from_slice(&n.to_be_bytes());
        }
        want.push(b'v');
        assert_eq!(latest, want);
        assert_eq!(encode_history(&Change { rev, live: None }), [1, 0]);
        assert_eq!(encode_revision_value(b"k"), [1, b'k']);
    }

    #[test]
    fn round_trips() {
        let rev = Revision { main: 9, sub: 0 };
        for key in [&b""[..], b"a", b"\0", b"a\0\0b", b"\xff\0\x01"] {
            assert_eq!(decode_history_key(&history_key(key, rev)).unwrap(), (key.to_vec(), rev));
        }
        let change = Change { rev, live: Some(live(b"")) };
        assert_eq!(decode_latest(&encode_latest(rev, &live(b""))).unwrap(), change);
        assert_eq!(decode_history(rev, &encode_history(&change)).unwrap(), change);
        assert_eq!(decode_revision(&revision_key(rev)).unwrap(), rev);
    }

    #[test]
    fn history_keys_sort_by_user_key_then_revision() {
        let keys: [&[u8]; 6] = [b"", b"\0", b"\0\0", b"\x01", b"a", b"a\0"];
        let mut encoded = Vec::new();
        for k in keys {
            for main in [1, 300] {
                encoded.push(history_key(k, Revision { main, sub: 0 }));
            }
        }
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_eq!(sorted, encoded);
        // An escaped key alone bounds the keys below it.
        assert!(history_key(b"a", Revision { main: i64::MAX, sub: i64::MAX }) < escape(b"a\0"));
        assert!(escape(b"a\0") < history_key(b"a\0", Revision { main: 0, sub: 0 }));
    }

    #[test]
    fn strict_decoding() {
        assert!(decode_latest(&[2; 50]).is_err(), "an unknown version");
        assert!(decode_latest(&[1; 10]).is_err(), "too short");
        assert!(decode_history(Revision { main: 1, sub: 0 }, &[1, 0, 0]).is_err());
        assert!(decode_history(Revision { main: 1, sub: 0 }, &[1, 2]).is_err());
        assert!(decode_history_key(b"a").is_err(), "no terminator");
        assert!(decode_history_key(&[b'a', 0, 1, 0]).is_err(), "short revision");
        assert!(decode_revision_value(&[]).is_err());
    }
}
