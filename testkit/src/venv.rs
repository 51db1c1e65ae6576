//! The Python virtual environment for interop tests, created once per checkout.
//!
//! Several test binaries (and threads) may ask for it at the same time: creation runs
//! under an exclusive `flock` on `target/interop-venv.lock` (released by the OS even
//! if the process dies), and the environment counts as ready only once the marker
//! file, written last, holds the current package list.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// What `pip install` gets. Changing this list rebuilds the environment.
pub const PYTHON_PACKAGES: &[&str] = &["pyzmq", "msgpack", "majortomo", "six"];

/// Modules that must import once the environment is built.
const IMPORT_CHECK: &str = "import zmq, msgpack, majortomo, six; print(zmq.zmq_version())";

const MARKER: &str = ".testkit-ready";

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("testkit lives inside the workspace")
        .to_path_buf()
}

/// The Python interpreter of `<workspace>/target/interop-venv`, creating the virtual
/// environment (`python3 -m venv` + `pip install pyzmq msgpack majortomo six`) on
/// first use.
///
/// # Panics
///
/// When the environment cannot be created: the message names the failing command and
/// shows its output. The first failure is remembered, so later calls in the same
/// process panic with it at once instead of running pip again.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let python = PYTHON.get_or_init(|| {
        let target = workspace_root().join("target");
        ensure_venv(
            &target.join("interop-venv"),
            &target.join("interop-venv.lock"),
        )
    });
    match python {
        Ok(path) => path.clone(),
        Err(e) => panic!("interop virtualenv setup failed: {e}"),
    }
}

fn ensure_venv(dir: &Path, lock_path: &Path) -> Result<PathBuf, String> {
    let python = dir.join("bin").join("python");
    let marker = dir.join(MARKER);
    let wanted = PYTHON_PACKAGES.join(" ");
    let ready = || fs::read_to_string(&marker).is_ok_and(|m| m == wanted) && python.exists();
    if ready() {
        return Ok(python);
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
    // Blocks while another process builds the environment; released when `lock` is
    // dropped or the process dies.
    fs4::FileExt::lock(&lock).map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    if ready() {
        return Ok(python);
    }

    if dir.exists() {
        fs::remove_dir_all(dir)
            .map_err(|e| format!("cannot remove stale virtualenv {}: {e}", dir.display()))?;
    }
    run(Command::new("python3").arg("-m").arg("venv").arg(dir))?;
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-input",
            "--disable-pip-version-check",
        ])
        .args(PYTHON_PACKAGES))?;
    run(Command::new(&python).args(["-c", IMPORT_CHECK]))?;

    let tmp = dir.join(format!("{MARKER}.tmp"));
    fs::write(&tmp, &wanted).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    fs::rename(&tmp, &marker).map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    drop(lock);
    Ok(python)
}

/// Runs a setup command; an error names it and carries its output.
fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run `{shown}`: {e} (is python3 with venv installed?)"))?;
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
