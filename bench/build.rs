//! Compiles the C half of each native anchor and links the library it drives.
//!
//! libzmq: src/libzmq/anchor.c against the system's libzmq, found with `pkg-config
//! libzmq` (Debian: `apt-get install libzmq3-dev pkg-config`). Nothing is vendored or
//! downloaded: the anchor measures the libzmq a user of this machine would get.

use std::process::Command;

fn pkg_config(args: &[&str]) -> Vec<String> {
    let output = Command::new("pkg-config")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run pkg-config ({e}); install pkg-config"));
    if !output.status.success() {
        panic!(
            "`pkg-config {}` failed: {}\ninstall libzmq's headers (Debian: libzmq3-dev)",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/libzmq/anchor.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let mut build = cc::Build::new();
    build
        .file("src/libzmq/anchor.c")
        .opt_level(2)
        .warnings(true)
        .extra_warnings(true);
    for flag in pkg_config(&["--cflags-only-I", "libzmq"]) {
        if let Some(dir) = flag.strip_prefix("-I") {
            build.include(dir);
        }
    }
    build.compile("anchor_libzmq");

    for flag in pkg_config(&["--libs", "libzmq"]) {
        if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(lib) = flag.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={lib}");
        }
    }
}
