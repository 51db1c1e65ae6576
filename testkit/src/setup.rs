//! Environments built once per checkout (the Python virtualenv, the Node modules):
//! several test binaries (and threads) may ask for one at the same time, so building
//! runs under an exclusive `flock` on a lock file (released by the OS even if the
//! process dies), and an environment counts as ready only once its marker file,
//! written last, holds what it was built from.

use std::fs::{self, OpenOptions};
use std::path::Path;
use std::process::Command;

const MARKER: &str = ".testkit-ready";

/// Makes sure `dir` was built from `wanted` (a package list, a package.json...):
/// if its marker says otherwise, removes it and runs `build(dir)` under `lock_path`.
pub fn ensure(
    dir: &Path,
    lock_path: &Path,
    wanted: &str,
    build: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    let marker = dir.join(MARKER);
    let ready = || fs::read_to_string(&marker).is_ok_and(|m| m == wanted);
    if ready() {
        return Ok(());
    }
    if let Some(parent) = lock_path.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path)
        .map_err(|e| format!("cannot open lock file {}: {e}", lock_path.display()))?;
    // Blocks while another process builds; released when `lock` is dropped or the
    // process dies.
    fs4::FileExt::lock(&lock).map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    if ready() {
        return Ok(());
    }
    if dir.exists() {
        fs::remove_dir_all(dir)
            .map_err(|e| format!("cannot remove stale {}: {e}", dir.display()))?;
    }
    build(dir)?;
    let tmp = dir.join(format!("{MARKER}.tmp"));
    fs::write(&tmp, wanted).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    fs::rename(&tmp, &marker).map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    drop(lock);
    Ok(())
}

/// Runs a setup command; an error names it, says what may be missing (`hint`) and
/// carries its output.
pub fn run(cmd: &mut Command, hint: &str) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run `{shown}`: {e} ({hint})"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "`{shown}` failed ({}):\n--- stderr ---\n{}\n--- stdout ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
    ))
}
