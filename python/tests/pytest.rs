//! The Python package's test suite, run by `cargo test`: builds the `zmdp` wheel
//! with maturin (into `target/python-wheels`, compiled in `target/python-build` so
//! the nested cargo never waits for this one's lock), installs it into the test
//! virtual environment (testkit's, with pyzmq, majortomo, maturin and pytest), and
//! runs `pytest python/tests`. Fails, never skips, when any step cannot run.

use std::path::Path;
use std::process::Command;

fn run(what: &str, command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {command:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("--- {what}\n{text}");
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
}

#[test]
fn python_suite() {
    let python = testkit::python();
    let venv_bin = python
        .parent()
        .expect("the venv's bin directory")
        .to_path_buf();
    let root = testkit::workspace_root();
    let wheels = root.join("target").join("python-wheels");
    let _ = std::fs::remove_dir_all(&wheels);
    let path = format!(
        "{}:{}",
        venv_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run(
        "maturin build",
        Command::new(&python)
            .args(["-m", "maturin", "build", "--manifest-path"])
            .arg(root.join("python").join("Cargo.toml"))
            .arg("--out")
            .arg(&wheels)
            .arg("--interpreter")
            .arg(&python)
            .env("CARGO_TARGET_DIR", root.join("target").join("python-build"))
            .env("PATH", &path),
    );
    let wheel = std::fs::read_dir(&wheels)
        .expect("maturin wrote no wheel directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .expect("maturin wrote no wheel");
    run(
        "pip install the wheel",
        testkit::pip_install(&python)
            .args(["--force-reinstall", "--no-deps"])
            .arg(&wheel),
    );
    run(
        "pytest",
        Command::new(&python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(root.join("python").join("tests"))
            .current_dir(Path::new(&root).join("python").join("tests"))
            .env("PATH", &path),
    );
}
