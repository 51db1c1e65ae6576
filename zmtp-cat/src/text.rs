//! The line format: one message per line, frames joined by a separator, each frame
//! either printable text or `0x` followed by hex.
//!
//! Printing is chosen so that every printed line reads back as the same message:
//! a frame is printed as text only when it is valid UTF-8 without control characters,
//! does not contain the separator and does not itself start with `0x`; anything else
//! is printed as hex, and neither does text that contains the separator or ends with
//! the start of it. Separators may not contain `x`, hex digits or line breaks, so a
//! hex field never runs into one.

use bytes::Bytes;
use zmtp::Message;

/// Why an input field could not be turned into bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    /// A `0x…` field with an odd number of hex digits.
    OddHex {
        /// The field as given.
        field: String,
    },
    /// A `0x…` field with a character that is not a hex digit.
    NotHex {
        /// The field as given.
        field: String,
    },
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldError::OddHex { field } => {
                write!(f, "{field:?}: odd number of hex digits after 0x")
            }
            FieldError::NotHex { field } => write!(f, "{field:?}: not a hex digit after 0x"),
        }
    }
}

impl std::error::Error for FieldError {}

/// Checks that `separator` can be used: not empty, and none of `x`, a hex digit or a
/// line break (those would make hex fields or lines ambiguous).
pub fn check_separator(separator: &str) -> Result<(), String> {
    if separator.is_empty() {
        return Err("the separator may not be empty".into());
    }
    if let Some(c) = separator
        .chars()
        .find(|c| c.is_ascii_hexdigit() || matches!(c, 'x' | '\n' | '\r'))
    {
        return Err(format!(
            "the separator may not contain {c:?} (x, hex digits and line breaks are reserved)"
        ));
    }
    Ok(())
}

/// Renders one frame: text as is when that reads back unambiguously, else `0x` + hex.
/// An empty frame is an empty string. `separator` must pass [`check_separator`].
pub fn encode_frame(frame: &[u8], separator: &str) -> String {
    match std::str::from_utf8(frame) {
        Ok(text) if is_plain(text, separator) => text.to_string(),
        _ => to_hex(frame),
    }
}

/// Whether `text` reads back as itself between separators.
fn is_plain(text: &str, separator: &str) -> bool {
    !text.chars().any(char::is_control)
        && !text.starts_with("0x")
        && !text.contains(separator)
        // "a:" followed by the separator "::" would split as "a" and ":…".
        && !separator
            .char_indices()
            .skip(1)
            .any(|(at, _)| text.ends_with(&separator[..at]))
}

/// Renders a whole message as one line (without the newline).
pub fn encode_message(msg: &Message, separator: &str) -> String {
    msg.iter()
        .map(|frame| encode_frame(frame, separator))
        .collect::<Vec<_>>()
        .join(separator)
}

/// Parses one field: `0x` + hex is raw bytes (`0x` alone is an empty frame), anything
/// else is taken byte for byte.
pub fn decode_field(field: &[u8]) -> Result<Bytes, FieldError> {
    let Some(hex) = field.strip_prefix(b"0x") else {
        return Ok(Bytes::copy_from_slice(field));
    };
    let shown = || String::from_utf8_lossy(field).into_owned();
    if hex.len() % 2 != 0 {
        return Err(FieldError::OddHex { field: shown() });
    }
    hex.chunks_exact(2)
        .map(|pair| match (hex_digit(pair[0]), hex_digit(pair[1])) {
            (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
            _ => Err(FieldError::NotHex { field: shown() }),
        })
        .collect::<Result<Vec<u8>, _>>()
        .map(Bytes::from)
}

/// Parses one input line (without its line ending) into a message: fields split by
/// `separator`, each decoded by [`decode_field`]. An empty line is one empty frame.
pub fn decode_line(line: &[u8], separator: &str) -> Result<Message, FieldError> {
    split(line, separator.as_bytes())
        .into_iter()
        .map(decode_field)
        .collect()
}

/// Removes a trailing `\n` or `\r\n`.
pub fn trim_line_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn split<'a>(line: &'a [u8], separator: &[u8]) -> Vec<&'a [u8]> {
    if separator.is_empty() {
        return vec![line];
    }
    let mut fields = Vec::new();
    let mut rest = line;
    while let Some(at) = rest
        .windows(separator.len())
        .position(|window| window == separator)
    {
        fields.push(&rest[..at]);
        rest = &rest[at + separator.len()..];
    }
    fields.push(rest);
    fields
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 + 2 * bytes.len());
    out.push_str("0x");
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(msg: &Message) -> String {
        encode_message(msg, "|")
    }

    #[test]
    fn text_frames_print_as_text() {
        assert_eq!(line(&Message::from(["hello", "wörld", ""])), "hello|wörld|");
        assert_eq!(line(&Message::from([""])), "");
    }

    #[test]
    fn binary_and_ambiguous_frames_print_as_hex() {
        assert_eq!(encode_frame(&[0x00, 0x6b, 0x8b, 0x45], "|"), "0x006b8b45");
        assert_eq!(encode_frame(b"tab\there", "|"), "0x7461620968657265");
        assert_eq!(encode_frame(b"a|b", "|"), "0x617c62");
        assert_eq!(encode_frame(b"a|b", ","), "a|b");
        assert_eq!(encode_frame(b"0xff", "|"), "0x30786666");
        assert_eq!(encode_frame(&[0xff, 0xfe], "|"), "0xfffe");
        assert_eq!(encode_frame(b"a:", "::"), "0x613a");
        assert_eq!(encode_frame(b":a", "::"), ":a");
    }

    #[test]
    fn separators_checked() {
        for ok in ["|", "::", " ", "\t", ";", "--"] {
            assert_eq!(check_separator(ok), Ok(()), "{ok:?}");
        }
        for bad in ["", "x", "a", "0", "|F|", "\n"] {
            assert!(check_separator(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fields_decode() {
        assert_eq!(
            decode_line(b"a|0x00ff|", "|"),
            Ok(Message::from(vec![
                Bytes::from_static(b"a"),
                Bytes::from_static(&[0x00, 0xff]),
                Bytes::new(),
            ]))
        );
        assert_eq!(decode_line(b"", "|"), Ok(Message::from([""])));
        assert_eq!(decode_line(b"0x", "|"), Ok(Message::from([""])));
        assert_eq!(
            decode_line(b"0xABcd", "|"),
            Ok(Message::from(vec![vec![0xab, 0xcd]]))
        );
        assert_eq!(decode_line(b"a::b", "::"), Ok(Message::from(["a", "b"])));
        assert_eq!(decode_line(b"x0x1", "|"), Ok(Message::from(["x0x1"])));
    }

    #[test]
    fn bad_hex_is_an_error() {
        assert!(matches!(
            decode_line(b"ok|0x123", "|"),
            Err(FieldError::OddHex { .. })
        ));
        assert!(matches!(
            decode_line(b"0xzz", "|"),
            Err(FieldError::NotHex { .. })
        ));
        assert!(decode_field(b"0x0g")
            .unwrap_err()
            .to_string()
            .contains("0x0g"));
    }

    #[test]
    fn line_endings_trimmed() {
        assert_eq!(trim_line_ending(b"a\r\n"), b"a");
        assert_eq!(trim_line_ending(b"a\n"), b"a");
        assert_eq!(trim_line_ending(b"a"), b"a");
    }

    /// A small deterministic generator: the crate has no property-testing dependency,
    /// so the round-trip property is checked over many pseudo-random messages.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> usize {
            usize::try_from(self.next() % n).unwrap_or(0)
        }
    }

    #[test]
    fn round_trip_property() {
        // Alphabet biased towards the tricky cases: separators, "0x", controls, UTF-8.
        let pieces: [&[u8]; 12] = [
            b"a",
            b"|",
            b"0",
            b"x",
            b"0x",
            b"\n",
            b"\0",
            b"\xff",
            "é".as_bytes(),
            b" ",
            b":",
            b"\x7f",
        ];
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for separator in ["|", "::", ",", " ", ": ", "|:|"] {
            for _ in 0..2000 {
                let frames = 1 + rng.below(4);
                let msg: Message = (0..frames)
                    .map(|_| {
                        (0..rng.below(6))
                            .flat_map(|_| pieces[rng.below(pieces.len() as u64)].iter().copied())
                            .collect::<Vec<u8>>()
                    })
                    .collect();
                let printed = encode_message(&msg, separator);
                assert!(!printed.contains('\n'), "{printed:?}");
                assert_eq!(
                    decode_line(printed.as_bytes(), separator).as_ref(),
                    Ok(&msg),
                    "{printed:?} with separator {separator:?}"
                );
            }
        }
    }

    #[test]
    fn hex_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let hex = to_hex(&all);
        assert_eq!(decode_field(hex.as_bytes()).unwrap(), all);
        assert_eq!(
            decode_field(hex.to_uppercase().replace("0X", "0x").as_bytes()).unwrap(),
            all
        );
    }
}
