//! [`IdHashMap`] and [`IdHashSet`]: maps keyed by numbers this process hands out
//! (connection numbers, and so [`PeerId`](crate::PeerId), request numbers), hashed
//! in a multiply instead of SipHash.
//!
//! SipHash is the standard maps' hasher because a peer may choose the keys and try
//! to make them collide. The numbers here are ours: a counter, never a value a peer
//! sends, so collisions cannot be planned, and a seed drawn for each map keeps the
//! layout of one map from telling anything about another's. A broker looks such
//! keys up several times for every request; SipHash was a tenth of its user CPU.
//!
//! Keys that a peer chooses (routing ids, service names, addresses) stay in maps
//! with the standard hasher.
//!
//! ```
//! use zmtp::{IdHashMap, PeerId};
//!
//! let mut busy: IdHashMap<PeerId, u32> = IdHashMap::default();
//! busy.insert(PeerId::new(&b"worker-1"[..], 7), 1);
//! assert_eq!(busy.get(&PeerId::new(&b"worker-1"[..], 7)), Some(&1));
//! ```

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

/// A `HashMap` keyed by numbers this process hands out (see the module).
pub type IdHashMap<K, V> = HashMap<K, V, IdHasherBuilder>;

/// A `HashSet` of numbers this process hands out (see the module).
pub type IdHashSet<K> = HashSet<K, IdHasherBuilder>;

/// Odd, with its bits spread: the multiplier (2^64 / golden ratio).
const SPREAD: u64 = 0x9e37_79b9_7f4a_7c15;

/// Makes an [`IdHasher`] with this map's seed.
#[derive(Debug, Clone, Copy)]
pub struct IdHasherBuilder {
    seed: u64,
}

impl Default for IdHasherBuilder {
    /// A fresh seed for each map.
    fn default() -> IdHasherBuilder {
        IdHasherBuilder {
            seed: rand::random(),
        }
    }
}

impl BuildHasher for IdHasherBuilder {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher { state: self.seed }
    }
}

/// Folds each number in with one 64 × 64 → 128-bit multiply, the halves of the
/// product xored: every bit of the key reaches both the bits a table indexes by
/// (the low ones) and the ones it tags entries with (the high ones).
#[derive(Debug, Clone)]
pub struct IdHasher {
    state: u64,
}

impl IdHasher {
    fn fold(&mut self, word: u64) {
        let product = u128::from(self.state ^ word) * u128::from(SPREAD);
        self.state = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for IdHasher {
    fn write_u64(&mut self, n: u64) {
        self.fold(n);
    }

    fn write_u32(&mut self, n: u32) {
        self.fold(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.fold(n as u64);
    }

    /// Other keys still hash correctly, eight bytes at a time (the length is
    /// folded in too, so `[0]` and `[0, 0]` differ).
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.fold(u64::from_le_bytes(word));
        }
        self.fold(bytes.len() as u64);
    }

    fn finish(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_of(builder: &IdHasherBuilder, n: u64) -> u64 {
        builder.hash_one(n)
    }

    #[test]
    fn consecutive_numbers_spread_over_low_and_high_bits() {
        let builder = IdHasherBuilder::default();
        // A table of 1024 buckets indexes by the low 10 bits and tags by the top 7:
        // a run of counters must fill most buckets and use every tag.
        let mut buckets = [0u32; 1024];
        let mut tags = [0u32; 128];
        for n in 1000..2024u64 {
            let h = hash_of(&builder, n);
            buckets[(h & 1023) as usize] += 1;
            tags[(h >> 57) as usize] += 1;
        }
        let used = buckets.iter().filter(|&&c| c > 0).count();
        assert!(used > 550, "only {used} of 1024 buckets used");
        assert!(tags.iter().all(|&c| c > 0), "a tag never used");
    }

    #[test]
    fn maps_draw_their_own_seeds() {
        let a = IdHasherBuilder::default();
        let b = IdHasherBuilder::default();
        assert_ne!(hash_of(&a, 42), hash_of(&b, 42));
        assert_eq!(hash_of(&a, 42), hash_of(&a, 42));
    }

    #[test]
    fn byte_keys_of_different_lengths_differ() {
        let builder = IdHasherBuilder::default();
        assert_ne!(builder.hash_one([0u8; 1]), builder.hash_one([0u8; 2]));
        let mut map: IdHashMap<Vec<u8>, u8> = IdHashMap::default();
        map.insert(vec![1, 2, 3], 1);
        assert_eq!(map.get(&vec![1, 2, 3]), Some(&1));
    }
}
