//! The torture and chaos programs in their short modes, against the real broker:
//! each must exit 0, which means the broker stayed up, the side client was served,
//! nothing was lost and the broker's RSS stayed under its bound. The programs'
//! reports are printed (`cargo test -- --nocapture` shows them).
//!
//! The broker binary is the `mdp-broker` that `cargo test --workspace` built beside
//! `mdp-torture`; when only this package is tested, it is built here first.

use std::path::PathBuf;
use std::process::Command;

const TORTURE: &str = env!("CARGO_BIN_EXE_mdp-torture");

/// The `mdp-broker` beside `mdp-torture`, built if missing.
fn broker() -> PathBuf {
    let broker = PathBuf::from(TORTURE).with_file_name("mdp-broker");
    if !broker.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let profile = broker
            .parent()
            .expect("mdp-torture lives in target/PROFILE/");
        let target_dir = profile
            .parent()
            .expect("mdp-torture lives in target/PROFILE/");
        let mut build = Command::new(cargo);
        build.args(["build", "-q", "-p", "mdp-broker", "--bin", "mdp-broker"]);
        build.arg("--target-dir").arg(target_dir);
        if profile.ends_with("release") {
            build.arg("--release");
        }
        let status = build
            .status()
            .expect("cannot run cargo to build mdp-broker");
        assert!(status.success(), "building mdp-broker failed");
    }
    broker
}

/// Runs `mdp-torture ARGS`, shows its output, and returns its RESULT lines.
fn run(args: &[&str]) -> Vec<String> {
    let output = Command::new(TORTURE)
        .args(args)
        .arg("--broker")
        .arg(broker())
        .output()
        .expect("cannot run mdp-torture");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("--- mdp-torture {args:?}\n{stdout}{stderr}");
    assert!(
        output.status.success(),
        "mdp-torture {args:?} failed ({}):\n{stderr}",
        output.status
    );
    stdout
        .lines()
        .filter(|line| line.starts_with("RESULT "))
        .map(str::to_owned)
        .collect()
}

/// `key=value` from a RESULT line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

fn number(line: &str, key: &str) -> u64 {
    field(line, key)
        .parse()
        .unwrap_or_else(|e| panic!("{key} in {line}: {e}"))
}

/// Every request sent came back with its own body.
fn assert_nothing_lost(result: &str) {
    assert_eq!(number(result, "lost"), 0);
    assert_eq!(number(result, "wrong"), 0);
    assert_eq!(number(result, "sent"), number(result, "answered"));
    assert!(number(result, "answered") > 0);
}

#[test]
fn torture_short_mode_the_broker_survives_and_serves_the_side_client() {
    let results = run(&["torture"]);
    let [result] = &results[..] else {
        panic!("one RESULT line expected, got {results:?}");
    };
    assert_eq!(field(result, "broker_alive"), "yes");
    assert_eq!(field(result, "side_lost"), "0");
    assert!(number(result, "side_served") >= 50);
    assert!(number(result, "bad_connections") > 0);
    assert!(number(result, "slowloris") > 0);
    let (peak, bound) = (number(result, "peak_kib"), number(result, "bound_kib"));
    assert!(
        peak > 0 && peak < bound,
        "peak {peak} KiB, bound {bound} KiB"
    );
}

#[test]
fn chaos_short_mode_loses_nothing() {
    let results = run(&["chaos"]);
    let [result] = &results[..] else {
        panic!("one RESULT line expected, got {results:?}");
    };
    assert_nothing_lost(result);
    assert!(number(result, "kills") > 0);
    assert_eq!(number(result, "restarts"), 1);
}

#[test]
fn cluster_short_mode_loses_nothing_when_a_broker_is_killed() {
    let results = run(&["cluster"]);
    let [result] = &results[..] else {
        panic!("one RESULT line expected, got {results:?}");
    };
    assert_nothing_lost(result);
    assert_eq!(number(result, "kills"), 1);
}
