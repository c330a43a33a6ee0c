//! The hasher of the ledger's maps.
//!
//! Every key of those maps is an identifier the ledger or the host hands out
//! itself (sequential integers: guests, blocks, contents, handles, loans);
//! a guest can only *look up* a value of its choosing, never insert one. So
//! the keys cannot be chosen to collide, and SipHash's resistance to such
//! floods (13-20 ns per lookup, a dozen lookups per message) buys nothing.
//! A multiplicative hash is enough: for sequential keys its low bits (the
//! bucket) form a permutation and its high bits (the tag) are well mixed.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A Fibonacci (multiplicative) hasher for integer identifiers.
/// A multiplicative hasher for identifiers the host hands out itself (see
/// the module's notes): not for keys a guest can choose and insert.
#[derive(Clone, Copy, Default)]
pub struct IdHasher(u64);

/// 2^64 divided by the golden ratio, odd: multiplying by it is a bijection
/// that spreads consecutive integers.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Not used by the identifier types (they hash as integers); kept
        // correct for any key.
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(26) ^ n).wrapping_mul(GOLDEN);
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by identifiers.
/// A map keyed by host-assigned identifiers, hashed with [`IdHasher`].
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
/// A set of identifiers.
pub(crate) type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash<T: Hash>(t: T) -> u64 {
        BuildHasherDefault::<IdHasher>::default().hash_one(t)
    }

    #[test]
    fn consecutive_identifiers_fill_distinct_buckets_and_tags_vary() {
        // 1,024 consecutive keys in 1,024 buckets: no two share one.
        let mut buckets: Vec<u64> = (0..1024u64).map(|n| hash(n) & 1023).collect();
        buckets.sort_unstable();
        buckets.dedup();
        assert_eq!(buckets.len(), 1024);
        // The top 7 bits (hashbrown's tag) take many values too.
        let mut tags: Vec<u64> = (0..1024u64).map(|n| hash(n) >> 57).collect();
        tags.sort_unstable();
        tags.dedup();
        assert!(tags.len() > 100, "{} tags", tags.len());
    }
}
