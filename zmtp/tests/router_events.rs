//! A ROUTER's connection-level API: arrivals and departures in order with each
//! connection's messages (`recv_event`), replies to one connection (`send_to`), and
//! pausing one connection's input (`pause`/`resume`), with our peers over tcp, ipc
//! and inproc and with libzmq's (pyzmq) over tcp. Waits are bounded; nothing asserts
//! on timing.

use std::time::Duration;

use testkit::interop::ZmqPeer;
use tokio::time::timeout;
use zmtp::{Error, Message, PeerId, RouterEvent, Socket, SocketOptions, SocketType};

/// Bound on every wait.
const WAIT: Duration = Duration::from_secs(60);

type Py = ZmqPeer<Message>;

async fn event(router: &mut Socket) -> RouterEvent {
    timeout(WAIT, router.recv_event())
        .await
        .unwrap_or_else(|_| panic!("no router event within {WAIT:?}"))
        .expect("recv_event")
}

async fn joined(router: &mut Socket) -> PeerId {
    match event(router).await {
        RouterEvent::Joined { peer, address } => {
            assert!(!address.is_empty(), "an arrival names its address");
            peer
        }
        other => panic!("expected an arrival, got {other:?}"),
    }
}

async fn message_from(router: &mut Socket, from: &PeerId) -> Message {
    match event(router).await {
        RouterEvent::Message { peer, message } if peer == *from => message,
        other => panic!("expected a message from {from:?}, got {other:?}"),
    }
}

async fn left(router: &mut Socket, who: &PeerId) {
    match event(router).await {
        RouterEvent::Left { peer } if peer == *who => {}
        other => panic!("expected {who:?} to leave, got {other:?}"),
    }
}

async fn recv(socket: &mut Socket) -> Message {
    timeout(WAIT, socket.recv())
        .await
        .expect("a message within the wait")
        .expect("recv")
}

fn dealer(identity: &'static str) -> Socket {
    let options = SocketOptions::default()
        .routing_id(identity)
        .linger(Duration::ZERO);
    Socket::with_options(SocketType::Dealer, options).expect("options")
}

async fn bound_router(endpoint: &str) -> (Socket, String) {
    let mut router = Socket::new(SocketType::Router);
    let bound = router.bind(endpoint).await.expect("bind").to_string();
    (router, bound)
}

/// tcp, ipc and inproc endpoints to bind, fresh for each call (tests run at once).
fn endpoints() -> Vec<String> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    vec![
        "tcp://127.0.0.1:0".into(),
        testkit::ipc_endpoint("router-events"),
        format!("inproc://router-events-{n}"),
    ]
}

#[tokio::test]
async fn arrival_messages_and_departure_come_in_order() {
    for endpoint in endpoints() {
        let (mut router, bound) = bound_router(&endpoint).await;
        let mut client = dealer("client");
        client.connect(&bound).expect("connect");
        for n in ["1", "2", "3"] {
            client.send(n).await.expect("send");
        }
        let peer = joined(&mut router).await;
        assert_eq!(peer.routing_id().as_ref(), b"client");
        for n in ["1", "2", "3"] {
            assert_eq!(message_from(&mut router, &peer).await, Message::from(n));
        }
        router.send_to(&peer, "back").expect("send_to");
        assert_eq!(recv(&mut client).await, Message::from("back"));
        drop(client);
        left(&mut router, &peer).await;
        assert!(
            matches!(
                router.send_to(&peer, "late"),
                Err(Error::HostUnreachable(_))
            ),
            "{endpoint}: a departed connection is unreachable"
        );
    }
}

#[tokio::test]
async fn plain_recv_sees_messages_only() {
    let (mut router, bound) = bound_router("tcp://127.0.0.1:0").await;
    let mut client = dealer("plain");
    client.connect(&bound).expect("connect");
    client.send("hello").await.expect("send");
    let msg = recv(&mut router).await;
    assert_eq!(msg, Message::from(vec!["plain", "hello"]));
    let mut dealer = Socket::new(SocketType::Dealer);
    assert!(matches!(
        dealer.try_recv_event(),
        Err(Error::Unsupported { .. })
    ));
}

/// A client leaves; a new connection takes its routing id (the same fixed identity);
/// what is sent to the departed connection must not reach the newcomer.
#[tokio::test]
async fn a_departed_connections_reply_never_reaches_the_next_holder_of_its_id() {
    for endpoint in endpoints() {
        let (mut router, bound) = bound_router(&endpoint).await;
        let mut first = dealer("same-id");
        first.connect(&bound).expect("connect");
        first.send("mine").await.expect("send");
        let departed = joined(&mut router).await;
        message_from(&mut router, &departed).await;
        drop(first);
        left(&mut router, &departed).await;

        let mut second = dealer("same-id");
        second.connect(&bound).expect("connect");
        second.send("hello").await.expect("send");
        let newcomer = joined(&mut router).await;
        assert_eq!(newcomer.routing_id(), departed.routing_id());
        assert_ne!(
            newcomer, departed,
            "{endpoint}: a new connection is a new peer"
        );
        message_from(&mut router, &newcomer).await;

        assert!(router.send_to(&departed, "private").is_err());
        router.send_to(&newcomer, "public").expect("send_to");
        assert_eq!(
            recv(&mut second).await,
            Message::from("public"),
            "{endpoint}: the newcomer got the departed client's message"
        );
    }
}

/// The same with libzmq peers, which take the routing id in turn.
#[tokio::test]
async fn a_departed_pyzmq_clients_reply_never_reaches_the_next_one() {
    let (mut router, bound) = bound_router("tcp://127.0.0.1:0").await;
    let id = b"pyzmq-client";
    let mut first = Py::start(
        testkit::interop::ZmqArgs::new("DEALER")
            .identity(id)
            .connect(&bound),
    )
    .await;
    first.send(Message::from("mine")).await;
    let departed = joined(&mut router).await;
    message_from(&mut router, &departed).await;
    drop(first);
    left(&mut router, &departed).await;

    let mut second = Py::start(
        testkit::interop::ZmqArgs::new("DEALER")
            .identity(id)
            .connect(&bound),
    )
    .await;
    second.send(Message::from("hello")).await;
    let newcomer = joined(&mut router).await;
    assert_eq!(newcomer.routing_id().as_ref(), id);
    message_from(&mut router, &newcomer).await;
    assert!(router.send_to(&departed, "private").is_err());
    router.send_to(&newcomer, "public").expect("send_to");
    assert_eq!(second.recv().await, Message::from("public"));
}

/// Receives what comes from `peer` while it is paused, until nothing has come for a
/// while; returns the counters seen, which must be consecutive from `from`.
async fn drain_paused(router: &mut Socket, peer: &PeerId, from: u32) -> u32 {
    let mut next = from;
    while let Ok(got) = timeout(Duration::from_millis(500), router.recv_event()).await {
        match got.expect("recv_event") {
            RouterEvent::Message { peer: p, message } if p == *peer => {
                assert_eq!(counter(&message), next, "in order, none lost");
                next += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    next
}

fn counter(message: &Message) -> u32 {
    let last = message.last().expect("a counter frame");
    u32::from_be_bytes(last[..].try_into().expect("4 bytes"))
}

/// A paused connection is not read: its sender fills its own queue and waits; what
/// it sent arrives, all of it and in order, once resumed.
#[tokio::test]
async fn a_paused_connection_is_slowed_and_loses_nothing() {
    const COUNT: u32 = 20_000;
    for endpoint in endpoints() {
        let (mut router, bound) = bound_router(&endpoint).await;
        let options = SocketOptions::default().routing_id("flood").hwm(100);
        let mut client = Socket::with_options(SocketType::Dealer, options).expect("options");
        client.connect(&bound).expect("connect");
        let first = Message::from(vec![b"first".to_vec(), 0u32.to_be_bytes().to_vec()]);
        client.send(first).await.expect("send");
        let peer = joined(&mut router).await;
        assert!(router.pause(&peer));
        let sender = tokio::spawn(async move {
            let body = bytes::Bytes::from(vec![7u8; 1024]);
            for i in 1..COUNT {
                let msg = Message::from(vec![body.clone(), i.to_be_bytes().to_vec().into()]);
                client.send(msg).await.expect("send");
            }
            client
        });
        let seen = drain_paused(&mut router, &peer, 0).await;
        assert!(
            seen < COUNT && !sender.is_finished(),
            "{endpoint}: all {COUNT} messages went through a paused connection"
        );
        assert!(router.resume(&peer));
        let mut next = seen;
        while next < COUNT {
            assert_eq!(
                counter(&message_from(&mut router, &peer).await),
                next,
                "{endpoint}"
            );
            next += 1;
        }
        let _client = timeout(WAIT, sender)
            .await
            .expect("sender done")
            .expect("no panic");
    }
}

/// The same against libzmq: a pyzmq DEALER's sends wait while we do not read it.
#[tokio::test]
async fn a_paused_pyzmq_dealer_is_slowed_and_loses_nothing() {
    const COUNT: u32 = 20_000;
    let (mut router, bound) = bound_router("tcp://127.0.0.1:0").await;
    let mut py = Py::start(testkit::interop::ZmqArgs::new("DEALER").connect(&bound)).await;
    py.send(Message::from("hello")).await;
    let peer = joined(&mut router).await;
    message_from(&mut router, &peer).await;
    assert!(router.pause(&peer));
    py.start_flood(COUNT as usize, Message::from(vec![0u8; 1024]));
    let seen = drain_paused(&mut router, &peer, 0).await;
    assert!(
        seen < COUNT,
        "all {COUNT} messages went through a paused connection"
    );
    assert!(router.resume(&peer));
    let mut next = seen;
    while next < COUNT {
        assert_eq!(counter(&message_from(&mut router, &peer).await), next);
        next += 1;
    }
    assert_eq!(py.flooded().await, COUNT as usize);
}

/// A paused connection whose peer leaves is seen to leave without being resumed:
/// its routing id is free for a newcomer at once.
#[tokio::test]
async fn a_paused_connection_that_goes_away_leaves() {
    for endpoint in endpoints() {
        let (mut router, bound) = bound_router(&endpoint).await;
        let mut client = dealer("short-lived");
        client.connect(&bound).expect("connect");
        client.send("hello").await.expect("send");
        let peer = joined(&mut router).await;
        message_from(&mut router, &peer).await;
        assert!(router.pause(&peer));
        drop(client);
        left(&mut router, &peer).await;
        let mut next = dealer("short-lived");
        next.connect(&bound).expect("connect");
        next.send("again").await.expect("send");
        let newcomer = joined(&mut router).await;
        assert_eq!(
            message_from(&mut router, &newcomer).await,
            Message::from("again")
        );
    }
}

#[tokio::test]
async fn disconnect_closes_the_connection_and_stops_reconnecting() {
    let mut router = Socket::new(SocketType::Router);
    let endpoint = router.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let options = SocketOptions::default().reconnect(Duration::from_millis(10), None);
    let mut dealer = Socket::with_options(SocketType::Dealer, options).unwrap();
    dealer.connect(&endpoint).unwrap();
    dealer.send("one").await.unwrap();
    let peer = joined(&mut router).await;
    assert_eq!(message_from(&mut router, &peer).await, Message::from("one"));
    dealer.disconnect(&endpoint).unwrap();
    match event(&mut router).await {
        RouterEvent::Left { peer: left } => assert_eq!(left, peer),
        other => panic!("expected the departure, got {other:?}"),
    }
    // No reconnection: many reconnect intervals pass without an arrival.
    let quiet = timeout(Duration::from_millis(500), router.recv_event()).await;
    assert!(quiet.is_err(), "reconnected after disconnect: {quiet:?}");
    assert!(matches!(
        dealer.disconnect(&endpoint),
        Err(Error::NotConnected(_))
    ));
    // Connecting again works.
    dealer.connect(&endpoint).unwrap();
    dealer.send("two").await.unwrap();
    let again = joined(&mut router).await;
    assert_ne!(again, peer);
    assert_eq!(
        message_from(&mut router, &again).await,
        Message::from("two")
    );
}
