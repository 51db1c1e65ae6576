//! Tests of `proto::frame`.

use super::*;
use bytes::BufMut;
use proptest::prelude::*;

fn decode_all(codec: &mut FrameCodec, bytes: &[u8]) -> Result<Vec<Frame>, FrameError> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(f) = codec.decode(&mut buf)? {
        out.push(f);
    }
    Ok(out)
}

#[test]
fn short_and_long_frames() {
    let mut c = FrameCodec::new(u64::MAX);
    let frames = decode_all(
        &mut c,
        &[
            0x01, 2, b'h', b'i', 0x02, 0, 0, 0, 0, 0, 0, 0, 1, b'x', 0x04, 0,
        ],
    )
    .unwrap();
    assert_eq!(frames[0], Frame::data("hi", true));
    assert_eq!(frames[1], Frame::data("x", false)); // long form, small size: accepted
    assert_eq!(frames[2], Frame::command(""));
}

#[test]
fn reserved_bits_ignored() {
    let mut c = FrameCodec::new(100);
    let f = decode_all(&mut c, &[0xF8 | FLAG_MORE, 1, b'a']).unwrap();
    assert_eq!(f, vec![Frame::data("a", true)]);
}

#[test]
fn oversize_refused_before_allocating() {
    let mut c = FrameCodec::new(1024);
    let mut buf = BytesMut::from(&[0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF][..]);
    let cap = buf.capacity();
    assert_eq!(
        c.decode(&mut buf),
        Err(FrameError::TooLarge {
            size: u64::MAX,
            max: 1024
        })
    );
    assert_eq!(buf.capacity(), cap);
}

#[test]
fn huge_declared_size_reserves_a_bounded_amount() {
    let mut c = FrameCodec::new(u64::MAX);
    let mut buf = BytesMut::from(&[0x02, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF][..]);
    assert_eq!(c.decode(&mut buf), Ok(None));
    assert!(buf.capacity() <= MAX_RESERVE + 64);
}

#[test]
fn sizes_near_the_top_of_u64_do_not_overflow() {
    // Found by fuzzing: with no limit, 2 + (u64::MAX) overflowed.
    let mut c = FrameCodec::new(u64::MAX);
    let mut buf = BytesMut::from(&[0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF][..]);
    assert!(matches!(
        c.decode(&mut buf),
        Err(FrameError::TooLarge { .. })
    ));
}

#[test]
fn command_with_more_refused() {
    let mut c = FrameCodec::new(100);
    assert_eq!(
        decode_all(&mut c, &[0x05, 0]),
        Err(FrameError::CommandWithMore)
    );
}

#[test]
fn sizes_at_the_short_long_boundary() {
    for len in [0usize, 1, 255, 256, 70_000] {
        let msg = Message::from(vec![vec![7u8; len]]);
        let mut buf = BytesMut::new();
        encode_message(&msg, &mut buf);
        let header = if len <= 255 { 2 } else { 9 };
        assert_eq!(buf.len(), header + len);
        let frames = decode_all(&mut FrameCodec::new(u64::MAX), &buf).unwrap();
        assert_eq!(frames[0].body.len(), len);
    }
}

proptest! {
    #[test]
    fn round_trip_byte_by_byte(frames in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..600), 1..5)) {
        let msg: Message = frames.clone().into_iter().collect();
        let mut wire = BytesMut::new();
        encode_message(&msg, &mut wire);
        let mut codec = FrameCodec::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for b in wire.iter() {
            buf.put_u8(*b);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                out.push(f);
            }
        }
        prop_assert_eq!(out.len(), frames.len());
        for (i, (f, body)) in out.iter().zip(frames.iter()).enumerate() {
            prop_assert_eq!(&f.body[..], &body[..]);
            prop_assert_eq!(f.more, i + 1 < frames.len());
            prop_assert!(!f.command);
        }
    }

    #[test]
    fn arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut codec = FrameCodec::new(256);
        let _ = decode_all(&mut codec, &bytes);
    }
}
