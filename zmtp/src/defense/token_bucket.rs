//! A token bucket: at most `burst` events at once, `rate` per second sustained.
//! Sans-IO: the caller passes the time of each event.

use std::time::{Duration, Instant};

/// The refill rate and the size of a [`TokenBucket`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Most tokens held (the largest burst).
    pub burst: f64,
}

impl Rate {
    /// How long a bucket that is empty now takes to be full again.
    pub fn time_to_fill(&self) -> Duration {
        if self.per_second > 0.0 {
            Duration::from_secs_f64((self.burst / self.per_second).min(86_400.0))
        } else {
            Duration::from_secs(86_400)
        }
    }
}

/// Tokens, refilled with time; an event takes one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn full(rate: Rate, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: rate.burst,
            at: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        self.at = now.max(self.at);
    }

    /// Takes a token if there is one; `false` means over the rate.
    pub fn take(&mut self, rate: Rate, now: Instant) -> bool {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket is full again at `now` (it holds nothing worth keeping).
    pub fn is_full(&self, rate: Rate, now: Instant) -> bool {
        let mut probe = *self;
        probe.refill(rate, now);
        probe.tokens >= rate.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let rate = Rate {
            per_second: 10.0,
            burst: 5.0,
        };
        let t0 = Instant::now();
        let mut bucket = TokenBucket::full(rate, t0);
        assert!((0..5).all(|_| bucket.take(rate, t0)));
        assert!(!bucket.take(rate, t0), "the burst is spent");
        assert!(!bucket.is_full(rate, t0));
        // 10 per second: one more token every 100 ms, not before.
        assert!(!bucket.take(rate, t0 + Duration::from_millis(50)));
        assert!(bucket.take(rate, t0 + Duration::from_millis(100)));
        assert!(!bucket.take(rate, t0 + Duration::from_millis(100)));
        // A long pause refills up to the burst, no more.
        let later = t0 + Duration::from_secs(60);
        assert!(bucket.is_full(rate, later));
        assert_eq!((0..100).filter(|_| bucket.take(rate, later)).count(), 5);
        assert_eq!(rate.time_to_fill(), Duration::from_millis(500));
        // Time going backwards (a caller's older timestamp) adds nothing.
        assert!(!bucket.take(rate, t0));
    }

    #[test]
    fn a_zero_rate_never_refills() {
        let rate = Rate {
            per_second: 0.0,
            burst: 1.0,
        };
        let t0 = Instant::now();
        let mut bucket = TokenBucket::full(rate, t0);
        assert!(bucket.take(rate, t0));
        assert!(!bucket.take(rate, t0 + Duration::from_secs(3600)));
        assert_eq!(rate.time_to_fill(), Duration::from_secs(86_400));
    }
}
