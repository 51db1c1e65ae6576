//! Small helpers shared across modules.

/// Renders bytes for humans: UTF-8 text as is, anything else as `0x` + hex.
pub fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
        _ => {
            let mut out = String::with_capacity(2 + 2 * bytes.len());
            out.push_str("0x");
            for b in bytes {
                out.push_str(&format!("{b:02x}"));
            }
            out
        }
    }
}
