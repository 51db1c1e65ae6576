//! CURVE (RFC 26) between our sockets and against pyzmq (libzmq 4.3), in both roles,
//! on DEALER/ROUTER and PUB/SUB (subscriptions travel inside MESSAGE): allowed
//! peers talk, refused ones fail the handshake and never reach the application, a
//! wrong server key is reported as such, and a tampered or replayed MESSAGE closes
//! the connection without delivering anything.
//!
//! Every wait is bounded; "nothing arrives" is checked after the event that proves
//! it cannot arrive any more, over a short grace period.

mod common;
mod from_main_thread;

use std::time::Duration;

use common::{next_failure, WAIT};
use testkit::interop::{ZmqArgs, ZmqPeer};
use testkit::{Relay, Tamper};
use zmtp::auth::{Authenticator, CurveKeyList};
use zmtp::proto::mechanism::curve::CurveKeyPair;
use zmtp::proto::MechanismConfig;
use zmtp::{Message, Socket, SocketEvent, SocketOptions, SocketType};

const GRACE: Duration = Duration::from_millis(300);

type Peer = ZmqPeer<Vec<Vec<u8>>>;

fn server_options(keys: &CurveKeyPair, allowed: &[&CurveKeyPair]) -> SocketOptions {
    let mut list = CurveKeyList::new();
    for pair in allowed {
        list.insert(pair.public);
    }
    SocketOptions::default()
        .mechanism(MechanismConfig::curve_server(keys.clone()))
        .authenticator(Authenticator::curve_keys(list))
}

fn client_options(keys: &CurveKeyPair, server_public: [u8; 32]) -> SocketOptions {
    SocketOptions::default().mechanism(MechanismConfig::curve_client(keys.clone(), server_public))
}

async fn bound(socket_type: SocketType, options: SocketOptions) -> (Socket, String) {
    let mut socket = Socket::with_options(socket_type, options).unwrap();
    let endpoint = socket.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    (socket, endpoint)
}

/// A CURVE server of `server_type`, bound, allowing the key of a client of
/// `client_type`, made but not yet connected; and the endpoint.
async fn curve_pair(server_type: SocketType, client_type: SocketType) -> (Socket, Socket, String) {
    let server_keys = CurveKeyPair::generate();
    let client_keys = CurveKeyPair::generate();
    let (server, endpoint) =
        bound(server_type, server_options(&server_keys, &[&client_keys])).await;
    let client = Socket::with_options(
        client_type,
        client_options(&client_keys, server_keys.public),
    )
    .unwrap();
    (server, client, endpoint)
}

async fn recv(socket: &mut Socket) -> Message {
    tokio::time::timeout(WAIT, socket.recv())
        .await
        .expect("a message in time")
        .expect("socket open")
}

async fn nothing_within_grace(socket: &mut Socket, what: &str) {
    if let Ok(msg) = tokio::time::timeout(GRACE, socket.recv()).await {
        panic!("{what}: {msg:?}");
    }
}

fn frames(msg: &Message) -> Vec<Vec<u8>> {
    msg.iter().map(|f| f.to_vec()).collect()
}

/// A publisher in these tests: ours or pyzmq's.
trait Publish {
    async fn publish(&mut self, text: &str);
}

impl Publish for Socket {
    async fn publish(&mut self, text: &str) {
        self.send(text.to_owned()).await.unwrap();
    }
}

impl Publish for Peer {
    async fn publish(&mut self, text: &str) {
        self.send(vec![text.as_bytes().to_vec()]).await;
    }
}

/// Publishes `unwanted` then `wanted` until the subscriber (subscribed to `wanted`)
/// receives something, and returns that: `wanted` if the filter works, from the
/// moment the subscription reached the publisher.
async fn first_delivery(
    publisher: &mut impl Publish,
    subscriber: &mut Socket,
    unwanted: &str,
    wanted: &str,
) -> Message {
    let publishing = async {
        loop {
            publisher.publish(unwanted).await;
            publisher.publish(wanted).await;
            let wait = Duration::from_millis(50);
            if let Ok(msg) = tokio::time::timeout(wait, subscriber.recv()).await {
                return msg.unwrap();
            }
        }
    };
    tokio::time::timeout(WAIT, publishing)
        .await
        .expect("the subscription took effect in time")
}

/// Small one-frame messages from a `#[tokio::main]` body travel inline in the
/// queue and are sealed from there: every size up to past the inline limit, with
/// larger and multipart ones between, arrives whole and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_messages_sent_from_the_main_thread_are_sealed_intact() {
    let (mut pull, mut push, endpoint) = curve_pair(SocketType::Pull, SocketType::Push).await;
    push.connect(&endpoint).unwrap();
    from_main_thread::mixed_messages_arrive_intact(&mut push, &mut pull, 20).await;
}

#[tokio::test]
async fn our_client_and_server_exchange_multipart_large_and_heartbeats() {
    let server_keys = CurveKeyPair::generate();
    let client_keys = CurveKeyPair::generate();
    // Heartbeats every 20 ms: PING and PONG travel as boxed commands, and a
    // connection whose PONGs failed to open would be closed.
    let heartbeat = |o: SocketOptions| o.heartbeat(Duration::from_millis(20), WAIT);
    let (mut server, endpoint) = bound(
        SocketType::Router,
        heartbeat(server_options(&server_keys, &[&client_keys])),
    )
    .await;
    let mut client = Socket::with_options(
        SocketType::Dealer,
        heartbeat(client_options(&client_keys, server_keys.public)),
    )
    .unwrap();
    let mut events = client.monitor();
    client.connect(&endpoint).unwrap();

    let big = vec![0xA5u8; 1 << 20];
    let sent = Message::from(vec![
        bytes::Bytes::from_static(b"part one"),
        bytes::Bytes::new(),
        bytes::Bytes::from(big.clone()),
    ]);
    client.send(sent.clone()).await.unwrap();
    let got = recv(&mut server).await;
    assert_eq!(frames(&got)[1..], frames(&sent)[..]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.send(got).await.unwrap();
    assert_eq!(recv(&mut client).await, sent);
    nothing_within_grace(&mut server, "a heartbeat reached the app").await;
    while let Ok(Some(event)) = tokio::time::timeout(Duration::ZERO, events.recv()).await {
        assert!(
            !matches!(event, SocketEvent::Disconnected { .. }),
            "the connection dropped: {event:?}"
        );
    }
}

#[tokio::test]
async fn our_hook_refuses_an_unlisted_client_of_ours() {
    let server_keys = CurveKeyPair::generate();
    let listed = CurveKeyPair::generate();
    let (mut server, endpoint) =
        bound(SocketType::Router, server_options(&server_keys, &[&listed])).await;
    let mut server_events = server.monitor();
    let stranger = CurveKeyPair::generate();
    let mut client = Socket::with_options(
        SocketType::Dealer,
        client_options(&stranger, server_keys.public),
    )
    .unwrap();
    let mut events = client.monitor();
    client.connect(&endpoint).unwrap();
    client.send("should never arrive").await.unwrap();
    let reason = next_failure(&mut events, false).await;
    assert!(reason.contains("400 (authentication failed)"), "{reason}");
    let logged = next_failure(&mut server_events, false).await;
    assert!(
        logged.contains(&stranger.public_z85()) && logged.contains("allow-list"),
        "{logged}"
    );
    nothing_within_grace(&mut server, "a refused client's message reached the app").await;
}

#[tokio::test]
async fn our_pub_and_sub_filter_inside_curve() {
    let (mut publisher, mut subscriber, endpoint) =
        curve_pair(SocketType::Pub, SocketType::Sub).await;
    subscriber.subscribe("weather").unwrap();
    subscriber.connect(&endpoint).unwrap();
    // The subscription travels boxed too.
    let got = first_delivery(&mut publisher, &mut subscriber, "sports", "weather").await;
    assert_eq!(got, Message::from("weather"));
}

#[tokio::test]
async fn our_dealer_with_a_pyzmq_router_and_zmq_auth() {
    let server_keys = CurveKeyPair::generate();
    let ours = CurveKeyPair::generate();
    let mut py: Peer = ZmqPeer::start(
        ZmqArgs::new("ROUTER")
            .curve_server(&server_keys.secret_z85())
            .curve_allow(&[&ours.public_z85()])
            .heartbeat("20,30000,0")
            .bind("tcp://127.0.0.1:*"),
    )
    .await;
    // Both sides send PINGs every 20 ms, boxed as commands: libzmq must not hand
    // ours to its application, nor we its to ours.
    let options =
        client_options(&ours, server_keys.public).heartbeat(Duration::from_millis(20), WAIT);
    let mut client = Socket::with_options(SocketType::Dealer, options).unwrap();
    client.connect(py.endpoint()).unwrap();
    client
        .send(Message::from(vec![
            bytes::Bytes::from_static(b"hello"),
            bytes::Bytes::from_static(b"world"),
        ]))
        .await
        .unwrap();
    let got = py.recv().await;
    assert_eq!(got[1..], [b"hello".to_vec(), b"world".to_vec()]);
    py.send(vec![got[0].clone(), b"back".to_vec(), vec![7u8; 70_000]])
        .await;
    let reply = recv(&mut client).await;
    assert_eq!(frames(&reply), [b"back".to_vec(), vec![7u8; 70_000]]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        py.recv_within(GRACE).await,
        None,
        "a PING reached libzmq's app"
    );
    nothing_within_grace(&mut client, "a PING reached our app").await;

    // zmq.auth refuses an unlisted key: ERROR with status 400.
    let stranger = CurveKeyPair::generate();
    let mut refused = Socket::with_options(
        SocketType::Dealer,
        client_options(&stranger, server_keys.public),
    )
    .unwrap();
    let mut events = refused.monitor();
    refused.connect(py.endpoint()).unwrap();
    let reason = next_failure(&mut events, false).await;
    assert!(reason.contains("400 (authentication failed)"), "{reason}");
}

#[tokio::test]
async fn a_wrong_server_key_is_reported_as_such() {
    let server_keys = CurveKeyPair::generate();
    let py: Peer = ZmqPeer::start(
        ZmqArgs::new("ROUTER")
            .curve_server(&server_keys.secret_z85())
            .bind("tcp://127.0.0.1:*"),
    )
    .await;
    let not_the_server = CurveKeyPair::generate();
    let mut client = Socket::with_options(
        SocketType::Dealer,
        client_options(&CurveKeyPair::generate(), not_the_server.public),
    )
    .unwrap();
    let mut events = client.monitor();
    client.connect(py.endpoint()).unwrap();
    let reason = next_failure(&mut events, false).await;
    assert!(reason.contains("server public key"), "{reason}");
}

#[tokio::test]
async fn a_pyzmq_dealer_with_our_router_and_hook() {
    let server_keys = CurveKeyPair::generate();
    let theirs = CurveKeyPair::generate();
    let (mut server, endpoint) =
        bound(SocketType::Router, server_options(&server_keys, &[&theirs])).await;
    let mut py: Peer = ZmqPeer::start(
        ZmqArgs::new("DEALER")
            .curve_client(&theirs.secret_z85(), &server_keys.public_z85())
            .connect(&endpoint),
    )
    .await;
    py.send(vec![b"ping".to_vec(), vec![1u8; 300]]).await;
    let got = recv(&mut server).await;
    assert_eq!(frames(&got)[1..], [b"ping".to_vec(), vec![1u8; 300]]);
    server.send(got).await.unwrap();
    assert_eq!(py.recv().await, [b"ping".to_vec(), vec![1u8; 300]]);

    // Our hook refuses an unlisted pyzmq client: libzmq reports the status code as
    // an authentication failure, and nothing reaches our application.
    let stranger = CurveKeyPair::generate();
    let mut refused: Peer = ZmqPeer::start(
        ZmqArgs::new("DEALER")
            .curve_client(&stranger.secret_z85(), &server_keys.public_z85())
            .monitor()
            .connect(&endpoint),
    )
    .await;
    refused
        .try_send(vec![b"should never arrive".to_vec()])
        .await;
    refused.wait_event("HANDSHAKE_FAILED_AUTH", 1).await;
    nothing_within_grace(&mut server, "a refused client's message reached the app").await;
}

#[tokio::test]
async fn a_pyzmq_pub_with_our_sub() {
    let server_keys = CurveKeyPair::generate();
    let ours = CurveKeyPair::generate();
    let mut py: Peer = ZmqPeer::start(
        ZmqArgs::new("PUB")
            .curve_server(&server_keys.secret_z85())
            .curve_allow(&[&ours.public_z85()])
            .bind("tcp://127.0.0.1:*"),
    )
    .await;
    let mut subscriber =
        Socket::with_options(SocketType::Sub, client_options(&ours, server_keys.public)).unwrap();
    subscriber.subscribe("news").unwrap();
    subscriber.connect(py.endpoint()).unwrap();
    // libzmq filters on its side, so only what our boxed SUBSCRIBE asked for comes.
    let got = first_delivery(&mut py, &mut subscriber, "other", "news").await;
    assert_eq!(got, Message::from("news"));
}

#[tokio::test]
async fn our_pub_with_a_pyzmq_sub() {
    let server_keys = CurveKeyPair::generate();
    let theirs = CurveKeyPair::generate();
    let (mut publisher, endpoint) =
        bound(SocketType::Pub, server_options(&server_keys, &[&theirs])).await;
    let mut py: Peer = ZmqPeer::start(
        ZmqArgs::new("SUB")
            .curve_client(&theirs.secret_z85(), &server_keys.public_z85())
            .connect(&endpoint),
    )
    .await;
    py.set_subscription(true, b"news").await;
    // Our PUB filters by the subscription pyzmq sent boxed; "other" never goes.
    let publishing = async {
        loop {
            publisher.send("other").await.unwrap();
            publisher.send("news flash").await.unwrap();
            if let Some(msg) = py.recv_within(Duration::from_millis(50)).await {
                break msg;
            }
        }
    };
    let got = tokio::time::timeout(WAIT, publishing)
        .await
        .expect("the subscription took effect in time");
    assert_eq!(got, [b"news flash".to_vec()]);
}

/// A pyzmq client sends through a relay to our server; the relay tampers with its
/// `nth` MESSAGE. Returns what our application received.
async fn through_relay(nth: usize, tamper: Tamper) -> (Vec<Message>, String) {
    let server_keys = CurveKeyPair::generate();
    let theirs = CurveKeyPair::generate();
    let (mut server, endpoint) =
        bound(SocketType::Router, server_options(&server_keys, &[&theirs])).await;
    let mut events = server.monitor();
    let relay = Relay::start(&endpoint, b"\x07MESSAGE", nth, tamper).await;
    let mut py: Peer = ZmqPeer::start(
        ZmqArgs::new("DEALER")
            .curve_client(&theirs.secret_z85(), &server_keys.public_z85())
            .connect(relay.endpoint()),
    )
    .await;
    py.send(vec![b"one".to_vec()]).await;
    let mut received = vec![recv(&mut server).await];
    py.send(vec![b"two".to_vec()]).await;
    let reason = next_failure(&mut events, true).await;
    while let Ok(Ok(msg)) = tokio::time::timeout(GRACE, server.recv()).await {
        received.push(msg);
    }
    (received, reason)
}

#[tokio::test]
async fn a_tampered_message_closes_the_connection_and_delivers_nothing() {
    let (received, reason) = through_relay(2, Tamper::FlipLastByte).await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(frames(&received[0])[1..], [b"one".to_vec()]);
    assert!(reason.contains("cannot open MESSAGE box"), "{reason}");
}

#[tokio::test]
async fn a_replayed_message_is_refused() {
    let (received, reason) = through_relay(1, Tamper::Duplicate).await;
    assert_eq!(received.len(), 1, "delivered twice: {received:?}");
    assert_eq!(frames(&received[0])[1..], [b"one".to_vec()]);
    assert!(reason.contains("nonce"), "{reason}");
}
