//! The CURVE client short-term keys (C') a server has seen lately.
//!
//! A CurveZMQ client makes a fresh short-term key pair for every connection (RFC 26;
//! libzmq does), so a HELLO carrying a C' that was already seen is a replay: someone
//! recorded a HELLO and sends it again to make the server do public-key work for
//! free (the HELLO opens, so the server would answer WELCOME). A server checks this
//! cache before any public-key work and refuses a key it holds; it adds a key once
//! its HELLO has opened (so garbage HELLOs, which cost the sender nothing, cannot
//! fill it).
//!
//! Bounded: at most `capacity` keys, each for `ttl`; when full, the oldest goes
//! first. Each entry costs about 100 bytes (the key in a hash set and in a queue
//! ordered by time, with their spare room), so 16 384 entries hold at most about
//! 1.6 MiB.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// A CURVE public key.
type Key = [u8; 32];

/// Recently seen client short-term keys.
#[derive(Debug)]
pub struct ReplayCache {
    seen: HashSet<Key>,
    /// Insertion order, which is expiry order: every entry lives for `ttl`.
    order: VecDeque<(Key, Instant)>,
    capacity: usize,
    ttl: Duration,
}

impl ReplayCache {
    /// About how many bytes one entry costs, at most.
    pub const BYTES_PER_ENTRY: usize = 100;

    /// An empty cache of at most `capacity` keys, each kept for `ttl`. A capacity of
    /// 0 keeps nothing (replays are not detected).
    pub fn new(capacity: usize, ttl: Duration) -> ReplayCache {
        ReplayCache {
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity,
            ttl,
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((key, at)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.ttl {
                break;
            }
            self.seen.remove(key);
            self.order.pop_front();
        }
    }

    /// Whether `key` was seen within the last `ttl`.
    pub fn contains(&mut self, key: &Key, now: Instant) -> bool {
        self.expire(now);
        self.seen.contains(key)
    }

    /// Remembers `key` as seen at `now`, dropping the oldest key when full.
    pub fn insert(&mut self, key: Key, now: Instant) {
        self.expire(now);
        if self.capacity == 0 || self.seen.contains(&key) {
            return;
        }
        while self.order.len() >= self.capacity {
            match self.order.pop_front() {
                Some((old, _)) => {
                    self.seen.remove(&old);
                }
                None => break,
            }
        }
        self.seen.insert(key);
        self.order.push_back((key, now));
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        [n; 32]
    }

    #[test]
    fn a_seen_key_is_a_replay_until_it_expires() {
        let t0 = Instant::now();
        let mut cache = ReplayCache::new(10, Duration::from_secs(60));
        assert!(!cache.contains(&key(1), t0));
        cache.insert(key(1), t0);
        assert!(cache.contains(&key(1), t0 + Duration::from_secs(59)));
        assert!(!cache.contains(&key(2), t0));
        assert!(!cache.contains(&key(1), t0 + Duration::from_secs(60)));
        assert!(cache.is_empty());
    }

    #[test]
    fn a_full_cache_drops_the_oldest_and_never_grows() {
        let t0 = Instant::now();
        let mut cache = ReplayCache::new(3, Duration::from_secs(60));
        for n in 0..100u8 {
            cache.insert(key(n), t0 + Duration::from_millis(u64::from(n)));
            assert!(cache.len() <= 3);
        }
        let now = t0 + Duration::from_millis(100);
        assert!(cache.contains(&key(99), now) && cache.contains(&key(97), now));
        assert!(!cache.contains(&key(96), now));
        // Inserting a key again changes nothing.
        cache.insert(key(99), now);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.seen.len(), 3);
    }

    #[test]
    fn capacity_zero_remembers_nothing() {
        let t0 = Instant::now();
        let mut cache = ReplayCache::new(0, Duration::from_secs(60));
        cache.insert(key(1), t0);
        assert!(!cache.contains(&key(1), t0));
    }
}
