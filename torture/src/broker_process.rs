//! The real `mdp-broker` binary as a child process: started on an endpoint, its
//! endpoint read from its first line, its stderr kept for failure messages, its
//! memory read from `/proc`, and killed (SIGKILL) on drop.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// How long a broker may take to print its endpoint (a loaded CI machine, perhaps
/// an emulator).
pub const STARTUP: Duration = Duration::from_secs(60);

/// How much of the broker's stderr is kept for failure messages (the tail).
const STDERR_KEPT: usize = 64 << 10;

/// The broker binary; killed (SIGKILL) and reaped on drop.
pub struct BrokerProcess {
    child: Child,
    /// The endpoint it listens on, with the real port.
    pub endpoint: String,
    stderr: Arc<Mutex<String>>,
    /// Lines written to stderr so far (all of them, not only the kept tail).
    stderr_lines: Arc<AtomicU64>,
    /// Its stdout lines after the first, as they come.
    lines: Mutex<mpsc::Receiver<String>>,
}

impl BrokerProcess {
    /// The broker binary at `binary`, bound to `bind`, with extra command-line
    /// arguments; waits up to [`STARTUP`] for it to listen.
    pub fn launch(binary: &Path, bind: &str, extra: &[&str]) -> Result<BrokerProcess, String> {
        let mut command = Command::new(binary);
        command.args(["-b", bind]).args(extra);
        BrokerProcess::spawn(command, STARTUP)
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
        let stderr_lines = Arc::new(AtomicU64::new(0));
        let stderr = collect_tail(
            child.stderr.take().ok_or("no stderr pipe")?,
            stderr_lines.clone(),
        );
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        // Until `broker` owns the child, a failure must not leave it running.
        // Lines go through a channel so that every wait for one is bounded; the
        // thread drains stdout until it closes, so the broker never writes to a
        // closed pipe.
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let _ = lines_tx.send(line);
            }
        });
        let mut broker = BrokerProcess {
            child,
            endpoint: String::new(),
            stderr,
            stderr_lines,
            lines: Mutex::new(lines),
        };
        let first = broker
            .lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recv_timeout(startup);
        let line = match first {
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

    /// The rest of the next stdout line that starts with `prefix` (lines before it
    /// are skipped), waiting up to [`STARTUP`] for it: e.g. `"metrics on "`.
    pub fn line_after(&self, prefix: &str) -> Result<String, String> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = std::time::Instant::now() + STARTUP;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.trim().strip_prefix(prefix) {
                        return Ok(rest.to_owned());
                    }
                }
                Err(e) => return Err(format!("no line starting {prefix:?}: {e}")),
            }
        }
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

    /// How many lines the process wrote to stderr so far, all of them (the kept
    /// [`BrokerProcess::stderr`] is only the tail).
    pub fn stderr_lines(&self) -> u64 {
        self.stderr_lines.load(Ordering::Relaxed)
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
/// thread until the pipe closes, and counts its lines in `lines`.
fn collect_tail(mut pipe: impl Read + Send + 'static, lines: Arc<AtomicU64>) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            let newlines = chunk[..n].iter().filter(|&&b| b == b'\n').count();
            lines.fetch_add(newlines as u64, Ordering::Relaxed);
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

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`), or `None` once the
/// process is gone.
pub fn memory_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB")?.trim().parse().ok())
}
