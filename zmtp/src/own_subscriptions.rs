//! A subscriber's own topic subscriptions (SUB, XSUB): counted, matched by prefix on
//! a message's first frame (RFC 29).
//!
//! A subscriber *counts* its subscriptions, as libzmq 4.3 does: subscribing twice
//! and cancelling once leaves the topic subscribed; it sends every subscribe
//! upstream and a cancel only when a topic's count falls to zero
//! ([`Subscriptions::add`] and [`Subscriptions::remove`] say when). Publishers keep
//! their peers' subscriptions differently (a set per peer): see
//! `socket/subscriber_table.rs`.
//!
//! Topics live in a [`TopicTrie`], so matching a message costs one walk down its
//! first frame, whatever the number and lengths of the topics.

use bytes::Bytes;

use crate::topic_trie::TopicTrie;

/// One subscribed topic and how many times it is subscribed.
#[derive(Debug)]
struct Counted {
    /// The topic, resent whole to each new connection.
    topic: Bytes,
    count: usize,
}

/// A multiset of topic prefixes with prefix matching.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    topics: TopicTrie<Counted>,
}

impl Subscriptions {
    /// Counts one more subscription to `topic`; true when it is new.
    pub(crate) fn add(&mut self, topic: Bytes) -> bool {
        let counted = self
            .topics
            .get_or_insert_with(&topic.clone(), || Counted { topic, count: 0 });
        counted.count += 1;
        counted.count == 1
    }

    /// Counts one subscription to `topic` less; true when its count fell to zero
    /// (false when it was not subscribed at all).
    pub(crate) fn remove(&mut self, topic: &[u8]) -> bool {
        let Some(counted) = self.topics.get_mut(topic) else {
            return false;
        };
        counted.count -= 1;
        if counted.count > 0 {
            return false;
        }
        self.topics.remove(topic);
        true
    }

    /// Whether some subscribed topic is a prefix of `data` (the empty topic matches
    /// everything).
    pub(crate) fn matches(&self, data: &[u8]) -> bool {
        self.topics.prefixes(data).next().is_some()
    }

    /// Each distinct topic once (what a subscriber resends after a reconnect).
    pub(crate) fn topics(&self) -> impl Iterator<Item = &Bytes> {
        self.topics.values().map(|counted| &counted.topic)
    }

    /// Number of distinct topics.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.topics.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

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
