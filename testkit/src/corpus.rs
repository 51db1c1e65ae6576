//! Replaying fuzz corpora in plain `cargo test`, so seeds and past findings stay
//! regression tests without cargo-fuzz or a nightly toolchain.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The workspace's `fuzz/` directory.
pub fn fuzz_dir() -> PathBuf {
    crate::workspace_root().join("fuzz")
}

/// The files directly in `dir`, sorted; panics if `dir` cannot be read.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// The contents of every file of `target`'s corpus.
pub fn corpus(target: &str) -> Vec<Vec<u8>> {
    files_in(&fuzz_dir().join("corpus").join(target))
        .iter()
        .map(|path| std::fs::read(path).expect("read corpus file"))
        .collect()
}

/// Runs `body` on every file of the target's corpus (which must exist and not be
/// empty) and of its artifacts directory if there is one; fails listing every file
/// that panicked.
pub fn replay(target: &str, body: fn(&[u8])) {
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
