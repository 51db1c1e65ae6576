//! `zmtp-keygen` prints or writes key pairs that load back as a working pair.

use std::process::Command;

use zmtp::{certificate, CurveKeyPair};

fn keygen(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_zmtp-keygen"))
        .args(args)
        .output()
        .expect("zmtp-keygen runs")
}

#[test]
fn prints_a_matching_pair() {
    let out = keygen(&[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "== CURVE PUBLIC KEY ==");
    assert_eq!(lines[2], "== CURVE SECRET KEY ==");
    let pair = CurveKeyPair::from_z85_secret(lines[3]).unwrap();
    assert_eq!(pair.public_z85(), lines[1]);
}

#[test]
fn writes_certificates_and_never_overwrites() {
    let dir = std::env::temp_dir().join(format!("zmtp-keygen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("broker");
    let out = keygen(&[base.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    let pair = certificate::load_secret_key(dir.join("broker.key_secret")).unwrap();
    assert_eq!(printed.trim(), pair.public_z85());
    let allowed = zmtp::auth::CurveKeyList::load(dir.join("broker.key")).unwrap();
    assert!(allowed.contains(&pair.public));

    let again = keygen(&[base.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    std::fs::remove_dir_all(&dir).unwrap();
}
