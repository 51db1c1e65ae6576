//! What the broker's integration tests share: the real `mdp-broker` binary as a
//! child process, started on an endpoint and killed on drop.

// Each test crate includes this module and uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The broker binary; killed (SIGKILL) and reaped on drop.
pub struct BrokerProcess {
    child: Child,
    /// The endpoint it listens on, with the real port.
    pub endpoint: String,
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
        let child = Command::new(env!("CARGO_BIN_EXE_mdp-broker"))
            .args(["-b", bind])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start mdp-broker: {e}"))?;
        // Until `broker` owns the child, a failure must not leave it running.
        let mut broker = BrokerProcess {
            child,
            endpoint: String::new(),
        };
        let stdout = broker.child.stdout.take().ok_or("no stdout pipe")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("reading the broker's first line: {e}"))?;
        broker.endpoint = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| {
                format!("mdp-broker -b {bind}: unexpected first line {line:?} (bind failed?)")
            })?
            .to_string();
        Ok(broker)
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
