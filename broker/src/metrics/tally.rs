//! Log lines a client can cause, counted instead of written one by one: each kind
//! is written at most once per window, as one line that says how many happened and
//! from where (`4800 in the last 1.0s, from 127.0.0.2 (4700), 127.0.0.3 (100)`).
//! Without this, a client opening connections in a loop would write the log as
//! fast as it connects.
//!
//! No I/O and no clock: the caller passes `now` and writes the summaries
//! [`Tally::due`] hands back. Memory is bounded: a handful of sources are named per
//! kind, the rest only counted.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use super::slots::Source;

/// Sources named in one summary; the others are counted together.
const NAMED_SOURCES: usize = 4;

/// Events of each kind `K` counted since the window opened.
#[derive(Debug)]
pub struct Tally<K> {
    window: Duration,
    /// When the first event of this window came.
    opened: Option<Instant>,
    counts: BTreeMap<K, Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: u64,
    sources: Vec<(Source, u64)>,
    /// Events from sources beyond the named ones.
    unnamed: u64,
}

/// One line's worth: how many events of a kind, over how long, from where.
#[derive(Debug, PartialEq, Eq)]
pub struct Summary<K> {
    /// What happened.
    pub kind: K,
    /// How many times.
    pub total: u64,
    /// Over how long.
    pub over: Duration,
    /// The first sources seen, most events first.
    pub sources: Vec<(Source, u64)>,
    /// Events from other sources.
    pub unnamed: u64,
}

impl<K> fmt::Display for Summary<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in the last {:.1?}", self.total, self.over)?;
        for (i, (source, n)) in self.sources.iter().enumerate() {
            let lead = if i == 0 { ", from" } else { "," };
            write!(f, "{lead} {source} ({n})")?;
        }
        if self.unnamed > 0 {
            write!(f, ", other sources ({})", self.unnamed)?;
        }
        Ok(())
    }
}

impl<K: Ord + Copy> Tally<K> {
    /// Summaries at most once per `window` per kind.
    pub fn new(window: Duration) -> Tally<K> {
        Tally {
            window,
            opened: None,
            counts: BTreeMap::new(),
        }
    }

    /// Counts one event of `kind` at `now`, from `source` if it has one.
    pub fn record(&mut self, now: Instant, kind: K, source: Option<Source>) {
        self.opened.get_or_insert(now);
        let counts = self.counts.entry(kind).or_default();
        counts.total += 1;
        let Some(source) = source else { return };
        if let Some((_, n)) = counts.sources.iter_mut().find(|(s, _)| *s == source) {
            *n += 1;
        } else if counts.sources.len() < NAMED_SOURCES {
            counts.sources.push((source, 1));
        } else {
            counts.unnamed += 1;
        }
    }

    /// The summaries to write at `now`: none until a window has passed since the
    /// first event counted, then one per kind, and the count starts again.
    pub fn due(&mut self, now: Instant) -> Vec<Summary<K>> {
        let Some(opened) = self.opened else {
            return Vec::new();
        };
        let over = now.saturating_duration_since(opened);
        if over < self.window {
            return Vec::new();
        }
        self.opened = None;
        std::mem::take(&mut self.counts)
            .into_iter()
            .map(|(kind, mut counts)| {
                counts.sources.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
                Summary {
                    kind,
                    total: counts.total,
                    over,
                    sources: counts.sources,
                    unnamed: counts.unnamed,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(1);

    fn source(text: &str) -> Option<Source> {
        Some(Source::from(text.parse::<std::net::IpAddr>().unwrap()))
    }

    #[test]
    fn a_flood_is_one_line_per_kind_and_window() {
        let t0 = Instant::now();
        let mut tally = Tally::new(WINDOW);
        assert!(tally.due(t0).is_empty());
        for i in 0..4800u32 {
            let at = t0 + Duration::from_micros(u64::from(i) * 100);
            let from = if i % 48 == 0 {
                "127.0.0.3"
            } else {
                "127.0.0.2"
            };
            tally.record(at, 'r', source(from));
            assert!(tally.due(at).is_empty(), "a line before the window passed");
        }
        tally.record(t0, 'a', None);
        let lines = tally.due(t0 + WINDOW);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].to_string(), "1 in the last 1.0s");
        assert_eq!(lines[1].kind, 'r');
        assert_eq!(
            lines[1].to_string(),
            "4800 in the last 1.0s, from 127.0.0.2 (4700), 127.0.0.3 (100)"
        );
        // Counting starts again; nothing more is due until something happens.
        assert!(tally.due(t0 + WINDOW * 5).is_empty());
        tally.record(t0 + WINDOW * 5, 'r', source("127.0.0.2"));
        assert!(tally.due(t0 + WINDOW * 5).is_empty());
        assert_eq!(tally.due(t0 + WINDOW * 6).len(), 1);
    }

    #[test]
    fn only_a_few_sources_are_named() {
        let t0 = Instant::now();
        let mut tally = Tally::new(WINDOW);
        for i in 0..1000u32 {
            tally.record(t0, 'r', source(&format!("10.0.{}.{}", i / 250, i % 250)));
        }
        let lines = tally.due(t0 + WINDOW);
        assert_eq!(lines[0].sources.len(), NAMED_SOURCES);
        assert_eq!(lines[0].unnamed, 1000 - NAMED_SOURCES as u64);
        assert!(lines[0].to_string().ends_with(", other sources (996)"));
    }
}
