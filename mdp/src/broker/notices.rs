//! `Notices`: the broker's warnings about what peers do, rate-limited.
//!
//! Anything a peer can cause at will (a dropped request, a malformed message, a
//! refused READY) is logged once with its details the first time in a second, then
//! only counted; at the end of the second, one line per kind says how many more
//! there were ("dropped 89 998 more requests in the last second: the service's
//! queue is full (echo)"). Kinds are bounded too: past [`MAX_KINDS`] in one second,
//! the rest are counted together. A flood costs a few log lines a second, not one
//! per message.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::printable;

/// Distinct kinds counted in one second before the rest are lumped together.
pub const MAX_KINDS: usize = 64;

/// How long a window lasts.
const WINDOW: Duration = Duration::from_secs(1);

/// The counts of one second.
#[derive(Debug, Default)]
pub(crate) struct Notices {
    started: Option<Instant>,
    /// `(what happened, the service it concerns)` → times beyond the first.
    counts: BTreeMap<(&'static str, Bytes), u64>,
    /// Notices of kinds past [`MAX_KINDS`].
    others: u64,
}

impl Notices {
    /// Something happened at `now`; returns true when it should be logged in full
    /// (the first of its kind this second), false when it was only counted.
    pub(crate) fn note(&mut self, what: &'static str, service: &[u8], now: Instant) -> bool {
        self.flush(now);
        self.started.get_or_insert(now);
        let key = (what, Bytes::copy_from_slice(service));
        if let Some(count) = self.counts.get_mut(&key) {
            *count += 1;
            return false;
        }
        if self.counts.len() >= MAX_KINDS {
            self.others += 1;
            return false;
        }
        self.counts.insert(key, 0);
        true
    }

    /// Logs what was counted once the second is over.
    pub(crate) fn flush(&mut self, now: Instant) {
        let Some(started) = self.started else {
            return;
        };
        if now.saturating_duration_since(started) < WINDOW {
            return;
        }
        for ((what, service), more) in std::mem::take(&mut self.counts) {
            if more > 0 {
                tracing::warn!(
                    more,
                    service = %printable(&service),
                    "{more} more in the last second: {what}"
                );
            }
        }
        if self.others > 0 {
            tracing::warn!(
                more = self.others,
                "{} more warnings of other kinds in the last second",
                self.others
            );
        }
        self.others = 0;
        self.started = None;
    }

    /// Kinds counted now (for invariants).
    pub(crate) fn kinds(&self) -> usize {
        self.counts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_of_a_kind_is_logged_the_rest_counted_per_second() {
        let mut notices = Notices::default();
        let t = Instant::now();
        assert!(notices.note("queue full", b"echo", t));
        for _ in 0..1000 {
            assert!(!notices.note("queue full", b"echo", t));
        }
        assert!(notices.note("queue full", b"other", t), "another service");
        assert!(notices.note("malformed", b"", t), "another kind");
        notices.flush(t + WINDOW);
        assert_eq!(notices.kinds(), 0, "a new second starts afresh");
        assert!(notices.note("queue full", b"echo", t + WINDOW));
    }

    #[test]
    fn kinds_are_bounded() {
        let mut notices = Notices::default();
        let t = Instant::now();
        for i in 0..10 * MAX_KINDS {
            notices.note("queue full", format!("s{i}").as_bytes(), t);
        }
        assert_eq!(notices.kinds(), MAX_KINDS);
        assert_eq!(notices.others, 9 * MAX_KINDS as u64);
    }
}
