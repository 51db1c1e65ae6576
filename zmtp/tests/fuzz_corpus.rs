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

#[test]
fn connection_corpus() {
    testkit::corpus::replay("connection", fuzz_bodies::connection);
}

#[test]
fn security_corpus() {
    testkit::corpus::replay("security", fuzz_bodies::security);
}

/// The `security` seeds, made afresh (the CURVE ones hold new random keys each
/// time), pass the body's checks and reach the states they are meant to reach: the
/// valid PLAIN and CURVE sequences get through the handshake, the others fail where
/// they should.
#[test]
fn security_seeds_reach_their_states() {
    for seed in fuzz_bodies::security_target::seeds() {
        let outcome = fuzz_bodies::security_target::outcome(&seed.data);
        assert!(
            outcome.contains(seed.expect),
            "seed {}: expected {:?} in {outcome}",
            seed.name,
            seed.expect
        );
    }
}

/// Writes the `security` seeds to `fuzz/corpus/security/seed-<name>` (run with
/// `--ignored`; then `cargo fuzz cmin security` from `fuzz/`).
#[test]
#[ignore = "writes the security seed corpus"]
fn write_security_seeds() {
    let dir = testkit::corpus::fuzz_dir().join("corpus").join("security");
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    for seed in fuzz_bodies::security_target::seeds() {
        std::fs::write(dir.join(format!("seed-{}", seed.name)), &seed.data).expect("write a seed");
    }
}

/// Found by the `frame_decoder` target: with no size limit (`FrameCodec::new(u64::MAX)`,
/// i.e. `SocketOptions::max_message_size(u64::MAX)`), a LONG frame declaring a size
/// within 9 of `u64::MAX` used to overflow `header + size` in `FrameCodec::decode`.
#[test]
fn frame_size_near_u64_max_is_an_error_not_a_panic() {
    fuzz_bodies::frame_decoder(&[0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
}
