//! The Python side of the test kit: the virtualenv and the peer process.

use std::time::Duration;

use testkit::PyPeer;

const ECHO: &str = r#"
import sys, zmq
print("READY", zmq.zmq_version(), sys.argv[1])
for line in sys.stdin:
    print("ECHO", line.rstrip("\n"))
"#;

#[tokio::test]
async fn peer_talks_by_lines_and_has_pyzmq() {
    let mut peer = PyPeer::spawn_code(ECHO, ["arg-1"]);
    let ready = peer.expect("READY").await;
    assert!(
        ready.starts_with("4.") && ready.ends_with(" arg-1"),
        "{ready}"
    );
    let big = "x".repeat(1 << 20);
    peer.send_line(big.clone());
    peer.send_line("second");
    assert_eq!(peer.expect("ECHO").await, big);
    assert_eq!(peer.expect("ECHO").await, "second");
    assert_eq!(peer.line_within(Duration::from_millis(50)).await, None);
}

#[tokio::test]
#[should_panic(expected = "boom from python")]
async fn early_exit_panics_with_the_peer_stderr() {
    let mut peer = PyPeer::spawn_code("raise SystemExit('boom from python')", [""; 0]);
    peer.line().await;
}

#[tokio::test]
#[should_panic(expected = "no output line within")]
async fn silence_panics_after_the_timeout() {
    let mut peer = PyPeer::spawn_code("import time; time.sleep(60)", [""; 0])
        .with_timeout(Duration::from_millis(500));
    peer.line().await;
}

#[tokio::test]
async fn dropping_the_peer_kills_it() {
    let mut peer = PyPeer::spawn_code(
        "import os, time; print(os.getpid()); time.sleep(60)",
        [""; 0],
    );
    let pid = peer.line().await;
    assert_eq!(pid, peer.pid().to_string());
    drop(peer);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} still exists after drop"
    );
}
