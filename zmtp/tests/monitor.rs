//! The socket monitor: which events a socket reports, in which order, with which
//! routing ids, against our own peers, a raw TCP peer and a pyzmq peer.

use std::time::Duration;

use bytes::Bytes;
use testkit::PyPeer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zmtp::{Message, Monitor, Socket, SocketEvent, SocketType};

const WAIT: Duration = Duration::from_secs(20);

async fn next(events: &mut Monitor) -> SocketEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event within the timeout")
        .expect("monitor still open")
}

/// Skips events until one matches `want`, returning it.
async fn until(events: &mut Monitor, want: impl Fn(&SocketEvent) -> bool) -> SocketEvent {
    loop {
        let event = next(events).await;
        if want(&event) {
            return event;
        }
    }
}

#[tokio::test]
async fn router_reports_each_peer_from_accept_to_disconnect() {
    let mut router = Socket::new(SocketType::Router);
    let mut events = router.monitor();
    let bound = router.bind("tcp://127.0.0.1:0").await.unwrap();
    assert_eq!(
        next(&mut events).await,
        SocketEvent::Listening {
            endpoint: bound.clone()
        }
    );

    let mut dealer = Socket::new(SocketType::Dealer);
    dealer.connect(&bound.to_string()).unwrap();
    dealer.send("hi").await.unwrap();
    let SocketEvent::Accepted { endpoint, .. } = next(&mut events).await else {
        panic!("accept comes first");
    };
    assert_eq!(endpoint, bound);
    let SocketEvent::HandshakeSucceeded { routing_id, .. } = next(&mut events).await else {
        panic!("then the handshake");
    };
    let routing_id = routing_id.expect("a ROUTER names its peers");
    let msg = tokio::time::timeout(WAIT, router.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg[0], routing_id, "the event names the id messages carry");

    drop(dealer);
    let SocketEvent::Disconnected {
        routing_id: gone, ..
    } = next(&mut events).await
    else {
        panic!("then the disconnect");
    };
    assert_eq!(gone, Some(routing_id));

    drop(router);
    assert_eq!(next(&mut events).await, SocketEvent::Closed);
    assert_eq!(events.recv().await, None, "nothing after Closed");
}

#[tokio::test]
async fn connecting_socket_reports_retries_then_connection() {
    let port = testkit::free_tcp_port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let mut dealer = Socket::new(SocketType::Dealer);
    let mut events = dealer.monitor();
    dealer.connect(&endpoint).unwrap();
    let SocketEvent::ConnectRetried { endpoint: ep, .. } = next(&mut events).await else {
        panic!("nothing listens yet: a retry");
    };
    assert_eq!(ep.to_string(), endpoint);

    let mut router = Socket::new(SocketType::Router);
    router.bind(&endpoint).await.unwrap();
    until(&mut events, |e| matches!(e, SocketEvent::Connected { .. })).await;
    let SocketEvent::HandshakeSucceeded { routing_id, .. } = next(&mut events).await else {
        panic!("connected, then the handshake");
    };
    assert_eq!(routing_id, None, "only a ROUTER names peers");

    drop(router);
    until(&mut events, |e| {
        matches!(e, SocketEvent::Disconnected { .. })
    })
    .await;
    until(&mut events, |e| {
        matches!(e, SocketEvent::ConnectRetried { .. })
    })
    .await;
}

#[tokio::test]
async fn bad_greeting_is_a_failed_handshake() {
    let mut router = Socket::new(SocketType::Router);
    let mut events = router.monitor();
    let bound = router.bind("tcp://127.0.0.1:0").await.unwrap();
    let addr = bound.to_string().trim_start_matches("tcp://").to_owned();
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let SocketEvent::HandshakeFailed { reason, .. } = until(&mut events, |e| {
        matches!(e, SocketEvent::HandshakeFailed { .. })
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(reason.kind(), zmtp::ReasonKind::Handshake, "{reason}");
    assert!(reason.detail().contains("handshake"), "{reason}");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(WAIT, raw.read_to_end(&mut rest)).await;
    assert!(
        !events
            .try_recv()
            .is_some_and(|e| matches!(e, SocketEvent::Disconnected { .. })),
        "a connection that never shook hands is not reported as disconnected"
    );
}

#[tokio::test]
async fn unread_monitor_drops_events_instead_of_growing() {
    let mut router = Socket::new(SocketType::Router);
    let events = router.monitor();
    let bound = router.bind("tcp://127.0.0.1:0").await.unwrap();
    let addr = bound.to_string().trim_start_matches("tcp://").to_owned();
    // Each raw connection that closes at once yields two events (accepted and a
    // failed handshake); enough of them overflow the monitor.
    let connections = zmtp::monitor::MONITOR_CAPACITY;
    for _ in 0..connections {
        drop(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    while events.dropped() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(events.dropped() > 0, "a full monitor counts what it drops");
}

#[tokio::test]
async fn pyzmq_dealer_comes_and_goes() {
    let mut router = Socket::new(SocketType::Router);
    let mut events = router.monitor();
    let bound = router.bind("tcp://127.0.0.1:0").await.unwrap();
    let mut peer = PyPeer::spawn_code(
        r#"
import sys, zmq
s = zmq.Context.instance().socket(zmq.DEALER)
s.setsockopt(zmq.IDENTITY, b"py-dealer")
s.connect(sys.argv[1])
s.send(b"hello")
print("sent", flush=True)
sys.stdin.readline()
s.close(linger=0)
"#,
        [bound.to_string()],
    );
    peer.expect("sent").await;
    let msg: Message = tokio::time::timeout(WAIT, router.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg, Message::from(["py-dealer", "hello"]));
    let SocketEvent::HandshakeSucceeded { routing_id, .. } = until(&mut events, |e| {
        matches!(e, SocketEvent::HandshakeSucceeded { .. })
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(routing_id, Some(Bytes::from_static(b"py-dealer")));
    peer.close_stdin();
    let SocketEvent::Disconnected { routing_id, .. } = until(&mut events, |e| {
        matches!(e, SocketEvent::Disconnected { .. })
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(routing_id, Some(Bytes::from_static(b"py-dealer")));
}
