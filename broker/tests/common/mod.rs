//! What the broker's integration tests share: the real `mdp-broker` binary as a
//! child process (mdp-torture's `BrokerProcess`), started on an endpoint and killed
//! on drop, and bounded waits.

// Each test crate includes this module and uses only part of it.
#![allow(dead_code)]

use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use mdp::Client;
use testkit::PyPeer;

/// The broker binary's path, as cargo built it for these tests.
pub const BROKER: &str = env!("CARGO_BIN_EXE_mdp-broker");

pub use mdp_torture::broker_process::BrokerProcess;

/// Starting the broker that cargo built for these tests.
pub trait StartBroker: Sized {
    /// The broker on a fresh port with default settings.
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// The broker on a fresh port, with extra command-line arguments.
    fn start_with(extra: &[&str]) -> Self {
        Self::start_on("tcp://127.0.0.1:0", extra)
    }

    /// The broker bound to `bind`, with extra command-line arguments.
    ///
    /// # Panics
    ///
    /// If it cannot be started or does not print its endpoint.
    fn start_on(bind: &str, extra: &[&str]) -> Self {
        Self::try_start_on(bind, extra).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`StartBroker::start_on`] that reports a failure (for instance a port still
    /// in use) instead of panicking.
    fn try_start_on(bind: &str, extra: &[&str]) -> Result<Self, String>;
}

impl StartBroker for BrokerProcess {
    fn try_start_on(bind: &str, extra: &[&str]) -> Result<Self, String> {
        BrokerProcess::launch(Path::new(BROKER), bind, extra)
    }
}

/// Bound of every wait for something that normally takes well under a second.
pub const WAIT: Duration = Duration::from_secs(60);

/// Waits until `done()` holds, checking every few milliseconds.
///
/// # Panics
///
/// After [`WAIT`], naming `what`.
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after {WAIT:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the future `done()` makes is true, trying every few milliseconds.
///
/// # Panics
///
/// After [`WAIT`], naming `what`.
pub async fn wait_until_async<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    bounded(what, async {
        while !done().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// `future`, or a panic naming `what` after `WAIT`.
pub async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("gave up after {WAIT:?} waiting for {what}"))
}

/// Asks `mmi.service` until the broker says a worker serves `service`.
pub async fn wait_for_service(client: &Client, service: &'static str) {
    bounded(&format!("a worker of {service:?} to register"), async {
        while !client.service_exists(service).await.unwrap_or(false) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// The output of `child` once it exits, read while it runs (so a chatty child never
/// blocks on a full pipe).
///
/// # Panics
///
/// After [`WAIT`], naming `what`, with the child killed.
pub fn output_within(child: std::process::Child, what: &str) -> std::process::Output {
    let pid = child.id();
    let (done, output) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match output.recv_timeout(WAIT) {
        Ok(output) => output.unwrap_or_else(|e| panic!("{what}: {e}")),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{what} ran for more than {WAIT:?}");
        }
    }
}

/// `tests/py/mdp_peer.py`: MDP peers of every dialect in Python (pyzmq, majortomo).
pub fn mdp_peer_script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/mdp_peer.py")
}

/// An `mdp_peer.py` peer in `mode` for `service` at `ep`, once it says READY.
pub async fn mdp_peer(ep: &str, mode: &str, service: &str) -> PyPeer {
    let mut p = PyPeer::spawn_script(mdp_peer_script(), [ep, mode, service]);
    p.expect("READY").await;
    p
}

/// Sends `line` to a peer and returns the line it answers.
pub async fn ask(peer: &mut PyPeer, line: &str) -> String {
    peer.send_line(line);
    peer.line().await
}
/// A plain HTTP/1.1 GET on a blocking socket: the status line and the body.
pub fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics endpoint");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {response:?}"));
    let status = head.lines().next().unwrap_or_default().to_string();
    assert!(
        head.to_ascii_lowercase().contains("content-length") || status.contains("404"),
        "{head}"
    );
    (status, body.to_string())
}

/// The address (`host:port`) of a broker's `--metrics` endpoint, from the line it
/// prints.
pub fn metrics_address(broker: &BrokerProcess) -> String {
    let url = broker
        .line_after("metrics on ")
        .expect("the metrics address");
    url.strip_prefix("http://")
        .and_then(|u| u.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("metrics line {url:?}"))
        .to_string()
}
