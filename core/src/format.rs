//! Versioned byte formats. Every encoding that outlives the process that wrote it (log entries,
//! snapshots and backups, peer frames) starts with a fixed tag and a version byte, then the
//! postcard body. Decoding is strict: the tag and version must be this release's, and the body
//! must be consumed to its last byte, so bytes from another release (or none at all) are refused
//! with an error that says which format they are in, never misread.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// One versioned format: what it is called in errors, the tag it starts with, its version.
pub struct Format {
    /// What the bytes are, for error messages ("log entry", "snapshot").
    pub name: &'static str,
    /// Bytes every value starts with (may be empty when the version byte alone is enough).
    pub tag: &'static [u8],
    /// The version this release writes and reads.
    pub version: u8,
}

impl Format {
    /// `value` in this format.
    pub fn encode<T: Serialize>(&self, value: &T) -> Vec<u8> {
        // Serializing plain owned data into a Vec cannot fail.
        postcard::to_extend(value, self.header()).unwrap_or_default()
    }

    /// What every value starts with: the tag and the version byte. A value too large to be
    /// built in memory before it is encoded is written after it piece by piece with [`append`]
    /// (a struct's encoding is its fields' encodings one after the other).
    pub fn header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.tag.len() + 64);
        out.extend_from_slice(self.tag);
        out.push(self.version);
        out
    }

    /// Read a value written by [`Format::encode`] of the same release.
    pub fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, String> {
        let name = self.name;
        let rest =
            bytes.strip_prefix(self.tag).ok_or_else(|| format!("{} bytes that are not a keel {name}", bytes.len()))?;
        match rest.split_first() {
            None => Err(format!("a keel {name} without its format version")),
            Some((&v, body)) if v == self.version => decode_whole(name, body),
            Some((&v, _)) => Err(format!("a keel {name} in format {v}; this keel reads format {}", self.version)),
        }
    }
}

/// Decode a postcard body that must end where the value does.
pub(crate) fn decode_whole<T: DeserializeOwned>(name: &str, body: &[u8]) -> Result<T, String> {
    match postcard::take_from_bytes(body) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(format!("a keel {name} with {} stray bytes after it", rest.len())),
        Err(e) => Err(format!("a malformed keel {name}: {e}")),
    }
}

/// Append `value`'s body encoding (postcard) to `out`.
pub fn append<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> crate::api::error::Result<()> {
    let bytes =
        postcard::to_stdvec(value).map_err(|e| crate::api::error::Error::Internal(format!("cannot encode: {e}")))?;
    out.extend_from_slice(&bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST: Format = Format { name: "test value", tag: b"T", version: 2 };

    #[test]
    fn values_round_trip_and_start_with_tag_and_version() {
        let bytes = TEST.encode(&(7u8, "ab".to_string()));
        assert_eq!(bytes, b"T\x02\x07\x02ab", "golden bytes");
        assert_eq!(TEST.decode::<(u8, String)>(&bytes).unwrap(), (7, "ab".to_string()));
    }

    #[test]
    fn other_versions_tags_and_stray_bytes_are_refused_by_name() {
        let err = |b: &[u8]| TEST.decode::<(u8, String)>(b).unwrap_err();
        assert_eq!(err(b"T\x03\x07\x02ab"), "a keel test value in format 3; this keel reads format 2");
        assert_eq!(err(b"X\x02\x07\x02ab"), "6 bytes that are not a keel test value");
        assert_eq!(err(b"T"), "a keel test value without its format version");
        assert_eq!(err(b"T\x02\x07\x02abc"), "a keel test value with 1 stray bytes after it");
        assert!(err(b"T\x02\x07\x05ab").starts_with("a malformed keel test value"));
    }
}
