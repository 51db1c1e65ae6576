//! Failed logins from one address, and the growing back-off they earn.
//!
//! The first [`Backoff::failures_allowed`] failures cost nothing (a person mistypes
//! a password). From then on every failure blocks the address for a while, twice as
//! long each time ([`Backoff::first`], doubled up to [`Backoff::max`]). While it is
//! blocked, its logins are refused without being checked, so a guesser learns
//! nothing from them. An address that has failed nothing for `max` after its last
//! block (or failure) is forgotten. A success does not wipe the record: an attacker
//! with one valid account could otherwise reset the count between guesses.

use std::time::{Duration, Instant};

/// When failed logins start to block an address, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Failures allowed before the first block.
    pub failures_allowed: u32,
    /// The first block; each later one doubles.
    pub first: Duration,
    /// The longest block, and the quiet time after which an address is forgotten.
    pub max: Duration,
}

impl Backoff {
    /// The length of block number `n` (from 0).
    fn block(&self, n: u32) -> Duration {
        self.first.saturating_mul(1 << n.min(30)).min(self.max)
    }
}

/// One address's record of failed logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginFailures {
    failures: u32,
    blocks: u32,
    /// The last failure, or the end of the last block if later.
    last: Option<Instant>,
    blocked_until: Option<Instant>,
}

impl LoginFailures {
    /// How much longer the address is blocked, if it is.
    pub fn blocked(&self, now: Instant) -> Option<Duration> {
        self.blocked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// Records a failed login; returns the block it started, if it started one.
    pub fn failed(&mut self, backoff: Backoff, now: Instant) -> Option<Duration> {
        if self.is_forgotten(backoff, now) {
            *self = LoginFailures::default();
        }
        self.failures = self.failures.saturating_add(1);
        self.last = Some(self.last.map_or(now, |last| last.max(now)));
        if self.failures <= backoff.failures_allowed {
            return None;
        }
        let block = backoff.block(self.blocks);
        self.blocks = self.blocks.saturating_add(1);
        let until = now + block;
        self.blocked_until = Some(self.blocked_until.map_or(until, |b| b.max(until)));
        self.last = self.last.max(self.blocked_until);
        Some(block)
    }

    /// Failures counted since the record was last forgotten.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether the record holds nothing any more (never failed, or quiet for
    /// `backoff.max` since its last failure or block).
    pub fn is_forgotten(&self, backoff: Backoff, now: Instant) -> bool {
        self.last.map_or(true, |last| {
            now.saturating_duration_since(last) >= backoff.max
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Backoff = Backoff {
        failures_allowed: 3,
        first: Duration::from_secs(1),
        max: Duration::from_secs(8),
    };

    #[test]
    fn a_few_failures_are_free_then_each_blocks_twice_as_long() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut record = LoginFailures::default();
        assert!(record.is_forgotten(BACKOFF, t0));
        for _ in 0..3 {
            assert_eq!(record.failed(BACKOFF, t0), None);
            assert_eq!(record.blocked(t0), None);
        }
        assert_eq!(record.failed(BACKOFF, t0), Some(Duration::from_secs(1)));
        assert_eq!(record.blocked(at(400)), Some(Duration::from_millis(600)));
        assert_eq!(record.blocked(at(1000)), None);
        // The next failure blocks at once, for twice as long, up to the maximum.
        assert_eq!(
            record.failed(BACKOFF, at(1000)),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            record.failed(BACKOFF, at(3000)),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            record.failed(BACKOFF, at(7000)),
            Some(Duration::from_secs(8))
        );
        assert_eq!(
            record.failed(BACKOFF, at(15_000)),
            Some(Duration::from_secs(8))
        );
        assert_eq!(record.failures(), 8);
        assert!(!record.is_forgotten(BACKOFF, at(23_000 + 7_999)));
    }

    #[test]
    fn a_quiet_address_is_forgotten() {
        let t0 = Instant::now();
        let mut record = LoginFailures::default();
        for _ in 0..4 {
            record.failed(BACKOFF, t0);
        }
        assert!(record.blocked(t0).is_some());
        // Quiet for `max` after the block ended: forgotten, free failures again.
        let later = t0 + Duration::from_secs(1) + BACKOFF.max;
        assert!(record.is_forgotten(BACKOFF, later));
        assert_eq!(record.failed(BACKOFF, later), None);
        assert_eq!(record.failures(), 1);
    }

    #[test]
    fn guesses_in_a_window_are_bounded_by_the_schedule() {
        // A guesser that tries whenever it is not blocked, every 10 ms for 10 s,
        // gets its allowance, the failure that starts the first block, then one
        // guess per block: 3 + 1 at 0 s, then at 1 s, 3 s and 7 s.
        let t0 = Instant::now();
        let mut record = LoginFailures::default();
        let mut checked = 0;
        for step in 0..1000 {
            let now = t0 + Duration::from_millis(step * 10);
            if record.blocked(now).is_none() {
                checked += 1;
                record.failed(BACKOFF, now);
            }
        }
        assert_eq!(
            checked,
            3 + 4,
            "blocks at 0 s (1 s), 1 s (2 s), 3 s (4 s), 7 s (8 s)"
        );
    }
}
