//! The hasher of the session's tables: keys are interned names (pointers)
//! and ids, already well spread, so one multiply replaces SipHash.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Multiplicative hashing for pointer-identity keys (interned names, ids):
/// one multiply instead of SipHash's rounds on the hot define/lookup paths.
/// Public as `SymbolHasher` because [`crate::SymbolMap`] uses it.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // The multiply mixes upwards only: keys that are aligned pointers
        // would leave the low bits (hashbrown's bucket index) all zero.
        // Rotating brings the well-mixed high bits down.
        self.0.rotate_left(26)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
pub(crate) type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hasher;

    #[test]
    fn aligned_pointers_spread_over_low_bits() {
        let buckets = 1024u64;
        let mut used = std::collections::HashSet::new();
        for i in 0..buckets {
            let mut h = IdHasher::default();
            h.write_usize(0x7f00_0000_0000 + (i as usize) * 16);
            used.insert(h.finish() & (buckets - 1));
        }
        assert!(
            used.len() > (buckets as usize) / 2,
            "only {} of {buckets} buckets",
            used.len()
        );
    }
}
