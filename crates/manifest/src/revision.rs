//! Stable content hashes of service definitions.

use crate::model::{Location, Service};

impl Service {
    /// 12 lowercase hex characters identifying this definition: the FNV-1a 64 hash of
    /// its JSON serialization with all `location` fields cleared. Equal definitions give
    /// equal revisions across runs and machines; moving a service in the file does not
    /// change it.
    #[must_use]
    pub fn revision(&self) -> String {
        let mut s = self.clone();
        s.location = Location::default();
        for d in &mut s.depends_on {
            d.location = Location::default();
        }
        // Serializing plain data with string map keys cannot fail.
        let json = serde_json::to_vec(&s).unwrap_or_default();
        format!("{:012x}", fnv1a64(&json) >> 16)
    }
}

/// FNV-1a, 64-bit: tiny, and stable (unlike std's randomly seeded hasher).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
