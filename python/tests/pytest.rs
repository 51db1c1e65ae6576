//! The Python package's test suite, run by `cargo test`: builds the `zmdp` wheel
//! with maturin (into `target/python-wheels`, compiled in `target/python-build` so
//! the nested cargo never waits for this one's lock), installs it into the test
//! virtual environment (testkit's, with pyzmq, majortomo, maturin and pytest), and
//! runs `pytest python/tests`. Fails, never skips, when any step cannot run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

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

/// The wheel, built once per run (both tests use it).
fn wheel() -> PathBuf {
    static WHEEL: OnceLock<PathBuf> = OnceLock::new();
    WHEEL
        .get_or_init(|| {
            let python = testkit::python();
            let root = testkit::workspace_root();
            let wheels = root.join("target").join("python-wheels");
            let _ = std::fs::remove_dir_all(&wheels);
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
                    .env("PATH", path_with(&python)),
            );
            std::fs::read_dir(&wheels)
                .expect("maturin wrote no wheel directory")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.extension().is_some_and(|x| x == "whl"))
                .expect("maturin wrote no wheel")
        })
        .clone()
}

/// PATH with `python`'s directory first (its console scripts, maturin).
fn path_with(python: &Path) -> String {
    let bin = python.parent().expect("a venv's bin directory");
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn python_suite() {
    let python = testkit::python();
    let root = testkit::workspace_root();
    run(
        "pip install the wheel",
        testkit::pip_install(&python)
            .args(["--force-reinstall", "--no-deps"])
            .arg(wheel()),
    );
    run(
        "pytest",
        Command::new(&python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(root.join("python").join("tests"))
            .current_dir(root.join("python").join("tests"))
            .env("PATH", path_with(&python)),
    );
}

/// The ```python blocks of the README's Python section, in order.
fn readme_python_blocks() -> Vec<String> {
    let readme =
        std::fs::read_to_string(testkit::workspace_root().join("README.md")).expect("README.md");
    let start = readme
        .find("## Python: `pip install`")
        .expect("the README's Python section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    section
        .split("```python\n")
        .skip(1)
        .map(|block| block[..block.find("```").expect("a closed block")].to_owned())
        .collect()
}

/// The README's quick start, unchanged, in a fresh virtual environment with only
/// the wheel installed (pip takes its dependency, msgpack, from PyPI): the
/// `mdp-broker` console script, the worker, then the client.
#[test]
fn the_readme_quick_start_runs_from_the_wheel_in_a_fresh_venv() {
    let blocks = readme_python_blocks();
    let [worker, client] = &blocks[..] else {
        panic!("the README's Python section has a worker and a client block: {blocks:?}");
    };
    let dir = testkit::workspace_root()
        .join("target")
        .join("python-fresh-venv");
    let _ = std::fs::remove_dir_all(&dir);
    run(
        "python3 -m venv",
        Command::new("python3").args(["-m", "venv"]).arg(&dir),
    );
    let python = dir.join("bin").join("python");
    run(
        "pip install the wheel",
        testkit::pip_install(&python).arg(wheel()),
    );
    let broker = Child(
        Command::new(dir.join("bin").join("mdp-broker"))
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the mdp-broker console script"),
    );
    let worker = Child(
        Command::new(&python)
            .args(["-c", worker])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("the README's worker"),
    );
    // Run from the venv's directory: from the crate's, `import zmdp` would find
    // the source package instead of the installed wheel.
    let out = Command::new(&python)
        .args(["-c", client])
        .current_dir(&dir)
        .output()
        .expect("the README's client");
    drop((worker, broker));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the README's client failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"13"), "{stdout}");
    assert_eq!(lines.last(), Some(&"42"), "{stdout}");
    assert!(lines[1].starts_with("[1, 2, 3"), "{stdout}");
}

/// A child process killed on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
