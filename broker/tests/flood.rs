//! A flood of malformed input (invalid MDP of every kind, bad greetings and frames
//! on raw TCP, a peer that never reads its replies) while a well-behaved client and
//! worker carry on: the broker stays up, serves them, and stays within a memory bound.
//!
//! Nothing here is timed: every wait is bounded and generous (loaded CI machines),
//! and only outcomes are asserted.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{bounded, wait_for_service, wait_until, BrokerProcess};
use mdp::{CallOptions, Client, Worker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use zmtp::{Message, Socket, SocketOptions, SocketType};

/// A tiny deterministic generator for junk (xorshift64*).
struct Junk(u64);

impl Junk {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> usize {
        usize::try_from(self.next() % n).unwrap_or(0)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next().to_le_bytes()[3]).collect()
    }
}

/// Invalid MDP messages of every kind (frames after the ROUTER's routing id), for
/// round `round` of the flood. None is a request to a real service or a READY for
/// a service of the test's.
fn malformed_mdp(round: usize, junk: &mut Junk, big: &Bytes) -> Vec<Message> {
    let e = "";
    // Trailing junk, for messages that stay invalid whatever follows.
    let len = junk.below(100);
    let body = Bytes::from(junk.bytes(len));
    let with_body = |frames: &[&'static str]| {
        let mut msg: Message = frames
            .iter()
            .map(|f| Bytes::from_static(f.as_bytes()))
            .collect();
        msg.push_back(body.clone());
        msg
    };
    let mut messages = vec![
        Message::from([e]),                               // one empty frame
        Message::from([e, "MDPC01"]),                     // REQUEST without a service
        Message::from(["MDPC02", "\x01"]),                // 0.2 REQUEST without a service
        Message::from([e, "0"]),                          // Overseer request without a service
        Message::from([e, "MDPW01", "\x01"]),             // READY without a service
        with_body(&[e]),                                  // unknown header after the empty frame
        with_body(&[e, e]),                               // an empty header
        with_body(&[e, "MDPX99", "echo"]),                // wrong protocol header
        with_body(&["MDPC01", "echo"]),                   // 0.1 header without the empty frame
        with_body(&[e, "MDPW01", "\x09"]),                // unknown worker command (0.1)
        with_body(&["MDPW02", "\x7f"]),                   // unknown worker command (0.2)
        with_body(&[e, "MDPC02", "\x05", "echo"]),        // unknown client command (majortomo)
        with_body(&["MDPC02", "\x02", "echo"]),           // a 0.2 client sending a reply code
        with_body(&[e, "1", "9"]),                        // unknown Overseer worker command
        with_body(&[e, "MDPW01", "\x03", "nobody", e]),   // REPLY from a non-worker
        with_body(&[e, "MDPW02", "\x04", "nobody", e]),   // FINAL from a non-worker
        with_body(&[e, "MDPW01", "\x04"]),                // HEARTBEAT from a non-worker
        with_body(&[e, "MDPW01", "\x01", "mmi.x"]),       // READY for a reserved service
        with_body(&[e, "MDPW01", "\x01", "flood"]),       // READY...
        with_body(&[e, "MDPW01", "\x01", "flood"]),       // ...and a second READY
        with_body(&[e, "MDPW01", "\x03", "client", "x"]), // non-empty separator
        Message::from([e, "MDPW01", "\x03", "client"]),   // REPLY without the separator
    ];
    if round % 50 == 49 {
        // Bodies large but within the broker's limit.
        let big = |frames: [&'static str; 3]| {
            let mut msg = Message::from(frames);
            msg.push_back(big.clone());
            msg
        };
        messages.push(big([e, "MDPW01", "\x09"]));
        messages.push(big([e, "MDPX99", "echo"]));
    }
    // Random frames.
    for _ in 0..4 {
        let frames: Vec<Bytes> = (0..=junk.below(8))
            .map(|_| {
                let len = junk.below(64);
                Bytes::from(junk.bytes(len))
            })
            .collect();
        messages.push(frames.into_iter().collect());
    }
    messages
}

/// Floods the broker from one DEALER with `rounds` rounds of [`malformed_mdp`],
/// reading what the broker answers (DISCONNECTs) between rounds. Returns how many
/// messages it sent.
async fn flood_mdp(endpoint: &str, rounds: usize) -> usize {
    let options = SocketOptions::default().linger(Duration::ZERO);
    let mut socket = Socket::with_options(SocketType::Dealer, options).unwrap();
    socket.connect(endpoint).await.unwrap();
    let mut junk = Junk(0x9e37_79b9_7f4a_7c15);
    let big = Bytes::from(vec![0x5a; 4 << 20]);
    let mut sent = 0;
    for round in 0..rounds {
        for msg in malformed_mdp(round, &mut junk, &big) {
            socket.send(msg).await.unwrap();
            sent += 1;
        }
        while socket.try_recv().is_ok() {}
    }
    sent
}

/// A ZMTP 3.x greeting (as client) with the given major version and mechanism.
fn greeting(major: u8, mechanism: &[u8]) -> Vec<u8> {
    let mut greeting = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, major, 1];
    let mut name = [0u8; 20];
    name[..mechanism.len()].copy_from_slice(mechanism);
    greeting.extend_from_slice(&name);
    greeting.push(0); // as-server: no
    greeting.extend_from_slice(&[0; 31]);
    greeting
}

/// A READY command frame announcing `socket_type`.
fn ready(socket_type: &str) -> Vec<u8> {
    let mut body = vec![5];
    body.extend_from_slice(b"READY");
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&u32::try_from(socket_type.len()).unwrap().to_be_bytes());
    body.extend_from_slice(socket_type.as_bytes());
    let mut frame = vec![0x04, u8::try_from(body.len()).unwrap()];
    frame.extend(body);
    frame
}

/// A valid NULL handshake as a DEALER, then `then`.
fn handshake_then(then: &[u8]) -> Vec<u8> {
    let mut bytes = greeting(3, b"NULL");
    bytes.extend(ready("DEALER"));
    bytes.extend_from_slice(then);
    bytes
}

/// The header of a long frame: `flags` (the long bit is added) and a declared size.
fn long_frame(flags: u8, size: u64) -> Vec<u8> {
    let mut header = vec![flags | 0x02];
    header.extend_from_slice(&size.to_be_bytes());
    header
}

/// Byte streams that are not ZMTP, or stop being ZMTP somewhere; the broker must
/// close every connection that sends one.
fn bad_streams(junk: &mut Junk) -> Vec<(&'static str, Vec<u8>)> {
    let mut garbage = junk.bytes(4096);
    garbage[0] = 0; // not the greeting's 0xFF
    let mut bad_signature = greeting(3, b"NULL");
    bad_signature[9] = 0x7E;
    let mut bad_command = greeting(3, b"NULL");
    bad_command.extend(long_frame(0x04, 1 << 63));
    vec![
        ("garbage", garbage),
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        ("a bad greeting signature", bad_signature),
        ("a ZMTP 2 greeting", greeting(2, b"NULL")),
        ("an unknown mechanism", greeting(3, b"BOGUS")),
        ("a 2^63-byte command in the handshake", bad_command),
        (
            "a message before READY",
            [greeting(3, b"NULL"), vec![0x00, 1, b'x']].concat(),
        ),
        (
            "a truncated READY",
            [greeting(3, b"NULL"), vec![0x04, 3, 5, b'R', b'E']].concat(),
        ),
        (
            "an incompatible socket type",
            [greeting(3, b"NULL"), ready("PUB")].concat(),
        ),
        ("a 2^63-byte frame", handshake_then(&long_frame(0, 1 << 63))),
        (
            "a u64::MAX-byte frame with MORE",
            handshake_then(&long_frame(0x01, u64::MAX)),
        ),
        (
            "a frame one byte over the broker's limit",
            handshake_then(&long_frame(0, (16 << 20) + 1)),
        ),
        (
            "garbage after the handshake",
            handshake_then(&junk.bytes(1024)),
        ),
    ]
}

/// Sends `bytes` on a fresh TCP connection and waits until the broker closes it.
async fn send_and_expect_close(addr: String, what: &'static str, bytes: Vec<u8>) {
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    // The broker may close before reading everything: a failed write is fine.
    let _ = stream.write_all(&bytes).await;
    let mut sink = [0u8; 4096];
    let closed = async {
        // Its greeting (and READY) may come first; then end of file or a reset.
        while let Ok(1..) = stream.read(&mut sink).await {}
    };
    bounded(
        &format!("the broker to close a connection that sent {what}"),
        closed,
    )
    .await;
}

/// `rounds` rounds of every [`bad_streams`] case, each round's connections at once,
/// while a few connections that sent half a greeting stay open and silent.
async fn flood_tcp(endpoint: &str, rounds: usize) -> usize {
    let addr = endpoint.strip_prefix("tcp://").unwrap().to_string();
    let mut silent = Vec::new();
    for _ in 0..16 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream.write_all(&greeting(3, b"NULL")[..10]).await.unwrap();
        silent.push(stream);
    }
    let mut junk = Junk(0x2545_f491_4f6c_dd1d);
    let mut connections = 0;
    for _ in 0..rounds {
        let mut round = JoinSet::new();
        for (what, bytes) in bad_streams(&mut junk) {
            round.spawn(send_and_expect_close(addr.clone(), what, bytes));
            connections += 1;
        }
        while let Some(done) = round.join_next().await {
            done.unwrap();
        }
    }
    drop(silent);
    connections
}

/// A client that sends `requests` requests with 16 KiB bodies to `sink` and never
/// reads a reply (its receive queue holds one message, so its connection stops
/// reading at once). Returns once the sink worker has served them all, with the
/// socket still open and unread.
async fn flood_unread(endpoint: &str, requests: usize, sink_served: &AtomicUsize) -> Socket {
    let options = SocketOptions::default().recv_hwm(1).linger(Duration::ZERO);
    let mut socket = Socket::with_options(SocketType::Dealer, options).unwrap();
    socket.connect(endpoint).await.unwrap();
    let body = Bytes::from(vec![0x42; 16 << 10]);
    for _ in 0..requests {
        let request: Message = [
            Bytes::new(),
            Bytes::from_static(b"MDPC01"),
            Bytes::from_static(b"sink"),
            body.clone(),
        ]
        .into_iter()
        .collect();
        socket.send(request).await.unwrap();
    }
    wait_until("the sink worker served every unread request", || {
        sink_served.load(Ordering::SeqCst) >= requests
    })
    .await;
    socket
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`).
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// While a client and a worker exchange requests, other peers flood the broker with
/// invalid MDP messages, non-ZMTP bytes, oversized frame headers, and requests whose
/// replies they never read: the client gets every reply, the broker survives and still
/// answers, and its memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_flood_does_not_disturb_others() {
    const MDP_ROUNDS: usize = 200;
    const TCP_ROUNDS: usize = 20;
    const UNREAD: usize = 1500;
    let mut broker = BrokerProcess::start_with(&["--heartbeat-interval", "500"]);
    let endpoint = broker.endpoint.clone();
    tokio::spawn(Worker::new(&endpoint, "echo").run(|request| async move { Ok(request) }));
    let sink_served = Arc::new(AtomicUsize::new(0));
    let counter = sink_served.clone();
    tokio::spawn(Worker::new(&endpoint, "sink").run(move |request| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move { Ok(request) }
    }));
    let client = Client::connect(&endpoint).unwrap();
    wait_for_service(&client, "echo").await;
    wait_for_service(&client, "sink").await;

    // The well-behaved pair: one attempt each, so a lost request fails the test.
    let flooding = Arc::new(AtomicBool::new(true));
    let good = tokio::spawn({
        let flooding = flooding.clone();
        async move {
            let limits = CallOptions {
                timeout: Duration::from_secs(30),
                attempts: 1,
            };
            let mut served = 0;
            while served < 50 || (flooding.load(Ordering::SeqCst) && served < 100_000) {
                let body = format!("good {served}");
                let reply = client
                    .request_with("echo", body.clone(), limits)
                    .await
                    .unwrap_or_else(|e| panic!("{body:?} during the flood: {e}"));
                assert_eq!(reply, Message::from(body));
                served += 1;
            }
            served
        }
    });

    let (sent, connections, unread) = bounded("the floods", async {
        tokio::join!(
            flood_mdp(&endpoint, MDP_ROUNDS),
            flood_tcp(&endpoint, TCP_ROUNDS),
            flood_unread(&endpoint, UNREAD, &sink_served),
        )
    })
    .await;
    flooding.store(false, Ordering::SeqCst);
    let served = bounded("the good client", good).await.unwrap();
    eprintln!(
        "flood: {sent} invalid MDP messages, {connections} bad TCP connections, \
         {UNREAD} unread replies; {served} good requests served meanwhile"
    );
    drop(unread);

    assert!(broker.is_running(), "the broker died during the flood");
    let fresh = Client::connect(&endpoint).unwrap();
    assert!(bounded("mmi.service", fresh.service_exists("echo"))
        .await
        .unwrap());
    let reply = bounded("a request after the flood", fresh.request("echo", "after"))
        .await
        .unwrap();
    assert_eq!(reply, Message::from("after"));

    let (rss, peak) = (
        memory_kib(broker.pid(), "VmRSS"),
        memory_kib(broker.pid(), "VmHWM"),
    );
    eprintln!("broker memory: {rss} KiB resident, {peak} KiB at the peak");
    assert!(
        peak < 200 * 1024,
        "the broker's resident memory peaked at {peak} KiB"
    );
}
