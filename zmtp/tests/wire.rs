//! Wire behaviour against a scripted raw peer: heartbeats, bad input, unknown commands.
//!
//! The raw peer is built from `zmtp::proto` pieces over a plain TCP stream, so each
//! test controls exactly which bytes go on the wire.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;
use zmtp::proto::greeting::GREETING_LEN;
use zmtp::proto::{Command, FrameCodec, Greeting, MechanismName, Metadata};
use zmtp::{Message, Socket, SocketOptions, SocketType};

const WAIT: Duration = Duration::from_secs(30);

/// A peer that speaks just enough ZMTP by hand.
struct RawPeer {
    stream: TcpStream,
    input: BytesMut,
    codec: FrameCodec,
}

impl RawPeer {
    async fn connect(endpoint: &str) -> RawPeer {
        let addr = endpoint.trim_start_matches("tcp://");
        RawPeer {
            stream: TcpStream::connect(addr).await.expect("connect"),
            input: BytesMut::new(),
            codec: FrameCodec::new(1 << 20),
        }
    }

    /// Greeting and READY as a libzmq DEALER sends them.
    async fn handshake(&mut self, socket_type: &str) {
        let mut out = BytesMut::new();
        Greeting::ours(MechanismName::NULL, false).encode(&mut out);
        let mut md = Metadata::new();
        md.insert("Socket-Type", socket_type.to_string());
        md.insert("Identity", "");
        Command::Ready(md).encode_frame(&mut out);
        self.stream.write_all(&out).await.unwrap();
        while self.input.len() < GREETING_LEN {
            self.read_more().await.expect("greeting");
        }
        let _ = self.input.split_to(GREETING_LEN);
        let ready = self.next_frame().await.expect("READY");
        assert!(matches!(
            Command::parse(ready.body).unwrap(),
            Command::Ready(_)
        ));
    }

    async fn read_more(&mut self) -> Option<()> {
        let n = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.input))
            .await
            .expect("peer answered within the timeout")
            .ok()?;
        (n > 0).then_some(())
    }

    async fn next_frame(&mut self) -> Option<zmtp::proto::Frame> {
        loop {
            if let Some(frame) = self.codec.decode(&mut self.input).unwrap() {
                return Some(frame);
            }
            self.read_more().await?;
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// True once the other side closed the connection.
    async fn closed(&mut self) -> bool {
        loop {
            match self.read_more().await {
                None => return true,
                Some(()) => self.input.clear(),
            }
        }
    }
}

fn command(cmd: Command) -> Vec<u8> {
    let mut out = BytesMut::new();
    cmd.encode_frame(&mut out);
    out.to_vec()
}

#[tokio::test]
async fn ping_is_answered_with_pong_echoing_the_context() {
    let mut router = Socket::new(SocketType::Router);
    let ep = router.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut peer = RawPeer::connect(&ep).await;
    peer.handshake("DEALER").await;
    peer.send(&command(Command::Ping {
        ttl_deciseconds: 0,
        context: Bytes::from_static(b"ctx-123"),
    }))
    .await;
    let frame = peer.next_frame().await.expect("PONG");
    assert_eq!(
        Command::parse(frame.body).unwrap(),
        Command::Pong {
            context: Bytes::from_static(b"ctx-123")
        }
    );
}

#[tokio::test]
async fn unknown_commands_are_ignored_after_the_handshake() {
    let mut router = Socket::new(SocketType::Router);
    let ep = router.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut peer = RawPeer::connect(&ep).await;
    peer.handshake("DEALER").await;
    peer.send(&command(Command::Unknown {
        name: Bytes::from_static(b"X-FUTURE"),
        data: Bytes::from_static(b"whatever"),
    }))
    .await;
    peer.send(&[0x00, 0x02, b'h', b'i']).await;
    let msg = tokio::time::timeout(WAIT, router.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg[1], "hi");
}

#[tokio::test]
async fn a_silent_peer_is_closed_after_the_heartbeat_timeout() {
    let options =
        SocketOptions::default().heartbeat(Duration::from_millis(100), Duration::from_millis(300));
    let mut router = Socket::with_options(SocketType::Router, options).unwrap();
    let ep = router.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut peer = RawPeer::connect(&ep).await;
    peer.handshake("DEALER").await;
    // We never answer the PINGs we receive: the socket must give up on us.
    let mut pings = 0;
    while let Some(frame) = peer.next_frame().await {
        if let Ok(Command::Ping { .. }) = Command::parse(frame.body) {
            pings += 1;
        }
    }
    assert!(pings >= 1, "PINGs were sent before closing");
}

#[tokio::test]
async fn a_peer_ttl_is_honoured() {
    let mut router = Socket::new(SocketType::Router);
    let ep = router.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut peer = RawPeer::connect(&ep).await;
    peer.handshake("DEALER").await;
    // TTL of 0.3 s: the socket must close the connection once we stay silent.
    peer.send(&command(Command::Ping {
        ttl_deciseconds: 3,
        context: Bytes::new(),
    }))
    .await;
    assert!(peer.closed().await);
}

/// Collects what tracing writes, to check the events people will read.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn bad_input_closes_only_that_peer_and_says_why() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let options = SocketOptions::default().max_message_size(1024);
    let mut router = Socket::with_options(SocketType::Router, options).unwrap();
    let ep = router.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut good = Socket::with_options(
        SocketType::Dealer,
        SocketOptions::default().routing_id("good"),
    )
    .unwrap();
    good.connect(&ep).unwrap();
    good.send("before").await.unwrap();
    assert_eq!(
        tokio::time::timeout(WAIT, router.recv())
            .await
            .unwrap()
            .unwrap()[1],
        "before"
    );

    let bad_inputs: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "not a ZMTP 3.x peer",
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            false,
        ),
        (
            "exceeds the maximum",
            vec![0x02, 0, 0, 0, 0, 0x10, 0, 0, 0],
            true,
        ),
        ("malformed READY", b"\x04\x07\x05READY\x0b".to_vec(), false),
        ("cannot talk to a PUB", Vec::new(), false),
    ];
    for (reason, bytes, after_handshake) in bad_inputs {
        let mut peer = RawPeer::connect(&ep).await;
        let local = peer.stream.local_addr().unwrap().to_string();
        if reason.contains("PUB") {
            peer.handshake_expecting_refusal("PUB").await;
        } else {
            if after_handshake {
                peer.handshake("DEALER").await;
            } else {
                let mut greeting = BytesMut::new();
                Greeting::ours(MechanismName::NULL, false).encode(&mut greeting);
                if !reason.contains("ZMTP") {
                    peer.send(&greeting).await;
                }
            }
            peer.send(&bytes).await;
        }
        assert!(peer.closed().await, "{reason}: connection closed");
        // The event names the peer and the reason.
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains(&local))
            .unwrap_or_else(|| panic!("no event names peer {local}: {text}"));
        assert!(line.contains(reason), "{reason:?} not in {line:?}");
        // The good peer carries on.
        good.send(reason).await.unwrap();
        assert_eq!(
            tokio::time::timeout(WAIT, router.recv())
                .await
                .unwrap()
                .unwrap()[1],
            reason
        );
    }
}

impl RawPeer {
    /// Handshake with a socket type the other side must refuse.
    async fn handshake_expecting_refusal(&mut self, socket_type: &str) {
        let mut out = BytesMut::new();
        Greeting::ours(MechanismName::NULL, false).encode(&mut out);
        let mut md = Metadata::new();
        md.insert("Socket-Type", socket_type.to_string());
        Command::Ready(md).encode_frame(&mut out);
        self.send(&out).await;
    }
}

#[tokio::test]
async fn messages_before_and_after_a_ping_stay_whole() {
    // A command between two messages must not disturb message assembly.
    let mut router = Socket::new(SocketType::Router);
    let ep = router.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut peer = RawPeer::connect(&ep).await;
    peer.handshake("DEALER").await;
    let mut wire = vec![0x01, 1, b'a', 0x00, 1, b'b'];
    wire.extend(command(Command::Ping {
        ttl_deciseconds: 0,
        context: Bytes::new(),
    }));
    wire.extend([0x00, 1, b'c']);
    peer.send(&wire).await;
    let first = tokio::time::timeout(WAIT, router.recv())
        .await
        .unwrap()
        .unwrap();
    let mut body = first.clone();
    body.pop_front();
    assert_eq!(body, Message::from(["a", "b"]));
    let second = tokio::time::timeout(WAIT, router.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second[1], "c");
}

#[tokio::test]
async fn greeting_in_libzmq_pieces_waiting_for_ours_in_between() {
    // libzmq sends 10 bytes, waits for our signature, sends the major version, waits
    // for ours, then sends the rest: we must never wait for the peer's full greeting.
    let mut router = Socket::new(SocketType::Router);
    let ep = router.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut peer = RawPeer::connect(&ep).await;
    let mut greeting = BytesMut::new();
    Greeting::ours(MechanismName::NULL, false).encode(&mut greeting);
    greeting[8] = 1; // libzmq puts a length in the padding
    peer.send(&greeting[..10]).await;
    while peer.input.len() < 10 {
        peer.read_more()
            .await
            .expect("our signature before the peer's major version");
    }
    peer.send(&greeting[10..11]).await;
    while peer.input.len() < 11 {
        peer.read_more().await.expect("our major version");
    }
    peer.send(&greeting[11..]).await;
    let mut md = Metadata::new();
    md.insert("Socket-Type", "DEALER");
    peer.send(&command(Command::Ready(md))).await;
    peer.send(&[0x00, 0x02, b'o', b'k']).await;
    let msg = tokio::time::timeout(WAIT, router.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg[1], "ok");
}

#[tokio::test]
async fn a_zmtp_3_0_peer_is_accepted() {
    let mut router = Socket::new(SocketType::Router);
    let ep = router.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut peer = RawPeer::connect(&ep).await;
    let mut out = BytesMut::new();
    Greeting::ours(MechanismName::NULL, false).encode(&mut out);
    out[11] = 0; // minor version 0, as libzmq <= 4.3.2 announces
    let mut md = Metadata::new();
    md.insert("Socket-Type", "DEALER");
    md.insert("Identity", "old-timer");
    Command::Ready(md).encode_frame(&mut out);
    out.extend_from_slice(&[0x00, 0x02, b'h', b'i']);
    peer.send(&out).await;
    let msg = tokio::time::timeout(WAIT, router.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg, Message::from(["old-timer", "hi"]));
}

#[tokio::test]
async fn a_peer_that_never_finishes_the_handshake_is_dropped() {
    let options = SocketOptions::default().handshake_timeout(Duration::from_millis(200));
    let mut router = Socket::with_options(SocketType::Router, options).unwrap();
    let ep = router.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut peer = RawPeer::connect(&ep).await;
    peer.send(&[0xFF]).await; // one byte of greeting, then silence
    assert!(peer.closed().await);
}

/// A DEALER bound for `RawPeer`, its first message received: from then on its
/// connection has lent its read half to `recv` (nothing buffered, in the clear, no
/// heartbeats), which reads the kernel itself.
async fn dealer_reading_directly() -> (Socket, RawPeer) {
    let mut dealer = Socket::new(SocketType::Dealer);
    let ep = dealer.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut peer = RawPeer::connect(&ep).await;
    peer.handshake("ROUTER").await;
    peer.send(&[0x00, 5, b'f', b'i', b'r', b's', b't']).await;
    let first = tokio::time::timeout(WAIT, dealer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, Message::from("first"));
    (dealer, peer)
}

#[tokio::test]
async fn a_receiver_reading_directly_hands_commands_and_partial_messages_to_the_connection() {
    let (mut dealer, mut peer) = dealer_reading_directly().await;
    // One write: a message, a PING (the connection's to answer), another message.
    let mut wire = vec![0x01, 1, b'a', 0x00, 1, b'b'];
    wire.extend(command(Command::Ping {
        ttl_deciseconds: 0,
        context: Bytes::from_static(b"direct"),
    }));
    wire.extend([0x00, 1, b'c']);
    let receiving = tokio::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(
                tokio::time::timeout(WAIT, dealer.recv())
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        (dealer, got)
    });
    // Let the DEALER wait in `recv` first, so the read is its own.
    tokio::time::sleep(Duration::from_millis(100)).await;
    peer.send(&wire).await;
    let pong = peer.next_frame().await.expect("PONG");
    assert_eq!(
        Command::parse(pong.body).unwrap(),
        Command::Pong {
            context: Bytes::from_static(b"direct")
        }
    );
    // A message in two writes: its start is read first, then handed over.
    let whole = [0x01, 3, b'd', b'e', b'f', 0x00, 2, b'g', b'h'];
    peer.send(&whole[..4]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    peer.send(&whole[4..]).await;
    let (_dealer, got) = receiving.await.unwrap();
    assert_eq!(
        got,
        [
            Message::from(["a", "b"]),
            Message::from("c"),
            Message::from(["def", "gh"]),
        ]
    );
}

#[tokio::test]
async fn a_receiver_reading_directly_refuses_an_oversized_message_as_the_connection_does() {
    let options = SocketOptions::default().max_message_size(4);
    let mut dealer = Socket::with_options(SocketType::Dealer, options).unwrap();
    let ep = dealer.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut peer = RawPeer::connect(&ep).await;
    peer.handshake("ROUTER").await;
    peer.send(&[0x00, 2, b'o', b'k']).await;
    let first = tokio::time::timeout(WAIT, dealer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, Message::from("ok"));
    // The DEALER waits in `recv`, so the read is its own.
    let receiving =
        tokio::spawn(
            async move { tokio::time::timeout(Duration::from_secs(2), dealer.recv()).await },
        );
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Two frames of 3 bytes: 6 > 4, in one message.
    peer.send(&[0x01, 3, b'a', b'b', b'c', 0x00, 3, b'd', b'e', b'f'])
        .await;
    assert!(peer.closed().await, "the connection refused the message");
    let nothing = receiving.await.unwrap();
    assert!(nothing.is_err(), "nothing of it was delivered: {nothing:?}");
}

#[tokio::test]
async fn a_peer_that_leaves_while_nobody_receives_is_noticed() {
    let (mut dealer, mut peer) = dealer_reading_directly().await;
    let mut events = dealer.monitor();
    // Nobody calls `recv` from here on: the connection must see the end itself.
    drop(peer.stream);
    peer.input.clear();
    let disconnected = tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Some(zmtp::SocketEvent::Disconnected { .. }) => return true,
                Some(_) => {}
                None => return false,
            }
        }
    })
    .await
    .expect("the departure is noticed without a recv");
    assert!(disconnected);
}

#[tokio::test]
async fn a_ping_while_nobody_receives_is_answered() {
    let (_dealer, mut peer) = dealer_reading_directly().await;
    peer.send(&command(Command::Ping {
        ttl_deciseconds: 0,
        context: Bytes::from_static(b"idle"),
    }))
    .await;
    let pong = peer.next_frame().await.expect("PONG");
    assert_eq!(
        Command::parse(pong.body).unwrap(),
        Command::Pong {
            context: Bytes::from_static(b"idle")
        }
    );
}
