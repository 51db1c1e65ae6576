//! Poly1305 (RFC 8439 §2.5) in one call, with 44-bit limbs and 128-bit products
//! (Andrew Moon's "donna-64" layout): the one-time authenticator of every CURVE box.
//!
//! The `poly1305` crate has two backends. Its portable one uses 26-bit limbs and
//! 32-bit products, twice the multiplications of this one on a 64-bit CPU; its
//! AVX2 one, chosen at run time unless a `--cfg` says otherwise, precomputes powers
//! of the key for every message, which made 16-byte CURVE messages 2.3 times slower
//! than the portable one (0.8 M against 1.9 M msg/s, same sitting). CURVE seals
//! every message with a fresh key, so the setup is paid every time: this one has
//! none, and a third of the portable one's multiplications at every length; long
//! messages go two blocks a step (with `r²`, computed once), so the CPU overlaps
//! the two products.
//!
//! Everything is branch-free on the key and the data (the final reduction selects
//! with masks), as in the reference code. The tests check it against the
//! `poly1305` crate at every length and against RFC 8439's vector.

use zeroize::Zeroize;

const MASK44: u64 = (1 << 44) - 1;
const MASK42: u64 = (1 << 42) - 1;

/// The Poly1305 tag of `msg` under the one-time `key` (`r` then `s`).
pub(crate) fn mac(key: &[u8; 32], msg: &[u8]) -> [u8; 16] {
    let mut state = State::new(key);
    let mut pairs = msg.chunks_exact(32);
    if msg.len() >= 64 {
        // Two blocks a step, `h = (h + m1)·r² + m2·r`: two independent products
        // the CPU runs side by side, where one a step waits on the last.
        let squared = Key::of(mul_reduce(state.r.limbs, &state.r));
        for pair in &mut pairs {
            state.h = pair_step(state.h, &pair[..16], &pair[16..], &squared, &state.r);
        }
    }
    let tail = if msg.len() >= 64 {
        pairs.remainder()
    } else {
        msg
    };
    let mut blocks = tail.chunks_exact(16);
    for block in &mut blocks {
        state.h = mul_reduce(add_block(state.h, block, 1 << 40), &state.r);
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        // The last, short block: its bytes, then 1, then zeros; no 2^128 bit.
        let mut last = [0u8; 16];
        last[..rest.len()].copy_from_slice(rest);
        last[rest.len()] = 1;
        state.h = mul_reduce(add_block(state.h, &last, 0), &state.r);
        last.zeroize();
    }
    state.finish()
}

/// A multiplier in 44-bit limbs, with 20 times its upper limbs (2^132 is 20
/// modulo 2^130 − 5, so those products fold back into the lower limbs).
struct Key {
    limbs: [u64; 3],
    s1: u64,
    s2: u64,
}

impl Key {
    fn of(limbs: [u64; 3]) -> Key {
        Key {
            limbs,
            s1: limbs[1] * (5 << 2),
            s2: limbs[2] * (5 << 2),
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.limbs.zeroize();
        self.s1.zeroize();
        self.s2.zeroize();
    }
}

/// `h + block (+ hibit·2^128)`, in limbs.
#[inline]
fn add_block(h: [u64; 3], block: &[u8], hibit: u64) -> [u64; 3] {
    let t0 = le64(&block[0..8]);
    let t1 = le64(&block[8..16]);
    [
        h[0] + (t0 & MASK44),
        h[1] + (((t0 >> 44) | (t1 << 20)) & MASK44),
        h[2] + (((t1 >> 24) & 0x3ff_ffff_ffff) | hibit),
    ]
}

/// The 128-bit products of `a` by `k`, limb by limb of the result.
#[inline]
fn products(a: [u64; 3], k: &Key) -> [u128; 3] {
    let m = |x: u64, y: u64| u128::from(x) * u128::from(y);
    let [k0, k1, k2] = k.limbs;
    [
        m(a[0], k0) + m(a[1], k.s2) + m(a[2], k.s1),
        m(a[0], k1) + m(a[1], k0) + m(a[2], k.s2),
        m(a[0], k2) + m(a[1], k1) + m(a[2], k0),
    ]
}

/// Carries 128-bit limb sums back into 44/44/42-bit limbs (partly reduced).
#[inline]
fn carry(d: [u128; 3]) -> [u64; 3] {
    let [d0, mut d1, mut d2] = d;
    let mut c = (d0 >> 44) as u64;
    let mut h0 = (d0 as u64) & MASK44;
    d1 += u128::from(c);
    c = (d1 >> 44) as u64;
    let h1 = (d1 as u64) & MASK44;
    d2 += u128::from(c);
    c = (d2 >> 42) as u64;
    let h2 = (d2 as u64) & MASK42;
    h0 += c * 5;
    c = h0 >> 44;
    h0 &= MASK44;
    [h0, h1 + c, h2]
}

/// `a · k mod 2^130 − 5`, partly reduced.
#[inline]
fn mul_reduce(a: [u64; 3], k: &Key) -> [u64; 3] {
    carry(products(a, k))
}

/// `(h + m1) · r² + m2 · r`, partly reduced: two whole blocks.
#[inline]
fn pair_step(h: [u64; 3], m1: &[u8], m2: &[u8], squared: &Key, r: &Key) -> [u64; 3] {
    let a = products(add_block(h, m1, 1 << 40), squared);
    let b = products(add_block([0; 3], m2, 1 << 40), r);
    carry([a[0] + b[0], a[1] + b[1], a[2] + b[2]])
}

fn le64(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

/// The accumulator `h`, the clamped key `r` and the final pad.
struct State {
    r: Key,
    h: [u64; 3],
    pad: [u64; 2],
}

/// One carry pass over the limbs, the top limb's overflow folded back
/// times 5 (2^130 ≡ 5 mod p).
fn carry_through([mut h0, mut h1, mut h2]: [u64; 3]) -> [u64; 3] {
    let mut c = h1 >> 44;
    h1 &= MASK44;
    h2 += c;
    c = h2 >> 42;
    h2 &= MASK42;
    h0 += c * 5;
    c = h0 >> 44;
    h0 &= MASK44;
    h1 += c;
    [h0, h1, h2]
}

impl State {
    fn new(key: &[u8; 32]) -> State {
        let t0 = le64(&key[0..8]);
        let t1 = le64(&key[8..16]);
        let r0 = t0 & 0xffc_0fff_ffff;
        let r1 = ((t0 >> 44) | (t1 << 20)) & 0xfff_ffc0_ffff;
        let r2 = (t1 >> 24) & 0x00f_ffff_fc0f;
        State {
            r: Key::of([r0, r1, r2]),
            h: [0; 3],
            pad: [le64(&key[16..24]), le64(&key[24..32])],
        }
    }

    /// The tag: `h` fully reduced mod 2^130 − 5, plus the pad, mod 2^128.
    fn finish(mut self) -> [u8; 16] {
        // Two carry passes bring every limb within its width.
        let [mut h0, mut h1, mut h2] = carry_through(carry_through(self.h));
        let mut c;

        // g = h + 5 − 2^130: h itself when that is negative (h < p), else g.
        let mut g0 = h0 + 5;
        c = g0 >> 44;
        g0 &= MASK44;
        let mut g1 = h1 + c;
        c = g1 >> 44;
        g1 &= MASK44;
        let mut g2 = (h2 + c).wrapping_sub(1 << 42);
        let keep_g = (g2 >> 63).wrapping_sub(1);
        g0 &= keep_g;
        g1 &= keep_g;
        g2 &= keep_g;
        let keep_h = !keep_g;
        h0 = (h0 & keep_h) | g0;
        h1 = (h1 & keep_h) | g1;
        h2 = (h2 & keep_h) | g2;

        let [t0, t1] = self.pad;
        h0 += t0 & MASK44;
        c = h0 >> 44;
        h0 &= MASK44;
        h1 += (((t0 >> 44) | (t1 << 20)) & MASK44) + c;
        c = h1 >> 44;
        h1 &= MASK44;
        h2 += ((t1 >> 24) & MASK42) + c;
        h2 &= MASK42;

        let low = h0 | (h1 << 44);
        let high = (h1 >> 20) | (h2 << 24);
        let mut tag = [0u8; 16];
        tag[..8].copy_from_slice(&low.to_le_bytes());
        tag[8..].copy_from_slice(&high.to_le_bytes());
        self.h.zeroize();
        tag
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.h.zeroize();
        self.pad.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use poly1305::universal_hash::KeyInit;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn rfc8439_vector() {
        // RFC 8439 §2.5.2.
        let key: [u8; 32] = [
            0x85, 0xd6, 0xbe, 0x78, 0x57, 0x55, 0x6d, 0x33, 0x7f, 0x44, 0x52, 0xfe, 0x42, 0xd5,
            0x06, 0xa8, 0x01, 0x03, 0x80, 0x8a, 0xfb, 0x0d, 0xb2, 0xfd, 0x4a, 0xbf, 0xf6, 0xaf,
            0x41, 0x49, 0xf5, 0x1b,
        ];
        let tag = [
            0xa8, 0x06, 0x1d, 0xc1, 0x30, 0x51, 0x36, 0xc6, 0xc2, 0x2b, 0x8b, 0xaf, 0x0c, 0x01,
            0x27, 0xa9,
        ];
        assert_eq!(mac(&key, b"Cryptographic Forum Research Group"), tag);
    }

    #[test]
    fn the_largest_accumulator_values_reduce_as_the_crate_s() {
        // All-ones keys and data drive every limb to its top before reduction.
        for len in [0, 1, 15, 16, 17, 63, 64, 65, 96, 1000] {
            let key = [0xff; 32];
            let msg = vec![0xff; len];
            let theirs = poly1305::Poly1305::new(&key.into()).compute_unpadded(&msg);
            assert_eq!(mac(&key, &msg)[..], theirs[..], "length {len}");
        }
    }

    proptest! {
        #[test]
        fn tags_are_the_poly1305_crate_s(key in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..600)) {
            let theirs = poly1305::Poly1305::new(&key.into()).compute_unpadded(&msg);
            prop_assert_eq!(&mac(&key, &msg)[..], &theirs[..]);
        }
    }
}
