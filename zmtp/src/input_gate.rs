//! [`InputGate`]: lets a socket stop taking one peer's input, and take it again.
//!
//! Whatever carries the peer's messages to the socket (the ZMTP engine's reader, an
//! inproc link's forwarder) looks at the gate between messages: while it is paused
//! it finishes the message it is assembling, hands over what it has, and reads
//! nothing more. TCP then pushes back on the peer (its own high-water mark fills and
//! its sends wait), so a peer is slowed down without anything being lost. The
//! peer's connection stays up and what the socket sends it still goes out.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Open or paused; shared by a socket's peer table and the peer's reader.
#[derive(Debug, Default)]
pub(crate) struct InputGate {
    paused: AtomicBool,
    opened: Notify,
}

impl InputGate {
    /// Stops the peer's input after the message being assembled.
    pub(crate) fn pause(&self) {
        self.paused.store(true, Ordering::Release);
    }

    /// Lets the peer's input flow again.
    pub(crate) fn resume(&self) {
        self.paused.store(false, Ordering::Release);
        self.opened.notify_waiters();
    }

    /// Whether input is paused.
    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Returns once the gate is open (at once if it is).
    pub(crate) async fn opened(&self) {
        loop {
            let opened = self.opened.notified();
            tokio::pin!(opened);
            // Listening before looking: a resume in between cannot be missed.
            opened.as_mut().enable();
            if !self.is_paused() {
                return;
            }
            opened.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_paused_gate_holds_its_waiter_until_resumed() {
        let gate = Arc::new(InputGate::default());
        gate.opened().await; // open: returns at once
        gate.pause();
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.opened().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "a paused gate must hold its waiter");
        gate.resume();
        tokio::time::timeout(Duration::from_secs(60), waiter)
            .await
            .expect("resumed")
            .expect("no panic");
    }
}
