//! Who may hold a scrape connection: at most so many at once, and at most so many
//! from one source, so that one address cannot take the slots of all the others.
//!
//! A source is counted as the ZMTP endpoints' per-address caps count it
//! ([`Source`]: an IPv4 address, or an IPv6 /64, an IPv4-mapped IPv6 address as
//! its IPv4 address). The decision never waits for a slot. When every slot is
//! held, a newcomer whose source holds fewer than the source holding the most
//! (by two or more) takes the oldest connection's slot of that source, which is
//! closed: attackers with many addresses cannot keep every slot from a scraper
//! with one. Otherwise it is refused at once.

use std::collections::{HashMap, VecDeque};

use tokio_util::sync::CancellationToken;
use zmtp::defense::Source;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every slot is held, and no source holds more than its fair share.
    Full,
    /// Its source holds its share.
    SourceFull,
}

/// A slot taken: its number (to give it back) and what closes its connection when
/// another source needs the slot more.
#[derive(Debug)]
pub struct Taken {
    /// Gives the slot back with [`Slots::give_back`].
    pub id: u64,
    /// Cancelled when the slot is taken over.
    pub evicted: CancellationToken,
}

/// The slots held, in all and per source.
#[derive(Debug)]
pub struct Slots {
    max_total: usize,
    max_per_source: usize,
    total: usize,
    next_id: u64,
    /// Only sources holding a slot: never more entries than slots. Oldest first.
    per_source: HashMap<Source, VecDeque<(u64, CancellationToken)>>,
}

impl Slots {
    /// At most `max_total` slots, `max_per_source` of them per source.
    pub fn new(max_total: usize, max_per_source: usize) -> Slots {
        Slots {
            max_total,
            max_per_source,
            total: 0,
            next_id: 0,
            per_source: HashMap::new(),
        }
    }

    fn held(&self, source: Source) -> usize {
        self.per_source.get(&source).map_or(0, VecDeque::len)
    }

    /// A slot for a connection from `source`, perhaps taken over from the source
    /// holding the most (whose oldest connection is then told to close).
    pub fn take(&mut self, source: Source) -> Result<Taken, Refused> {
        let held = self.held(source);
        if held >= self.max_per_source {
            return Err(Refused::SourceFull);
        }
        if self.total >= self.max_total {
            let biggest = self
                .per_source
                .iter()
                .max_by_key(|(_, held)| held.len())
                .map(|(s, held)| (*s, held.len()));
            match biggest {
                Some((victim, most)) if most > held + 1 => self.evict_oldest(victim),
                _ => return Err(Refused::Full),
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let evicted = CancellationToken::new();
        self.total += 1;
        self.per_source
            .entry(source)
            .or_default()
            .push_back((id, evicted.clone()));
        Ok(Taken { id, evicted })
    }

    fn evict_oldest(&mut self, source: Source) {
        let Some(held) = self.per_source.get_mut(&source) else {
            return;
        };
        if let Some((_, token)) = held.pop_front() {
            token.cancel();
            self.total -= 1;
        }
        if held.is_empty() {
            self.per_source.remove(&source);
        }
    }

    /// The connection of slot `id` from `source` ended (nothing if its slot was
    /// taken over already).
    pub fn give_back(&mut self, source: Source, id: u64) {
        let Some(held) = self.per_source.get_mut(&source) else {
            return;
        };
        if let Some(at) = held.iter().position(|(slot, _)| *slot == id) {
            held.remove(at);
            self.total -= 1;
        }
        if held.is_empty() {
            self.per_source.remove(&source);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Source {
        Source::of_ip(text.parse().unwrap())
    }

    #[test]
    fn one_source_gets_its_share_and_others_the_rest() {
        let mut slots = Slots::new(10, 4);
        let attacker = source("127.0.0.2");
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(slots.take(attacker).unwrap());
        }
        assert_eq!(slots.take(attacker).unwrap_err(), Refused::SourceFull);
        let others: Vec<Taken> = (0..6)
            .map(|i| slots.take(source(&format!("10.0.0.{i}"))).unwrap())
            .collect();
        assert_eq!(slots.total, 10);
        // Full, and the attacker holds 4 against the newcomer's 0: it gives one up.
        let newcomer = slots.take(source("10.0.1.1")).unwrap();
        assert!(
            held[0].evicted.is_cancelled(),
            "the attacker's oldest is closed"
        );
        assert_eq!(slots.total, 10);
        slots.give_back(attacker, held[0].id); // its task ends: nothing more to give
        assert_eq!(slots.total, 10);
        // Full: the biggest holder itself takes nobody's slot.
        assert_eq!(slots.take(attacker).unwrap_err(), Refused::Full);
        slots.give_back(source("10.0.0.3"), others[3].id);
        slots.give_back(source("10.0.1.1"), newcomer.id);
        assert_eq!(slots.total, 8);
    }

    #[test]
    fn many_sources_at_their_share_cannot_keep_out_a_newcomer() {
        let mut slots = Slots::new(64, 8);
        let held: Vec<Taken> = (0..64)
            .map(|i| slots.take(source(&format!("192.0.2.{}", i / 8))).unwrap())
            .collect();
        for i in 0..8 {
            slots
                .take(source(&format!("198.51.100.{i}")))
                .expect("a newcomer takes an attacker's slot");
        }
        assert_eq!(held.iter().filter(|t| t.evicted.is_cancelled()).count(), 8);
        assert_eq!(slots.total, 64);
    }

    #[test]
    fn giving_back_empties_the_map_and_unknown_slots_are_ignored() {
        let mut slots = Slots::new(2, 2);
        let a = source("192.0.2.1");
        let first = slots.take(a).unwrap();
        slots.give_back(source("192.0.2.9"), first.id);
        assert_eq!(slots.total, 1);
        slots.give_back(a, first.id);
        slots.give_back(a, first.id);
        assert_eq!(slots.total, 0);
        assert!(slots.per_source.is_empty());
        slots.take(a).unwrap();
        slots.take(a).unwrap();
        assert_eq!(slots.take(a).unwrap_err(), Refused::SourceFull);
    }

    #[test]
    fn an_ipv6_slash_64_holds_one_share_and_mapped_ipv4_counts_as_ipv4() {
        let mut slots = Slots::new(64, 1);
        slots.take(source("127.0.0.2")).unwrap();
        assert_eq!(
            slots.take(source("::ffff:127.0.0.2")).unwrap_err(),
            Refused::SourceFull
        );

        let mut slots = Slots::new(64, 8);
        for i in 0..8 {
            slots.take(source(&format!("2001:db8::{i:x}"))).unwrap();
        }
        assert_eq!(
            slots.take(source("2001:db8::ffff:1")).unwrap_err(),
            Refused::SourceFull
        );
    }
}
