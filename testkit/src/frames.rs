//! Multipart messages as one text line: each frame in lowercase hex, frames joined by
//! `,`. An empty frame is an empty string, so `"61,,62"` is `["a", "", "b"]` and `""`
//! is one empty frame (a message always has at least one frame).
//!
//! Python reads it with `[bytes.fromhex(f) for f in line.split(",")]` and writes it
//! with `",".join(f.hex() for f in frames)`.

/// Hex of `bytes`, lowercase.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Bytes of a hex string.
///
/// # Panics
///
/// On an odd length or a non-hex digit.
pub fn from_hex(hex: &str) -> Vec<u8> {
    fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("not a hex digit: {:?}", char::from(c)),
        }
    }
    let hex = hex.as_bytes();
    assert!(hex.len() % 2 == 0, "odd-length hex string");
    hex.chunks_exact(2)
        .map(|pair| digit(pair[0]) << 4 | digit(pair[1]))
        .collect()
}

/// Encodes frames as one line (without the newline).
pub fn encode<I>(frames: I) -> String
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    frames
        .into_iter()
        .map(|f| to_hex(f.as_ref()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Decodes a line made by [`encode`] (or its Python twin).
pub fn decode(line: &str) -> Vec<Vec<u8>> {
    line.trim_end_matches(['\r', '\n'])
        .split(',')
        .map(from_hex)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let frames: Vec<Vec<u8>> = vec![b"a".to_vec(), vec![], vec![0, 255, 16]];
        let line = encode(&frames);
        assert_eq!(line, "61,,00ff10");
        assert_eq!(decode(&line), frames);
        assert_eq!(decode(""), vec![Vec::<u8>::new()]);
    }
}
