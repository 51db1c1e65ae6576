//! Tells the code whether this compiler has the AVX-512 intrinsics (stable since
//! Rust 1.89), so that CURVE's sixteen-block Salsa20 is built where it can be and
//! the crate still builds on its minimum Rust version without it.

use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(zmtp_avx512)");
    println!("cargo::rerun-if-env-changed=RUSTC");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let minor = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|version| {
            // "rustc 1.95.0 (59807616e 2026-04-14)"
            let number = version.split_whitespace().nth(1)?.to_owned();
            number.split('.').nth(1)?.parse::<u32>().ok()
        });
    if minor.is_some_and(|minor| minor >= 89) {
        println!("cargo::rustc-cfg=zmtp_avx512");
    }
}
