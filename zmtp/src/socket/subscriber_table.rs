//! [`Subscribers`]: what each peer of a PUB or XPUB socket subscribed to, and which
//! subscription changes an XPUB hands to its application (libzmq xpub.cpp).
//!
//! Engines feed it from the wire: SUBSCRIBE/CANCEL commands (ZMTP 3.1) and legacy
//! `0x01|0x00 + topic` frames (ZMTP 3.0), accepted from any peer. The socket reads it
//! to send each message only to the peers whose subscriptions match its first frame.
//!
//! Per peer, subscriptions are a set (a repeated subscribe changes nothing, one
//! cancel removes the topic), as libzmq's mtrie keeps them. Across peers each topic
//! counts its subscribers, so an XPUB passes a subscribe up when the first peer takes
//! a topic and a cancel when the last one leaves it (the verbose options pass more).
//!
//! A peer's subscriptions end with its connection, also for a connecting socket
//! that will reconnect: the peer resends what it still wants (every SUB does), and
//! nothing stale stays behind. An XPUB application therefore sees the cancels when
//! a connection drops and the subscribes again after the reconnect; libzmq's
//! connecting XPUB keeps the old set silently instead.
//!
//! What peers can make us hold is capped ([`SubscriptionCaps`], from the socket
//! options): topics and bytes per peer, and over all peers together. Past a cap a new
//! subscription is ignored (an XPUB application does not see it), counted, and
//! logged at most once a second with the number ignored since the last line.
//!
//! Topics are matched in a [`TopicTrie`]: a message costs one walk down its first
//! frame plus one step per matching subscription, whatever the number and lengths
//! of the topics peers hold.

pub use crate::options::XpubVerbosity;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

use super::PeerKey;
use crate::inbound::Inbound;
use crate::log_throttle::LogThrottle;
use crate::options::SocketOptions;
use crate::topic_trie::TopicTrie;
use crate::Message;

/// How much the peers of a PUB or XPUB may make it hold in subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SubscriptionCaps {
    pub(crate) per_peer_topics: usize,
    pub(crate) per_peer_bytes: usize,
    pub(crate) total_topics: usize,
    pub(crate) total_bytes: usize,
}

impl SubscriptionCaps {
    pub(crate) fn from_options(options: &SocketOptions) -> SubscriptionCaps {
        SubscriptionCaps {
            per_peer_topics: options.max_subscriptions_per_peer,
            per_peer_bytes: options.max_subscription_bytes_per_peer,
            total_topics: options.max_subscriptions_total.unwrap_or(usize::MAX),
            total_bytes: options.max_subscription_bytes_total.unwrap_or(usize::MAX),
        }
    }

    /// The cap that one more topic of `len` bytes from `peer` would pass, if any.
    fn passed(&self, peer: &PeerTopics, totals: &Totals, len: usize) -> Option<&'static str> {
        if peer.topics.len() >= self.per_peer_topics {
            Some("topics per peer")
        } else if peer.bytes.saturating_add(len) > self.per_peer_bytes {
            Some("bytes per peer")
        } else if totals.topics >= self.total_topics {
            Some("topics in all")
        } else if totals.bytes.saturating_add(len) > self.total_bytes {
            Some("bytes in all")
        } else {
            None
        }
    }
}

/// What one peer subscribed to: a set, each topic in an allocation of its own (never
/// a slice of a read buffer that it would keep alive).
#[derive(Debug, Default)]
struct PeerTopics {
    topics: HashSet<Bytes>,
    bytes: usize,
}

/// Subscriptions over all peers.
#[derive(Debug, Default)]
struct Totals {
    topics: usize,
    bytes: usize,
}

#[derive(Debug)]
struct Table {
    by_peer: HashMap<PeerKey, PeerTopics>,
    /// Which peers subscribe to each topic, sorted.
    peers_by_topic: TopicTrie<Vec<PeerKey>>,
    totals: Totals,
    caps: SubscriptionCaps,
    /// Subscriptions ignored past a cap, for the log.
    ignored_log: LogThrottle,
}

/// The subscription table of a PUB (`notify: false`) or XPUB (`notify: true`).
#[derive(Debug)]
pub(crate) struct Subscribers {
    table: Mutex<Table>,
    /// XPUB: subscription changes become messages for the application.
    notify: bool,
    verbosity: AtomicU8,
    /// Subscriptions ignored past a cap since the socket was made.
    ignored: AtomicU64,
}

impl Subscribers {
    pub(crate) fn new(
        notify: bool,
        verbosity: XpubVerbosity,
        caps: SubscriptionCaps,
    ) -> Subscribers {
        Subscribers {
            table: Mutex::new(Table {
                by_peer: HashMap::new(),
                peers_by_topic: TopicTrie::default(),
                totals: Totals::default(),
                caps,
                ignored_log: LogThrottle::new(Duration::from_secs(1)),
            }),
            notify,
            verbosity: AtomicU8::new(verbosity.to_u8()),
            ignored: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Each update below leaves the table consistent before anything can panic.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_verbosity(&self, verbosity: XpubVerbosity) {
        self.verbosity.store(verbosity.to_u8(), Ordering::Relaxed);
    }

    /// New caps, for the subscriptions that come from now on.
    pub(crate) fn set_caps(&self, caps: SubscriptionCaps) {
        self.lock().caps = caps;
    }

    fn verbosity(&self) -> XpubVerbosity {
        XpubVerbosity::from_u8(self.verbosity.load(Ordering::Relaxed))
    }

    /// Subscriptions ignored past a cap so far.
    pub(crate) fn ignored(&self) -> u64 {
        self.ignored.load(Ordering::Relaxed)
    }

    /// A SUBSCRIBE (`subscribe`) or CANCEL from `peer`; an XPUB notification, if any,
    /// goes to `up`.
    pub(crate) fn on_subscription(
        &self,
        peer: PeerKey,
        subscribe: bool,
        topic: Bytes,
        up: &mut Vec<Inbound>,
    ) {
        let verbosity = self.verbosity();
        let mut guard = self.lock();
        let t = &mut *guard;
        let notify = if subscribe {
            let entry = t.by_peer.entry(peer).or_default();
            if entry.topics.contains(&topic) {
                // A set: nothing changes, but the verbose options pass it up.
                verbosity != XpubVerbosity::Changes
            } else if let Some(cap) = t.caps.passed(entry, &t.totals, topic.len()) {
                self.ignored.fetch_add(1, Ordering::Relaxed);
                if let Some(ignored) = t.ignored_log.hit(Instant::now()) {
                    let (topics, bytes) = (entry.topics.len(), entry.bytes);
                    drop(guard);
                    tracing::warn!(
                        ignored,
                        cap,
                        peer,
                        peer_topics = topics,
                        peer_bytes = bytes,
                        "subscriptions past a cap ignored (count since the last such line)"
                    );
                }
                return;
            } else {
                let topic = Bytes::copy_from_slice(&topic);
                entry.bytes += topic.len();
                t.totals.topics += 1;
                t.totals.bytes += topic.len();
                let peers = t.peers_by_topic.get_or_insert_with(&topic, Vec::new);
                if let Err(at) = peers.binary_search(&peer) {
                    peers.insert(at, peer);
                }
                let first = peers.len() == 1;
                entry.topics.insert(topic);
                first || verbosity != XpubVerbosity::Changes
            }
        } else {
            let removed = t.by_peer.get_mut(&peer).is_some_and(|entry| {
                let removed = entry.topics.remove(&topic);
                if removed {
                    entry.bytes -= topic.len();
                }
                removed
            });
            let last = removed && t.forget(peer, &topic);
            last || (removed && verbosity == XpubVerbosity::All)
        };
        drop(guard);
        if notify && self.notify {
            up.push(notification(peer, subscribe, &topic));
        }
    }

    /// A message from `peer`: each frame that starts with 0x01 or 0x00 is a legacy
    /// subscribe or cancel (libzmq xpub.cpp checks every frame); the other frames, if
    /// any, are a message for an XPUB application. PUB drops them.
    pub(crate) fn on_message(&self, peer: PeerKey, msg: Message, up: &mut Vec<Inbound>) {
        let mut rest = Message::new();
        for frame in msg.into_vec() {
            match frame.first() {
                Some(&flag @ (0 | 1)) => {
                    self.on_subscription(peer, flag == 1, frame.slice(1..), up);
                }
                _ => rest.push_back(frame),
            }
        }
        if self.notify && !rest.is_empty() {
            up.push(Inbound::new(peer, rest));
        }
    }

    /// `peer` is gone: its subscriptions go with it. An XPUB is told about each topic
    /// that has no subscriber left (about every one of the peer's topics when verboser).
    pub(crate) fn peer_gone(&self, peer: PeerKey, up: &mut Vec<Inbound>) {
        let verbosity = self.verbosity();
        let mut t = self.lock();
        let Some(entry) = t.by_peer.remove(&peer) else {
            return;
        };
        for topic in &entry.topics {
            let last = t.forget(peer, topic);
            if self.notify && (last || verbosity == XpubVerbosity::All) {
                up.push(notification(peer, false, topic));
            }
        }
    }

    /// Puts in `out` (emptied first) every peer with a subscription matching
    /// `first_frame`, once each.
    pub(crate) fn matching(&self, first_frame: &[u8], out: &mut Vec<PeerKey>) {
        out.clear();
        let t = self.lock();
        let mut topics = 0;
        for peers in t.peers_by_topic.prefixes(first_frame) {
            out.extend_from_slice(peers);
            topics += 1;
        }
        if topics > 1 {
            // A peer may hold several of the matching topics.
            out.sort_unstable();
            out.dedup();
        }
    }
}

impl Table {
    /// `peer` no longer holds `topic` (already taken out of its set): the totals and
    /// the topic's subscribers follow. True when the topic has no subscriber left.
    fn forget(&mut self, peer: PeerKey, topic: &[u8]) -> bool {
        self.totals.topics -= 1;
        self.totals.bytes -= topic.len();
        let Some(peers) = self.peers_by_topic.get_mut(topic) else {
            return false;
        };
        if let Ok(at) = peers.binary_search(&peer) {
            peers.remove(at);
        }
        if !peers.is_empty() {
            return false;
        }
        self.peers_by_topic.remove(topic);
        true
    }
}

/// What an XPUB application receives: `0x01|0x00 + topic`, whatever form the peer
/// used on the wire (libzmq does the same).
fn notification(peer: PeerKey, subscribe: bool, topic: &[u8]) -> Inbound {
    let mut body = BytesMut::with_capacity(1 + topic.len());
    body.put_u8(u8::from(subscribe));
    body.put_slice(topic);
    Inbound::new(peer, Message::from(body.freeze()))
}

impl crate::delivery::SubscriptionTable for Subscribers {
    fn on_message(&self, peer: PeerKey, msg: Message, batch: &mut Vec<Inbound>) {
        Subscribers::on_message(self, peer, msg, batch);
    }

    fn on_subscription(
        &self,
        peer: PeerKey,
        subscribe: bool,
        topic: Bytes,
        batch: &mut Vec<Inbound>,
    ) {
        Subscribers::on_subscription(self, peer, subscribe, topic, batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    fn bodies(up: &mut Vec<Inbound>) -> Vec<Vec<u8>> {
        up.drain(..).map(|i| i.msg.into_vec().concat()).collect()
    }

    const NO_CAPS: SubscriptionCaps = SubscriptionCaps {
        per_peer_topics: usize::MAX,
        per_peer_bytes: usize::MAX,
        total_topics: usize::MAX,
        total_bytes: usize::MAX,
    };

    fn pub_table() -> Subscribers {
        Subscribers::new(false, XpubVerbosity::Changes, NO_CAPS)
    }

    fn xpub_table(verbosity: XpubVerbosity) -> Subscribers {
        Subscribers::new(true, verbosity, NO_CAPS)
    }

    fn matching(s: &Subscribers, data: &[u8]) -> Vec<PeerKey> {
        let mut out = Vec::new();
        s.matching(data, &mut out);
        out.sort_unstable();
        out
    }

    #[test]
    fn matches_per_peer_by_prefix() {
        let s = pub_table();
        let mut up = Vec::new();
        s.on_subscription(1, true, b("a"), &mut up);
        s.on_subscription(2, true, b("ab"), &mut up);
        s.on_message(3, Message::from(&b"\x01"[..]), &mut up); // legacy, empty topic
        assert!(up.is_empty(), "PUB never notifies");
        assert_eq!(matching(&s, b"abc"), [1, 2, 3]);
        assert_eq!(matching(&s, b"a"), [1, 3]);
        assert_eq!(matching(&s, b"x"), [3]);
        s.on_subscription(1, false, b("a"), &mut up);
        s.peer_gone(3, &mut up);
        assert_eq!(matching(&s, b"abc"), [2]);
    }

    #[test]
    fn a_set_per_peer() {
        let s = pub_table();
        let mut up = Vec::new();
        s.on_subscription(1, true, b("a"), &mut up);
        s.on_subscription(1, true, b("a"), &mut up);
        s.on_subscription(1, false, b("a"), &mut up);
        assert!(
            matching(&s, b"a").is_empty(),
            "one cancel removes the topic"
        );
    }

    #[test]
    fn xpub_sees_first_subscribe_and_last_cancel() {
        let s = xpub_table(XpubVerbosity::Changes);
        let mut up = Vec::new();
        s.on_subscription(1, true, b("t"), &mut up);
        s.on_subscription(2, true, b("t"), &mut up);
        s.on_subscription(2, true, b("t"), &mut up);
        assert_eq!(bodies(&mut up), [b"\x01t".to_vec()]);
        s.on_subscription(1, false, b("t"), &mut up);
        s.on_subscription(1, false, b("never"), &mut up);
        assert!(
            up.is_empty(),
            "peer 2 still subscribes; unknown cancels are not passed up"
        );
        s.peer_gone(2, &mut up);
        assert_eq!(
            bodies(&mut up),
            [b"\x00t".to_vec()],
            "the last subscriber left"
        );
    }

    #[test]
    fn xpub_verbose_and_verboser() {
        let s = xpub_table(XpubVerbosity::Subscribes);
        let mut up = Vec::new();
        s.on_subscription(1, true, b("t"), &mut up);
        s.on_subscription(2, true, b("t"), &mut up);
        s.on_subscription(2, false, b("t"), &mut up);
        assert_eq!(bodies(&mut up), [b"\x01t".to_vec(), b"\x01t".to_vec()]);
        s.set_verbosity(XpubVerbosity::All);
        s.on_subscription(2, true, b("t"), &mut up);
        s.on_subscription(2, false, b("t"), &mut up);
        assert_eq!(bodies(&mut up), [b"\x01t".to_vec(), b"\x00t".to_vec()]);
    }

    #[test]
    fn xpub_passes_user_frames_up_and_pub_drops_them() {
        let msg = Message::from(["\x01sub", "hello"]);
        let xpub = xpub_table(XpubVerbosity::Changes);
        let mut up = Vec::new();
        xpub.on_message(1, msg.clone(), &mut up);
        assert_eq!(bodies(&mut up), [b"\x01sub".to_vec(), b"hello".to_vec()]);
        let publisher = pub_table();
        publisher.on_message(1, msg, &mut up);
        assert!(up.is_empty());
        assert_eq!(matching(&publisher, b"subject"), [1]);
    }

    #[test]
    fn a_peer_holding_several_matching_topics_is_matched_once() {
        let s = pub_table();
        let mut up = Vec::new();
        for topic in ["", "w", "we", "weather"] {
            s.on_subscription(7, true, Bytes::from(topic), &mut up);
        }
        s.on_subscription(8, true, b("we"), &mut up);
        assert_eq!(matching(&s, b"weather.oslo"), [7, 8]);
    }

    #[test]
    fn caps_per_peer_ignore_and_count_what_is_past_them() {
        let caps = SubscriptionCaps {
            per_peer_topics: 3,
            per_peer_bytes: 10,
            ..NO_CAPS
        };
        let s = Subscribers::new(true, XpubVerbosity::Changes, caps);
        let mut up = Vec::new();
        for topic in ["a", "b", "c", "d"] {
            s.on_subscription(1, true, b(topic), &mut up);
        }
        assert_eq!(
            bodies(&mut up),
            [b"\x01a".to_vec(), b"\x01b".to_vec(), b"\x01c".to_vec()]
        );
        assert_eq!(s.ignored(), 1, "the fourth topic");
        assert!(matching(&s, b"d").is_empty());
        s.on_subscription(1, true, b("a"), &mut up);
        assert_eq!(s.ignored(), 1, "a topic it holds is no new subscription");
        s.on_subscription(1, false, b("d"), &mut up);
        assert!(up.is_empty(), "the cancel of an ignored topic goes nowhere");
        s.on_subscription(1, false, b("c"), &mut up);
        s.on_subscription(1, true, b("0123456789"), &mut up);
        assert_eq!(s.ignored(), 2, "2 + 10 bytes: past the byte cap");
        s.on_subscription(1, true, b("01234567"), &mut up);
        assert_eq!(matching(&s, b"0123456789"), [1]);
        s.on_subscription(2, true, b("0123456789"), &mut up);
        assert_eq!(
            matching(&s, b"0123456789"),
            [1, 2],
            "another peer has its own share"
        );
        assert_eq!(s.ignored(), 2);
    }

    #[test]
    fn caps_over_all_peers() {
        let caps = SubscriptionCaps {
            total_topics: 3,
            total_bytes: 6,
            ..NO_CAPS
        };
        let s = Subscribers::new(false, XpubVerbosity::Changes, caps);
        let mut up = Vec::new();
        for peer in 1..=4 {
            s.on_subscription(peer, true, b("t"), &mut up);
        }
        assert_eq!(
            matching(&s, b"t"),
            [1, 2, 3],
            "each peer's subscription counts"
        );
        assert_eq!(s.ignored(), 1);
        s.peer_gone(1, &mut up);
        s.on_subscription(4, true, b("longer"), &mut up);
        assert_eq!(s.ignored(), 2, "2 bytes held + 6: past 6 bytes in all");
        s.on_subscription(4, true, b("lon"), &mut up);
        assert_eq!(matching(&s, b"long"), [4]);
        assert_eq!(s.ignored(), 2);
        s.set_caps(NO_CAPS);
        s.on_subscription(5, true, b("t"), &mut up);
        assert_eq!(matching(&s, b"t"), [2, 3, 5]);
    }

    #[test]
    fn topics_are_copied_out_of_the_buffers_they_came_in() {
        let s = pub_table();
        let mut up = Vec::new();
        let read_buffer = Bytes::from(vec![b'x'; 64 * 1024]);
        s.on_subscription(1, true, read_buffer.slice(..3), &mut up);
        let t = s.lock();
        let held = t.by_peer[&1]
            .topics
            .iter()
            .next()
            .map(|topic| topic.as_ptr());
        assert_ne!(held, Some(read_buffer.as_ptr()), "a copy, not a slice");
    }

    proptest::proptest! {
        /// Matching agrees with each peer's own set after any sequence of
        /// subscribes, cancels and departures.
        #[test]
        fn matching_agrees_with_a_naive_matcher(
            ops in proptest::collection::vec((0u64..4, 0u8..3, "[ab]{0,4}"), 0..60),
            probe in "[ab]{0,6}",
        ) {
            let s = pub_table();
            let mut naive: HashMap<PeerKey, HashSet<String>> = HashMap::new();
            let mut up = Vec::new();
            for (peer, op, topic) in ops {
                match op {
                    0 => {
                        s.on_subscription(peer, true, Bytes::from(topic.clone()), &mut up);
                        naive.entry(peer).or_default().insert(topic);
                    }
                    1 => {
                        s.on_subscription(peer, false, Bytes::from(topic.clone()), &mut up);
                        naive.entry(peer).or_default().remove(&topic);
                    }
                    _ => {
                        s.peer_gone(peer, &mut up);
                        naive.remove(&peer);
                    }
                }
            }
            let mut expected: Vec<PeerKey> = naive
                .iter()
                .filter(|(_, topics)| topics.iter().any(|t| probe.starts_with(t.as_str())))
                .map(|(peer, _)| *peer)
                .collect();
            expected.sort_unstable();
            proptest::prop_assert_eq!(matching(&s, probe.as_bytes()), expected);
            let t = s.lock();
            let held: usize = naive.values().map(HashSet::len).sum();
            proptest::prop_assert_eq!(t.totals.topics, held);
        }
    }
}
