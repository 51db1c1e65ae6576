//! [`LogThrottle`]: at most one log line per interval for an event peers can cause
//! at will, carrying how many happened since the last line.
//!
//! Sans-IO: the caller passes `now` and writes the line itself.

use std::time::{Duration, Instant};

/// Counts occurrences of one event and says when one more is worth a log line.
#[derive(Debug)]
pub(crate) struct LogThrottle {
    interval: Duration,
    last_line: Option<Instant>,
    /// Occurrences since the last line, not yet reported.
    unreported: u64,
}

impl LogThrottle {
    /// At most one line per `interval`.
    pub(crate) const fn new(interval: Duration) -> LogThrottle {
        LogThrottle {
            interval,
            last_line: None,
            unreported: 0,
        }
    }

    /// One more occurrence at `now`: `Some(n)` when it is time for a line, `n` being
    /// the occurrences since the previous line (this one included).
    pub(crate) fn hit(&mut self, now: Instant) -> Option<u64> {
        self.unreported += 1;
        let due = self.last_line.map_or(true, |at| {
            now.saturating_duration_since(at) >= self.interval
        });
        if !due {
            return None;
        }
        self.last_line = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count() {
        let mut throttle = LogThrottle::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(throttle.hit(t0), Some(1), "the first one is logged at once");
        for i in 1..1000 {
            assert_eq!(throttle.hit(t0 + Duration::from_micros(i)), None);
        }
        assert_eq!(
            throttle.hit(t0 + Duration::from_secs(1)),
            Some(1000),
            "the next line counts everything since the last"
        );
        assert_eq!(throttle.hit(t0 + Duration::from_millis(1500)), None);
        assert_eq!(throttle.hit(t0 + Duration::from_secs(5)), Some(2));
    }
}
