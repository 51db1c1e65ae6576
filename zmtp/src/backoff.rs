//! [`Backoff`]: how long to wait before connecting again, for zmtp's reconnecting
//! endpoints and mdp's workers alike.
//!
//! The wait starts at `first` and doubles after every attempt that never got
//! through (the connection failed, or ended before its handshake, or the broker
//! never accepted the worker), up to `max`; after an attempt that did, it starts
//! over at `first`. So a peer that lost a server it had been using comes back
//! promptly however many times that happened before, and one that a server keeps
//! turning away backs off. Without a maximum the wait never grows (libzmq's
//! `ZMQ_RECONNECT_IVL` without `ZMQ_RECONNECT_IVL_MAX`).

use std::time::Duration;

/// The reconnect wait of one endpoint.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Option<Duration>,
    next: Duration,
}

impl Backoff {
    /// Waits of `first`, doubling up to `max` (never below `first`) while attempts
    /// fail; constant when `max` is `None`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use zmtp::Backoff;
    ///
    /// let ms = Duration::from_millis;
    /// let mut backoff = Backoff::new(ms(100), Some(ms(250)));
    /// assert_eq!(backoff.after(false), ms(100));
    /// assert_eq!(backoff.after(false), ms(200));
    /// assert_eq!(backoff.after(false), ms(250));
    /// assert_eq!(backoff.after(true), ms(100));
    /// ```
    pub fn new(first: Duration, max: Option<Duration>) -> Backoff {
        Backoff {
            first,
            max: max.map(|max| max.max(first)),
            next: first,
        }
    }

    /// The wait after an attempt that ended, having got through (`established`) or
    /// not.
    pub fn after(&mut self, established: bool) -> Duration {
        if established {
            self.next = self.first;
        }
        let wait = self.next;
        if let Some(max) = self.max {
            self.next = self.next.saturating_mul(2).min(max);
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_while_turned_away_and_starts_over_after_an_accepted_attempt() {
        let mut backoff = Backoff::new(ms(100), Some(ms(1000)));
        let waits: Vec<Duration> = (0..5).map(|_| backoff.after(false)).collect();
        assert_eq!(waits, [ms(100), ms(200), ms(400), ms(800), ms(1000)]);
        // A server that had accepted us went away: back to the first wait, however
        // long the history of reconnects.
        assert_eq!(backoff.after(true), ms(100));
        assert_eq!(backoff.after(false), ms(200));
        assert_eq!(backoff.after(true), ms(100));
    }

    #[test]
    fn a_maximum_below_the_first_wait_does_not_shorten_it() {
        assert_eq!(Backoff::new(ms(300), Some(ms(10))).after(false), ms(300));
    }

    #[test]
    fn without_a_maximum_the_wait_stays_the_same() {
        let mut backoff = Backoff::new(ms(100), None);
        assert!((0..10).all(|_| backoff.after(false) == ms(100)));
    }

    #[test]
    fn huge_waits_saturate_instead_of_overflowing() {
        let mut backoff = Backoff::new(Duration::MAX / 2, Some(Duration::MAX));
        backoff.after(false);
        backoff.after(false);
        assert_eq!(backoff.after(false), Duration::MAX);
    }
}
