//! Z85, the ZeroMQ base-85 text encoding (RFC 32), used for CURVE keys.
//!
//! Every 4 bytes (a big-endian u32) become 5 printable characters; a 32-byte key is
//! 40 characters. Like libzmq's `zmq_z85_encode`/`zmq_z85_decode`, the input length
//! must be a multiple of 4 (encode) or 5 (decode); there is no padding. Decoding
//! refuses characters outside the alphabet and 5-character groups whose value does not
//! fit 32 bits (libzmq 4.3 does the same).

/// Length of a 32-byte key in Z85.
pub const KEY_TEXT_LEN: usize = 40;

/// The Z85 alphabet: digit value `i` is `ALPHABET[i]`.
const ALPHABET: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// Why some bytes or text could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Z85Error {
    /// Binary input whose length is not a multiple of 4.
    #[error("Z85 can only encode a multiple of 4 bytes, got {0}")]
    BinaryLength(usize),
    /// Text whose length is not a multiple of 5 (or, for a key, not 40).
    #[error("bad Z85 text length {0}")]
    TextLength(usize),
    /// A character outside the Z85 alphabet.
    #[error("invalid Z85 character at position {0}")]
    InvalidChar(usize),
    /// A 5-character group whose value exceeds 2^32 - 1.
    #[error("Z85 group at position {0} overflows 32 bits")]
    Overflow(usize),
}

/// The value of a Z85 character, if it is one.
fn digit(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|i| i as u32) // ok: i < 85
}

/// Encodes bytes (a multiple of 4 of them) as Z85 text.
pub fn encode(data: &[u8]) -> Result<String, Z85Error> {
    if data.len() % 4 != 0 {
        return Err(Z85Error::BinaryLength(data.len()));
    }
    let mut text = String::with_capacity(data.len() / 4 * 5);
    for chunk in data.chunks_exact(4) {
        let mut value = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let mut group = [0u8; 5];
        for slot in group.iter_mut().rev() {
            *slot = ALPHABET[(value % 85) as usize]; // ok: < 85
            value /= 85;
        }
        text.extend(group.iter().map(|&b| char::from(b)));
    }
    Ok(text)
}

/// Decodes Z85 text (a multiple of 5 characters) into bytes.
pub fn decode(text: &str) -> Result<Vec<u8>, Z85Error> {
    let text = text.as_bytes();
    if text.len() % 5 != 0 {
        return Err(Z85Error::TextLength(text.len()));
    }
    let mut data = Vec::with_capacity(text.len() / 5 * 4);
    for (group_index, group) in text.chunks_exact(5).enumerate() {
        let start = group_index * 5;
        let mut value: u64 = 0;
        for (i, &c) in group.iter().enumerate() {
            let d = digit(c).ok_or(Z85Error::InvalidChar(start + i))?;
            value = value * 85 + u64::from(d);
        }
        let value = u32::try_from(value).map_err(|_| Z85Error::Overflow(start))?;
        data.extend_from_slice(&value.to_be_bytes());
    }
    Ok(data)
}

/// Encodes a 32-byte key as 40 characters.
pub fn encode_key(key: &[u8; 32]) -> String {
    // 32 is a multiple of 4, so this cannot fail; fall back to empty just in case.
    encode(key).unwrap_or_default()
}

/// Decodes a 40-character key.
pub fn decode_key(text: &str) -> Result<[u8; 32], Z85Error> {
    if text.len() != KEY_TEXT_LEN {
        return Err(Z85Error::TextLength(text.len()));
    }
    let bytes = decode(text)?;
    let mut key = [0u8; 32];
    if bytes.len() != key.len() {
        return Err(Z85Error::TextLength(text.len()));
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

#[cfg(test)]
#[path = "tests/z85.rs"]
mod tests;
