//! Stable content hashes of service definitions.

use std::hash::Hasher;

use crate::model::{Location, Service};

impl Service {
    /// 12 lowercase hex characters identifying this definition: the FNV-1a 64 hash of
    /// its JSON serialization with all `location` fields cleared and without `backup`.
    /// Equal definitions give equal revisions across runs and machines; moving a service
    /// in the file does not change it.
    #[must_use]
    pub fn revision(&self) -> String {
        let mut s = self.clone();
        s.location = Location::default();
        // Retention and schedule are not the service: changing them restarts nothing.
        s.backup = None;
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
    let mut h = fnv::FnvHasher::default();
    h.write(bytes);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::fnv1a64;

    /// Pins the hash itself: revisions are stored in state and compared across
    /// versions, so a change of hash function would restart every service.
    #[test]
    fn fnv1a64_is_pinned() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"orchestra"), 0xf864_d149_32aa_5428);
        assert_eq!(
            format!("{:012x}", fnv1a64(br#"{"name":"web"}"#) >> 16),
            "c9c0f5ecb092"
        );
    }
}
