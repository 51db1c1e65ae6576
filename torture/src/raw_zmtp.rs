//! Raw ZMTP bytes for peers that misbehave below the socket layer: greetings,
//! handshakes and frame headers, valid and not, and the byte streams the broker
//! must refuse.

use crate::junk::Junk;

/// A ZMTP 3.x greeting (as client) with the given major version and mechanism.
pub fn greeting(major: u8, mechanism: &[u8]) -> Vec<u8> {
    let mut greeting = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, major, 1];
    let mut name = [0u8; 20];
    name[..mechanism.len()].copy_from_slice(mechanism);
    greeting.extend_from_slice(&name);
    greeting.push(0); // as-server: no
    greeting.extend_from_slice(&[0; 31]);
    greeting
}

/// A READY command frame announcing `socket_type`.
pub fn ready(socket_type: &str) -> Vec<u8> {
    let mut body = vec![5];
    body.extend_from_slice(b"READY");
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&u32::try_from(socket_type.len()).unwrap_or(0).to_be_bytes());
    body.extend_from_slice(socket_type.as_bytes());
    let mut frame = vec![0x04, u8::try_from(body.len()).unwrap_or(0)];
    frame.extend(body);
    frame
}

/// A valid NULL handshake as a DEALER, then `then`.
pub fn handshake_then(then: &[u8]) -> Vec<u8> {
    let mut bytes = greeting(3, b"NULL");
    bytes.extend(ready("DEALER"));
    bytes.extend_from_slice(then);
    bytes
}

/// A PLAIN HELLO command (user "u", password "p").
fn hello_plain() -> Vec<u8> {
    let body = [&[5u8][..], b"HELLO", &[1, b'u', 1, b'p']].concat();
    [vec![0x04, u8::try_from(body.len()).unwrap_or(0)], body].concat()
}

/// A READY command whose Socket-Type property declares a 1000-byte value in a
/// frame that holds 6.
fn truncated_metadata() -> Vec<u8> {
    let mut body = vec![5];
    body.extend_from_slice(b"READY");
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&1000u32.to_be_bytes());
    body.extend_from_slice(b"DEALER");
    [vec![0x04, u8::try_from(body.len()).unwrap_or(0)], body].concat()
}

/// The header of a long frame: `flags` (the long bit is added) and a declared size.
pub fn long_frame(flags: u8, size: u64) -> Vec<u8> {
    let mut header = vec![flags | 0x02];
    header.extend_from_slice(&size.to_be_bytes());
    header
}

/// Byte streams that are not ZMTP, or stop being ZMTP somewhere; the broker must
/// close every connection that sends one.
pub fn bad_streams(junk: &mut Junk) -> Vec<(&'static str, Vec<u8>)> {
    let mut garbage = junk.bytes(4096);
    garbage[0] = 0; // not the greeting's 0xFF
    let mut bad_signature = greeting(3, b"NULL");
    bad_signature[9] = 0x7E;
    let mut bad_command = greeting(3, b"NULL");
    bad_command.extend(long_frame(0x04, 1 << 63));
    vec![
        ("garbage", garbage),
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        ("a bad greeting signature", bad_signature),
        ("a ZMTP 1 greeting", greeting(1, b"NULL")),
        ("a ZMTP 2 greeting", greeting(2, b"NULL")),
        (
            "a PLAIN greeting to a NULL broker",
            [greeting(3, b"PLAIN"), hello_plain()].concat(),
        ),
        ("an unknown mechanism", greeting(3, b"BOGUS")),
        ("a 2^63-byte command in the handshake", bad_command),
        (
            "a message before READY",
            [greeting(3, b"NULL"), vec![0x00, 1, b'x']].concat(),
        ),
        (
            "a truncated READY",
            [greeting(3, b"NULL"), vec![0x04, 3, 5, b'R', b'E']].concat(),
        ),
        (
            "READY metadata whose value runs past the frame",
            [greeting(3, b"NULL"), truncated_metadata()].concat(),
        ),
        (
            "a READY with the wrong socket type",
            [greeting(3, b"NULL"), ready("PUB")].concat(),
        ),
        ("a 2^63-byte frame", handshake_then(&long_frame(0, 1 << 63))),
        (
            "a u64::MAX-byte frame with MORE",
            handshake_then(&long_frame(0x01, u64::MAX)),
        ),
        (
            "a frame one byte over the broker's limit",
            handshake_then(&long_frame(0, (16 << 20) + 1)),
        ),
        (
            "garbage after the handshake",
            handshake_then(&junk.bytes(1024)),
        ),
    ]
}
