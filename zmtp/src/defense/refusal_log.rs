//! Log lines about refused peers, aggregated: a flood of refusals makes at most
//! one line a second per kind of refusal, with counts and the addresses that sent
//! the most, never one line per refusal (which would let any peer fill the disk and
//! slow the process).
//!
//! The first refusal of a quiet kind is said at once, with its own reason (one
//! misconfigured peer is easy to find). That starts a period; the refusals of that
//! kind during it are counted, and said in one summary line when it ends, which
//! starts the next period; a period without any ends the kind's turn. So the
//! lines of one kind are at least a period apart.
//!
//! Sans-IO: [`RefusalLog::record`] counts a refusal, returns the line to write now
//! if any, and when the next flush is due if nobody is waiting for one yet;
//! [`RefusalLog::flush`] returns the summaries of the periods that are over and
//! when to flush next. The caller writes the lines.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use super::source::Source;

/// Addresses named in one summary; refusals from others are counted together.
const ADDRESSES_NAMED: usize = 4;

/// The longest reason kept (a peer may choose part of some reasons).
const REASON_LEN: usize = 300;

/// What was refused and why, as a log line groups it: "PLAIN logins" and
/// "credentials refused", "connections" and "the per-address connection cap".
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
    /// The first counted refusal's own reason.
    sample: Option<String>,
}

impl Tally {
    fn new(now: Instant) -> Tally {
        Tally {
            since: now,
            count: 0,
            sources: Vec::new(),
            others: 0,
            sample: None,
        }
    }
}

/// One line's worth: the refusals of one kind counted over one period.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// What and why.
    pub topic: Topic,
    /// How many.
    pub count: u64,
    /// Over how long.
    pub period: Duration,
    /// The addresses that sent the most, with their counts (none if no refusal
    /// had an address).
    pub sources: Vec<(Source, u64)>,
    /// Refusals from other addresses.
    pub others: u64,
    /// The first one's own reason.
    pub sample: String,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused {} more {} ({}) in the last {:.1} s",
            self.count,
            self.topic.what,
            self.topic.why,
            self.period.as_secs_f64()
        )?;
        for (i, (source, n)) in self.sources.iter().enumerate() {
            let sep = if i == 0 { ", from " } else { ", " };
            write!(f, "{sep}{source} ({n})")?;
        }
        if self.others > 0 {
            write!(f, " and {} from other addresses", self.others)?;
        }
        write!(f, "; first: {}", self.sample)
    }
}

/// What [`RefusalLog::record`] asks of the caller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Recorded {
    /// A line to write now (the first refusal of a quiet kind).
    pub line: Option<String>,
    /// Call [`RefusalLog::flush`] at this time (nobody was due to).
    pub flush_at: Option<Instant>,
}

/// Counts refusals per kind over periods of [`RefusalLog::period`].
#[derive(Debug)]
pub struct RefusalLog {
    period: Duration,
    tallies: HashMap<Topic, Tally>,
    /// When the pending flush is due, if one is.
    flush_at: Option<Instant>,
}

fn cut(mut text: String) -> String {
    if text.len() > REASON_LEN {
        let mut at = REASON_LEN;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
        text.push('…');
    }
    text
}

impl RefusalLog {
    /// A log that says each kind at most once per `period`.
    pub fn new(period: Duration) -> RefusalLog {
        RefusalLog {
            period,
            tallies: HashMap::new(),
            flush_at: None,
        }
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Counts one refusal of `topic` from `source` (a [`Source`], or `None` for a
    /// refusal with no peer address, such as a failed `accept`: counted, never
    /// named). `reason` is called only when its text is needed: for the line said
    /// at once, or the first of a summary.
    pub fn record(
        &mut self,
        topic: Topic,
        source: impl Into<Option<Source>>,
        now: Instant,
        reason: impl FnOnce() -> String,
    ) -> Recorded {
        let Some(tally) = self.tallies.get_mut(&topic) else {
            self.tallies.insert(topic, Tally::new(now));
            let line = format!("refused ({}, {}): {}", topic.what, topic.why, cut(reason()));
            let flush_at = match self.flush_at {
                Some(_) => None,
                None => {
                    self.flush_at = Some(now + self.period);
                    self.flush_at
                }
            };
            return Recorded {
                line: Some(line),
                flush_at,
            };
        };
        tally.count += 1;
        if tally.sample.is_none() {
            tally.sample = Some(cut(reason()));
        }
        let Some(source) = source.into() else {
            return Recorded::default();
        };
        let room = tally.sources.len() < ADDRESSES_NAMED;
        match tally.sources.iter_mut().find(|(s, _)| *s == source) {
            Some((_, n)) => *n += 1,
            None if room => tally.sources.push((source, 1)),
            None => tally.others += 1,
        }
        Recorded::default()
    }

    /// The summaries of the periods over at `now` (each starts the next period of
    /// its kind; a kind with nothing counted goes quiet), and when to flush next.
    pub fn flush(&mut self, now: Instant) -> (Vec<Summary>, Option<Instant>) {
        let period = self.period;
        let mut out = Vec::new();
        self.tallies.retain(|topic, tally| {
            if now.saturating_duration_since(tally.since) < period {
                return true;
            }
            if tally.count == 0 {
                return false;
            }
            let mut done = std::mem::replace(tally, Tally::new(now));
            done.sources.sort_by_key(|s| std::cmp::Reverse(s.1));
            out.push(Summary {
                topic: *topic,
                count: done.count,
                period: now.saturating_duration_since(done.since),
                sources: done.sources,
                others: done.others,
                sample: done.sample.unwrap_or_default(),
            });
            true
        });
        self.flush_at = self.tallies.values().map(|t| t.since + period).min();
        (out, self.flush_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGINS: Topic = Topic {
        what: "PLAIN logins",
        why: "credentials refused",
    };
    const CAP: Topic = Topic {
        what: "connections",
        why: "the per-address connection cap",
    };

    fn ip(s: &str) -> Source {
        Source::of(&format!("{s}:1"))
    }

    #[test]
    fn a_flood_makes_one_line_at_once_then_one_per_period() {
        let t0 = Instant::now();
        let mut log = RefusalLog::new(Duration::from_secs(1));
        let first = log.record(LOGINS, ip("127.0.0.2"), t0, || {
            "127.0.0.2:7: bad password".into()
        });
        assert_eq!(
            first,
            Recorded {
                line: Some(
                    "refused (PLAIN logins, credentials refused): 127.0.0.2:7: bad password".into()
                ),
                flush_at: Some(t0 + Duration::from_secs(1)),
            }
        );
        let mut reasons = 0;
        for n in 1..4800u64 {
            let now = t0 + Duration::from_micros(n * 200);
            let recorded = log.record(LOGINS, ip("127.0.0.2"), now, || {
                reasons += 1;
                format!("guess {n}")
            });
            assert_eq!(recorded, Recorded::default(), "counted, not said");
        }
        assert_eq!(reasons, 1, "the reason is made once a period");
        let (lines, next) = log.flush(t0 + Duration::from_millis(999));
        assert!(lines.is_empty());
        assert_eq!(next, Some(t0 + Duration::from_secs(1)));
        let t1 = t0 + Duration::from_secs(1);
        let (lines, next) = log.flush(t1);
        assert_eq!(
            lines.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "refused 4799 more PLAIN logins (credentials refused) in the last 1.0 s, \
              from 127.0.0.2 (4799); first: guess 1"
            ]
        );
        // The next period has begun: refusals in it are counted, not said.
        assert_eq!(next, Some(t1 + Duration::from_secs(1)));
        let later = log.record(LOGINS, ip("127.0.0.2"), t1, || "x".into());
        assert_eq!(later, Recorded::default());
        let (lines, _) = log.flush(t1 + Duration::from_secs(1));
        assert_eq!(lines[0].count, 1);
        // A period with nothing ends the kind's turn: the next refusal is said at once.
        let (lines, next) = log.flush(t1 + Duration::from_secs(2));
        assert!(lines.is_empty() && next.is_none());
        let again = log.record(LOGINS, ip("127.0.0.2"), t1 + Duration::from_secs(3), || {
            "y".into()
        });
        assert!(again.line.is_some() && again.flush_at.is_some());
    }

    #[test]
    fn kinds_are_separate_and_addresses_beyond_a_few_are_counted_together() {
        let t0 = Instant::now();
        let mut log = RefusalLog::new(Duration::from_secs(1));
        assert!(log
            .record(CAP, ip("10.0.0.1"), t0, || "100 open".into())
            .flush_at
            .is_some());
        let logins = log.record(LOGINS, ip("10.0.0.1"), t0, || "bad".into());
        assert!(logins.line.is_some(), "another kind is said at once too");
        assert_eq!(logins.flush_at, None, "a flush is already due");
        for n in 0..10 {
            for _ in 0..=n {
                log.record(CAP, ip(&format!("10.0.0.{}", n + 2)), t0, String::new);
            }
        }
        let (lines, _) = log.flush(t0 + Duration::from_secs(1));
        assert_eq!(lines.len(), 1, "nothing more of the logins to say");
        let cap = &lines[0];
        assert_eq!(cap.count, 55);
        assert_eq!(cap.sources.len(), ADDRESSES_NAMED);
        assert_eq!(
            cap.sources.iter().map(|s| s.1).sum::<u64>() + cap.others,
            55
        );
        assert!(cap.to_string().contains("from other addresses"), "{cap}");
    }

    #[test]
    fn refusals_without_an_address_are_counted_and_not_named() {
        let t0 = Instant::now();
        let mut log = RefusalLog::new(Duration::from_secs(1));
        let first = log.record(CAP, None, t0, || "out of descriptors".into());
        assert_eq!(
            first.line.as_deref(),
            Some("refused (connections, the per-address connection cap): out of descriptors")
        );
        log.record(CAP, None, t0, || "again".into());
        log.record(CAP, ip("10.0.0.1"), t0, String::new);
        log.record(CAP, None, t0, String::new);
        let (lines, _) = log.flush(t0 + Duration::from_secs(1));
        assert_eq!(lines[0].count, 3);
        assert_eq!(lines[0].sources, [(ip("10.0.0.1"), 1)]);
        assert_eq!(lines[0].others, 0, "no address is not another address");
        log.record(CAP, None, t0 + Duration::from_secs(1), || "again".into());
        let (lines, _) = log.flush(t0 + Duration::from_secs(2));
        assert_eq!(
            lines[0].to_string(),
            "refused 1 more connections (the per-address connection cap) in the last 1.0 s; \
             first: again"
        );
    }

    #[test]
    fn a_long_reason_is_cut() {
        let t0 = Instant::now();
        let mut log = RefusalLog::new(Duration::from_secs(1));
        let line = log
            .record(LOGINS, Source::Local, t0, || "é".repeat(1000))
            .line
            .unwrap();
        assert!(line.len() <= REASON_LEN + 60, "{}", line.len());
    }
}
