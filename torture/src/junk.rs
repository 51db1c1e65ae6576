//! Deterministic junk for attacks: the same seed gives the same bytes, so a failure
//! can be replayed.

/// A tiny deterministic generator for junk (xorshift64*).
pub struct Junk(pub u64);

impl Junk {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> usize {
        usize::try_from(self.next_u64() % n).unwrap_or(0)
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64().to_le_bytes()[3]).collect()
    }
}
