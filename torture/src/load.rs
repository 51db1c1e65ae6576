//! What the chaos runs share: clients that send numbered echo requests one at a
//! time, each retried (2 s per attempt, 30 attempts) long enough to outlast a
//! broker restart, and the tally of what came back.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mdp::{CallOptions, Client};
use zmtp::Message;

/// Counters the client tasks share.
#[derive(Debug, Default)]
pub struct Tally {
    sent: AtomicU64,
    answered: AtomicU64,
    lost: AtomicU64,
    wrong: AtomicU64,
}

impl Tally {
    /// The counts now.
    pub fn counted(&self) -> Counted {
        Counted {
            sent: self.sent.load(Ordering::SeqCst),
            answered: self.answered.load(Ordering::SeqCst),
            lost: self.lost.load(Ordering::SeqCst),
            wrong: self.wrong.load(Ordering::SeqCst),
        }
    }
}

/// What a run's clients counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    /// Requests sent (each counted once, whatever its retries).
    pub sent: u64,
    /// Requests answered with their own body.
    pub answered: u64,
    /// Requests that failed after every retry.
    pub lost: u64,
    /// Replies that carried another request's body.
    pub wrong: u64,
}

impl Counted {
    /// Every request answered, with its own body.
    pub fn passed(&self) -> bool {
        self.lost == 0 && self.wrong == 0 && self.answered == self.sent && self.sent > 0
    }

    /// What went wrong, for the exit message.
    pub fn failure(&self) -> String {
        format!(
            "{} of {} requests lost, {} answered with another body",
            self.lost, self.sent, self.wrong
        )
    }
}

impl fmt::Display for Counted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent={} answered={} lost={} wrong={}",
            self.sent, self.answered, self.lost, self.wrong
        )
    }
}

/// One client: requests `"{name} request {n}"` to `echo`, one at a time, until
/// `running` is cleared; `finished(start, end)` after each.
pub async fn echo_loop(
    name: String,
    client: Client,
    tally: Arc<Tally>,
    running: Arc<AtomicBool>,
    mut finished: impl FnMut(Instant, Instant),
) {
    let limits = CallOptions {
        timeout: Duration::from_secs(2),
        attempts: 30,
    };
    let mut n = 0u64;
    while running.load(Ordering::SeqCst) {
        let body = format!("{name} request {n}");
        n += 1;
        tally.sent.fetch_add(1, Ordering::SeqCst);
        let start = Instant::now();
        let counter = match client.request_with("echo", body.clone(), limits).await {
            Ok(reply) if reply == Message::from(body) => &tally.answered,
            Ok(_) => &tally.wrong,
            Err(_) => &tally.lost,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        finished(start, Instant::now());
    }
}
