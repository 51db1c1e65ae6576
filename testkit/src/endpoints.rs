//! Fresh endpoints for tests that run in parallel.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read, and
/// released). Prefer binding port 0 directly; to restart a server on the same address
/// while peers keep reconnecting, use [`restartable_endpoint`].
pub fn free_tcp_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// `tcp://127.0.0.1:PORT` for a [`free_tcp_port`].
pub fn tcp_endpoint() -> String {
    format!("tcp://127.0.0.1:{}", free_tcp_port())
}

/// A free loopback endpoint whose port is below the kernel's ephemeral port range.
///
/// The broker is restarted on the same port while clients and workers keep
/// reconnecting to it. A port from the ephemeral range (what binding port 0 gives)
/// can be chosen by the kernel as the *source* port of one of those connects while
/// nothing listens, and TCP then connects that socket to itself: the port is taken
/// and the restarted broker cannot bind. No connect takes a port below the range.
pub fn restartable_endpoint() -> String {
    format!("tcp://127.0.0.1:{}", restartable_port(&["127.0.0.1"]))
}

/// A port below the ephemeral range (see [`restartable_endpoint`]) that is free on
/// every one of `hosts` (loopback addresses such as 127.0.0.2, for several brokers
/// on one machine with one port).
pub fn restartable_port(hosts: &[&str]) -> u16 {
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let floor = if low > 12_000 { 10_000 } else { 1024 };
    let span = u32::from(low.saturating_sub(floor).max(1));
    let seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    for i in 0..span {
        let port = floor + u16::try_from((seed.wrapping_add(i)) % span).unwrap_or(0);
        if hosts
            .iter()
            .all(|host| std::net::TcpListener::bind((*host, port)).is_ok())
        {
            return port;
        }
    }
    panic!("no free port in {floor}..{low}");
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
