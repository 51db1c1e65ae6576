//! What each source address holds of a bound endpoint, and what it may still do:
//! its open connections, its connections in their handshake, its CURVE HELLO rate
//! and its failed logins. Sans-IO: every call takes the time.
//!
//! Bounded: an address has an entry while it has a connection open (so no more
//! entries than the endpoint has connections), and after that only while the entry
//! still holds something (a HELLO bucket not yet refilled, failed logins not yet
//! forgotten), at most [`AddressPolicy::max_idle_addresses`] of those. Past that,
//! entries at rest go first, then the least recently seen. An attacker who spreads
//! its attempts over more addresses than that can make the table forget some of
//! them early: the limits here are per address, the global caps bound the rest.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::login_backoff::{Backoff, LoginFailures};
use super::source::Source;
use super::token_bucket::{Rate, TokenBucket};
use super::Refusal;

/// The limits an endpoint puts on each address.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct AddressPolicy {
    /// Most connections one address keeps open at once (None: no limit).
    pub max_connections: Option<usize>,
    /// Most connections one address holds in their handshake at once.
    pub max_handshakes: Option<usize>,
    /// CURVE HELLOs one address may have opened (public-key work).
    pub hello_rate: Rate,
    /// Failed logins, and the back-off they earn.
    pub login_backoff: Backoff,
    /// Most entries kept for addresses with no connection open.
    pub max_idle_addresses: usize,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    connections: usize,
    handshakes: usize,
    hellos: Option<TokenBucket>,
    logins: LoginFailures,
    last_seen: Instant,
}

impl Entry {
    fn new(now: Instant) -> Entry {
        Entry {
            connections: 0,
            handshakes: 0,
            hellos: None,
            logins: LoginFailures::default(),
            last_seen: now,
        }
    }

    /// Holds nothing that a fresh entry would not.
    fn at_rest(&self, policy: &AddressPolicy, now: Instant) -> bool {
        self.connections == 0
            && self
                .hellos
                .map_or(true, |b| b.is_full(policy.hello_rate, now))
            && self.logins.is_forgotten(policy.login_backoff, now)
    }
}

/// Per-address state of one bound endpoint.
#[derive(Debug)]
pub struct AddressTable {
    policy: AddressPolicy,
    entries: HashMap<Source, Entry>,
    /// Entries with a connection open.
    live: usize,
}

impl AddressTable {
    /// An empty table.
    pub fn new(policy: AddressPolicy) -> AddressTable {
        AddressTable {
            policy,
            entries: HashMap::new(),
            live: 0,
        }
    }

    /// The policy it applies.
    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }

    /// A connection from `source` was accepted: it takes a connection and a
    /// handshake slot of its address, or is refused (an address blocked for failed
    /// logins, or at one of its caps). Refused, it holds nothing.
    pub fn admit(&mut self, source: Source, now: Instant) -> Result<(), Refusal> {
        let policy = self.policy;
        let entry = self
            .entries
            .entry(source)
            .or_insert_with(|| Entry::new(now));
        entry.last_seen = now;
        let refusal = if let Some(left) = entry.logins.blocked(now) {
            Some(Refusal::LoginBackoff {
                left,
                failures: entry.logins.failures(),
            })
        } else if policy
            .max_connections
            .is_some_and(|n| entry.connections >= n)
        {
            policy.max_connections.map(Refusal::AddressConnections)
        } else if policy.max_handshakes.is_some_and(|n| entry.handshakes >= n) {
            policy.max_handshakes.map(Refusal::AddressHandshakes)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            if entry.at_rest(&policy, now) {
                self.entries.remove(&source);
            }
            return Err(refusal);
        }
        if entry.connections == 0 {
            self.live += 1;
        }
        entry.connections += 1;
        entry.handshakes += 1;
        self.prune(now);
        Ok(())
    }

    /// A connection of `source` finished its handshake (or failed it).
    pub fn handshake_done(&mut self, source: Source) {
        if let Some(entry) = self.entries.get_mut(&source) {
            entry.handshakes = entry.handshakes.saturating_sub(1);
        }
    }

    /// A connection of `source` closed; `in_handshake` if it had not finished its
    /// handshake.
    pub fn closed(&mut self, source: Source, in_handshake: bool, now: Instant) {
        let Some(entry) = self.entries.get_mut(&source) else {
            return;
        };
        if in_handshake {
            entry.handshakes = entry.handshakes.saturating_sub(1);
        }
        entry.connections = entry.connections.saturating_sub(1);
        entry.last_seen = now;
        if entry.connections == 0 {
            self.live = self.live.saturating_sub(1);
            if entry.at_rest(&self.policy, now) {
                self.entries.remove(&source);
            }
            self.prune(now);
        }
    }

    /// A CURVE HELLO from `source` is about to be opened: takes a token of its
    /// bucket, or refuses it.
    pub fn hello(&mut self, source: Source, now: Instant) -> Result<(), Refusal> {
        let rate = self.policy.hello_rate;
        let entry = self
            .entries
            .entry(source)
            .or_insert_with(|| Entry::new(now));
        let bucket = entry
            .hellos
            .get_or_insert_with(|| TokenBucket::full(rate, now));
        let taken = bucket.take(rate, now);
        if self.live < self.entries.len() {
            self.prune(now);
        }
        if taken {
            Ok(())
        } else {
            Err(Refusal::HelloRate(rate.per_second))
        }
    }

    /// Whether `source` may have its credentials checked now.
    pub fn login_allowed(&self, source: Source, now: Instant) -> Result<(), Refusal> {
        match self
            .entries
            .get(&source)
            .and_then(|e| Some((e.logins.blocked(now)?, e.logins.failures())))
        {
            Some((left, failures)) => Err(Refusal::LoginBackoff { left, failures }),
            None => Ok(()),
        }
    }

    /// `source` failed a login; returns the block this started, if any.
    pub fn login_failed(&mut self, source: Source, now: Instant) -> Option<Duration> {
        let backoff = self.policy.login_backoff;
        let entry = self
            .entries
            .entry(source)
            .or_insert_with(|| Entry::new(now));
        entry.last_seen = now;
        let block = entry.logins.failed(backoff, now);
        if self.live < self.entries.len() {
            self.prune(now);
        }
        block
    }

    /// Connections `source` has open.
    pub fn connections(&self, source: Source) -> usize {
        self.entries.get(&source).map_or(0, |e| e.connections)
    }

    /// Connections of `source` in their handshake.
    pub fn handshakes(&self, source: Source) -> usize {
        self.entries.get(&source).map_or(0, |e| e.handshakes)
    }

    /// Addresses it holds an entry for.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keeps the entries of addresses without a connection under the cap: first
    /// those at rest go, then the least recently seen quarter.
    fn prune(&mut self, now: Instant) {
        let max = self.policy.max_idle_addresses;
        if self.entries.len() - self.live <= max {
            return;
        }
        let policy = self.policy;
        self.entries
            .retain(|_, e| e.connections > 0 || !e.at_rest(&policy, now));
        let idle = self.entries.len() - self.live;
        if idle <= max {
            return;
        }
        let keep = max - max / 4;
        let mut seen: Vec<Instant> = self
            .entries
            .values()
            .filter(|e| e.connections == 0)
            .map(|e| e.last_seen)
            .collect();
        let drop = idle - keep;
        let (_, cutoff, _) = seen.select_nth_unstable(drop - 1);
        let cutoff = *cutoff;
        self.entries
            .retain(|_, e| e.connections > 0 || e.last_seen > cutoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn policy() -> AddressPolicy {
        AddressPolicy {
            max_connections: Some(3),
            max_handshakes: Some(2),
            hello_rate: Rate {
                per_second: 1.0,
                burst: 2.0,
            },
            login_backoff: Backoff {
                failures_allowed: 1,
                first: Duration::from_secs(1),
                max: Duration::from_secs(4),
            },
            max_idle_addresses: 8,
        }
    }

    fn ip(n: u32) -> Source {
        Source::Ip(IpAddr::V4(Ipv4Addr::from(0x7f00_0000 + n)))
    }

    #[test]
    fn each_address_has_its_own_caps() {
        let t0 = Instant::now();
        let mut table = AddressTable::new(policy());
        let (a, b) = (ip(2), ip(1));
        table.admit(a, t0).unwrap();
        table.admit(a, t0).unwrap();
        assert_eq!(
            table.admit(a, t0),
            Err(Refusal::AddressHandshakes(2)),
            "two in their handshake already"
        );
        assert_eq!(table.handshakes(a), 2, "a refusal holds nothing");
        // Another address is not affected.
        table.admit(b, t0).unwrap();
        table.handshake_done(a);
        table.handshake_done(a);
        table.admit(a, t0).unwrap();
        assert_eq!(table.admit(a, t0), Err(Refusal::AddressConnections(3)));
        assert_eq!(table.connections(a), 3);
        // Slots come back as connections close, in or after their handshake.
        table.closed(a, true, t0);
        assert_eq!((table.connections(a), table.handshakes(a)), (2, 0));
        table.admit(a, t0).unwrap();
        table.closed(a, false, t0);
        table.closed(a, false, t0);
        table.closed(a, true, t0);
        assert_eq!((table.connections(a), table.handshakes(a)), (0, 0));
        // An address with nothing left to remember has no entry.
        assert_eq!(table.len(), 1);
        table.closed(b, true, t0);
        assert!(table.is_empty());
    }

    #[test]
    fn no_limits_when_none_are_set() {
        let t0 = Instant::now();
        let mut table = AddressTable::new(AddressPolicy {
            max_connections: None,
            max_handshakes: None,
            ..policy()
        });
        for _ in 0..1000 {
            table.admit(ip(2), t0).unwrap();
        }
        assert_eq!(table.connections(ip(2)), 1000);
    }

    #[test]
    fn hellos_are_rate_limited_per_address() {
        let t0 = Instant::now();
        let mut table = AddressTable::new(policy());
        let (a, b) = (ip(2), ip(1));
        table.admit(a, t0).unwrap();
        assert!(table.hello(a, t0).is_ok() && table.hello(a, t0).is_ok());
        assert_eq!(table.hello(a, t0), Err(Refusal::HelloRate(1.0)));
        assert!(
            table.hello(b, t0).is_ok(),
            "another address has its own bucket"
        );
        assert!(table.hello(a, t0 + Duration::from_secs(1)).is_ok());
        // The bucket outlives the connection until it is full again.
        table.closed(a, true, t0 + Duration::from_secs(1));
        assert!(!table.is_empty());
        assert_eq!(
            table.hello(a, t0 + Duration::from_secs(1)),
            Err(Refusal::HelloRate(1.0))
        );
    }

    #[test]
    fn failed_logins_block_the_address_at_admission_and_login() {
        let t0 = Instant::now();
        let mut table = AddressTable::new(policy());
        let (a, b) = (ip(2), ip(1));
        table.admit(a, t0).unwrap();
        assert_eq!(table.login_failed(a, t0), None);
        assert!(table.login_allowed(a, t0).is_ok());
        assert_eq!(table.login_failed(a, t0), Some(Duration::from_secs(1)));
        let blocked = Refusal::LoginBackoff {
            left: Duration::from_millis(500),
            failures: 2,
        };
        let half = t0 + Duration::from_millis(500);
        assert_eq!(table.login_allowed(a, half), Err(blocked));
        assert_eq!(table.admit(a, half), Err(blocked));
        assert!(table.login_allowed(b, half).is_ok());
        table.admit(b, half).unwrap();
        // The block ends; the record stays (the next failure blocks again).
        table.closed(a, true, half);
        let later = t0 + Duration::from_secs(1);
        table.admit(a, later).unwrap();
        assert_eq!(table.login_failed(a, later), Some(Duration::from_secs(2)));
    }

    #[test]
    fn entries_of_addresses_without_connections_are_bounded() {
        let t0 = Instant::now();
        let mut table = AddressTable::new(policy());
        // An address per step, each leaving a login failure behind.
        for n in 0..1000 {
            let now = t0 + Duration::from_millis(n.into());
            table.admit(ip(n), now).unwrap();
            table.login_failed(ip(n), now);
            table.closed(ip(n), true, now);
            assert!(table.len() <= 8, "{} entries", table.len());
        }
        // The most recent are kept.
        let now = t0 + Duration::from_millis(999);
        table.login_failed(ip(999), now);
        assert!(table.login_allowed(ip(999), now).is_err());
        // Live connections are never dropped, however many addresses.
        for n in 0..100 {
            table.admit(ip(5000 + n), now).unwrap();
        }
        assert!((100..=108).contains(&table.len()));
        assert_eq!(table.connections(ip(5000)), 1);
    }
}
