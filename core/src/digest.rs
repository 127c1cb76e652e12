//! A small deterministic digest (64-bit FNV-1a) for comparing replicas' states. Not
//! cryptographic: it only has to tell diverged members apart, the same on every platform.

/// Incremental FNV-1a over bytes.
pub struct Fnv64(u64);

impl Fnv64 {
    /// The FNV offset basis.
    pub fn new() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }

    /// Mix in bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// Mix in a number (little-endian, so the digest is platform-independent).
    pub fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }

    /// Mix in a signed number.
    pub fn int(&mut self, v: i64) {
        self.write(&v.to_le_bytes());
    }

    /// Mix in bytes preceded by their length, so ("ab", "c") and ("a", "bc") differ.
    pub fn field(&mut self, data: &[u8]) {
        self.write_u64(data.len() as u64);
        self.write(data);
    }

    /// The digest so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// A 64-bit digest folded to the 32 bits etcd's hash fields carry (both halves count).
pub fn fold32(digest: u64) -> u32 {
    (digest ^ (digest >> 32)) as u32
}

impl Default for Fnv64 {
    fn default() -> Self {
        Self::new()
    }
}
