//! Replays every fuzz corpus file (and any crash artifacts) through the fuzz target
//! bodies, so the seeds and past findings stay regression tests in a plain
//! `cargo test` without cargo-fuzz or a nightly toolchain.

#[path = "../../fuzz/src/lib.rs"]
mod fuzz_bodies;

#[test]
fn frame_decoder_corpus() {
    testkit::corpus::replay("frame_decoder", fuzz_bodies::frame_decoder);
}

#[test]
fn greeting_corpus() {
    testkit::corpus::replay("greeting", fuzz_bodies::greeting);
}

#[test]
fn command_corpus() {
    testkit::corpus::replay("command", fuzz_bodies::command);
}

#[test]
fn handshake_corpus() {
    testkit::corpus::replay("handshake", fuzz_bodies::handshake);
}

/// Found by the `frame_decoder` target: with no size limit (`FrameCodec::new(u64::MAX)`,
/// i.e. `SocketOptions::max_message_size(u64::MAX)`), a LONG frame declaring a size
/// within 9 of `u64::MAX` used to overflow `header + size` in `FrameCodec::decode`.
#[test]
fn frame_size_near_u64_max_is_an_error_not_a_panic() {
    fuzz_bodies::frame_decoder(&[0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
}
