//! `inproc://`: sockets of one process linked without framing or copying.
//!
//! Every wait is bounded (generously, for loaded machines); nothing asserts on timing.
//! A short timeout is only used to see that a `send` is blocked, never to measure it.

mod common;

use common::next_failure;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::timeout;
use zmtp::{Error, Message, Socket, SocketEvent, SocketOptions, SocketType, XpubVerbosity};

const WAIT: Duration = Duration::from_secs(30);

/// A name no other test uses.
fn name(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "inproc://test-{tag}-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn recv(s: &mut Socket) -> Message {
    timeout(WAIT, s.recv())
        .await
        .expect("no message within the wait")
        .expect("recv failed")
}

async fn send(s: &mut Socket, msg: impl Into<Message>) {
    timeout(WAIT, s.send(msg))
        .await
        .expect("send blocked for the whole wait")
        .expect("send failed");
}

#[tokio::test]
async fn bind_before_connect_and_connect_before_bind() {
    for bind_first in [true, false] {
        let endpoint = name("order");
        let mut pull = Socket::new(SocketType::Pull);
        let mut push = Socket::new(SocketType::Push);
        if bind_first {
            pull.bind(&endpoint).await.unwrap();
            push.connect(&endpoint).unwrap();
        } else {
            push.connect(&endpoint).unwrap();
            // Queued before the name exists; delivered once it is bound.
            send(&mut push, "early").await;
            pull.bind(&endpoint).await.unwrap();
        }
        send(&mut push, "hello").await;
        if !bind_first {
            assert_eq!(recv(&mut pull).await, Message::from("early"));
        }
        assert_eq!(recv(&mut pull).await, Message::from("hello"));
    }
}

#[tokio::test]
async fn frames_arrive_without_a_copy() {
    let endpoint = name("zero-copy");
    let mut pull = Socket::new(SocketType::Pull);
    pull.bind(&endpoint).await.unwrap();
    let mut push = Socket::new(SocketType::Push);
    push.connect(&endpoint).unwrap();
    let payload = Bytes::from(vec![42u8; 1 << 20]);
    let address = payload.as_ptr();
    send(&mut push, Message::from(payload)).await;
    let got = recv(&mut pull).await;
    assert_eq!(got[0].len(), 1 << 20);
    assert_eq!(got[0].as_ptr(), address, "the same buffer, not a copy");
}

#[tokio::test]
async fn router_sees_the_dealer_routing_id_and_replies() {
    let endpoint = name("router");
    let mut router = Socket::new(SocketType::Router);
    router.bind(&endpoint).await.unwrap();
    let options = SocketOptions::default().routing_id("dealer-1");
    let mut dealer = Socket::with_options(SocketType::Dealer, options).unwrap();
    dealer.connect(&endpoint).unwrap();
    send(&mut dealer, ["", "request"]).await;
    let msg = recv(&mut router).await;
    assert_eq!(msg.frames(), ["dealer-1", "", "request"]);
    send(&mut router, ["dealer-1", "", "reply"]).await;
    assert_eq!(recv(&mut dealer).await.frames(), ["", "reply"]);

    // REQ/REP too, the connector being the server this time.
    let endpoint = name("req-rep");
    let mut req = Socket::new(SocketType::Req);
    req.bind(&endpoint).await.unwrap();
    let mut rep = Socket::new(SocketType::Rep);
    rep.connect(&endpoint).unwrap();
    send(&mut req, "ping").await;
    assert_eq!(recv(&mut rep).await, Message::from("ping"));
    send(&mut rep, "pong").await;
    assert_eq!(recv(&mut req).await, Message::from("pong"));
}

#[tokio::test]
async fn pub_sub_filters_and_xpub_sees_subscriptions() {
    let endpoint = name("pubsub");
    let options = SocketOptions::default().xpub_verbosity(XpubVerbosity::All);
    let mut xpub = Socket::with_options(SocketType::XPub, options).unwrap();
    xpub.bind(&endpoint).await.unwrap();
    let mut sub = Socket::new(SocketType::Sub);
    sub.connect(&endpoint).unwrap();
    sub.subscribe("a").unwrap();
    // The subscription is seen before anything is published: no warm-up needed.
    assert_eq!(recv(&mut xpub).await, Message::from(&b"\x01a"[..]));
    send(&mut xpub, "b-dropped").await;
    send(&mut xpub, "a-kept").await;
    assert_eq!(recv(&mut sub).await, Message::from("a-kept"));
    sub.unsubscribe("a").unwrap();
    assert_eq!(recv(&mut xpub).await, Message::from(&b"\x00a"[..]));
    sub.subscribe("c").unwrap();
    assert_eq!(recv(&mut xpub).await, Message::from(&b"\x01c"[..]));
    send(&mut xpub, "a-after-cancel").await;
    send(&mut xpub, "c-kept").await;
    assert_eq!(recv(&mut sub).await, Message::from("c-kept"));
}

#[tokio::test]
async fn a_link_whose_subscription_changes_fall_behind_restarts_with_the_full_set() {
    let endpoint = name("subscription-backlog");
    let mut xpub = Socket::new(SocketType::XPub);
    xpub.bind(&endpoint).await.unwrap();
    let options = SocketOptions::default().send_hwm_bytes(4096);
    let mut sub = Socket::with_options(SocketType::Sub, options).unwrap();
    let mut events = sub.monitor();
    sub.subscribe("first").unwrap();
    sub.connect(&endpoint).unwrap();
    assert_eq!(recv(&mut xpub).await, Message::from("\x01first"));

    // On this one thread the link does not run during the loop: 100 changes of 100
    // bytes wait in the SUB's queue, past its 4 KiB, and are dropped.
    let topics: Vec<String> = (0..100).map(|i| format!("{i:0>100}")).collect();
    for topic in &topics {
        sub.subscribe(topic.clone()).unwrap();
    }
    // The link restarts, and the XPUB gets the full set.
    let reason = next_failure(&mut events, true).await;
    assert!(reason.contains("subscription"), "{reason}");
    let mut subscribed = std::collections::BTreeSet::new();
    while subscribed.len() < topics.len() {
        let msg = recv(&mut xpub).await;
        if let Some(topic) = msg[0].strip_prefix(b"\x01") {
            subscribed.insert(String::from_utf8(topic.to_vec()).unwrap());
            subscribed.remove("first");
        }
    }
    assert!(subscribed.iter().eq(topics.iter()));
}

#[tokio::test]
async fn a_name_is_bound_once_and_connectors_follow_a_rebind() {
    let endpoint = name("rebind");
    let mut first = Socket::new(SocketType::Pull);
    first.bind(&endpoint).await.unwrap();
    let mut second = Socket::new(SocketType::Pull);
    let err = second.bind(&endpoint).await.unwrap_err();
    assert!(matches!(err, Error::Bind { .. }), "{err}");

    let mut push = Socket::new(SocketType::Push);
    push.connect(&endpoint).unwrap();
    send(&mut push, "to first").await;
    assert_eq!(recv(&mut first).await, Message::from("to first"));
    drop(first);

    // The name is free again; the connector links to the new binder by itself.
    let deadline = tokio::time::Instant::now() + WAIT;
    while second.bind(&endpoint).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "name never freed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    send(&mut push, "to second").await;
    assert_eq!(recv(&mut second).await, Message::from("to second"));
}

#[tokio::test]
async fn push_blocks_when_both_high_water_marks_are_full() {
    const HWM: usize = 5;
    let endpoint = name("hwm");
    let mut pull =
        Socket::with_options(SocketType::Pull, SocketOptions::default().hwm(HWM)).unwrap();
    pull.bind(&endpoint).await.unwrap();
    let mut push =
        Socket::with_options(SocketType::Push, SocketOptions::default().hwm(HWM)).unwrap();
    push.connect(&endpoint).unwrap();
    let mut sent = 0;
    while timeout(Duration::from_millis(500), push.send(format!("m{sent}")))
        .await
        .is_ok()
    {
        sent += 1;
        assert!(sent <= 10 * HWM, "PUSH never blocked: {sent} sent");
    }
    // Both queues are full (one batch may overshoot the receive mark).
    assert!(sent >= 2 * HWM, "blocked after only {sent}");
    for i in 0..sent {
        assert_eq!(recv(&mut pull).await, Message::from(format!("m{i}")));
    }
}

#[tokio::test]
async fn what_a_closed_sender_queued_is_still_delivered() {
    let endpoint = name("linger");
    let mut pull = Socket::new(SocketType::Pull);
    pull.bind(&endpoint).await.unwrap();
    let mut push = Socket::new(SocketType::Push);
    push.connect(&endpoint).unwrap();
    for i in 0..500 {
        send(&mut push, format!("m{i}")).await;
    }
    drop(push);
    for i in 0..500 {
        assert_eq!(recv(&mut pull).await, Message::from(format!("m{i}")));
    }
}

#[tokio::test]
async fn incompatible_types_and_a_second_pair_are_refused() {
    let endpoint = name("refused");
    let mut pull = Socket::new(SocketType::Pull);
    pull.bind(&endpoint).await.unwrap();
    let mut sub = Socket::new(SocketType::Sub);
    let mut events = sub.monitor();
    sub.connect(&endpoint).unwrap();
    loop {
        match timeout(WAIT, events.recv()).await.expect("an event") {
            Some(SocketEvent::HandshakeFailed { reason, .. }) => {
                assert_eq!(reason.kind(), zmtp::ReasonKind::Handshake, "{reason}");
                assert!(reason.detail().contains("PULL"), "{reason}");
                break;
            }
            Some(_) => {}
            None => panic!("monitor ended"),
        }
    }

    let endpoint = name("pair");
    let mut bound = Socket::new(SocketType::Pair);
    bound.bind(&endpoint).await.unwrap();
    let mut one = Socket::new(SocketType::Pair);
    one.connect(&endpoint).unwrap();
    send(&mut one, "from one").await;
    assert_eq!(recv(&mut bound).await, Message::from("from one"));
    let mut two = Socket::new(SocketType::Pair);
    let mut events = two.monitor();
    two.connect(&endpoint).unwrap();
    loop {
        match timeout(WAIT, events.recv()).await.expect("an event") {
            Some(SocketEvent::HandshakeFailed { .. }) => break,
            Some(_) => {}
            None => panic!("monitor ended"),
        }
    }
    send(&mut one, "still one").await;
    assert_eq!(recv(&mut bound).await, Message::from("still one"));
}
