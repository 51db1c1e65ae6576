//! Replays every fuzz corpus file (and any crash artifacts) through the fuzz target
//! bodies, so the seeds and past findings stay regression tests in a plain
//! `cargo test` without cargo-fuzz or a nightly toolchain.

#[path = "../../fuzz/src/lib.rs"]
mod fuzz_bodies;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `body` on every file of the target's corpus (which must exist and not be
/// empty) and of its artifacts directory if there is one; fails listing every file
/// that panicked.
fn replay(target: &str, body: fn(&[u8])) {
    let corpus = fuzz_dir().join("corpus").join(target);
    let mut files = files_in(&corpus);
    assert!(
        !files.is_empty(),
        "fuzz corpus {} is empty",
        corpus.display()
    );
    let artifacts = fuzz_dir().join("artifacts").join(target);
    if artifacts.is_dir() {
        files.extend(files_in(&artifacts));
    }
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("read corpus file");
            catch_unwind(AssertUnwindSafe(|| body(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs failed: {failed:?}",
        failed.len(),
        files.len()
    );
}

#[test]
fn frame_decoder_corpus() {
    replay("frame_decoder", fuzz_bodies::frame_decoder);
}

#[test]
fn greeting_corpus() {
    replay("greeting", fuzz_bodies::greeting);
}

#[test]
fn command_corpus() {
    replay("command", fuzz_bodies::command);
}

#[test]
fn handshake_corpus() {
    replay("handshake", fuzz_bodies::handshake);
}

/// Found by the `frame_decoder` target: with no size limit (`FrameCodec::new(u64::MAX)`,
/// i.e. `SocketOptions::max_message_size(u64::MAX)`), a LONG frame declaring a size
/// within 9 of `u64::MAX` used to overflow `header + size` in `FrameCodec::decode`.
#[test]
fn frame_size_near_u64_max_is_an_error_not_a_panic() {
    fuzz_bodies::frame_decoder(&[0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
}
