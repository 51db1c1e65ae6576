//! Node.js with the `zeromq` npm package (v6, prebuilt: no compiler needed) for the
//! Node interop tests: `npm install` of `examples/node/package.json` into
//! `target/interop-node`, once per checkout (see [`crate::setup`]).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::{setup, workspace_root};

/// The example's directory: its scripts and package.json.
pub fn node_examples() -> PathBuf {
    workspace_root().join("examples").join("node")
}

/// A `node` command that finds the example's packages (`NODE_PATH`), installing them
/// on first use.
///
/// # Panics
///
/// When Node or npm is missing or the install fails, with the command's output:
/// Node tests never skip silently. Install Node 18 or later (`apt-get install
/// nodejs npm`).
pub fn node() -> Command {
    static MODULES: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let modules = MODULES.get_or_init(|| {
        let target = workspace_root().join("target");
        let dir = target.join("interop-node");
        let package = node_examples().join("package.json");
        let wanted = std::fs::read_to_string(&package)
            .map_err(|e| format!("cannot read {}: {e}", package.display()))?;
        let hint = "is Node.js with npm installed? apt-get install nodejs npm";
        setup::ensure(&dir, &target.join("interop-node.lock"), &wanted, |dir| {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            std::fs::copy(&package, dir.join("package.json"))
                .map_err(|e| format!("cannot copy {}: {e}", package.display()))?;
            setup::run(
                Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                    .current_dir(dir),
                hint,
            )?;
            setup::run(
                Command::new("node")
                    .args(["-e", "require('zeromq')"])
                    .env("NODE_PATH", dir.join("node_modules")),
                hint,
            )
        })?;
        Ok(dir.join("node_modules"))
    });
    match modules {
        Ok(modules) => {
            let mut command = Command::new("node");
            command.env("NODE_PATH", modules);
            command
        }
        Err(e) => panic!("Node.js setup failed: {e}"),
    }
}
