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

/// Moves every element of `from` to the back of `into`; when `into` is empty the two
/// buffers are just swapped, so the steady state copies and allocates nothing.
pub(crate) fn take_all<T>(
    from: &mut std::collections::VecDeque<T>,
    into: &mut std::collections::VecDeque<T>,
) {
    if into.is_empty() {
        std::mem::swap(from, into);
    } else {
        into.append(from);
    }
}
