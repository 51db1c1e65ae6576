//! The bodies of the fuzz targets, shared with `zmtp/tests/fuzz_corpus.rs`, which
//! replays the corpora through them in a plain `cargo test`.
//!
//! This file is also compiled as a module of zmtp's tests, so it may only use
//! `zmtp`, `bytes` and `tokio-util`.
//!
//! Every body feeds its input in several chunkings (all at once, byte by byte, and in
//! pseudo-random pieces derived from the input) and checks that the outcome does not
//! depend on how the bytes arrived, besides never panicking.
//!
//! The `security` target's body is in `security.rs` (declared here for both).
//! The `mdp` and `broker` targets' bodies are in `mdp.rs` and `broker.rs`, declared
//! here only outside `cfg(test)`: zmtp's tests have no `mdp` crate, so
//! `mdp/tests/fuzz_corpus.rs` and `mdp/tests/broker_fuzz_corpus.rs` include those
//! files by path instead.

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::Decoder;
use zmtp::proto::frame::encode_header;
use zmtp::proto::greeting::GREETING_LEN;
use zmtp::proto::{
    Command, Frame, FrameCodec, FrameError, Greeting, Handshake, HandshakeConfig, HandshakeError,
    Metadata, PeerInfo, SocketType,
};

/// The `mdp` target's body and input encoding (not in zmtp's tests: see above).
#[cfg(not(test))]
#[path = "mdp.rs"]
pub mod mdp_target;
#[cfg(not(test))]
pub use mdp_target::mdp;

/// The `broker` target's body and input encoding (not in zmtp's tests either).
#[cfg(not(test))]
#[path = "broker.rs"]
pub mod broker_target;
#[cfg(not(test))]
pub use broker_target::broker;

/// The `peering` target's body and input encoding (not in zmtp's tests either).
#[cfg(not(test))]
#[path = "peering.rs"]
pub mod peering_target;
#[cfg(not(test))]
pub use peering_target::peering;

/// The `security` target's body, input encoding and seeds (PLAIN and CURVE
/// handshakes, the CURVE MESSAGE codec); in zmtp's tests too.
#[path = "security.rs"]
pub mod security_target;
pub use security_target::security;

/// The `connection` target's body and input encoding (the connection core after the
/// handshake); in zmtp's tests too.
#[path = "connection.rs"]
pub mod connection_target;
pub use connection_target::connection;

/// Ways of cutting an input into the pieces a transport might deliver.
fn chunkings(data: &[u8]) -> [Vec<&[u8]>; 3] {
    let whole = vec![data];
    let bytewise = data.chunks(1).collect();
    // Pseudo-random piece sizes of 1..=40, seeded by the input itself (FNV-1a), so a
    // given input is always cut the same way.
    let mut state = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) | 1;
    let mut mixed = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let size = usize::try_from(state % 40).unwrap_or(0) + 1;
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        mixed.push(piece);
        rest = tail;
    }
    [whole, bytewise, mixed]
}

/// What decoding a byte stream into frames produced.
#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    frames: Vec<Frame>,
    error: Option<FrameError>,
    /// Bytes not decoded: an incomplete frame at the end, or everything from the
    /// frame that failed on.
    leftover: usize,
}

fn decode_pieces(pieces: &[&[u8]], max_frame_size: u64) -> Decoded {
    let mut codec = FrameCodec::new(max_frame_size);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut unread: usize = pieces.iter().map(|p| p.len()).sum();
    for piece in pieces {
        buf.extend_from_slice(piece);
        unread -= piece.len();
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(
                        frame.body.len() as u64 <= max_frame_size,
                        "frame over the maximum"
                    );
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(error) => {
                    return Decoded {
                        frames,
                        error: Some(error),
                        leftover: buf.len() + unread,
                    }
                }
            }
        }
    }
    Decoded {
        frames,
        error: None,
        leftover: buf.len(),
    }
}

/// `FrameCodec`: decoding never panics, does not depend on chunking, and what it
/// decodes re-encodes to bytes that decode to the same frames.
pub fn frame_decoder(data: &[u8]) {
    for max in [u64::MAX, 300, 16, 0] {
        let [whole, bytewise, mixed] = chunkings(data);
        let reference = decode_pieces(&whole, max);
        assert_eq!(decode_pieces(&bytewise, max), reference, "byte by byte");
        assert_eq!(decode_pieces(&mixed, max), reference, "in pieces");

        let mut wire = BytesMut::new();
        for frame in &reference.frames {
            encode_header(&mut wire, frame.more, frame.command, frame.body.len());
            wire.put_slice(&frame.body);
        }
        let again = decode_pieces(&[&wire], max);
        assert_eq!(again.frames, reference.frames, "re-encoded frames differ");
        assert_eq!((again.error, again.leftover), (None, 0));
    }
}

/// `Greeting::check` on every prefix: an early verdict never changes as more bytes
/// arrive, 64 bytes always give a verdict, and a parsed greeting re-encodes to one
/// that parses the same.
pub fn greeting(data: &[u8]) {
    let data = &data[..data.len().min(2 * GREETING_LEN)];
    let mut verdict = None;
    for n in 0..=data.len() {
        let result = Greeting::check(&data[..n]);
        match (&verdict, &result) {
            (None, Ok(None)) => assert!(n < GREETING_LEN, "no verdict on {n} bytes"),
            (None, _) => verdict = Some(result),
            (Some(first), _) => assert_eq!(&result, first, "verdict changed at {n} bytes"),
        }
    }
    if let Some(Ok(Some(parsed))) = verdict {
        let mut encoded = Vec::new();
        parsed.encode(&mut encoded);
        assert_eq!(encoded.len(), GREETING_LEN);
        assert_eq!(Greeting::check(&encoded), Ok(Some(parsed)));
    }
}

/// `Command::parse` and `Metadata::parse`: whatever parses re-encodes to bytes that
/// parse equal (also through a command frame and the frame codec).
pub fn command(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(cmd) = Command::parse(bytes.clone()) {
        let mut body = BytesMut::new();
        cmd.encode_body(&mut body);
        assert_eq!(Command::parse(body.freeze()).as_ref(), Ok(&cmd), "re-parse");

        let mut wire = BytesMut::new();
        cmd.encode_frame(&mut wire);
        let frame = FrameCodec::new(u64::MAX)
            .decode(&mut wire)
            .ok()
            .flatten()
            .expect("an encoded command decodes as a frame");
        assert!(frame.command && !frame.more && wire.is_empty());
        assert_eq!(Command::parse(frame.body).as_ref(), Ok(&cmd), "via a frame");
    }
    if let Ok(metadata) = Metadata::parse(bytes) {
        let mut encoded = BytesMut::new();
        metadata.encode(&mut encoded);
        assert_eq!(Metadata::parse(encoded.freeze()), Ok(metadata));
    }
}

/// How a handshake fed some bytes ended.
#[derive(Debug, PartialEq, Eq)]
struct HandshakeEnd {
    result: Result<Option<PeerInfo>, HandshakeError>,
    /// Bytes not consumed by the handshake (left for the frame decoder, or unread).
    leftover: usize,
}

fn handshake_pieces(pieces: &[&[u8]]) -> HandshakeEnd {
    let mut handshake =
        Handshake::new(HandshakeConfig::new(SocketType::Dealer).identity(&b"fuzz"[..]));
    let first = handshake
        .take_output()
        .expect("our greeting goes out at once");
    assert_eq!(first.len(), GREETING_LEN);
    let mut input = BytesMut::new();
    let mut fed = 0;
    for piece in pieces {
        input.extend_from_slice(piece);
        fed += piece.len();
        let result = handshake.handle_input(&mut input);
        let _ = handshake.take_output();
        if !matches!(result, Ok(None)) {
            let unread: usize = pieces.iter().map(|p| p.len()).sum::<usize>() - fed;
            return HandshakeEnd {
                result,
                leftover: input.len() + unread,
            };
        }
    }
    HandshakeEnd {
        result: Ok(None),
        leftover: input.len(),
    }
}

/// A DEALER's handshake fed the peer's side: never panics and ends the same way
/// however the bytes are cut.
pub fn handshake(data: &[u8]) {
    let [whole, bytewise, mixed] = chunkings(data);
    let reference = handshake_pieces(&whole);
    assert_eq!(handshake_pieces(&bytewise), reference, "byte by byte");
    assert_eq!(handshake_pieces(&mixed), reference, "in pieces");
}
