//! Fresh endpoints for tests that run in parallel.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read, and
/// released). Prefer binding port 0 directly; use this when a fixed port is needed,
/// e.g. to restart a server on the same address.
pub fn free_tcp_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// `tcp://127.0.0.1:PORT` for a [`free_tcp_port`].
pub fn tcp_endpoint() -> String {
    format!("tcp://127.0.0.1:{}", free_tcp_port())
}

/// A unique socket path under the temp dir (`<tmp>/tk-<pid>-<n>-<tag>.ipc`), with any
/// stale file at that path removed. `tag` should be short: socket paths are limited to
/// about 100 bytes.
pub fn ipc_path(tag: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("tk-{}-{n}-{tag}.ipc", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// `ipc://` + a fresh [`ipc_path`].
pub fn ipc_endpoint(tag: &str) -> String {
    format!("ipc://{}", ipc_path(tag).display())
}
