//! [`PyPeer`]: a Python child process that a test drives by lines.
//!
//! Three helper threads per peer keep the test's async tasks free: one reads stdout
//! lines into a channel, one collects stderr (shown in every panic), one writes the
//! lines the test queues to stdin, so neither side can block the other on a full pipe.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;

/// How long [`PyPeer::line`] waits by default: generous, for loaded CI machines.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the user's script or code after starting a watchdog thread that exits the
/// process when its parent (the test binary) is gone, so a killed test run leaves no
/// Python processes behind. argv: `file PATH ARGS...` or `code CODE ARGS...`.
const BOOT: &str = r#"
import os, sys, threading, time
def _testkit_watchdog(parent=os.getppid()):
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(3)
threading.Thread(target=_testkit_watchdog, daemon=True).start()
_mode, _target = sys.argv[1], sys.argv[2]
if _mode == "file":
    import runpy
    sys.argv = [_target] + sys.argv[3:]
    runpy.run_path(_target, run_name="__main__")
else:
    sys.argv = ["-c"] + sys.argv[3:]
    exec(compile(_target, "<testkit peer>", "exec"), {"__name__": "__main__"})
"#;

/// A Python process (of the [`python()`](crate::python) virtualenv) driven through
/// its stdin and stdout, one line at a time. Killed (and reaped) on drop.
///
/// Every wait is bounded ([`LINE_TIMEOUT`] unless changed with
/// [`PyPeer::with_timeout`]); a timeout or an early exit panics with the peer's
/// stderr.
#[derive(Debug)]
pub struct PyPeer {
    name: String,
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    stdin: Option<std_mpsc::Sender<String>>,
    stderr: Arc<Mutex<String>>,
    stderr_thread: Option<JoinHandle<()>>,
    timeout: Duration,
}

impl PyPeer {
    /// Runs the Python file `script` with `args` (`python -u script args...`).
    pub fn spawn_script<I, A>(script: impl AsRef<Path>, args: I) -> PyPeer
    where
        I: IntoIterator<Item = A>,
        A: AsRef<OsStr>,
    {
        let script = script.as_ref();
        let name = script.file_name().map_or_else(
            || script.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        PyPeer::spawn(name, "file", script.as_os_str(), args)
    }

    /// Runs `code` with `args` (`python -u -c code args...`).
    pub fn spawn_code<I, A>(code: &str, args: I) -> PyPeer
    where
        I: IntoIterator<Item = A>,
        A: AsRef<OsStr>,
    {
        PyPeer::spawn("<code>".into(), "code", OsStr::new(code), args)
    }

    fn spawn<I, A>(name: String, mode: &str, target: &OsStr, args: I) -> PyPeer
    where
        I: IntoIterator<Item = A>,
        A: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let name = format!(
            "{name} {}",
            args.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut command = Command::new(crate::python());
        command
            .args(["-u", "-c", BOOT, mode])
            .arg(target)
            .args(&args);
        PyPeer::spawn_process(name, command)
    }

    /// Any program driven by lines the same way, a Node.js peer say: `command` with
    /// its arguments and environment; its standard streams are piped here. (Only
    /// Python peers get the watchdog that ends them when the test binary dies.)
    pub fn spawn_process(name: impl Into<String>, mut command: Command) -> PyPeer {
        let name = name.into();
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?} for {name}: {e}"));

        let stdout = child.stdout.take().expect("piped stdout");
        let (line_tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf);
                        let line = line.trim_end_matches(['\n', '\r']).to_owned();
                        if line_tx.send(line).is_err() {
                            return;
                        }
                    }
                }
            }
        });

        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let stderr_thread = std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = stderr_pipe.read(&mut chunk) {
                let text = String::from_utf8_lossy(&chunk[..n]);
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&text);
            }
        });

        let mut stdin_pipe = child.stdin.take().expect("piped stdin");
        let (stdin_tx, stdin_rx) = std_mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in stdin_rx {
                let written = stdin_pipe
                    .write_all(line.as_bytes())
                    .and_then(|()| stdin_pipe.write_all(b"\n"))
                    .and_then(|()| stdin_pipe.flush());
                if written.is_err() {
                    return; // the peer is gone; reads will report it
                }
            }
        });

        PyPeer {
            name,
            child,
            lines,
            stdin: Some(stdin_tx),
            stderr,
            stderr_thread: Some(stderr_thread),
            timeout: LINE_TIMEOUT,
        }
    }

    /// Changes how long [`PyPeer::line`] and [`PyPeer::expect`] wait.
    pub fn with_timeout(mut self, timeout: Duration) -> PyPeer {
        self.set_timeout(timeout);
        self
    }

    /// [`PyPeer::with_timeout`] on a peer already running.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Queues `line` (a newline is added) for the peer's stdin. Never blocks.
    pub fn send_line(&self, line: impl Into<String>) {
        if let Some(stdin) = &self.stdin {
            // An error means the writer thread saw the pipe close: the next read says
            // why, with the peer's stderr.
            let _ = stdin.send(line.into());
        }
    }

    /// Closes the peer's stdin (it reads end of file once queued lines are written).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next stdout line (without the newline).
    ///
    /// # Panics
    ///
    /// If no line comes within the timeout, or the peer exits first.
    pub async fn line(&mut self) -> String {
        let timeout = self.timeout;
        match self.line_within(timeout).await {
            Some(line) => line,
            None => self.fail(&format!("no output line within {timeout:?}")),
        }
    }

    /// The next stdout line if one comes within `wait`; `None` if not.
    ///
    /// # Panics
    ///
    /// If the peer exits before printing a line.
    pub async fn line_within(&mut self, wait: Duration) -> Option<String> {
        match tokio::time::timeout(wait, self.lines.recv()).await {
            Ok(Some(line)) => Some(line),
            Ok(None) => self.fail("exited before printing the expected line"),
            Err(_) => None,
        }
    }

    /// Reads the next line and returns what follows `prefix` (and one space, if
    /// there is one).
    ///
    /// # Panics
    ///
    /// If the line does not start with `prefix`, or as [`PyPeer::line`].
    pub async fn expect(&mut self, prefix: &str) -> String {
        let line = self.line().await;
        match line.strip_prefix(prefix) {
            Some(rest) => rest.strip_prefix(' ').unwrap_or(rest).to_owned(),
            None => self.fail(&format!(
                "expected a line starting with {prefix:?}, got {:?}",
                shorten(&line)
            )),
        }
    }

    /// Everything the peer wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Panics with `what`, the peer's exit status and its whole stderr. The peer is
    /// killed first if it is still running.
    pub fn fail(&mut self, what: &str) -> ! {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => status.to_string(),
            _ => {
                self.kill();
                "still running (killed)".to_owned()
            }
        };
        // The pipe is closed now, so the collector finishes with the last words.
        if let Some(thread) = self.stderr_thread.take() {
            let _ = thread.join();
        }
        panic!(
            "python peer `{}`: {what}; status: {status}\n--- peer stderr ---\n{}--- end ---",
            self.name,
            self.stderr()
        );
    }

    /// Stops the process with SIGSTOP: its sockets stay open but it answers nothing,
    /// like a hung host.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Resumes a process stopped by [`PyPeer::pause`] (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let status = Command::new("sh")
            .args(["-c", &format!("kill -s {name} {}", self.pid())])
            .status()
            .unwrap_or_else(|e| panic!("cannot run sh to send SIG{name}: {e}"));
        assert!(
            status.success(),
            "kill -s {name} {} failed: {status}",
            self.pid()
        );
    }

    /// Kills the process (SIGKILL) and reaps it. Does nothing if it already exited.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PyPeer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A long line cut for messages (1 MiB frames travel as hex).
fn shorten(line: &str) -> String {
    const MAX: usize = 300;
    if line.len() <= MAX {
        return line.to_owned();
    }
    let mut end = MAX;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &line[..end], line.len())
}
