//! What the broker's integration tests share: the real `mdp-broker` binary as a
//! child process, started on an endpoint and killed on drop, and bounded waits.

// Each test crate includes this module and uses only part of it.
#![allow(dead_code)]

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use mdp::Client;

/// The broker binary's path, as cargo built it for these tests.
pub const BROKER: &str = env!("CARGO_BIN_EXE_mdp-broker");

/// How much of the broker's stderr is kept for failure messages (the tail).
const STDERR_KEPT: usize = 64 << 10;

/// The broker binary; killed (SIGKILL) and reaped on drop.
pub struct BrokerProcess {
    child: Child,
    /// The endpoint it listens on, with the real port.
    pub endpoint: String,
    stderr: Arc<Mutex<String>>,
}

impl BrokerProcess {
    /// The broker on a fresh port with default settings.
    pub fn start() -> BrokerProcess {
        BrokerProcess::start_with(&[])
    }

    /// The broker on a fresh port, with extra command-line arguments.
    pub fn start_with(extra: &[&str]) -> BrokerProcess {
        BrokerProcess::start_on("tcp://127.0.0.1:0", extra)
    }

    /// The broker bound to `bind`, with extra command-line arguments.
    ///
    /// # Panics
    ///
    /// If it cannot be started or does not print its endpoint.
    pub fn start_on(bind: &str, extra: &[&str]) -> BrokerProcess {
        BrokerProcess::try_start_on(bind, extra).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`BrokerProcess::start_on`] that reports a failure (for instance a port still
    /// in use) instead of panicking.
    pub fn try_start_on(bind: &str, extra: &[&str]) -> Result<BrokerProcess, String> {
        let mut command = Command::new(BROKER);
        command.args(["-b", bind]).args(extra);
        BrokerProcess::spawn(command, WAIT)
    }

    /// Runs `command` (a broker binary, perhaps under an emulator, with its
    /// arguments) and waits up to `startup` for its "listening on ENDPOINT" line.
    /// On failure the process is killed and the error carries its stderr.
    pub fn spawn(mut command: Command, startup: Duration) -> Result<BrokerProcess, String> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {command:?}: {e}"))?;
        let stderr = collect_tail(child.stderr.take().ok_or("no stderr pipe")?);
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        // Until `broker` owns the child, a failure must not leave it running.
        let mut broker = BrokerProcess {
            child,
            endpoint: String::new(),
            stderr,
        };
        // Lines go through a channel so that the wait for the first one is bounded;
        // the thread keeps draining stdout afterwards.
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if lines_tx.send(line).is_err() {
                    return;
                }
            }
        });
        let line = match lines.recv_timeout(startup) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(broker.failed(&format!("{command:?} printed nothing in {startup:?}")))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(broker.failed(&format!("{command:?} exited before listening")))
            }
        };
        match line.trim().strip_prefix("listening on ") {
            Some(endpoint) => broker.endpoint = endpoint.to_owned(),
            None => return Err(broker.failed(&format!("{command:?}: first line {line:?}"))),
        }
        Ok(broker)
    }

    /// Kills the process and describes the failure with its last words.
    fn failed(&mut self, what: &str) -> String {
        self.kill();
        // Give the collector a moment to take the rest from the closed pipe.
        std::thread::sleep(Duration::from_millis(200));
        format!("{what}\n--- broker stderr ---\n{}", self.stderr())
    }

    /// The tail of what the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running (not exited, not killed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the process with SIGKILL (`kill -9`: no shutdown, no DISCONNECT to the
    /// workers) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Keeps the last [`STDERR_KEPT`] bytes read from `pipe`, read by a background
/// thread until the pipe closes.
fn collect_tail(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            let mut text = sink.lock().unwrap_or_else(|e| e.into_inner());
            text.push_str(&String::from_utf8_lossy(&chunk[..n]));
            if text.len() > 2 * STDERR_KEPT {
                let mut cut = text.len() - STDERR_KEPT;
                while !text.is_char_boundary(cut) {
                    cut += 1;
                }
                text.drain(..cut);
            }
        }
    });
    text
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
