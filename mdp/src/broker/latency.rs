//! Request latency per service: a log-linear histogram in fixed memory, and a window
//! of the last one to two minutes for live quantiles.
//!
//! Buckets are exact below 16 µs, then eight per power of two (each at most 12.5 %
//! wide) up to 2^40 µs (12 days); longer times land in the last bucket. A quantile
//! answers the middle of its bucket, so it is within about 6 % of the true value.

use std::time::{Duration, Instant};

/// Values below this many microseconds have a bucket each.
const EXACT: u64 = 16;
/// Buckets per power of two above [`EXACT`].
const SUB: u64 = 8;
/// log2 of [`EXACT`].
const EXACT_BITS: u32 = 4;
/// The largest power of two with buckets of its own.
const TOP_BIT: u32 = 40;
/// Buckets in all.
const BUCKETS: usize = (EXACT + (TOP_BIT - EXACT_BITS + 1) as u64 * SUB) as usize;

/// How long one half of a [`LatencyWindow`] collects.
pub const WINDOW: Duration = Duration::from_secs(60);

fn bucket(micros: u64) -> usize {
    if micros < EXACT {
        return micros as usize;
    }
    let bit = (63 - micros.leading_zeros()).min(TOP_BIT);
    let sub = if bit == TOP_BIT && micros >> TOP_BIT > 1 {
        SUB - 1
    } else {
        (micros >> (bit - 3)) & (SUB - 1)
    };
    (EXACT + u64::from(bit - EXACT_BITS) * SUB + sub) as usize
}

/// The middle of bucket `index`, in microseconds.
fn middle(index: usize) -> f64 {
    let index = index as u64;
    if index < EXACT {
        return index as f64;
    }
    let bit = (index - EXACT) / SUB + u64::from(EXACT_BITS);
    let sub = (index - EXACT) % SUB;
    let width = 1u64 << (bit - 3);
    ((1u64 << bit) + sub * width) as f64 + width as f64 / 2.0
}

/// Counts of durations in log-linear buckets (about 1.2 KiB).
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u32; BUCKETS]>,
    total: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
        }
    }
}

impl Histogram {
    /// Counts one duration.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let slot = &mut self.counts[bucket(micros)];
        *slot = slot.saturating_add(1);
        self.total += 1;
    }

    /// Durations counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q`-quantile (0.0 to 1.0) of this and `other` together, in milliseconds;
    /// `None` when both are empty.
    pub fn quantile_with(&self, other: &Histogram, q: f64) -> Option<f64> {
        let total = self.total + other.total;
        if total == 0 {
            return None;
        }
        // The rank of the wanted value, 1-based: the smallest n with n >= q * total.
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, (a, b)) in self.counts.iter().zip(other.counts.iter()).enumerate() {
            seen += u64::from(*a) + u64::from(*b);
            if seen >= rank {
                return Some(middle(i) / 1000.0);
            }
        }
        Some(middle(BUCKETS - 1) / 1000.0)
    }
}

/// Latencies of the last [`WINDOW`] to 2 × [`WINDOW`]: two histograms, the older
/// dropped each time the newer has collected for a window.
#[derive(Debug, Clone, Default)]
pub struct LatencyWindow {
    current: Histogram,
    previous: Histogram,
    started: Option<Instant>,
    /// Every duration recorded since the start, in microseconds (Prometheus' `_sum`).
    sum_micros: u64,
    /// How many (`_count`).
    count: u64,
}

impl LatencyWindow {
    /// Counts one request's latency, measured at `now`.
    pub fn record(&mut self, latency: Duration, now: Instant) {
        self.rotate(now);
        self.current.record(latency);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros = self.sum_micros.saturating_add(micros);
        self.count += 1;
    }

    /// Starts a new window when the current one is full.
    pub fn rotate(&mut self, now: Instant) {
        let started = *self.started.get_or_insert(now);
        if now.saturating_duration_since(started) >= WINDOW {
            self.previous = std::mem::take(&mut self.current);
            // A window with nothing in it for long: the previous one is stale too.
            if now.saturating_duration_since(started) >= 2 * WINDOW {
                self.previous = Histogram::default();
            }
            self.started = Some(now);
        }
    }

    /// The `q`-quantile of the window, in milliseconds (`None`: nothing recent).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.current.quantile_with(&self.previous, q)
    }

    /// Latencies recorded since the start.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Their sum, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_micros as f64 / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_cover_their_values() {
        let mut last = 0;
        for micros in (0..100_000u64).chain([1 << 39, (1 << 40) - 1, 1 << 40, u64::MAX]) {
            let b = bucket(micros);
            assert!(b >= last, "bucket of {micros} went down");
            assert!(b < BUCKETS);
            last = b;
            if micros < 1 << 40 {
                // The bucket's middle is within 6.25 % of every value in it.
                let mid = middle(b);
                let error = (mid - micros as f64).abs() / (micros.max(1) as f64);
                assert!(micros < EXACT || error <= 0.0625, "{micros}: middle {mid}");
            }
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_of_a_known_spread() {
        let mut h = Histogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let empty = Histogram::default();
        let (p50, p99) = (h.quantile_with(&empty, 0.5), h.quantile_with(&empty, 0.99));
        let (p50, p99) = (p50.unwrap_or(0.0), p99.unwrap_or(0.0));
        assert!((47.0..=53.0).contains(&p50), "p50 {p50}");
        assert!((93.0..=105.0).contains(&p99), "p99 {p99}");
        assert_eq!(
            Histogram::default().quantile_with(&h, 0.0),
            h.quantile_with(&Histogram::default(), 0.0)
        );
        assert_eq!(
            Histogram::default().quantile_with(&Histogram::default(), 0.5),
            None
        );
    }

    #[test]
    fn the_window_forgets_what_is_two_windows_old() {
        let start = Instant::now();
        let mut w = LatencyWindow::default();
        w.record(Duration::from_millis(500), start);
        assert!(w.quantile(0.5).is_some_and(|ms| ms > 400.0));
        // One window later the old figures still count, beside the new ones.
        w.record(Duration::from_millis(1), start + WINDOW);
        assert!(w.quantile(0.99).is_some_and(|ms| ms > 400.0));
        // Another window later they are gone.
        w.rotate(start + 2 * WINDOW);
        assert!(w.quantile(0.99).is_some_and(|ms| ms < 2.0));
        w.rotate(start + 5 * WINDOW);
        assert_eq!(w.quantile(0.5), None);
        assert_eq!(w.count(), 2);
        assert!((w.sum_seconds() - 0.501).abs() < 1e-9);
    }
}
