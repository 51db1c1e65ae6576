//! Topic subscriptions: prefix matching on a message's first frame (RFC 29).
//!
//! Two uses, two counting rules, as in libzmq 4.3:
//! - a subscriber (SUB, XSUB) *counts* its own subscriptions: subscribing twice and
//!   cancelling once leaves the topic subscribed; it sends every subscribe upstream
//!   and a cancel only when a topic's count falls to zero ([`Subscriptions::add`] and
//!   [`Subscriptions::remove`] say when);
//! - a publisher (PUB, XPUB) keeps one *set* per peer: a repeated subscribe from the
//!   same peer changes nothing, one cancel removes the topic. That matches what
//!   libzmq subscribers send, old ones (first subscribe only) and new ones (every
//!   subscribe, cancel at zero) alike.
//!
//! Matching checks only the prefix lengths actually subscribed, so it costs a few
//! hash lookups whatever the number of topics.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

/// A multiset of topic prefixes with prefix matching.
#[derive(Debug, Default, Clone)]
pub(crate) struct Subscriptions {
    topics: HashMap<Bytes, usize>,
    /// How many distinct topics have each length.
    lengths: BTreeMap<usize, usize>,
}

impl Subscriptions {
    /// Counts one more subscription to `topic`; true when it is new.
    pub(crate) fn add(&mut self, topic: Bytes) -> bool {
        let len = topic.len();
        let count = self.topics.entry(topic).or_insert(0);
        *count += 1;
        let new = *count == 1;
        if new {
            *self.lengths.entry(len).or_insert(0) += 1;
        }
        new
    }

    /// Adds `topic` once (set semantics); true when it was not there.
    pub(crate) fn insert(&mut self, topic: Bytes) -> bool {
        if self.topics.contains_key(&topic) {
            return false;
        }
        self.add(topic)
    }

    /// Counts one subscription to `topic` less; true when its count fell to zero
    /// (false when it was not subscribed at all).
    pub(crate) fn remove(&mut self, topic: &[u8]) -> bool {
        let Some(count) = self.topics.get_mut(topic) else {
            return false;
        };
        *count -= 1;
        if *count > 0 {
            return false;
        }
        self.topics.remove(topic);
        if let Some(n) = self.lengths.get_mut(&topic.len()) {
            *n -= 1;
            if *n == 0 {
                self.lengths.remove(&topic.len());
            }
        }
        true
    }

    /// Removes `topic` whatever its count (set semantics); true when it was there.
    pub(crate) fn remove_all(&mut self, topic: &[u8]) -> bool {
        match self.topics.get_mut(topic) {
            Some(count) => {
                *count = 1;
                self.remove(topic)
            }
            None => false,
        }
    }

    /// Whether some subscribed topic is a prefix of `data` (the empty topic matches
    /// everything).
    pub(crate) fn matches(&self, data: &[u8]) -> bool {
        self.lengths
            .keys()
            .take_while(|&&len| len <= data.len())
            .any(|&len| self.topics.contains_key(&data[..len]))
    }

    /// Whether `topic` itself is subscribed.
    pub(crate) fn contains(&self, topic: &[u8]) -> bool {
        self.topics.contains_key(topic)
    }

    /// Each distinct topic once (what a subscriber resends after a reconnect).
    pub(crate) fn topics(&self) -> impl Iterator<Item = &Bytes> {
        self.topics.keys()
    }

    /// Number of distinct topics.
    pub(crate) fn len(&self) -> usize {
        self.topics.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn prefix_matching() {
        let mut s = Subscriptions::default();
        assert!(
            !s.matches(b"anything"),
            "nothing subscribed, nothing matches"
        );
        s.add(b("weather."));
        assert!(s.matches(b"weather.paris"));
        assert!(s.matches(b"weather."));
        assert!(!s.matches(b"weather"));
        assert!(!s.matches(b"news"));
        s.add(b(""));
        assert!(s.matches(b""), "the empty topic matches everything");
        assert!(s.matches(b"news"));
    }

    #[test]
    fn counted_for_subscribers() {
        let mut s = Subscriptions::default();
        assert!(s.add(b("a")), "first subscribe is new");
        assert!(!s.add(b("a")), "second is counted");
        assert!(!s.remove(b"a"), "one cancel leaves it subscribed");
        assert!(s.matches(b"abc"));
        assert!(s.remove(b"a"), "the last cancel removes it");
        assert!(!s.matches(b"abc"));
        assert!(
            !s.remove(b"a"),
            "cancelling what is not there changes nothing"
        );
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn a_set_for_publishers() {
        let mut s = Subscriptions::default();
        assert!(s.insert(b("a")));
        assert!(!s.insert(b("a")), "a repeated subscribe changes nothing");
        assert!(s.remove_all(b"a"), "one cancel removes it");
        assert!(!s.matches(b"a"));
        assert!(!s.remove_all(b"a"));
        assert_eq!(s.len(), 0);
    }

    proptest! {
        /// Matching agrees with the obvious definition after any add/remove sequence.
        #[test]
        fn matches_like_a_linear_scan(
            ops in proptest::collection::vec((any::<bool>(), "[ab]{0,3}"), 0..40),
            probe in "[ab]{0,5}",
        ) {
            let mut s = Subscriptions::default();
            let mut model: HashMap<String, usize> = HashMap::new();
            for (add, topic) in ops {
                if add {
                    s.add(Bytes::from(topic.clone()));
                    *model.entry(topic).or_insert(0) += 1;
                } else {
                    let gone = s.remove(topic.as_bytes());
                    let count = model.get(&topic).copied().unwrap_or(0);
                    prop_assert_eq!(gone, count == 1);
                    if count <= 1 { model.remove(&topic); } else { model.insert(topic, count - 1); }
                }
            }
            let expected = model.keys().any(|t| probe.starts_with(t.as_str()));
            prop_assert_eq!(s.matches(probe.as_bytes()), expected);
            prop_assert_eq!(s.len(), model.len());
        }
    }
}
