//! [`SalsaBox`]: NaCl's `crypto_box` (X25519, then XSalsa20-Poly1305 with the
//! precomputed key), what CurveZMQ seals every command and message with, with a
//! Salsa20 that makes four, eight or sixteen blocks at once.
//!
//! `crypto_box`'s own box runs the `salsa20` crate, one 64-byte block at a time
//! in scalar code; libsodium's has SIMD code, and CURVE throughput at 4 KiB and
//! 64 KiB was half of libzmq's. Here the Salsa20 state holds four blocks side by
//! side, one per lane of a 128-bit vector, and every step of the rounds is one SSE2
//! instruction on the four (SSE2 is part of every x86-64 CPU; other targets run the
//! same rounds on `[u32; 4]`). The same rounds run eight blocks at once with AVX2
//! and sixteen with AVX-512 where the CPU has them (detected at run time). The only
//! `unsafe` are the three calls into that code, each proved beside it: every x86-64
//! CPU has SSE2, and the other two run only once the CPU said it has the feature.
//! A box
//! that fits in one block, HSalsa20 and the key agreement are the crates' own:
//! `crypto_box`'s X25519 (`SecretKey::to_scalar` times the peer's point, as
//! `crypto_box::SalsaBox::new` computes it) and the `salsa20` crate's scalar code;
//! Poly1305 is ours too ([`super::poly1305`]). The tests check every output against
//! `crypto_box`'s box and the `salsa20` crate's stream.

use crypto_box::aead::consts::{U0, U10, U16, U24};
use crypto_box::aead::{AeadCore, AeadInPlace, Error, Nonce, Tag};
use crypto_box::SecretKey;
use curve25519_dalek::montgomery::MontgomeryPoint;
use salsa20::cipher::{KeyIvInit, StreamCipher};
use salsa20::{hsalsa, Salsa20};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// "expand 32-byte k".
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// A precomputed box between one secret key and one peer's public key.
#[derive(Clone)]
pub struct SalsaBox {
    /// HSalsa20 of the X25519 shared secret: `crypto_box_beforenm`.
    key: [u8; 32],
}

impl Drop for SalsaBox {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl std::fmt::Debug for SalsaBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SalsaBox { .. }")
    }
}

impl SalsaBox {
    /// The box of `secret` with the peer's `public` key (the caller has refused
    /// points of small order).
    pub fn new(public: &[u8; 32], secret: &SecretKey) -> SalsaBox {
        let mut shared = (secret.to_scalar() * MontgomeryPoint(*public)).to_bytes();
        let key = hsalsa::<U10>((&shared).into(), (&[0u8; 16]).into()).into();
        shared.zeroize();
        SalsaBox { key }
    }
}

/// The XSalsa20 stream of one box, its first blocks made once: the Poly1305 key
/// is its bytes 0..32, the message is XORed with it from byte 32 on.
struct Stream {
    subkey: [u8; 32],
    nonce: [u32; 2],
    /// Blocks 0..4 (or block 0 alone, for a message that ends within it).
    first: [u8; 256],
    one_block: bool,
}

impl Stream {
    /// The stream of `key` and the 24-byte `nonce`, for a message of `len` bytes.
    fn new(key: &[u8; 32], nonce: &[u8; 24], len: usize) -> Stream {
        let subkey: [u8; 32] = hsalsa::<U10>(key.into(), nonce[..16].into()).into();
        let stream_nonce = [le_word(&nonce[16..20]), le_word(&nonce[20..24])];
        let mut first = [0u8; 256];
        let one_block = 32 + len <= 64;
        if one_block {
            // One block: the scalar code of the `salsa20` crate makes it faster
            // than four side by side.
            let mut one = Salsa20::new(&subkey.into(), nonce[16..24].into());
            one.apply_keystream(&mut first[..64]);
        } else {
            salsa20_x4(&subkey, stream_nonce, 0, &mut first);
        }
        Stream {
            subkey,
            nonce: stream_nonce,
            first,
            one_block,
        }
    }

    /// The Poly1305 tag of `data` with this stream's one-time key.
    fn tag(&self, data: &[u8]) -> [u8; 16] {
        let mut key = [0u8; 32];
        key.copy_from_slice(&self.first[..32]);
        let tag = super::poly1305::mac(&key, data);
        key.zeroize();
        tag
    }

    /// XORs the stream from byte 32 on into `data`.
    fn apply(&self, data: &mut [u8]) {
        let first = data.len().min(256 - 32);
        xor_into(&mut data[..first], &self.first[32..32 + first]);
        let mut rest = &mut data[first..];
        let mut counter = 4u64;
        // Sixteen blocks at a time where the CPU has AVX-512, then eight with AVX2.
        self.apply_wide::<1024>(&mut rest, &mut counter, salsa20_x16);
        self.apply_wide::<512>(&mut rest, &mut counter, salsa20_x8);
        if !rest.is_empty() {
            let mut blocks = [0u8; 256];
            for chunk in rest.chunks_mut(256) {
                salsa20_x4(&self.subkey, self.nonce, counter, &mut blocks);
                counter += 4;
                xor_into(chunk, &blocks[..chunk.len()]);
            }
            blocks.zeroize();
        }
    }
}

impl Stream {
    /// XORs `BYTES` of stream at a time into `rest` from block `counter` on, while
    /// more than half of that is left and `blocks` (a wide Salsa20) can run here;
    /// moves `rest` and `counter` past what it did.
    fn apply_wide<const BYTES: usize>(
        &self,
        rest: &mut &mut [u8],
        counter: &mut u64,
        blocks: fn(&[u8; 32], [u32; 2], u64, &mut [u8; BYTES]) -> bool,
    ) {
        if rest.len() <= BYTES / 2 {
            return;
        }
        let mut stream = [0u8; BYTES];
        while rest.len() > BYTES / 2 && blocks(&self.subkey, self.nonce, *counter, &mut stream) {
            let n = rest.len().min(BYTES);
            let (chunk, after) = std::mem::take(rest).split_at_mut(n);
            xor_into(chunk, &stream[..n]);
            *rest = after;
            *counter += (BYTES / 64) as u64;
        }
        stream.zeroize();
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.subkey.zeroize();
        let used = if self.one_block { 64 } else { 256 };
        self.first[..used].zeroize();
    }
}

impl AeadCore for SalsaBox {
    type NonceSize = U24;
    type TagSize = U16;
    type CiphertextOverhead = U0;
}

impl AeadInPlace for SalsaBox {
    fn encrypt_in_place_detached(
        &self,
        nonce: &Nonce<Self>,
        associated_data: &[u8],
        buffer: &mut [u8],
    ) -> Result<Tag<Self>, Error> {
        if !associated_data.is_empty() {
            return Err(Error);
        }
        let stream = Stream::new(&self.key, nonce.as_ref(), buffer.len());
        stream.apply(buffer);
        Ok(stream.tag(buffer).into())
    }

    fn decrypt_in_place_detached(
        &self,
        nonce: &Nonce<Self>,
        associated_data: &[u8],
        buffer: &mut [u8],
        tag: &Tag<Self>,
    ) -> Result<(), Error> {
        if !associated_data.is_empty() {
            return Err(Error);
        }
        // The tag is checked on the ciphertext before anything is decrypted.
        let stream = Stream::new(&self.key, nonce.as_ref(), buffer.len());
        let expected = stream.tag(buffer);
        if !bool::from(expected.as_slice().ct_eq(tag.as_slice())) {
            return Err(Error);
        }
        stream.apply(buffer);
        Ok(())
    }
}

fn le_word(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn xor_into(data: &mut [u8], stream: &[u8]) {
    for (d, s) in data.iter_mut().zip(stream) {
        *d ^= s;
    }
}

/// One Salsa20 function per vector width: the state holds `WIDTH` blocks side by
/// side, one per lane, and the rounds are written once against a lanes module
/// (`splat`, `from_array`, `to_array`, `add`, `xor_rotl`), compiled for that
/// module's instruction set.
macro_rules! salsa20_side_by_side {
    ($name:ident, $lanes:ident, $width:literal $(, $feature:literal)?) => {
        mod $name {
            use super::$lanes::{add, from_array, splat, to_array, xor_rotl, Lanes};
            use super::{le_word, SIGMA};

            /// Blocks side by side.
            pub(super) const WIDTH: usize = $width;

            /// The state of `key`, `nonce` and the blocks from `counter` on (the same
            /// in every lane but the counter's).
            #[inline]
            $(#[target_feature(enable = $feature)])?
            fn initial_state(key: &[u8; 32], nonce: [u32; 2], counter: u64) -> [Lanes; 16] {
                let k: [u32; 8] = std::array::from_fn(|i| le_word(&key[4 * i..4 * i + 4]));
                let counters: [u64; WIDTH] =
                    std::array::from_fn(|i| counter.wrapping_add(i as u64));
                [
                    splat(SIGMA[0]),
                    splat(k[0]),
                    splat(k[1]),
                    splat(k[2]),
                    splat(k[3]),
                    splat(SIGMA[1]),
                    splat(nonce[0]),
                    splat(nonce[1]),
                    from_array(counters.map(|c| c as u32)),
                    from_array(counters.map(|c| (c >> 32) as u32)),
                    splat(SIGMA[2]),
                    splat(k[4]),
                    splat(k[5]),
                    splat(k[6]),
                    splat(k[7]),
                    splat(SIGMA[3]),
                ]
            }

            #[inline]
            $(#[target_feature(enable = $feature)])?
            fn quarter_round(x: &mut [Lanes; 16], a: usize, b: usize, c: usize, d: usize) {
                x[b] = xor_rotl::<7, 25>(x[b], add(x[a], x[d]));
                x[c] = xor_rotl::<9, 23>(x[c], add(x[b], x[a]));
                x[d] = xor_rotl::<13, 19>(x[d], add(x[c], x[b]));
                x[a] = xor_rotl::<18, 14>(x[a], add(x[d], x[c]));
            }

            /// Salsa20/20 blocks `counter`..`counter + WIDTH` of `key` and `nonce`,
            /// in order.
            $(#[target_feature(enable = $feature)])?
            pub(super) fn blocks(
                key: &[u8; 32],
                nonce: [u32; 2],
                counter: u64,
                out: &mut [u8; 64 * $width],
            ) {
                let initial = initial_state(key, nonce, counter);
                let mut x = initial;
                // 10 double rounds: columns, then rows.
                for _ in 0..10 {
                    quarter_round(&mut x, 0, 4, 8, 12);
                    quarter_round(&mut x, 5, 9, 13, 1);
                    quarter_round(&mut x, 10, 14, 2, 6);
                    quarter_round(&mut x, 15, 3, 7, 11);
                    quarter_round(&mut x, 0, 1, 2, 3);
                    quarter_round(&mut x, 5, 6, 7, 4);
                    quarter_round(&mut x, 10, 11, 8, 9);
                    quarter_round(&mut x, 15, 12, 13, 14);
                }
                for (word, (mixed, start)) in x.iter().zip(&initial).enumerate() {
                    let sum: [u32; WIDTH] = to_array(add(*mixed, *start));
                    for (lane, value) in sum.iter().enumerate() {
                        let at = lane * 64 + word * 4;
                        out[at..at + 4].copy_from_slice(&value.to_le_bytes());
                    }
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
salsa20_side_by_side!(by_four, sse2, 4, "sse2");
#[cfg(target_arch = "x86_64")]
salsa20_side_by_side!(by_eight, avx2, 8, "avx2");
#[cfg(all(target_arch = "x86_64", zmtp_avx512))]
salsa20_side_by_side!(by_sixteen, avx512, 16, "avx512f");
#[cfg(not(target_arch = "x86_64"))]
salsa20_side_by_side!(by_four, portable, 4);

// The build fails on an x86-64 target without SSE2 (none exists among Rust's).
#[cfg(target_arch = "x86_64")]
const _: () = assert!(cfg!(target_feature = "sse2"));

/// Salsa20/20 blocks `counter`..`counter + 4` of `key` and `nonce`, in order.
// One of the crate's three `unsafe` blocks: calling SSE2 code on x86-64.
#[allow(unsafe_code)]
fn salsa20_x4(key: &[u8; 32], nonce: [u32; 2], counter: u64, out: &mut [u8; 256]) {
    // SAFETY: the only requirement of a `target_feature` function is that the CPU
    // has the feature; SSE2 is part of the x86-64 baseline (every x86-64 CPU has
    // it, and the assertion above fails the build of a target that does not).
    #[cfg(target_arch = "x86_64")]
    unsafe {
        by_four::blocks(key, nonce, counter, out)
    }
    #[cfg(not(target_arch = "x86_64"))]
    by_four::blocks(key, nonce, counter, out)
}

/// Salsa20/20 blocks `counter`..`counter + 8` when the CPU has AVX2 (one run of
/// eight lanes costs about what four do with SSE2); `false` when it has not.
// The second `unsafe` block: calling AVX2 code once the CPU said it has AVX2.
#[allow(unsafe_code)]
fn salsa20_x8(key: &[u8; 32], nonce: [u32; 2], counter: u64, out: &mut [u8; 512]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: a `target_feature` function only requires that the CPU has the
        // feature, and it was just detected (the answer is cached after the first).
        unsafe { by_eight::blocks(key, nonce, counter, out) };
        return true;
    }
    let _ = (key, nonce, counter, out);
    false
}

/// Salsa20/20 blocks `counter`..`counter + 16` when the CPU has AVX-512 (one
/// instruction a rotation, and 32 registers: the state never leaves them); `false`
/// when it has not.
// The third `unsafe` block: calling AVX-512 code once the CPU said it has it.
#[allow(unsafe_code)]
fn salsa20_x16(key: &[u8; 32], nonce: [u32; 2], counter: u64, out: &mut [u8; 1024]) -> bool {
    #[cfg(all(target_arch = "x86_64", zmtp_avx512))]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: a `target_feature` function only requires that the CPU has the
        // feature, and it was just detected (the answer is cached after the first).
        unsafe { by_sixteen::blocks(key, nonce, counter, out) };
        return true;
    }
    let _ = (key, nonce, counter, out);
    false
}

/// Salsa20 words side by side, one per block, with SSE2: four lanes.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_cvtsi128_si32, _mm_set1_epi32, _mm_setr_epi32,
        _mm_shuffle_epi32, _mm_slli_epi32, _mm_srli_epi32, _mm_xor_si128,
    };

    pub(super) type Lanes = __m128i;

    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn splat(word: u32) -> Lanes {
        _mm_set1_epi32(word as i32)
    }

    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn from_array(words: [u32; 4]) -> Lanes {
        let [a, b, c, d] = words.map(|w| w as i32);
        _mm_setr_epi32(a, b, c, d)
    }

    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn to_array(v: Lanes) -> [u32; 4] {
        [
            _mm_cvtsi128_si32(v) as u32,
            _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b01_01_01_01>(v)) as u32,
            _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b10_10_10_10>(v)) as u32,
            _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b11_11_11_11>(v)) as u32,
        ]
    }

    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn add(a: Lanes, b: Lanes) -> Lanes {
        _mm_add_epi32(a, b)
    }

    /// `x ^ (a <<< L)`, with `R == 32 - L`.
    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn xor_rotl<const L: i32, const R: i32>(x: Lanes, a: Lanes) -> Lanes {
        _mm_xor_si128(
            x,
            _mm_xor_si128(_mm_slli_epi32::<L>(a), _mm_srli_epi32::<R>(a)),
        )
    }
}

/// The same with AVX2: eight lanes.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi32, _mm256_castsi256_si128, _mm256_extracti128_si256,
        _mm256_set1_epi32, _mm256_setr_epi32, _mm256_slli_epi32, _mm256_srli_epi32,
        _mm256_xor_si256, _mm_cvtsi128_si32, _mm_shuffle_epi32,
    };

    pub(super) type Lanes = __m256i;

    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn splat(word: u32) -> Lanes {
        _mm256_set1_epi32(word as i32)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn from_array(words: [u32; 8]) -> Lanes {
        let [a, b, c, d, e, f, g, h] = words.map(|w| w as i32);
        _mm256_setr_epi32(a, b, c, d, e, f, g, h)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn to_array(v: Lanes) -> [u32; 8] {
        let low = _mm256_castsi256_si128(v);
        let high = _mm256_extracti128_si256::<1>(v);
        [
            _mm_cvtsi128_si32(low) as u32,
            _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b01_01_01_01>(low)) as u32,
            _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b10_10_10_10>(low)) as u32,
            _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b11_11_11_11>(low)) as u32,
            _mm_cvtsi128_si32(high) as u32,
            _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b01_01_01_01>(high)) as u32,
            _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b10_10_10_10>(high)) as u32,
            _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b11_11_11_11>(high)) as u32,
        ]
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn add(a: Lanes, b: Lanes) -> Lanes {
        _mm256_add_epi32(a, b)
    }

    /// `x ^ (a <<< L)`, with `R == 32 - L`.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn xor_rotl<const L: i32, const R: i32>(x: Lanes, a: Lanes) -> Lanes {
        _mm256_xor_si256(
            x,
            _mm256_xor_si256(_mm256_slli_epi32::<L>(a), _mm256_srli_epi32::<R>(a)),
        )
    }
}

/// Sixteen lanes with AVX-512, which rotates in one instruction. Its intrinsics are
/// stable since Rust 1.89, past the crate's minimum: `build.rs` sets `zmtp_avx512`
/// only for a compiler that has them.
#[cfg(all(target_arch = "x86_64", zmtp_avx512))]
#[allow(clippy::incompatible_msrv)]
mod avx512 {
    use std::arch::x86_64::{
        __m512i, _mm512_add_epi32, _mm512_extracti32x4_epi32, _mm512_rol_epi32, _mm512_set1_epi32,
        _mm512_setr_epi32, _mm512_xor_si512, _mm_cvtsi128_si32, _mm_shuffle_epi32,
    };

    pub(super) type Lanes = __m512i;

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn splat(word: u32) -> Lanes {
        _mm512_set1_epi32(word as i32)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn from_array(words: [u32; 16]) -> Lanes {
        let [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p] = words.map(|w| w as i32);
        _mm512_setr_epi32(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn to_array(v: Lanes) -> [u32; 16] {
        let quarters = [
            _mm512_extracti32x4_epi32::<0>(v),
            _mm512_extracti32x4_epi32::<1>(v),
            _mm512_extracti32x4_epi32::<2>(v),
            _mm512_extracti32x4_epi32::<3>(v),
        ];
        let mut words = [0u32; 16];
        for (four, quarter) in words.chunks_exact_mut(4).zip(quarters) {
            four[0] = _mm_cvtsi128_si32(quarter) as u32;
            four[1] = _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b01_01_01_01>(quarter)) as u32;
            four[2] = _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b10_10_10_10>(quarter)) as u32;
            four[3] = _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b11_11_11_11>(quarter)) as u32;
        }
        words
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn add(a: Lanes, b: Lanes) -> Lanes {
        _mm512_add_epi32(a, b)
    }

    /// `x ^ (a <<< L)` (`R`, the right shift of the other widths, is not needed).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn xor_rotl<const L: i32, const R: i32>(x: Lanes, a: Lanes) -> Lanes {
        _mm512_xor_si512(x, _mm512_rol_epi32::<L>(a))
    }
}

/// The same on `[u32; 4]`, for targets without x86-64's SSE2.
#[cfg(not(target_arch = "x86_64"))]
mod portable {
    pub(super) type Lanes = [u32; 4];

    pub(super) fn splat(word: u32) -> Lanes {
        [word; 4]
    }

    pub(super) fn from_array(words: [u32; 4]) -> Lanes {
        words
    }

    pub(super) fn to_array(v: Lanes) -> [u32; 4] {
        v
    }

    pub(super) fn add(a: Lanes, b: Lanes) -> Lanes {
        std::array::from_fn(|i| a[i].wrapping_add(b[i]))
    }

    /// `x ^ (a <<< L)`, with `R == 32 - L`.
    pub(super) fn xor_rotl<const L: i32, const R: i32>(x: Lanes, a: Lanes) -> Lanes {
        std::array::from_fn(|i| x[i] ^ a[i].rotate_left(L as u32))
    }
}

#[cfg(test)]
mod tests {
    use crypto_box::aead::generic_array::GenericArray;
    use proptest::prelude::*;
    use salsa20::cipher::StreamCipherSeek;

    use super::*;

    fn secret(seed: u8) -> SecretKey {
        SecretKey::from_bytes([seed; 32])
    }

    #[test]
    fn the_salsa20_stream_is_the_salsa20_crate_s() {
        let key = [7u8; 32];
        let nonce = [1, 2, 3, 4, 5, 6, 7, 8];
        let mut expected = [0u8; 1024];
        let mut reference = salsa20::Salsa20::new(&key.into(), &nonce.into());
        reference.seek(64u64 * 5);
        reference.apply_keystream(&mut expected);
        let mut got = [0u8; 1024];
        for (i, chunk) in got.chunks_mut(256).enumerate() {
            let mut blocks = [0u8; 256];
            salsa20_x4(
                &key,
                [le_word(&nonce[..4]), le_word(&nonce[4..])],
                5 + 4 * i as u64,
                &mut blocks,
            );
            chunk.copy_from_slice(&blocks);
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn eight_blocks_at_once_are_the_salsa20_crate_s() {
        let key = [3u8; 32];
        let nonce = [8, 7, 6, 5, 4, 3, 2, 1];
        let words = [le_word(&nonce[..4]), le_word(&nonce[4..])];
        let mut expected = [0u8; 512];
        let mut reference = salsa20::Salsa20::new(&key.into(), &nonce.into());
        reference.seek(64u64 * 12);
        reference.apply_keystream(&mut expected);
        let mut got = [0u8; 512];
        if salsa20_x8(&key, words, 12, &mut got) {
            assert_eq!(got, expected);
        } else {
            eprintln!("no AVX2 here: the eight-block code is not run");
        }
    }

    #[test]
    fn sixteen_blocks_at_once_are_the_salsa20_crate_s() {
        let key = [5u8; 32];
        let nonce = [1, 7, 2, 6, 3, 5, 4, 4];
        let words = [le_word(&nonce[..4]), le_word(&nonce[4..])];
        let mut expected = [0u8; 1024];
        let mut reference = salsa20::Salsa20::new(&key.into(), &nonce.into());
        reference.seek(64u64 * 20);
        reference.apply_keystream(&mut expected);
        let mut got = [0u8; 1024];
        if salsa20_x16(&key, words, 20, &mut got) {
            assert!(got == expected, "the sixteen-block stream differs");
        } else {
            eprintln!("no AVX-512 here: the sixteen-block code is not run");
        }
    }

    proptest! {
        /// Every box is crypto_box's, both ways, at every length around the
        /// block edges; a changed byte fails to open.
        #[test]
        fn boxes_are_crypto_box_s(len in 0usize..2400, seed in any::<u8>(), flip in any::<usize>()) {
            let ours = SalsaBox::new(secret(1).public_key().as_bytes(), &secret(seed | 1));
            let theirs = crypto_box::SalsaBox::new(&secret(1).public_key(), &secret(seed | 1));
            let nonce = GenericArray::from([seed; 24]);
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 + usize::from(seed)) as u8).collect();

            let mut a = plain.clone();
            let tag_a = ours.encrypt_in_place_detached(&nonce, b"", &mut a).unwrap(); // ok: test code
            let mut b = plain.clone();
            let tag_b = theirs.encrypt_in_place_detached(&nonce, b"", &mut b).unwrap(); // ok: test code
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(tag_a, tag_b);

            let mut opened = b.clone();
            ours.decrypt_in_place_detached(&nonce, b"", &mut opened, &tag_b).unwrap(); // ok: test code
            prop_assert_eq!(&opened, &plain);

            if !b.is_empty() {
                let mut tampered = b.clone();
                tampered[flip % b.len()] ^= 1;
                let refused = ours.decrypt_in_place_detached(&nonce, b"", &mut tampered, &tag_b);
                prop_assert!(refused.is_err());
            }
        }
    }
}
