//! PUB, SUB, XPUB and XSUB (RFC 29) between our own sockets, and against a scripted
//! ZMTP 3.0 peer that only knows legacy subscription messages.
//!
//! Every wait is bounded (generously, for loaded machines); nothing asserts on timing.
//! A subscription travels asynchronously, so tests publish until the subscriber
//! sees a first message ("warm-up") before asserting what arrives after it.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout, Instant};
use tokio_util::codec::Decoder;
use zmtp::proto::greeting::{Version, GREETING_LEN};
use zmtp::proto::{Command, FrameCodec, Greeting, MechanismName, Metadata};
use zmtp::{Error, Message, Socket, SocketOptions, SocketType, XpubVerbosity};

/// Bound on every wait for a message.
const WAIT: Duration = Duration::from_secs(30);

async fn recv(s: &mut Socket) -> Message {
    timeout(WAIT, s.recv())
        .await
        .expect("no message within the wait")
        .expect("recv failed")
}

/// The next message within a short grace period, if any: used only to show that
/// something does *not* arrive, after a later message proved the path is flowing.
async fn recv_within(s: &mut Socket, wait: Duration) -> Option<Message> {
    timeout(wait, s.recv()).await.ok().map(|r| r.expect("recv"))
}

fn text(msg: &Message) -> Vec<String> {
    msg.iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

/// Publishes `probe` until `sub` receives it, so the subscription for it is known to
/// have reached the publisher. Everything else received meanwhile is discarded.
async fn warm_up(publisher: &mut Socket, sub: &mut Socket, probe: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "subscription never took effect");
        publisher.send(probe.to_owned()).await.expect("publish");
        if let Some(msg) = recv_within(sub, Duration::from_millis(50)).await {
            if msg[0] == probe.as_bytes() {
                // Drain copies of the probe still in flight.
                while let Some(m) = recv_within(sub, Duration::from_millis(50)).await {
                    assert_eq!(m[0], probe.as_bytes(), "unexpected {m:?}");
                }
                return;
            }
        }
    }
}

async fn bound_publisher() -> (Socket, String) {
    let mut publisher = Socket::new(SocketType::Pub);
    let endpoint = publisher.bind("tcp://127.0.0.1:0").await.expect("bind");
    (publisher, endpoint.to_string())
}

async fn pub_sub_pair(transport: &str) -> (Socket, Socket) {
    let mut publisher = Socket::new(SocketType::Pub);
    let endpoint = publisher.bind(transport).await.expect("bind");
    let mut sub = Socket::new(SocketType::Sub);
    sub.connect(&endpoint.to_string()).expect("connect");
    (publisher, sub)
}

#[tokio::test]
async fn sub_receives_only_its_topics_and_stops_after_unsubscribe() {
    for transport in ["tcp://127.0.0.1:0", &testkit::ipc_endpoint("pubsub")] {
        let (mut publisher, mut sub) = pub_sub_pair(transport).await;
        sub.subscribe("weather.").unwrap();
        sub.subscribe("sport").unwrap();
        sub.subscribe("probe").unwrap();
        warm_up(&mut publisher, &mut sub, "probe").await;

        for topic in ["news.x", "weather.paris", "sport.tennis", "weathe", "end"] {
            publisher.send([topic, "body"]).await.unwrap();
        }
        publisher.send("probe").await.unwrap();
        let mut got = Vec::new();
        loop {
            let msg = recv(&mut sub).await;
            if msg[0] == "probe" {
                break;
            }
            got.push(text(&msg)[0].clone());
        }
        assert_eq!(got, ["weather.paris", "sport.tennis"], "{transport}");

        // One unsubscribe stops the topic; the others keep flowing.
        sub.unsubscribe("weather.").unwrap();
        // A new topic, subscribed after the cancel on the same connection: once it
        // flows, the cancel has reached the publisher.
        sub.subscribe("second-probe").unwrap();
        warm_up(&mut publisher, &mut sub, "second-probe").await;
        publisher.send("weather.rome").await.unwrap();
        publisher.send("sport.golf").await.unwrap();
        assert_eq!(text(&recv(&mut sub).await), ["sport.golf"]);
    }
}

#[tokio::test]
async fn subscriptions_are_counted_and_the_empty_topic_takes_everything() {
    let (mut publisher, mut sub) = pub_sub_pair("tcp://127.0.0.1:0").await;
    sub.subscribe("a").unwrap();
    sub.subscribe("a").unwrap();
    sub.unsubscribe("a").unwrap();
    sub.subscribe("probe").unwrap();
    warm_up(&mut publisher, &mut sub, "probe").await;
    publisher.send("abc").await.unwrap();
    assert_eq!(
        text(&recv(&mut sub).await),
        ["abc"],
        "still subscribed once"
    );

    sub.subscribe("").unwrap();
    warm_up(&mut publisher, &mut sub, "zzz").await;
    publisher.send(["anything", "at all"]).await.unwrap();
    assert_eq!(text(&recv(&mut sub).await), ["anything", "at all"]);
}

#[tokio::test]
async fn pub_and_sub_refuse_the_other_direction() {
    let mut publisher = Socket::new(SocketType::Pub);
    let mut sub = Socket::new(SocketType::Sub);
    assert!(matches!(
        publisher.recv().await,
        Err(Error::Unsupported { .. })
    ));
    assert!(matches!(
        sub.send("x").await,
        Err(Error::Unsupported { .. })
    ));
    assert!(matches!(
        publisher.subscribe("x"),
        Err(Error::Unsupported { .. })
    ));
}

#[tokio::test]
async fn fan_out_to_several_subscribers_with_different_topics() {
    let (mut publisher, endpoint) = bound_publisher().await;
    let mut subs = Vec::new();
    for topic in ["a", "b", ""] {
        let mut sub = Socket::new(SocketType::Sub);
        sub.subscribe(topic).unwrap();
        sub.subscribe("probe").unwrap();
        sub.connect(&endpoint).unwrap();
        warm_up(&mut publisher, &mut sub, "probe").await;
        subs.push(sub);
    }
    publisher.send("a1").await.unwrap();
    publisher.send("b1").await.unwrap();
    publisher.send("c1").await.unwrap();
    publisher.send("probe.end").await.unwrap();
    let mut got = Vec::new();
    for sub in &mut subs {
        let mut mine = Vec::new();
        loop {
            let msg = recv(sub).await;
            if msg[0] == "probe.end" {
                break;
            }
            if msg[0] != "probe" {
                // (probes from the later subscribers' warm-ups are still queued)
                mine.push(text(&msg)[0].clone());
            }
        }
        got.push(mine);
    }
    assert_eq!(got, [vec!["a1"], vec!["b1"], vec!["a1", "b1", "c1"]]);
}

#[tokio::test]
async fn a_subscriber_that_never_reads_does_not_block_or_grow_the_publisher() {
    const HWM: usize = 100;
    const SENT: usize = 20_000;
    let mut publisher =
        Socket::with_options(SocketType::Pub, SocketOptions::default().hwm(HWM)).unwrap();
    let endpoint = publisher.bind("tcp://127.0.0.1:0").await.unwrap();
    let mut sub = Socket::with_options(SocketType::Sub, SocketOptions::default().hwm(HWM)).unwrap();
    sub.subscribe("").unwrap();
    sub.connect(&endpoint.to_string()).unwrap();
    warm_up(&mut publisher, &mut sub, "probe").await;

    let body = Bytes::from(vec![7u8; 16 * 1024]);
    let mut most_queued = 0;
    for _ in 0..SENT {
        // Never waits: a PUB drops at the HWM. The bound only turns a hang into a
        // failure; it is not a timing assertion.
        timeout(WAIT, publisher.send(body.clone()))
            .await
            .expect("PUB blocked")
            .unwrap();
        most_queued = most_queued.max(publisher.queued());
    }
    assert!(
        most_queued <= HWM,
        "{most_queued} messages queued for one peer, HWM {HWM}"
    );
    // The subscriber holds at most its own HWM plus what one read can carry.
    drop(publisher);
    let mut received = 0;
    while recv_within(&mut sub, Duration::from_millis(500))
        .await
        .is_some()
    {
        received += 1;
    }
    assert!(
        received < SENT / 2,
        "{received} of {SENT} delivered: the slow subscriber should have missed most"
    );
}

#[tokio::test]
async fn sub_resubscribes_after_the_publisher_restarts() {
    let endpoint = testkit::restartable_endpoint();
    let mut publisher = Socket::new(SocketType::Pub);
    publisher.bind(&endpoint).await.unwrap();
    let mut sub = Socket::new(SocketType::Sub);
    sub.subscribe("t").unwrap();
    sub.connect(&endpoint).unwrap();
    warm_up(&mut publisher, &mut sub, "t.probe").await;

    drop(publisher);
    let mut publisher = Socket::new(SocketType::Pub);
    let deadline = Instant::now() + WAIT;
    while let Err(e) = publisher.bind(&endpoint).await {
        assert!(Instant::now() < deadline, "cannot rebind: {e}");
        sleep(Duration::from_millis(50)).await;
    }
    warm_up(&mut publisher, &mut sub, "t.again").await;
    publisher.send("x.not-subscribed").await.unwrap();
    publisher.send("t.after").await.unwrap();
    assert_eq!(text(&recv(&mut sub).await), ["t.after"]);
}

#[tokio::test]
async fn xpub_sees_subscriptions_and_sends_a_welcome_message() {
    let options = SocketOptions::default().xpub_welcome_message("welcome");
    let mut xpub = Socket::with_options(SocketType::XPub, options).unwrap();
    let endpoint = xpub.bind("tcp://127.0.0.1:0").await.unwrap().to_string();

    let mut first = Socket::new(SocketType::Sub);
    first.subscribe("welcome").unwrap();
    first.subscribe("t").unwrap();
    first.connect(&endpoint).unwrap();
    assert_eq!(text(&recv(&mut first).await), ["welcome"]);
    let mut seen = [recv(&mut xpub).await, recv(&mut xpub).await];
    seen.sort_by(|a, b| a[0].cmp(&b[0]));
    assert_eq!(seen[0][0], "\x01t");
    assert_eq!(seen[1][0], "\x01welcome");

    // A second subscriber to the same topic is not news without the verbose option.
    let mut second = Socket::new(SocketType::Sub);
    second.subscribe("t").unwrap();
    second.subscribe("u").unwrap();
    second.connect(&endpoint).unwrap();
    assert_eq!(text(&recv(&mut xpub).await), ["\x01u"]);
    drop(second);
    assert_eq!(
        text(&recv(&mut xpub).await),
        ["\x00u"],
        "the last subscriber of u left"
    );
    first.unsubscribe("t").unwrap();
    assert_eq!(text(&recv(&mut xpub).await), ["\x00t"]);
}

#[tokio::test]
async fn subscriptions_past_a_peers_cap_are_ignored_and_counted() {
    let options = SocketOptions::default().max_subscriptions_per_peer(2, 1024);
    let mut xpub = Socket::with_options(SocketType::XPub, options).unwrap();
    let endpoint = xpub.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut greedy = Socket::new(SocketType::Sub);
    for topic in ["a", "b", "c", "d"] {
        greedy.subscribe(topic).unwrap();
    }
    greedy.connect(&endpoint).unwrap();
    // Which two get in depends on the order the SUB sends them in.
    let mut taken: Vec<String> = Vec::new();
    for _ in 0..2 {
        let [notification] = &text(&recv(&mut xpub).await)[..] else {
            panic!("one frame")
        };
        let topic = notification.strip_prefix('\x01').expect("a subscribe");
        taken.push(topic.to_owned());
    }
    taken.sort();
    let deadline = Instant::now() + WAIT;
    while xpub.subscriptions_ignored() < 2 {
        assert!(
            Instant::now() < deadline,
            "the other two were never counted"
        );
        sleep(Duration::from_millis(10)).await;
    }
    // Another peer has a share of its own.
    let mut modest = Socket::new(SocketType::Sub);
    modest.subscribe("e").unwrap();
    modest.connect(&endpoint).unwrap();
    assert_eq!(text(&recv(&mut xpub).await), ["\x01e"]);
    warm_up(&mut xpub, &mut modest, "e").await;
    for topic in ["a", "b", "c", "d"] {
        xpub.send(topic).await.unwrap();
    }
    xpub.send(taken[0].clone()).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.extend(text(&recv(&mut greedy).await));
    }
    assert_eq!(
        got,
        [&*taken[0], &*taken[1], &*taken[0]],
        "only the topics it got in"
    );
    assert_eq!(xpub.subscriptions_ignored(), 2);
}

#[tokio::test]
async fn xpub_verbose_passes_every_subscribe() {
    let options = SocketOptions::default().xpub_verbosity(XpubVerbosity::Subscribes);
    let mut xpub = Socket::with_options(SocketType::XPub, options).unwrap();
    let endpoint = xpub.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut subs = Vec::new();
    for _ in 0..2 {
        let mut sub = Socket::new(SocketType::Sub);
        sub.subscribe("t").unwrap();
        sub.connect(&endpoint).unwrap();
        subs.push(sub);
    }
    assert_eq!(text(&recv(&mut xpub).await), ["\x01t"]);
    assert_eq!(text(&recv(&mut xpub).await), ["\x01t"]);
}

#[tokio::test]
async fn xsub_subscribes_by_message_and_talks_to_xpub_both_ways() {
    let mut xpub = Socket::new(SocketType::XPub);
    let endpoint = xpub.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut xsub = Socket::new(SocketType::XSub);
    xsub.connect(&endpoint).unwrap();
    xsub.send(&b"\x01news"[..]).await.unwrap();
    assert_eq!(text(&recv(&mut xpub).await), ["\x01news"]);
    xpub.send(["news", "hello"]).await.unwrap();
    xpub.send(["other", "hello"]).await.unwrap();
    xpub.send(["news", "again"]).await.unwrap();
    assert_eq!(text(&recv(&mut xsub).await), ["news", "hello"]);
    assert_eq!(text(&recv(&mut xsub).await), ["news", "again"]);
    // Anything that is not a subscription goes upstream to the XPUB application.
    xsub.send(["hello", "upstream"]).await.unwrap();
    assert_eq!(text(&recv(&mut xpub).await), ["hello", "upstream"]);
    xsub.send(&b"\x00news"[..]).await.unwrap();
    assert_eq!(text(&recv(&mut xpub).await), ["\x00news"]);
}

// ---------------------------------------------------------------------------------
// A ZMTP 3.0 peer (greeting minor 0): subscriptions travel as legacy messages
// ---------------------------------------------------------------------------------

/// A peer that announces ZMTP 3.0 and speaks just enough of it by hand.
struct Zmtp30Peer {
    stream: TcpStream,
    input: BytesMut,
    codec: FrameCodec,
}

impl Zmtp30Peer {
    async fn connect(endpoint: &str, socket_type: &str) -> Zmtp30Peer {
        let addr = endpoint.trim_start_matches("tcp://");
        let stream = TcpStream::connect(addr).await.expect("connect");
        Zmtp30Peer::handshake(stream, socket_type, false).await
    }

    /// Greeting (version 3.0) and READY over `stream`, as client or server.
    async fn handshake(stream: TcpStream, socket_type: &str, as_server: bool) -> Zmtp30Peer {
        let mut peer = Zmtp30Peer {
            stream,
            input: BytesMut::new(),
            codec: FrameCodec::new(1 << 20),
        };
        let mut out = BytesMut::new();
        let mut greeting = Greeting::ours(MechanismName::NULL, as_server);
        greeting.version = Version { major: 3, minor: 0 };
        greeting.encode(&mut out);
        let mut md = Metadata::new();
        md.insert("Socket-Type", socket_type.to_string());
        Command::Ready(md).encode_frame(&mut out);
        peer.stream.write_all(&out).await.unwrap();
        while peer.input.len() < GREETING_LEN {
            peer.read_more().await;
        }
        let _ = peer.input.split_to(GREETING_LEN);
        let ready = peer.next_frame().await;
        assert!(matches!(
            Command::parse(ready.body).unwrap(),
            Command::Ready(_)
        ));
        peer
    }

    async fn read_more(&mut self) {
        let n = timeout(WAIT, self.stream.read_buf(&mut self.input))
            .await
            .expect("nothing arrived within the wait")
            .expect("read");
        assert!(n > 0, "connection closed");
    }

    async fn next_frame(&mut self) -> zmtp::proto::Frame {
        loop {
            if let Some(frame) = self.codec.decode(&mut self.input).unwrap() {
                return frame;
            }
            self.read_more().await;
        }
    }

    /// Sends a one-frame message.
    async fn send(&mut self, body: &[u8]) {
        let mut out = BytesMut::new();
        zmtp::proto::frame::encode_message(&Message::from(Bytes::copy_from_slice(body)), &mut out);
        self.stream.write_all(&out).await.unwrap();
    }
}

#[tokio::test]
async fn a_zmtp_3_0_publisher_gets_legacy_subscription_messages() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut sub = Socket::new(SocketType::Sub);
    sub.subscribe("weather").unwrap();
    sub.connect(&format!("tcp://{addr}")).unwrap();
    let (stream, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();

    let mut peer = Zmtp30Peer::handshake(stream, "PUB", true).await;

    let subscribe = peer.next_frame().await;
    assert!(!subscribe.command, "a message, not a SUBSCRIBE command");
    assert_eq!(subscribe.body, &b"\x01weather"[..]);
    sub.unsubscribe("weather").unwrap();
    let cancel = peer.next_frame().await;
    assert!(!cancel.command);
    assert_eq!(cancel.body, &b"\x00weather"[..]);

    // It publishes; our SUB filters what it did not subscribe to.
    sub.subscribe("w").unwrap();
    assert_eq!(peer.next_frame().await.body, &b"\x01w"[..]);
    peer.send(b"x-ignored").await;
    peer.send(b"w-kept").await;
    assert_eq!(text(&recv(&mut sub).await), ["w-kept"]);
}

#[tokio::test]
async fn a_publisher_that_falls_behind_on_subscriptions_is_reconnected_with_the_full_set() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options = SocketOptions::default().send_hwm_bytes(4096);
    let mut sub = Socket::with_options(SocketType::Sub, options).unwrap();
    sub.connect(&format!("tcp://{addr}")).unwrap();
    let (stream, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    let mut first = Zmtp30Peer::handshake(stream, "PUB", true).await;

    // On this one thread the engine does not run during the loop: 100 changes of
    // 100 bytes wait in the queue, past its 4 KiB, so they are dropped.
    let topics: Vec<String> = (0..100).map(|i| format!("{i:0>100}")).collect();
    for topic in &topics {
        sub.subscribe(topic.clone()).unwrap();
    }
    // The connection ends instead of leaving this publisher with half a set...
    let closed = async {
        loop {
            match first.stream.read_buf(&mut first.input).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    timeout(WAIT, closed)
        .await
        .expect("the connection was closed");
    // ...and the next one starts with all of it.
    let (stream, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    let mut second = Zmtp30Peer::handshake(stream, "PUB", true).await;
    let mut got = Vec::new();
    for _ in 0..topics.len() {
        let frame = second.next_frame().await;
        let topic = frame.body.strip_prefix(b"\x01").expect("a subscribe");
        got.push(String::from_utf8(topic.to_vec()).unwrap());
    }
    got.sort();
    assert_eq!(got, topics);
}

#[tokio::test]
async fn legacy_subscriptions_from_a_zmtp_3_0_subscriber_are_honoured() {
    let (mut publisher, endpoint) = bound_publisher().await;
    let mut peer = Zmtp30Peer::connect(&endpoint, "SUB").await;
    peer.send(b"\x01t").await;
    // Publish until the subscription has arrived: the first frame that comes back.
    let deadline = Instant::now() + WAIT;
    let first = loop {
        assert!(
            Instant::now() < deadline,
            "legacy subscription never honoured"
        );
        publisher.send("u.not-for-you").await.unwrap();
        publisher.send("t.probe").await.unwrap();
        let got = timeout(Duration::from_millis(100), peer.next_frame()).await;
        if let Ok(frame) = got {
            break frame;
        }
    };
    assert_eq!(
        first.body,
        &b"t.probe"[..],
        "only the subscribed topic arrives"
    );

    peer.send(b"\x00t").await;
    // After the cancel, "t" no longer matches: a later marker topic proves it.
    peer.send(b"\x01m").await;
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "marker never arrived");
        publisher.send("t.after-cancel").await.unwrap();
        publisher.send("m.marker").await.unwrap();
        let frame = timeout(Duration::from_millis(100), peer.next_frame()).await;
        match frame {
            Ok(frame) if frame.body == b"m.marker"[..] => break,
            Ok(frame) if frame.body == b"t.probe"[..] => {} // still in flight
            Ok(frame) => {
                // Sent before the cancel arrived, or after: only its order with the
                // marker counts, checked below.
                assert_eq!(frame.body, &b"t.after-cancel"[..]);
            }
            Err(_) => {}
        }
    }
    // Everything sent from now on is after both the cancel and the new subscribe.
    publisher.send("t.late").await.unwrap();
    publisher.send("m.last").await.unwrap();
    loop {
        let frame = peer.next_frame().await;
        if frame.body == b"m.last"[..] {
            break;
        }
        assert_ne!(
            frame.body,
            &b"t.late"[..],
            "cancelled topic still delivered"
        );
    }
}
