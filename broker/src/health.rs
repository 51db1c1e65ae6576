//! What Kubernetes' probes ask, on the `--metrics` address: `/healthz` (the
//! broker loop is turning) and `/readyz` (bound, and peered when peers are
//! configured). The broker loop writes two atomics each turn; a probe reads them
//! and never waits for the loop, so probes cost the broker nothing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The broker loop's liveness and readiness, as the probes see them.
#[derive(Debug)]
pub struct Health {
    started: Instant,
    /// Milliseconds after `started` of the loop's last turn.
    last_turn_ms: AtomicU64,
    ready: AtomicBool,
    /// A loop that has not turned for this long is stuck (it turns at least once
    /// per heartbeat interval when idle).
    stall_after: Duration,
}

impl Health {
    /// Health of a loop that turns at least every `heartbeat`: stuck after four
    /// of those, and never sooner than 10 s.
    pub fn new(heartbeat: Duration) -> Health {
        Health {
            started: zmtp::clock::now(),
            last_turn_ms: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            stall_after: (heartbeat * 4).max(Duration::from_secs(10)),
        }
    }

    /// The loop turned at `now` (the clock it read for its own deadlines); it is
    /// `ready` (see [`Health::readiness`]).
    pub fn turned(&self, ready: bool, now: std::time::Instant) {
        let ms = u64::try_from(now.saturating_duration_since(self.started).as_millis())
            .unwrap_or(u64::MAX);
        self.last_turn_ms.store(ms, Ordering::Relaxed);
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// `Ok` while the loop turned lately, else why not.
    pub fn liveness(&self) -> Result<(), String> {
        let last = Duration::from_millis(self.last_turn_ms.load(Ordering::Relaxed));
        let since = zmtp::clock::now()
            .saturating_duration_since(self.started)
            .saturating_sub(last);
        if since > self.stall_after {
            return Err(format!("the broker loop has not turned for {since:?}\n"));
        }
        Ok(())
    }

    /// `Ok` when the broker serves (bound, and peered when it has peers), else
    /// why not.
    pub fn readiness(&self) -> Result<(), String> {
        self.liveness()?;
        if !self.ready.load(Ordering::Relaxed) {
            return Err("not peered yet: no link to another broker is up\n".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_loop_that_stops_turning_is_not_live_and_readiness_follows_the_loop() {
        let health = Health::new(Duration::from_secs(1));
        assert!(health.liveness().is_ok());
        assert!(
            health.readiness().is_err(),
            "not ready before the first turn"
        );
        health.turned(true, zmtp::clock::now());
        assert!(health.readiness().is_ok());
        health.turned(false, zmtp::clock::now());
        assert!(health.readiness().unwrap_err().contains("not peered"));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(health.liveness().unwrap_err().contains("has not turned"));
        health.turned(true, zmtp::clock::now());
        assert!(health.liveness().is_ok());
    }
}
