//! The Python virtual environment for interop tests, created once per checkout
//! (under `target/interop-venv.lock`, see [`crate::setup`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::setup;

/// What `pip install` gets. Changing this list rebuilds the environment.
pub const PYTHON_PACKAGES: &[&str] = &["pyzmq", "msgpack", "majortomo", "six", "maturin", "pytest"];

/// Modules that must import once the environment is built.
const IMPORT_CHECK: &str =
    "import zmq, msgpack, majortomo, six, maturin, pytest; print(zmq.zmq_version())";

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
    let hint = "is python3 with venv installed?";
    setup::ensure(dir, lock_path, &PYTHON_PACKAGES.join(" "), |dir| {
        setup::run(Command::new("python3").arg("-m").arg("venv").arg(dir), hint)?;
        setup::run(pip_install(&python).args(PYTHON_PACKAGES), hint)?;
        setup::run(Command::new(&python).args(["-c", IMPORT_CHECK]), hint)
    })?;
    Ok(python)
}

/// `python -m pip install`, quiet and never asking: add what to install.
pub fn pip_install(python: &Path) -> Command {
    let mut command = Command::new(python);
    command.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-input",
        "--disable-pip-version-check",
    ]);
    command
}
