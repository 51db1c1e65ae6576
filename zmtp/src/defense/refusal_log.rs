//! Log lines about refused peers, aggregated: a flood of refusals makes one line a
//! second per reason, with counts and the addresses that sent the most, never one
//! line per refusal (which would let any peer fill the disk and slow the process).
//!
//! Sans-IO: [`RefusalLog::record`] counts a refusal and says when a flush is due
//! (the first refusal of a period); [`RefusalLog::flush`] returns the summaries of
//! the periods that are over. The caller logs them.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use super::source::Source;

/// Addresses named in one summary; refusals from others are counted together.
const ADDRESSES_NAMED: usize = 4;

/// The longest sample reason kept (a peer may choose part of some reasons).
const SAMPLE_LEN: usize = 300;

/// What was refused and why, as a log line groups it: "PLAIN logins" and "invalid
/// credentials", "connections" and "over the per-address cap".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Topic {
    /// What was refused, in the plural ("connections", "CURVE HELLOs").
    pub what: &'static str,
    /// Why, in a few words.
    pub why: &'static str,
}

#[derive(Debug)]
struct Tally {
    since: Instant,
    count: u64,
    /// The addresses with the most refusals first (once flushed); at most
    /// [`ADDRESSES_NAMED`].
    sources: Vec<(Source, u64)>,
    /// Refusals from addresses not in `sources`.
    others: u64,
    /// The first refusal's own reason.
    sample: String,
}

/// One line's worth: the refusals of one topic over one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// What and why.
    pub topic: Topic,
    /// How many.
    pub count: u64,
    /// Over how long.
    pub period: Duration,
    /// The addresses that sent the most, with their counts (the first address seen
    /// in the period is always there).
    pub sources: Vec<(Source, u64)>,
    /// Refusals from other addresses.
    pub others: u64,
    /// The first refusal's own reason.
    pub sample: String,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: u64, what: &str| {
            if n == 1 {
                format!("1 {}", what.strip_suffix('s').unwrap_or(what))
            } else {
                format!("{n} {what}")
            }
        };
        write!(
            f,
            "refused {} ({}) in the last {:.1} s, from ",
            plural(self.count, self.topic.what),
            self.topic.why,
            self.period.as_secs_f64()
        )?;
        for (i, (source, n)) in self.sources.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{source} ({n})")?;
        }
        if self.others > 0 {
            write!(f, " and {} from other addresses", self.others)?;
        }
        write!(f, "; first: {}", self.sample)
    }
}

/// Counts refusals per topic over periods of [`RefusalLog::period`].
#[derive(Debug)]
pub struct RefusalLog {
    period: Duration,
    tallies: HashMap<Topic, Tally>,
}

impl RefusalLog {
    /// A log that summarises each topic at most once per `period`.
    pub fn new(period: Duration) -> RefusalLog {
        RefusalLog {
            period,
            tallies: HashMap::new(),
        }
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Counts one refusal of `topic` from `source`; `reason` is called only for the
    /// first of a period. Returns when to flush if this opened a period (the caller
    /// must then call [`RefusalLog::flush`] at that time).
    pub fn record(
        &mut self,
        topic: Topic,
        source: Source,
        now: Instant,
        reason: impl FnOnce() -> String,
    ) -> Option<Instant> {
        match self.tallies.get_mut(&topic) {
            Some(tally) => {
                tally.count += 1;
                let room = tally.sources.len() < ADDRESSES_NAMED;
                match tally.sources.iter_mut().find(|(s, _)| *s == source) {
                    Some((_, n)) => *n += 1,
                    None if room => tally.sources.push((source, 1)),
                    None => tally.others += 1,
                }
                None
            }
            None => {
                let mut sample = reason();
                if sample.len() > SAMPLE_LEN {
                    let mut cut = SAMPLE_LEN;
                    while !sample.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    sample.truncate(cut);
                    sample.push('…');
                }
                self.tallies.insert(
                    topic,
                    Tally {
                        since: now,
                        count: 1,
                        sources: vec![(source, 1)],
                        others: 0,
                        sample,
                    },
                );
                Some(now + self.period)
            }
        }
    }

    /// The summaries of the periods over at `now`, which end.
    pub fn flush(&mut self, now: Instant) -> Vec<Summary> {
        let period = self.period;
        let due: Vec<Topic> = self
            .tallies
            .iter()
            .filter(|(_, t)| now.saturating_duration_since(t.since) >= period)
            .map(|(topic, _)| *topic)
            .collect();
        let mut out = Vec::with_capacity(due.len());
        for topic in due {
            if let Some(mut tally) = self.tallies.remove(&topic) {
                tally.sources.sort_by(|a, b| b.1.cmp(&a.1));
                out.push(Summary {
                    topic,
                    count: tally.count,
                    period: now.saturating_duration_since(tally.since),
                    sources: tally.sources,
                    others: tally.others,
                    sample: tally.sample,
                });
            }
        }
        out
    }

    /// Every summary, due or not (the socket is closing).
    pub fn flush_all(&mut self, now: Instant) -> Vec<Summary> {
        let far = now + self.period;
        let mut out = self.flush(far);
        for summary in &mut out {
            summary.period = summary.period.saturating_sub(self.period);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGINS: Topic = Topic {
        what: "PLAIN logins",
        why: "invalid credentials",
    };
    const CAP: Topic = Topic {
        what: "connections",
        why: "over the per-address cap",
    };

    fn ip(s: &str) -> Source {
        Source::of(&format!("{s}:1"))
    }

    #[test]
    fn a_flood_makes_one_line_per_period_per_topic() {
        let t0 = Instant::now();
        let mut log = RefusalLog::new(Duration::from_secs(1));
        let mut reasons = 0;
        let mut flush_at = None;
        for n in 0..4800u64 {
            let now = t0 + Duration::from_micros(n * 200);
            let due = log.record(LOGINS, ip("127.0.0.2"), now, || {
                reasons += 1;
                "invalid user name or password".into()
            });
            flush_at = flush_at.or(due);
        }
        assert_eq!(reasons, 1, "the reason is made once a period");
        let flush_at = flush_at.unwrap();
        assert_eq!(flush_at, t0 + Duration::from_secs(1));
        assert!(log.flush(t0 + Duration::from_millis(999)).is_empty());
        let lines = log.flush(flush_at);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].count, 4800);
        assert_eq!(
            lines[0].to_string(),
            "refused 4800 PLAIN logins (invalid credentials) in the last 1.0 s, \
             from 127.0.0.2 (4800); first: invalid user name or password"
        );
        // The next refusal opens a new period.
        assert!(log.flush(flush_at + Duration::from_secs(5)).is_empty());
        assert!(log
            .record(LOGINS, ip("127.0.0.2"), flush_at, || "x".into())
            .is_some());
    }

    #[test]
    fn topics_are_separate_and_addresses_beyond_a_few_are_counted_together() {
        let t0 = Instant::now();
        let mut log = RefusalLog::new(Duration::from_secs(1));
        assert!(log
            .record(CAP, ip("10.0.0.1"), t0, || "100 open".into())
            .is_some());
        assert!(log
            .record(LOGINS, ip("10.0.0.1"), t0, || "bad".into())
            .is_some());
        for n in 0..10 {
            for _ in 0..=n {
                log.record(CAP, ip(&format!("10.0.0.{}", n + 2)), t0, String::new);
            }
        }
        let mut lines = log.flush(t0 + Duration::from_secs(1));
        lines.sort_by_key(|s| s.topic != CAP);
        assert_eq!(lines.len(), 2);
        let cap = &lines[0];
        assert_eq!(cap.count, 1 + 55);
        // The first address and the three busiest that came while there was room.
        assert_eq!(cap.sources.len(), ADDRESSES_NAMED);
        assert_eq!(
            cap.sources.iter().map(|s| s.1).sum::<u64>() + cap.others,
            56
        );
        assert!(cap.to_string().contains("from other addresses"), "{cap}");
        assert_eq!(lines[1].to_string(), "refused 1 PLAIN login (invalid credentials) in the last 1.0 s, from 10.0.0.1 (1); first: bad");
    }

    #[test]
    fn a_long_sample_is_cut_and_a_closing_socket_flushes_everything() {
        let t0 = Instant::now();
        let mut log = RefusalLog::new(Duration::from_secs(1));
        log.record(LOGINS, Source::Local, t0, || "é".repeat(1000));
        let lines = log.flush_all(t0 + Duration::from_millis(10));
        assert_eq!(lines.len(), 1);
        assert!(lines[0].sample.len() <= SAMPLE_LEN + 3);
        assert_eq!(lines[0].period, Duration::from_millis(10));
        assert!(log.flush_all(t0).is_empty());
    }
}
