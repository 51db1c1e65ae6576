//! The limits that matter once a socket listens on a network: the handshake timeout,
//! the caps on connections and on connections still in their handshake. A peer over
//! a cap is closed at once; the well-behaved ones keep being served.

mod common;

use common::{next_failure, WAIT};

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use zmtp::{Message, Socket, SocketOptions, SocketType};

async fn echo_server(options: SocketOptions) -> (Socket, String) {
    let mut server = Socket::with_options(SocketType::Router, options).unwrap();
    let endpoint = server.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    (server, endpoint)
}

/// Connects a DEALER, sends `text` and checks the ROUTER gets it and can answer.
async fn served(server: &mut Socket, endpoint: &str, text: &str) -> Socket {
    let mut client = Socket::new(SocketType::Dealer);
    client.connect(endpoint).unwrap();
    client.send(text.to_owned()).await.unwrap();
    let got = tokio::time::timeout(WAIT, server.recv())
        .await
        .expect("served in time")
        .unwrap();
    assert_eq!(got.frames()[1], text.as_bytes());
    server.send(got).await.unwrap();
    let reply = tokio::time::timeout(WAIT, client.recv())
        .await
        .expect("reply in time")
        .unwrap();
    assert_eq!(reply, Message::from(text.to_owned()));
    client
}

/// Waits until the server closes a raw connection; returns what it sent first.
async fn closed_by_server(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let reading = async {
        let mut buf = [0u8; 256];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(WAIT, reading)
        .await
        .expect("the server closed the connection in time");
    seen
}

fn address(endpoint: &str) -> &str {
    endpoint.trim_start_matches("tcp://")
}

#[tokio::test]
async fn a_peer_that_never_finishes_its_handshake_is_dropped() {
    let options = SocketOptions::default().handshake_timeout(Duration::from_millis(300));
    let (mut server, endpoint) = echo_server(options).await;
    let mut events = server.monitor();
    let mut silent = TcpStream::connect(address(&endpoint)).await.unwrap();
    // Half a greeting, then nothing.
    tokio::io::AsyncWriteExt::write_all(&mut silent, &[0xFF, 0, 0, 0])
        .await
        .unwrap();
    let greeting = closed_by_server(&mut silent).await;
    assert_eq!(greeting.first(), Some(&0xFF), "our greeting went first");
    assert!(next_failure(&mut events, false).await.contains("timed out"));
    served(&mut server, &endpoint, "still serving").await;
}

#[tokio::test]
async fn connections_in_handshake_are_capped() {
    // All on 127.0.0.1: the per-address cap (a tenth by default) is raised above
    // the endpoint's so that this test sees the endpoint's.
    let options = SocketOptions::default()
        .max_handshakes(3)
        .max_handshakes_per_address(10)
        .handshake_timeout(Duration::from_millis(500));
    let (mut server, endpoint) = echo_server(options).await;
    let mut events = server.monitor();
    // A slowloris: three connections that never say anything hold every slot...
    let mut slow = Vec::new();
    for _ in 0..3 {
        slow.push(TcpStream::connect(address(&endpoint)).await.unwrap());
    }
    // ...so a fourth is closed at once, before any greeting (once the three are
    // accepted: retry until the refusal shows).
    let reason = loop {
        let mut extra = TcpStream::connect(address(&endpoint)).await.unwrap();
        let sent = closed_by_server(&mut extra).await;
        if sent.is_empty() {
            break next_failure(&mut events, false).await;
        }
    };
    assert!(
        reason.contains("3 connections already in their handshake"),
        "{reason}"
    );
    // The handshake timeout frees the slots: a real client gets in.
    served(&mut server, &endpoint, "after the slowloris").await;
    drop(slow);
}

#[tokio::test]
async fn open_connections_are_capped_and_slots_come_back() {
    let options = SocketOptions::default()
        .max_connections(2)
        .max_connections_per_address(10);
    let (mut server, endpoint) = echo_server(options).await;
    let mut events = server.monitor();
    let first = served(&mut server, &endpoint, "one").await;
    let _second = served(&mut server, &endpoint, "two").await;

    let mut third = Socket::new(SocketType::Dealer);
    third.connect(&endpoint).unwrap();
    third.send("three").await.unwrap();
    let reason = next_failure(&mut events, false).await;
    assert!(reason.contains("2 connections already open"), "{reason}");
    // When one leaves, the third's reconnect gets its slot and its message through.
    drop(first);
    let got = tokio::time::timeout(WAIT, server.recv())
        .await
        .expect("the third gets in once a slot is free")
        .unwrap();
    assert_eq!(got.frames()[1], &b"three"[..]);
}

/// A raw connection from `source` (another loopback address: 127.0.0.2...).
async fn connect_from(source: &str, endpoint: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket
        .connect(address(endpoint).parse().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn one_address_cannot_hold_every_handshake_slot() {
    // 20 slots; 127.0.0.2 may hold a tenth of them.
    let options = SocketOptions::default()
        .max_handshakes(20)
        .handshake_timeout(Duration::from_secs(60));
    let (mut server, endpoint) = echo_server(options).await;
    let mut events = server.monitor();
    let mut slow = Vec::new();
    for _ in 0..2 {
        slow.push(connect_from("127.0.0.2", &endpoint).await);
    }
    // The third from that address is closed at once, before any greeting.
    let reason = loop {
        let mut extra = connect_from("127.0.0.2", &endpoint).await;
        if closed_by_server(&mut extra).await.is_empty() {
            break next_failure(&mut events, false).await;
        }
    };
    assert!(
        reason.contains("2 connections from this address already in their handshake"),
        "{reason}"
    );
    // Other addresses are served while the two are held, for a whole minute.
    served(&mut server, &endpoint, "from 127.0.0.1").await;
    drop(slow);
}

/// A greeting and a HELLO of a fresh CURVE client of `server` (a new short-term key
/// each time), as raw bytes.
fn curve_hello(server: &zmtp::CurveKeyPair) -> Vec<u8> {
    use zmtp::proto::mechanism::curve::{CurveClient, CurveClientConfig};
    use zmtp::proto::{Greeting, MechanismName, Metadata};
    let mut out = bytes::BytesMut::new();
    Greeting::ours(MechanismName::CURVE, false).encode(&mut out);
    let config = CurveClientConfig {
        keys: zmtp::CurveKeyPair::generate(),
        server_public: server.public,
    };
    CurveClient::start(config, Metadata::new(), &mut out);
    out.to_vec()
}

/// Sends `bytes` on a new connection; returns what the server answered until it
/// closed the connection or sent a WELCOME (then the connection stays open).
async fn answer_to(endpoint: &str, bytes: &[u8]) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(address(endpoint)).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stream, bytes)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let reading = async {
        let mut buf = [0u8; 512];
        while !seen.windows(8).any(|w| w == b"\x07WELCOME") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(WAIT, reading)
        .await
        .expect("the server answered in time");
    (stream, seen)
}

fn ends_with_error_300(answer: &[u8]) -> bool {
    answer.ends_with(b"\x04\x0a\x05ERROR\x03300")
}

#[tokio::test]
async fn replayed_and_too_many_curve_hellos_are_refused_with_a_reason() {
    let keys = zmtp::CurveKeyPair::generate();
    let mut defenses = zmtp::HandshakeDefenses::default();
    defenses.curve_hello_burst = 2;
    defenses.curve_hellos_per_second = 0.001;
    let options = SocketOptions::default()
        .mechanism(zmtp::proto::MechanismConfig::curve_server(keys.clone()))
        .handshake_defenses(defenses);
    let (mut server, endpoint) = echo_server(options).await;
    let mut events = server.monitor();
    let first = curve_hello(&keys);
    let (_held, answer) = answer_to(&endpoint, &first).await;
    assert!(!ends_with_error_300(&answer), "the first HELLO is answered");
    // The same HELLO again: ERROR 300 and the connection closed, before any
    // public-key work; the monitor says why.
    let (_, answer) = answer_to(&endpoint, &first).await;
    assert!(ends_with_error_300(&answer), "{answer:?}");
    let reason = next_failure(&mut events, false).await;
    assert!(reason.contains("replayed CURVE HELLO"), "{reason}");
    // A replay costs no token: a second fresh HELLO is the burst's second...
    let (_held2, answer) = answer_to(&endpoint, &curve_hello(&keys)).await;
    assert!(!ends_with_error_300(&answer), "within the burst");
    // ...and a third is over the rate.
    let (_, answer) = answer_to(&endpoint, &curve_hello(&keys)).await;
    assert!(ends_with_error_300(&answer), "{answer:?}");
    let reason = next_failure(&mut events, false).await;
    assert!(
        reason.contains("CURVE HELLOs a second from this address"),
        "{reason}"
    );
}
