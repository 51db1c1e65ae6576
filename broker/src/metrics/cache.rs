//! Whether a scrape is answered with the body rendered last, starts a refresh, or
//! waits for the refresh already under way: the decision, without I/O, tasks or a
//! clock (`now` is passed in).
//!
//! A body is fresh for one refresh period counted from when the broker loop was
//! asked for its figures, so the loop is asked at most once per period however many
//! scrapers there are, and never twice at once. Every scrape within the period gets
//! the same [`Bytes`] (a reference count, not a copy).

use std::time::{Duration, Instant};

use bytes::Bytes;

/// What a scrape does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Answer with this body.
    Fresh(Bytes),
    /// Ask the broker loop, render, and hand the body to
    /// [`BodyCache::refreshed`] (or call [`BodyCache::refresh_failed`]); the
    /// refresh is marked under way.
    Refresh,
    /// A refresh is under way: wait for its body.
    Wait,
}

/// The last rendered body and whether a new one is being made.
#[derive(Debug)]
pub struct BodyCache {
    period: Duration,
    /// The last body, and when the figures in it were asked for.
    last: Option<(Instant, Bytes)>,
    refreshing: bool,
}

impl BodyCache {
    /// An empty cache whose bodies are fresh for `period`.
    pub fn new(period: Duration) -> BodyCache {
        BodyCache {
            period,
            last: None,
            refreshing: false,
        }
    }

    /// What a scrape at `now` does.
    pub fn lookup(&mut self, now: Instant) -> Lookup {
        if let Some((asked, body)) = &self.last {
            if now.saturating_duration_since(*asked) < self.period {
                return Lookup::Fresh(body.clone());
            }
        }
        if self.refreshing {
            return Lookup::Wait;
        }
        self.refreshing = true;
        Lookup::Refresh
    }

    /// The refresh is done: `body` holds the figures asked for at `asked`.
    pub fn refreshed(&mut self, asked: Instant, body: Bytes) {
        self.last = Some((asked, body));
        self.refreshing = false;
    }

    /// The refresh gave nothing (the broker loop stopped or did not answer); the
    /// next scrape starts another.
    pub fn refresh_failed(&mut self) {
        self.refreshing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_secs(1);

    #[test]
    fn the_first_scrape_refreshes_and_the_others_wait_for_it() {
        let t0 = Instant::now();
        let mut cache = BodyCache::new(PERIOD);
        assert_eq!(cache.lookup(t0), Lookup::Refresh);
        assert_eq!(cache.lookup(t0), Lookup::Wait);
        assert_eq!(cache.lookup(t0 + PERIOD * 5), Lookup::Wait);
        cache.refreshed(t0, Bytes::from_static(b"one"));
        // Slow as it was, the refresh is one the waiters take (the shell hands it
        // to them); a new scrape after the period starts the next.
        assert_eq!(cache.lookup(t0 + PERIOD * 5), Lookup::Refresh);
    }

    #[test]
    fn a_body_is_shared_within_the_period_counted_from_the_question() {
        let t0 = Instant::now();
        let mut cache = BodyCache::new(PERIOD);
        assert_eq!(cache.lookup(t0), Lookup::Refresh);
        let body = Bytes::from(vec![7u8; 1000]);
        // The answer came 0.9 s after the question.
        cache.refreshed(t0, body.clone());
        for at in [
            Duration::ZERO,
            Duration::from_millis(950),
            PERIOD - Duration::from_nanos(1),
        ] {
            match cache.lookup(t0 + at) {
                Lookup::Fresh(fresh) => assert_eq!(fresh.as_ptr(), body.as_ptr(), "a copy"),
                other => panic!("{other:?} at {at:?}"),
            }
        }
        assert_eq!(cache.lookup(t0 + PERIOD), Lookup::Refresh);
        // While the next is under way, nobody gets the stale one.
        assert_eq!(cache.lookup(t0 + PERIOD), Lookup::Wait);
    }

    #[test]
    fn a_failed_refresh_lets_the_next_scrape_try_again() {
        let t0 = Instant::now();
        let mut cache = BodyCache::new(PERIOD);
        assert_eq!(cache.lookup(t0), Lookup::Refresh);
        cache.refresh_failed();
        assert_eq!(cache.lookup(t0), Lookup::Refresh);
    }

    #[test]
    fn a_clock_that_goes_back_keeps_the_body() {
        let t0 = Instant::now() + PERIOD;
        let mut cache = BodyCache::new(PERIOD);
        assert_eq!(cache.lookup(t0), Lookup::Refresh);
        cache.refreshed(t0, Bytes::from_static(b"x"));
        assert!(matches!(cache.lookup(t0 - PERIOD / 2), Lookup::Fresh(_)));
    }
}
