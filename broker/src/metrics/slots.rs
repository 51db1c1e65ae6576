//! Who may hold a scrape connection: at most so many at once, and at most so many
//! from one source, so that one address cannot take the slots of all the others.
//!
//! A source is counted as the ZMTP endpoints' per-address caps count it
//! ([`Source`]: an IPv4 address, or an IPv6 /64, an IPv4-mapped IPv6 address as
//! its IPv4 address). Connections over a cap are refused at once: the decision
//! never waits for a slot.

use std::collections::HashMap;

use zmtp::defense::Source;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every slot is held.
    Full,
    /// Its source holds its share.
    SourceFull,
}

/// The slots held, in all and per source.
#[derive(Debug)]
pub struct Slots {
    max_total: usize,
    max_per_source: usize,
    total: usize,
    /// Only sources holding a slot: never more entries than slots.
    per_source: HashMap<Source, usize>,
}

impl Slots {
    /// At most `max_total` slots, at most `max_per_source` of them per source.
    pub fn new(max_total: usize, max_per_source: usize) -> Slots {
        Slots {
            max_total,
            max_per_source,
            total: 0,
            per_source: HashMap::new(),
        }
    }

    /// Takes a slot for a connection from `source`, or says why not.
    pub fn take(&mut self, source: Source) -> Result<(), Refused> {
        let held = self.per_source.get(&source).copied().unwrap_or(0);
        if held >= self.max_per_source {
            return Err(Refused::SourceFull);
        }
        if self.total >= self.max_total {
            return Err(Refused::Full);
        }
        self.total += 1;
        self.per_source.insert(source, held + 1);
        Ok(())
    }

    /// Gives back a slot that [`Slots::take`] gave `source`.
    pub fn give_back(&mut self, source: Source) {
        if let Some(held) = self.per_source.get_mut(&source) {
            *held = held.saturating_sub(1);
            self.total = self.total.saturating_sub(1);
            if *held == 0 {
                self.per_source.remove(&source);
            }
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
        for _ in 0..4 {
            assert_eq!(slots.take(attacker), Ok(()));
        }
        assert_eq!(slots.take(attacker), Err(Refused::SourceFull));
        for i in 0..6 {
            assert_eq!(slots.take(source(&format!("10.0.0.{i}"))), Ok(()));
        }
        assert_eq!(slots.total, 10);
        assert_eq!(slots.take(source("10.0.1.1")), Err(Refused::Full));
        // A slot given back is free for anyone, the attacker's share too.
        slots.give_back(source("10.0.0.3"));
        assert_eq!(slots.take(attacker), Err(Refused::SourceFull));
        assert_eq!(slots.take(source("10.0.1.1")), Ok(()));
        slots.give_back(attacker);
        assert_eq!(slots.take(source("10.0.1.2")), Ok(()));
        assert_eq!(slots.take(attacker), Err(Refused::Full));
    }

    #[test]
    fn giving_back_empties_the_map_and_unknown_sources_are_ignored() {
        let mut slots = Slots::new(2, 2);
        let a = source("192.0.2.1");
        slots.take(a).unwrap();
        slots.give_back(source("192.0.2.9"));
        assert_eq!(slots.total, 1);
        slots.give_back(a);
        slots.give_back(a);
        assert_eq!(slots.total, 0);
        assert!(slots.per_source.is_empty());
        slots.take(a).unwrap();
        slots.take(a).unwrap();
        assert_eq!(slots.take(a), Err(Refused::SourceFull));
    }

    #[test]
    fn an_ipv6_slash_64_holds_one_share_and_mapped_ipv4_counts_as_ipv4() {
        let mut slots = Slots::new(64, 1);
        slots.take(source("127.0.0.2")).unwrap();
        assert_eq!(
            slots.take(source("::ffff:127.0.0.2")),
            Err(Refused::SourceFull)
        );

        let mut slots = Slots::new(64, 8);
        for i in 0..8 {
            slots.take(source(&format!("2001:db8::{i:x}"))).unwrap();
        }
        assert_eq!(
            slots.take(source("2001:db8::ffff:1")),
            Err(Refused::SourceFull)
        );
    }
}
