//! The CURVE mechanism (RFC 26 CurveZMQ, as libzmq 4.3 implements it), sans-IO.
//!
//! The client sends HELLO, the server answers WELCOME (with a cookie only it can
//! open), the client sends INITIATE (cookie, vouch, its metadata), the server answers
//! READY (its metadata) or ERROR. After that every message travels as a MESSAGE
//! command boxed with the short-term keys: see [`CurveCodec`].
//!
//! Wire layouts (command bodies, name-length byte included), checked against libzmq's
//! `curve_client_tools.hpp`, `curve_server.cpp` and `curve_mechanism_base.cpp`:
//!
//! | command  | layout | size |
//! |----------|--------|------|
//! | HELLO    | `\5HELLO 01 00 72×00 C' nonce(8) Box[64×00](C'→S)` | 200 |
//! | WELCOME  | `\7WELCOME nonce(16) Box[S' cookie(96)](S→C')` | 168 |
//! | INITIATE | `\x08INITIATE cookie(96) nonce(8) Box[C vouch(96) metadata](C'→S')` | ≥ 257 |
//! | READY    | `\5READY nonce(8) Box[metadata](S'→C')` | ≥ 30 |
//! | MESSAGE  | `\7MESSAGE nonce(8) Box[flags data](C'↔S')` | ≥ 33 |
//!
//! cookie = `nonce(16) SecretBox[C' s'](K)` with a fresh K per WELCOME; vouch =
//! `nonce(16) Box[C' S](C→S')`. A box is the NaCl "easy" form: 16-byte MAC, then
//! ciphertext. 8-byte nonces are a per-direction counter (big-endian) after a 16-byte
//! prefix; it starts at 1 and carries on from the handshake into MESSAGE, and the
//! receiver wants each one greater than the last. 16-byte nonces are random after an
//! 8-byte prefix.

mod client;
mod codec;
mod poly1305;
mod salsa_box;
mod server;

#[cfg(test)]
#[path = "../../tests/curve.rs"]
pub(crate) mod tests;

pub use client::CurveClient;
pub use codec::{CurveCodec, CurveOpener, CurveSealer, FLAG_COMMAND, FLAG_MORE};
pub use server::{Authorize, CurveServer};

use bytes::{BufMut, BytesMut};
use crypto_box::aead::AeadInPlace;
use crypto_box::SecretKey;

use rand::rngs::OsRng;
use rand::RngCore;
use salsa_box::SalsaBox;

use crate::proto::frame::encode_header;
use crate::proto::handshake::HandshakeError;
use crate::proto::z85::{self, Z85Error};

/// Size of a CURVE public or secret key.
pub const KEY_LEN: usize = 32;
/// Size of a box's authenticator, which precedes the ciphertext.
const MAC_LEN: usize = 16;

/// Exact size of a HELLO command body.
pub(crate) const HELLO_LEN: usize = 200;
/// Exact size of a WELCOME command body.
pub(crate) const WELCOME_LEN: usize = 168;
/// Smallest INITIATE command body (no metadata).
pub(crate) const INITIATE_MIN_LEN: usize = 257;
/// Smallest READY command body (no metadata).
pub(crate) const READY_MIN_LEN: usize = 30;
/// Smallest MESSAGE command body (flags byte, no data).
pub(crate) const MESSAGE_MIN_LEN: usize = 33;
/// How much bigger a frame gets boxed in MESSAGE.
pub(crate) const MESSAGE_OVERHEAD: u64 = MESSAGE_MIN_LEN as u64;

const HELLO_NONCE: &[u8; 16] = b"CurveZMQHELLO---";
const WELCOME_NONCE: &[u8; 8] = b"WELCOME-";
const COOKIE_NONCE: &[u8; 8] = b"COOKIE--";
const INITIATE_NONCE: &[u8; 16] = b"CurveZMQINITIATE";
const VOUCH_NONCE: &[u8; 8] = b"VOUCH---";
const READY_NONCE: &[u8; 16] = b"CurveZMQREADY---";
const MESSAGE_NONCE_CLIENT: &[u8; 16] = b"CurveZMQMESSAGEC";
const MESSAGE_NONCE_SERVER: &[u8; 16] = b"CurveZMQMESSAGES";

/// A long-term CURVE key pair (X25519).
#[derive(Clone, PartialEq, Eq)]
pub struct CurveKeyPair {
    /// The public key, given to peers.
    pub public: [u8; KEY_LEN],
    /// The secret key.
    pub secret: [u8; KEY_LEN],
}

impl std::fmt::Debug for CurveKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurveKeyPair")
            .field("public", &z85::encode_key(&self.public))
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The secret key is wiped from memory when the pair is dropped.
impl Drop for CurveKeyPair {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

impl CurveKeyPair {
    /// A fresh random key pair (libzmq `zmq_curve_keypair`).
    pub fn generate() -> CurveKeyPair {
        let mut secret = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut secret);
        CurveKeyPair::from_secret(secret)
    }

    /// The key pair of a secret key (libzmq `zmq_curve_public`).
    pub fn from_secret(secret: [u8; KEY_LEN]) -> CurveKeyPair {
        let public = SecretKey::from_bytes(secret).public_key().to_bytes();
        CurveKeyPair { public, secret }
    }

    /// The key pair of a 40-character Z85 secret key.
    pub fn from_z85_secret(secret: &str) -> Result<CurveKeyPair, Z85Error> {
        Ok(CurveKeyPair::from_secret(z85::decode_key(secret)?))
    }

    /// The public key as 40 Z85 characters.
    pub fn public_z85(&self) -> String {
        z85::encode_key(&self.public)
    }

    /// The secret key as 40 Z85 characters.
    pub fn secret_z85(&self) -> String {
        z85::encode_key(&self.secret)
    }
}

/// Client-side CURVE settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurveClientConfig {
    /// Our long-term key pair (C, c).
    pub keys: CurveKeyPair,
    /// The server's long-term public key (S).
    pub server_public: [u8; KEY_LEN],
}

/// Server-side CURVE settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurveServerConfig {
    /// Our long-term key pair (S, s).
    pub keys: CurveKeyPair,
}

/// A box between `public` and `secret` (X25519 then XSalsa20-Poly1305). Refuses a
/// public key of small order, whose shared secret would be known to anyone.
fn salsa_box(public: &[u8; KEY_LEN], secret: &SecretKey) -> Result<SalsaBox, HandshakeError> {
    if has_small_order(public) {
        return Err(HandshakeError::Crypto(
            "a public key of small order (its shared secret would be known to all)".into(),
        ));
    }
    Ok(SalsaBox::new(public, secret))
}

/// Whether an X25519 public key is one of the points of small order (or their
/// non-canonical encodings), with which any secret key gives a predictable shared
/// secret. The same list libsodium refuses (`has_small_order` in
/// crypto_scalarmult/curve25519/ref10), compared with the top bit ignored as X25519
/// ignores it.
pub(crate) fn has_small_order(public: &[u8; KEY_LEN]) -> bool {
    const SMALL_ORDER: [[u8; KEY_LEN]; 7] = [
        // 0 (order 4)
        [0; KEY_LEN],
        // 1 (order 1)
        [
            1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0,
        ],
        // 325606250916557431795983626356110631294008115727848805560023387167927233504 (order 8)
        [
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
            0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
            0x5f, 0x49, 0xb8, 0x00,
        ],
        // 39382357235489614581723060781553021112529911719440698176882885853963445705823
        // (order 8)
        [
            0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83,
            0xef, 0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd,
            0xd0, 0x9f, 0x11, 0x57,
        ],
        // p - 1 (order 2)
        [
            0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0x7f,
        ],
        // p (= 0)
        [
            0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0x7f,
        ],
        // p + 1 (= 1)
        [
            0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0x7f,
        ],
    ];
    let mut masked = *public;
    masked[KEY_LEN - 1] &= 0x7f;
    SMALL_ORDER.contains(&masked)
}

/// A 24-byte nonce: a 16-byte prefix and an 8-byte big-endian counter.
fn short_nonce(prefix: &[u8; 16], counter: u64) -> crypto_box::Nonce {
    let mut nonce = [0u8; 24];
    nonce[..16].copy_from_slice(prefix);
    nonce[16..].copy_from_slice(&counter.to_be_bytes());
    nonce.into()
}

/// A 24-byte nonce: an 8-byte prefix and 16 bytes sent alongside.
fn long_nonce(prefix: &[u8; 8], tail: &[u8; 16]) -> crypto_box::Nonce {
    let mut nonce = [0u8; 24];
    nonce[..8].copy_from_slice(prefix);
    nonce[8..].copy_from_slice(tail);
    nonce.into()
}

/// 16 random bytes for a long nonce.
fn random_tail() -> [u8; 16] {
    let mut tail = [0u8; 16];
    OsRng.fill_bytes(&mut tail);
    tail
}

/// Appends `MAC ciphertext` of `plaintext` to `out`, encrypting in place there.
fn seal_into<A>(
    cipher: &A,
    nonce: &crypto_box::Nonce,
    plaintext: &[u8],
    out: &mut BytesMut,
) -> Result<(), HandshakeError>
where
    A: AeadInPlace<NonceSize = crypto_box::aead::consts::U24>,
{
    let start = out.len();
    out.put_bytes(0, MAC_LEN);
    out.put_slice(plaintext);
    match cipher.encrypt_in_place_detached(nonce, b"", &mut out[start + MAC_LEN..]) {
        Ok(tag) => {
            out[start..start + MAC_LEN].copy_from_slice(&tag);
            Ok(())
        }
        Err(_) => {
            out.truncate(start);
            Err(HandshakeError::Crypto("cannot encrypt".into()))
        }
    }
}

/// Opens a `MAC ciphertext` box; `what` names it in the error.
fn open<A>(
    cipher: &A,
    nonce: &crypto_box::Nonce,
    boxed: &[u8],
    what: &str,
) -> Result<BytesMut, HandshakeError>
where
    A: AeadInPlace<NonceSize = crypto_box::aead::consts::U24>,
{
    open_into(cipher, nonce, boxed, what, |ciphertext| {
        BytesMut::from(ciphertext)
    })
}

/// [`open`], the ciphertext copied (to be decrypted in place) by `copy`.
fn open_into<A>(
    cipher: &A,
    nonce: &crypto_box::Nonce,
    boxed: &[u8],
    what: &str,
    copy: impl FnOnce(&[u8]) -> BytesMut,
) -> Result<BytesMut, HandshakeError>
where
    A: AeadInPlace<NonceSize = crypto_box::aead::consts::U24>,
{
    let bad = || HandshakeError::Crypto(format!("cannot open {what} box"));
    if boxed.len() < MAC_LEN {
        return Err(bad());
    }
    let (tag, ciphertext) = boxed.split_at(MAC_LEN);
    let mut plaintext = copy(ciphertext);
    cipher
        .decrypt_in_place_detached(nonce, b"", &mut plaintext, tag.into())
        .map_err(|_| bad())?;
    Ok(plaintext)
}

/// The name of a command body (`name-len name ...`), if it has a whole one.
fn command_name(body: &[u8]) -> Option<&[u8]> {
    let len = usize::from(*body.first()?);
    body.get(1..1 + len)
}

/// Writes a command frame header then `body`.
fn write_command_frame(body: &[u8], out: &mut BytesMut) {
    encode_header(out, false, true, body.len());
    out.put_slice(body);
}

/// Reads an 8-byte big-endian counter at `at` (the caller checked the length).
fn read_u64(body: &[u8], at: usize) -> Result<u64, HandshakeError> {
    body.get(at..at + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| HandshakeError::Crypto("command too short for its nonce".into()))
}

/// Copies `N` bytes at `at` (the caller checked the length).
fn read_array<const N: usize>(body: &[u8], at: usize) -> Result<[u8; N], HandshakeError> {
    body.get(at..at + N)
        .and_then(|b| <[u8; N]>::try_from(b).ok())
        .ok_or_else(|| HandshakeError::Crypto("command too short".into()))
}
