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
//! What a peer can make us hold is capped: at most [`MAX_TOPICS_PER_PEER`] topics and
//! [`MAX_TOPIC_BYTES_PER_PEER`] bytes of them; beyond that, new subscriptions from
//! that peer are ignored and logged once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::{BufMut, Bytes, BytesMut};

use super::PeerKey;
use crate::inbound::Inbound;
use crate::subscriptions::Subscriptions;
use crate::Message;

/// Most topics one peer may subscribe to at once.
pub(crate) const MAX_TOPICS_PER_PEER: usize = 100_000;

/// Most bytes of topics one peer may hold subscribed at once.
pub(crate) const MAX_TOPIC_BYTES_PER_PEER: usize = 64 * 1024 * 1024;

/// Which subscription messages an XPUB application receives (ZMQ_XPUB_VERBOSE and
/// ZMQ_XPUB_VERBOSER).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XpubVerbosity {
    /// A subscribe when a topic gets its first subscriber, a cancel when it loses its
    /// last one (libzmq's default).
    #[default]
    Changes,
    /// Every subscribe any peer sends; cancels as in `Changes` (ZMQ_XPUB_VERBOSE).
    Subscribes,
    /// Every subscribe and every cancel (ZMQ_XPUB_VERBOSER).
    All,
}

impl XpubVerbosity {
    fn to_u8(self) -> u8 {
        match self {
            XpubVerbosity::Changes => 0,
            XpubVerbosity::Subscribes => 1,
            XpubVerbosity::All => 2,
        }
    }

    fn from_u8(v: u8) -> XpubVerbosity {
        match v {
            1 => XpubVerbosity::Subscribes,
            2 => XpubVerbosity::All,
            _ => XpubVerbosity::Changes,
        }
    }
}

#[derive(Debug, Default)]
struct PeerTopics {
    topics: Subscriptions,
    bytes: usize,
    warned: bool,
}

#[derive(Debug, Default)]
struct Table {
    by_peer: HashMap<PeerKey, PeerTopics>,
    /// How many peers subscribe to each topic.
    peers_per_topic: HashMap<Bytes, usize>,
}

/// The subscription table of a PUB (`notify: false`) or XPUB (`notify: true`).
#[derive(Debug)]
pub(crate) struct Subscribers {
    table: Mutex<Table>,
    /// XPUB: subscription changes become messages for the application.
    notify: bool,
    verbosity: AtomicU8,
}

impl Subscribers {
    pub(crate) fn new(notify: bool, verbosity: XpubVerbosity) -> Subscribers {
        Subscribers {
            table: Mutex::new(Table::default()),
            notify,
            verbosity: AtomicU8::new(verbosity.to_u8()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Each update below leaves the table consistent before anything can panic.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_verbosity(&self, verbosity: XpubVerbosity) {
        self.verbosity.store(verbosity.to_u8(), Ordering::Relaxed);
    }

    fn verbosity(&self) -> XpubVerbosity {
        XpubVerbosity::from_u8(self.verbosity.load(Ordering::Relaxed))
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
        let mut t = self.lock();
        let notify = if subscribe {
            let entry = t.by_peer.entry(peer).or_default();
            let over_cap = entry.topics.len() >= MAX_TOPICS_PER_PEER
                || entry.bytes + topic.len() > MAX_TOPIC_BYTES_PER_PEER;
            if over_cap && !entry.topics.contains(&topic) {
                if !entry.warned {
                    entry.warned = true;
                    tracing::warn!(
                        peer,
                        topics = entry.topics.len(),
                        bytes = entry.bytes,
                        "peer holds too many subscriptions; ignoring its new ones"
                    );
                }
                return;
            }
            let first = if entry.topics.insert(topic.clone()) {
                entry.bytes += topic.len();
                let count = t.peers_per_topic.entry(topic.clone()).or_insert(0);
                *count += 1;
                *count == 1
            } else {
                false
            };
            first || verbosity != XpubVerbosity::Changes
        } else {
            let removed = t.by_peer.get_mut(&peer).is_some_and(|entry| {
                let removed = entry.topics.remove_all(&topic);
                if removed {
                    entry.bytes -= topic.len();
                }
                removed
            });
            let last = removed && forget_one(&mut t.peers_per_topic, &topic);
            last || (removed && verbosity == XpubVerbosity::All)
        };
        drop(t);
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
        for topic in entry.topics.topics() {
            let last = forget_one(&mut t.peers_per_topic, topic);
            if self.notify && (last || verbosity == XpubVerbosity::All) {
                up.push(notification(peer, false, topic));
            }
        }
    }

    /// Puts in `out` every peer with a subscription matching `first_frame`.
    pub(crate) fn matching(&self, first_frame: &[u8], out: &mut Vec<PeerKey>) {
        let t = self.lock();
        out.extend(
            t.by_peer
                .iter()
                .filter(|(_, entry)| entry.topics.matches(first_frame))
                .map(|(key, _)| *key),
        );
    }
}

/// One subscriber less for `topic`; true when it was the last.
fn forget_one(peers_per_topic: &mut HashMap<Bytes, usize>, topic: &[u8]) -> bool {
    let Some(count) = peers_per_topic.get_mut(topic) else {
        return false;
    };
    *count -= 1;
    if *count > 0 {
        return false;
    }
    peers_per_topic.remove(topic);
    true
}

/// What an XPUB application receives: `0x01|0x00 + topic`, whatever form the peer
/// used on the wire (libzmq does the same).
fn notification(peer: PeerKey, subscribe: bool, topic: &[u8]) -> Inbound {
    let mut body = BytesMut::with_capacity(1 + topic.len());
    body.put_u8(u8::from(subscribe));
    body.put_slice(topic);
    Inbound::new(peer, Message::from(body.freeze()))
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

    fn matching(s: &Subscribers, data: &[u8]) -> Vec<PeerKey> {
        let mut out = Vec::new();
        s.matching(data, &mut out);
        out.sort_unstable();
        out
    }

    #[test]
    fn matches_per_peer_by_prefix() {
        let s = Subscribers::new(false, XpubVerbosity::Changes);
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
        let s = Subscribers::new(false, XpubVerbosity::Changes);
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
        let s = Subscribers::new(true, XpubVerbosity::Changes);
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
        let s = Subscribers::new(true, XpubVerbosity::Subscribes);
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
        let xpub = Subscribers::new(true, XpubVerbosity::Changes);
        let mut up = Vec::new();
        xpub.on_message(1, msg.clone(), &mut up);
        assert_eq!(bodies(&mut up), [b"\x01sub".to_vec(), b"hello".to_vec()]);
        let publisher = Subscribers::new(false, XpubVerbosity::Changes);
        publisher.on_message(1, msg, &mut up);
        assert!(up.is_empty());
        assert_eq!(matching(&publisher, b"subject"), [1]);
    }

    #[test]
    fn a_peer_cannot_grow_the_table_without_bound() {
        let s = Subscribers::new(false, XpubVerbosity::Changes);
        let mut up = Vec::new();
        for i in 0..MAX_TOPICS_PER_PEER + 10 {
            s.on_subscription(1, true, Bytes::from(i.to_string()), &mut up);
        }
        let t = s.lock();
        assert_eq!(t.by_peer[&1].topics.len(), MAX_TOPICS_PER_PEER);
        assert_eq!(t.peers_per_topic.len(), MAX_TOPICS_PER_PEER);
    }
}
