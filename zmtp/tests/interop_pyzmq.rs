//! Interop with libzmq 4.3 through pyzmq: our sockets against real libzmq peers.
//!
//! Each Python peer is `tests/py/zmq_peer.py`, one process per peer, driven by lines
//! (see the script's docstring): the test tells it what to send and receive, and
//! compares frames byte for byte. Every socket pairing runs over tcp and ipc, with us
//! binding and pyzmq connecting, and the other way round. Waits are bounded
//! (generous, for loaded machines) and nothing asserts on timing.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{sleep, timeout, Instant};

use testkit::interop::{
    fixed_endpoint, our_bind_endpoint, their_bind_endpoint, Side, Transport, ZmqArgs, COMBOS,
    TRANSPORTS,
};
use zmtp::{Error, Message, Socket, SocketOptions, SocketType};

/// Bound on every wait for a message or an event.
const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------
// The pyzmq peer
// ---------------------------------------------------------------------------------

/// A running pyzmq peer (killed on drop).
type Py = testkit::interop::ZmqPeer<Message>;

/// Command-line options of a `zmq_peer.py` process.
fn py(socket_type: &str) -> ZmqArgs {
    ZmqArgs::new(socket_type)
}

/// Connects `ours` and a new pyzmq peer: one binds, the other connects.
async fn pair(ours: &mut Socket, args: ZmqArgs, transport: Transport, side: Side) -> Py {
    match side {
        Side::WeBind => {
            let ep = ours
                .bind(&our_bind_endpoint(transport))
                .await
                .expect("bind");
            Py::start(args.connect(&ep.to_string())).await
        }
        Side::TheyBind => {
            let py = Py::start(args.bind(&their_bind_endpoint(transport))).await;
            ours.connect(py.endpoint()).expect("connect");
            py
        }
    }
}

// ---------------------------------------------------------------------------------
// Helpers on our side
// ---------------------------------------------------------------------------------

async fn recv(s: &mut Socket) -> Message {
    timeout(WAIT, s.recv())
        .await
        .unwrap_or_else(|_| panic!("no message for our {} within {WAIT:?}", s.socket_type()))
        .expect("recv")
}

async fn send(s: &mut Socket, msg: impl Into<Message>) {
    timeout(WAIT, s.send(msg))
        .await
        .unwrap_or_else(|_| panic!("our {} could not send within {WAIT:?}", s.socket_type()))
        .expect("send");
}

/// ROUTER with `router_mandatory`: sends once the peer named by the first frame is
/// connected (retrying while it is unknown).
async fn send_when_routable(s: &mut Socket, msg: Message) {
    let deadline = Instant::now() + WAIT;
    loop {
        match s.send(msg.clone()).await {
            Ok(()) => return,
            Err(Error::HostUnreachable(_)) if Instant::now() < deadline => {
                sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("send to {:?}: {e}", msg.first()),
        }
    }
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {WAIT:?}: {what}");
        sleep(Duration::from_millis(20)).await;
    }
}

fn msg(frames: &[&[u8]]) -> Message {
    frames.iter().map(|f| f.to_vec()).collect()
}

fn text(frames: &[&str]) -> Message {
    frames.iter().map(|f| f.to_string()).collect()
}

/// A libzmq-generated routing id: 5 bytes, the first 0.
fn assert_generated_id(id: &[u8]) {
    assert!(
        id.len() == 5 && id[0] == 0,
        "expected a generated routing id, got {id:?}"
    );
}

/// Compares messages frame by frame without printing megabytes.
fn assert_same(got: &Message, want: &Message, context: &str) {
    let sizes = |m: &Message| m.iter().map(|f| f.len()).collect::<Vec<_>>();
    assert_eq!(sizes(got), sizes(want), "{context}: frame sizes differ");
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        if g != w {
            let at = g.iter().zip(w.iter()).position(|(a, b)| a != b);
            panic!("{context}: frame {i} differs (first at byte {at:?})");
        }
    }
}

// ---------------------------------------------------------------------------------
// Every socket pairing, both directions, tcp and ipc
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_dealer_with_pyzmq_router() {
    for (t, side) in COMBOS {
        eprintln!("--- {t:?} {side:?}");
        let mut ours = Socket::new(SocketType::Dealer);
        let mut router = pair(&mut ours, py("ROUTER"), t, side).await;
        for i in 0..3 {
            let body = format!("hello {i}");
            send(&mut ours, text(&[&body, "", "world"])).await;
            let mut got = router.recv().await;
            let id = got.pop_front().expect("routing id");
            assert_generated_id(&id);
            assert_eq!(got, text(&[&body, "", "world"]));

            let reply = format!("reply {i}");
            router.send(msg(&[&id, reply.as_bytes(), b"", b"x"])).await;
            assert_eq!(recv(&mut ours).await, text(&[&reply, "", "x"]));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_router_with_pyzmq_dealer() {
    for (t, side) in COMBOS {
        eprintln!("--- {t:?} {side:?}");
        let mut ours = Socket::new(SocketType::Router);
        let mut dealer = pair(&mut ours, py("DEALER").identity(b"py-dealer"), t, side).await;
        for i in 0..3 {
            let body = format!("hello {i}");
            dealer.send(text(&[&body, "", "world"])).await;
            assert_eq!(
                recv(&mut ours).await,
                text(&["py-dealer", &body, "", "world"]),
                "our ROUTER must see the libzmq peer's Identity"
            );
            send(&mut ours, ["py-dealer", "reply", ""]).await;
            assert_eq!(dealer.recv().await, Message::from(["reply", ""]));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_req_with_pyzmq_rep() {
    for (t, side) in COMBOS {
        eprintln!("--- {t:?} {side:?}");
        let mut ours = Socket::new(SocketType::Req);
        let mut rep = pair(&mut ours, py("REP"), t, side).await;
        for i in 0..3 {
            let body = format!("request {i}");
            send(&mut ours, text(&[&body, "", "tail"])).await;
            // libzmq REP strips everything up to the first empty frame, which must be
            // the delimiter our REQ put in front: the body's own empty frame stays.
            assert_eq!(rep.recv().await, text(&[&body, "", "tail"]));
            rep.send(["reply", ""]).await;
            assert_eq!(recv(&mut ours).await, Message::from(["reply", ""]));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_rep_with_pyzmq_req() {
    for (t, side) in COMBOS {
        eprintln!("--- {t:?} {side:?}");
        let mut ours = Socket::new(SocketType::Rep);
        let mut req = pair(&mut ours, py("REQ"), t, side).await;
        for i in 0..3 {
            let body = format!("request {i}");
            req.send(text(&[&body, ""])).await;
            req.start_recv();
            assert_eq!(recv(&mut ours).await, text(&[&body, ""]));
            send(&mut ours, ["reply", "", "2"]).await;
            assert_eq!(req.msg().await, Message::from(["reply", "", "2"]));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_req_with_pyzmq_router() {
    for (t, side) in COMBOS {
        eprintln!("--- {t:?} {side:?}");
        let mut ours = Socket::new(SocketType::Req);
        let mut router = pair(&mut ours, py("ROUTER"), t, side).await;
        for i in 0..3 {
            let body = format!("request {i}");
            send(&mut ours, body.clone()).await;
            let mut got = router.recv().await;
            let id = got.pop_front().expect("routing id");
            assert_generated_id(&id);
            assert_eq!(got, text(&["", &body]), "REQ adds the delimiter");
            router.send(msg(&[&id, b"", b"reply"])).await;
            assert_eq!(recv(&mut ours).await, Message::from("reply"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_router_with_pyzmq_req() {
    for (t, side) in COMBOS {
        eprintln!("--- {t:?} {side:?}");
        let mut ours = Socket::new(SocketType::Router);
        let mut req = pair(&mut ours, py("REQ"), t, side).await;
        let mut first_id = None;
        for i in 0..3 {
            let body = format!("request {i}");
            req.send(body.clone()).await;
            req.start_recv();
            let mut got = recv(&mut ours).await;
            let id = got.pop_front().expect("routing id");
            assert_generated_id(&id);
            assert_eq!(*first_id.get_or_insert_with(|| id.clone()), id, "stable id");
            assert_eq!(got, text(&["", &body]));
            send(&mut ours, msg(&[&id, b"", b"reply"])).await;
            assert_eq!(req.msg().await, Message::from("reply"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_dealer_with_pyzmq_rep() {
    for (t, side) in COMBOS {
        eprintln!("--- {t:?} {side:?}");
        let mut ours = Socket::new(SocketType::Dealer);
        let mut rep = pair(&mut ours, py("REP"), t, side).await;
        // A bare request, then one with an extra envelope hop that REP must keep.
        send(&mut ours, ["", "q1"]).await;
        assert_eq!(rep.recv().await, Message::from("q1"));
        rep.send("a1").await;
        assert_eq!(recv(&mut ours).await, Message::from(["", "a1"]));

        send(&mut ours, ["hop", "", "q2", ""]).await;
        assert_eq!(rep.recv().await, Message::from(["q2", ""]));
        rep.send("a2").await;
        assert_eq!(recv(&mut ours).await, Message::from(["hop", "", "a2"]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_rep_with_pyzmq_dealer() {
    for (t, side) in COMBOS {
        eprintln!("--- {t:?} {side:?}");
        let mut ours = Socket::new(SocketType::Rep);
        let mut dealer = pair(&mut ours, py("DEALER"), t, side).await;
        dealer.send(["", "q1"]).await;
        assert_eq!(recv(&mut ours).await, Message::from("q1"));
        send(&mut ours, "a1").await;
        assert_eq!(dealer.recv().await, Message::from(["", "a1"]));

        dealer.send(["hop1", "hop2", "", "q2", ""]).await;
        assert_eq!(recv(&mut ours).await, Message::from(["q2", ""]));
        send(&mut ours, ["a2", "more"]).await;
        assert_eq!(
            dealer.recv().await,
            Message::from(["hop1", "hop2", "", "a2", "more"]),
            "our REP must restore the whole envelope"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_dealer_with_pyzmq_dealer() {
    for (t, side) in COMBOS {
        eprintln!("--- {t:?} {side:?}");
        let mut ours = Socket::new(SocketType::Dealer);
        let mut theirs = pair(&mut ours, py("DEALER"), t, side).await;
        for i in 0..3 {
            send(&mut ours, [format!("to py {i}"), String::new()]).await;
        }
        for i in 0..3 {
            theirs.send(text(&["", &format!("to rust {i}")])).await;
        }
        for i in 0..3 {
            assert_eq!(
                theirs.recv().await,
                Message::from([format!("to py {i}"), String::new()])
            );
            assert_eq!(
                recv(&mut ours).await,
                Message::from([String::new(), format!("to rust {i}")])
            );
        }
    }
}

/// ROUTER to ROUTER needs explicit identities, and the connecting side must not send
/// before the handshake told it the peer's id: both sides use ROUTER_MANDATORY and
/// retry while the id is unknown (libzmq would otherwise drop the message silently).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_router_with_pyzmq_router() {
    for (t, side) in COMBOS {
        eprintln!("--- {t:?} {side:?}");
        let options = SocketOptions::default()
            .routing_id("rust-router")
            .router_mandatory(true);
        let mut ours = Socket::with_options(SocketType::Router, options).expect("options");
        let args = py("ROUTER").identity(b"py-router").mandatory();
        let mut theirs = pair(&mut ours, args, t, side).await;
        match side {
            Side::WeBind => {
                // pyzmq connects, so it speaks first.
                theirs.send_mandatory(["rust-router", "hello", ""]).await;
                assert_eq!(
                    recv(&mut ours).await,
                    Message::from(["py-router", "hello", ""])
                );
                send_when_routable(&mut ours, Message::from(["py-router", "reply"])).await;
                assert_eq!(theirs.recv().await, Message::from(["rust-router", "reply"]));
            }
            Side::TheyBind => {
                send_when_routable(&mut ours, Message::from(["py-router", "hello", ""])).await;
                assert_eq!(
                    theirs.recv().await,
                    Message::from(["rust-router", "hello", ""])
                );
                theirs.send_mandatory(["rust-router", "reply"]).await;
                assert_eq!(recv(&mut ours).await, Message::from(["py-router", "reply"]));
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Frame sizes, identities
// ---------------------------------------------------------------------------------

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(31).wrapping_add(seed) % 251) as u8)
        .collect()
}

/// Empty frames and the sizes around the short/long frame boundary (255/256) and a
/// 1 MiB frame survive the trip both ways, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_frames_of_all_sizes_arrive_intact() {
    let sizes = [0usize, 1, 0, 255, 256, 257, 0, 1 << 20, 65_536, 0];
    let big: Message = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| pattern(n, i as u32))
        .collect();
    let small = Message::from(["", "after the big one", ""]);
    for (t, side) in COMBOS {
        eprintln!("--- {t:?} {side:?}");
        let mut ours = Socket::new(SocketType::Dealer);
        let mut theirs = pair(&mut ours, py("DEALER"), t, side).await;

        for _ in 0..2 {
            send(&mut ours, big.clone()).await;
        }
        send(&mut ours, small.clone()).await;
        for _ in 0..2 {
            assert_same(&theirs.recv().await, &big, "rust -> pyzmq");
        }
        assert_eq!(theirs.recv().await, small);

        for _ in 0..2 {
            theirs.send(big.clone()).await;
        }
        theirs.send(small.clone()).await;
        for _ in 0..2 {
            assert_same(&recv(&mut ours).await, &big, "pyzmq -> rust");
        }
        assert_eq!(recv(&mut ours).await, small);
    }
}

/// A burst of small one-frame messages sent from the test's main thread (not a
/// runtime worker, as in a `#[tokio::main]` body): we frame them as we queue them
/// (`zmtp/src/framed_batch.rs`), many to a write. pyzmq receives every one, in
/// order, byte for byte, across the short/long frame boundary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_small_messages_from_the_main_thread_reaches_pyzmq_intact() {
    for (t, side) in COMBOS {
        eprintln!("--- {t:?} {side:?}");
        let mut ours = Socket::new(SocketType::Push);
        let mut theirs = pair(&mut ours, py("PULL"), t, side).await;
        // The connection's task has drained its queue once: it knows its thread.
        send(&mut ours, Message::from("first")).await;
        assert_eq!(theirs.recv().await, Message::from("first"));
        let burst: Vec<Message> = (0..1500usize)
            .map(|i| Message::from(pattern(i % 300, i as u32)))
            .collect();
        for msg in &burst {
            send(&mut ours, msg.clone()).await;
        }
        for (i, msg) in burst.iter().enumerate() {
            assert_same(&theirs.recv().await, msg, &format!("message {i}"));
        }
    }
}

/// A pyzmq ROUTER names us by the Identity we announce (SocketOptions::routing_id),
/// for DEALER and REQ, including ids that are not text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzmq_router_sees_our_routing_id() {
    let cases: [(SocketType, &'static [u8]); 2] = [
        (SocketType::Dealer, b"rust-\x01\xff-dealer"),
        (SocketType::Req, b"rust-req"),
    ];
    for (socket_type, id) in cases {
        for (t, side) in COMBOS {
            eprintln!("--- {socket_type} {t:?} {side:?}");
            let options = SocketOptions::default().routing_id(id);
            let mut ours = Socket::with_options(socket_type, options).expect("options");
            let mut router = pair(&mut ours, py("ROUTER"), t, side).await;
            send(&mut ours, "who am I").await;
            let got = router.recv().await;
            assert_eq!(got[0], id, "pyzmq's routing id for us");
            let reply = if socket_type == SocketType::Req {
                msg(&[id, b"", b"you are you"])
            } else {
                msg(&[id, b"you are you"])
            };
            router.send(reply).await;
            assert_eq!(recv(&mut ours).await, Message::from("you are you"));
        }
    }
}

// ---------------------------------------------------------------------------------
// Heartbeats
// ---------------------------------------------------------------------------------

/// Longer than 3 heartbeat intervals (200 ms) plus the timeout (600 ms): a peer that
/// does not answer PINGs would be dropped in this time.
const SILENCE: Duration = Duration::from_secs(2);

/// One message each way between our DEALER and a pyzmq DEALER.
async fn round_trip(ours: &mut Socket, theirs: &mut Py, tag: &str) {
    send(ours, format!("rust {tag}")).await;
    assert_eq!(theirs.recv().await, Message::from(format!("rust {tag}")));
    theirs.send(format!("py {tag}")).await;
    assert_eq!(recv(ours).await, Message::from(format!("py {tag}")));
}

/// A connection silent for several heartbeat intervals stays up: traffic still flows
/// and libzmq's monitor never saw a disconnect (a peer that does not answer PINGs, or
/// that times out wrongly, makes one side close the connection).
async fn silent_connection_survives(py_heartbeat: Option<&str>, ours: SocketOptions) {
    for (t, side) in COMBOS {
        eprintln!("--- {t:?} {side:?}");
        let mut socket = Socket::with_options(SocketType::Dealer, ours.clone()).expect("options");
        let mut args = py("DEALER").monitor();
        if let Some(spec) = py_heartbeat {
            args = args.heartbeat(spec);
        }
        let mut theirs = pair(&mut socket, args, t, side).await;
        round_trip(&mut socket, &mut theirs, "before").await;
        sleep(SILENCE).await;
        round_trip(&mut socket, &mut theirs, "after").await;
        theirs
            .assert_one_unbroken_connection(&format!("{t:?} {side:?}"))
            .await;
    }
}

/// pyzmq with HEARTBEAT_IVL 200 ms / HEARTBEAT_TIMEOUT 600 ms: we answer its PINGs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzmq_heartbeats_keep_a_silent_connection() {
    silent_connection_survives(Some("200,600,0"), SocketOptions::default()).await;
}

/// Our heartbeat options against pyzmq: libzmq answers our PINGs (and accepts their
/// TTL), alone and with pyzmq heartbeating too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_heartbeats_keep_a_silent_connection() {
    let ours = SocketOptions::default()
        .heartbeat(Duration::from_millis(200), Duration::from_millis(600))
        .heartbeat_ttl(Duration::from_secs(2));
    silent_connection_survives(None, ours.clone()).await;
    silent_connection_survives(Some("200,600,2000"), ours).await;
}

/// A pyzmq peer frozen with SIGSTOP (its TCP connection stays open, nothing answers)
/// is dropped by a heartbeat limit, and is welcome again once it wakes up.
async fn frozen_peer_is_dropped(ours: SocketOptions, py_heartbeat: Option<&str>) {
    for t in TRANSPORTS {
        eprintln!("--- {t:?}");
        let mut router = Socket::with_options(SocketType::Router, ours.clone()).expect("options");
        let ep = router
            .bind(&our_bind_endpoint(t))
            .await
            .expect("bind")
            .to_string();
        let mut args = py("DEALER").identity(b"sleepy").monitor();
        if let Some(spec) = py_heartbeat {
            args = args.heartbeat(spec);
        }
        let mut dealer = Py::start(args.connect(&ep)).await;
        dealer.send("hello").await;
        assert_eq!(recv(&mut router).await, Message::from(["sleepy", "hello"]));
        assert_eq!(router.peer_count(), 1);
        // The TTL reaches us only in a PING: let several heartbeat intervals pass
        // before freezing the peer, or we would never learn its TTL.
        sleep(SILENCE).await;

        dealer.pause();
        wait_until("our ROUTER drops the frozen peer", || {
            router.peer_count() == 0
        })
        .await;
        dealer.resume();

        // libzmq notices the close, reconnects, and traffic flows again.
        dealer.wait_event("DISCONNECTED", 1).await;
        dealer.wait_event("HANDSHAKE_SUCCEEDED", 2).await;
        dealer.send("back").await;
        assert_eq!(recv(&mut router).await, Message::from(["sleepy", "back"]));
        send(&mut router, ["sleepy", "welcome back"]).await;
        assert_eq!(dealer.recv().await, Message::from("welcome back"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_heartbeat_timeout_drops_a_frozen_pyzmq_peer() {
    let ours =
        SocketOptions::default().heartbeat(Duration::from_millis(200), Duration::from_millis(600));
    frozen_peer_is_dropped(ours, None).await;
}

/// Without heartbeats of our own, the TTL that pyzmq announces in its PINGs
/// (HEARTBEAT_TTL 1 s) is enough for us to drop it when it goes silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzmq_heartbeat_ttl_drops_it_when_frozen() {
    frozen_peer_is_dropped(SocketOptions::default(), Some("200,600,1000")).await;
}

// ---------------------------------------------------------------------------------
// Reconnection
// ---------------------------------------------------------------------------------

/// A pyzmq ROUTER is killed and restarted on the same address: our DEALER
/// reconnects by itself. A message in flight when the process died may be lost
/// (libzmq guarantees nothing for it), so we send until one arrives; after that,
/// delivery is in order and complete, and replies reach us under our identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_dealer_reconnects_after_pyzmq_router_restarts() {
    for t in TRANSPORTS {
        eprintln!("--- {t:?}");
        let ep = fixed_endpoint(t);
        let options = SocketOptions::default().routing_id("rust-dealer");
        let mut dealer = Socket::with_options(SocketType::Dealer, options).expect("options");
        let mut router = Py::start(py("ROUTER").bind(&ep)).await;
        dealer.connect(&ep).expect("connect");
        send(&mut dealer, "before").await;
        assert_eq!(
            router.recv().await,
            Message::from(["rust-dealer", "before"])
        );
        router.send(["rust-dealer", "hi"]).await;
        assert_eq!(recv(&mut dealer).await, Message::from("hi"));

        drop(router); // SIGKILL, reaped
        let mut sent = vec!["while down".to_owned()];
        send(&mut dealer, "while down").await;
        let mut router = Py::start(py("ROUTER").bind(&ep)).await;

        let deadline = Instant::now() + WAIT;
        let mut received = loop {
            let body = format!("retry {}", sent.len());
            send(&mut dealer, body.clone()).await;
            sent.push(body);
            if let Some(m) = router.recv_within(Duration::from_millis(500)).await {
                break vec![m];
            }
            assert!(
                Instant::now() < deadline,
                "nothing arrived after the restart"
            );
        };
        send(&mut dealer, "final").await;
        sent.push("final".into());
        while received.last().is_some_and(|m| m[1] != "final") {
            received.push(router.recv().await);
        }

        // Whatever arrived came from us, in the order sent, without duplicates, and
        // nothing sent after the first arrival was lost.
        let bodies: Vec<String> = received
            .iter()
            .map(|m| {
                assert_eq!(m.len(), 2, "{m:?}");
                assert_eq!(m[0], "rust-dealer");
                String::from_utf8(m[1].to_vec()).expect("utf-8")
            })
            .collect();
        let first = sent
            .iter()
            .position(|s| *s == bodies[0])
            .expect("a message we sent");
        assert_eq!(
            bodies,
            sent[first..],
            "in order and complete after the first"
        );

        router.send(["rust-dealer", "welcome back"]).await;
        assert_eq!(recv(&mut dealer).await, Message::from("welcome back"));
    }
}

/// A pyzmq REP is killed and restarted: our REQ reconnects, and a request sent once
/// libzmq reports the new handshake is delivered and answered, with no resend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_req_reconnects_after_pyzmq_rep_restarts() {
    for t in TRANSPORTS {
        eprintln!("--- {t:?}");
        let ep = fixed_endpoint(t);
        let mut req = Socket::new(SocketType::Req);
        let mut rep = Py::start(py("REP").bind(&ep).monitor()).await;
        req.connect(&ep).expect("connect");
        send(&mut req, "first").await;
        assert_eq!(rep.recv().await, Message::from("first"));
        rep.send("first reply").await;
        assert_eq!(recv(&mut req).await, Message::from("first reply"));

        drop(rep);
        let mut rep = Py::start(py("REP").bind(&ep).monitor()).await;
        rep.wait_event("HANDSHAKE_SUCCEEDED", 1).await;
        send(&mut req, "second").await;
        assert_eq!(rep.recv().await, Message::from("second"));
        rep.send("second reply").await;
        assert_eq!(recv(&mut req).await, Message::from("second reply"));
    }
}

// ---------------------------------------------------------------------------------
// Garbage from raw clients
// ---------------------------------------------------------------------------------

trait RawIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> RawIo for T {}

async fn raw_connect(endpoint: &str) -> Box<dyn RawIo> {
    if let Some(addr) = endpoint.strip_prefix("tcp://") {
        Box::new(
            tokio::net::TcpStream::connect(addr)
                .await
                .expect("tcp connect"),
        )
    } else if let Some(path) = endpoint.strip_prefix("ipc://") {
        Box::new(
            tokio::net::UnixStream::connect(path)
                .await
                .expect("ipc connect"),
        )
    } else {
        panic!("unsupported endpoint {endpoint}")
    }
}

/// Reads until the other side closes (end of file or reset).
async fn assert_closed_by_peer(io: &mut Box<dyn RawIo>, what: &str) {
    let mut buf = vec![0u8; 64 * 1024];
    let drained = timeout(WAIT, async {
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        drained.is_ok(),
        "{what}: connection still open after {WAIT:?}"
    );
}

/// A ZMTP 3.1 greeting with the given signature end byte and mechanism.
fn greeting(signature_end: u8, mechanism: &[u8]) -> Vec<u8> {
    let mut g = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 1, signature_end, 3, 1];
    let mut mech = [0u8; 20];
    mech[..mechanism.len()].copy_from_slice(mechanism);
    g.extend_from_slice(&mech);
    g.push(0);
    g.extend_from_slice(&[0u8; 31]);
    assert_eq!(g.len(), 64);
    g
}

/// A short command frame.
fn command(name: &str, body: &[u8]) -> Vec<u8> {
    let mut b = vec![name.len() as u8];
    b.extend_from_slice(name.as_bytes());
    b.extend_from_slice(body);
    let mut frame = vec![0x04, u8::try_from(b.len()).expect("short command")];
    frame.extend(b);
    frame
}

/// A metadata property with a value length that may lie.
fn property(name: &str, value: &[u8], declared_len: u32) -> Vec<u8> {
    let mut p = vec![name.len() as u8];
    p.extend_from_slice(name.as_bytes());
    p.extend_from_slice(&declared_len.to_be_bytes());
    p.extend_from_slice(value);
    p
}

fn ready(socket_type: &str) -> Vec<u8> {
    command(
        "READY",
        &property(
            "Socket-Type",
            socket_type.as_bytes(),
            socket_type.len() as u32,
        ),
    )
}

fn garbage_cases() -> Vec<(&'static str, Vec<u8>)> {
    let hello = [greeting(0x7F, b"NULL"), ready("DEALER")].concat();
    vec![
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        ),
        ("a bad greeting signature", greeting(0x00, b"NULL")),
        (
            "a CURVE greeting to a NULL socket",
            greeting(0x7F, b"CURVE"),
        ),
        (
            "a READY whose property length overruns",
            [
                greeting(0x7F, b"NULL"),
                command("READY", &property("Socket-Type", b"DEALER", 1000)),
            ]
            .concat(),
        ),
        (
            "a READY with an incompatible socket type",
            [greeting(0x7F, b"NULL"), ready("PUB")].concat(),
        ),
        (
            "a message frame before READY",
            [greeting(0x7F, b"NULL"), vec![0x00, 3, b'a', b'b', b'c']].concat(),
        ),
        (
            "a frame declaring 2^63-1 bytes",
            [
                hello,
                vec![0x02, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
            ]
            .concat(),
        ),
    ]
}

/// One round trip between the well-behaved pyzmq DEALER "good" and our ROUTER.
async fn check_good_peer(good: &mut Py, router: &mut Socket, i: usize) {
    let ping = format!("ping {i}");
    good.send(ping.clone()).await;
    assert_eq!(recv(router).await, text(&["good", &ping]));
    send(router, ["good", "pong"]).await;
    assert_eq!(good.recv().await, Message::from("pong"));
}

/// Garbage from raw clients (bad greetings, malformed READY, an oversized frame)
/// closes only that connection: a pyzmq DEALER on the same bound ROUTER keeps its
/// one connection and its traffic throughout. A raw client that says nothing is
/// dropped by the handshake timeout, and does not hold anyone up meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_raw_clients_closes_only_that_connection() {
    for t in TRANSPORTS {
        eprintln!("--- {t:?}");
        let options = SocketOptions::default().handshake_timeout(Duration::from_secs(10));
        let mut router = Socket::with_options(SocketType::Router, options).expect("options");
        let ep = router
            .bind(&our_bind_endpoint(t))
            .await
            .expect("bind")
            .to_string();
        let mut silent = raw_connect(&ep).await;
        let mut good = Py::start(py("DEALER").identity(b"good").monitor().connect(&ep)).await;

        check_good_peer(&mut good, &mut router, 0).await;
        for (i, (what, bytes)) in garbage_cases().into_iter().enumerate() {
            eprintln!("garbage: {what}");
            let mut raw = raw_connect(&ep).await;
            // We may close before reading it all: a failed write is fine.
            let _ = raw.write_all(&bytes).await;
            let started = Instant::now();
            assert_closed_by_peer(&mut raw, what).await;
            eprintln!("closed after {:?}", started.elapsed());
            check_good_peer(&mut good, &mut router, i + 1).await;
        }
        assert_closed_by_peer(&mut silent, "a silent client").await;
        check_good_peer(&mut good, &mut router, 100).await;
        good.assert_one_unbroken_connection("the well-behaved peer")
            .await;
    }
}

// ---------------------------------------------------------------------------------
// Linger
// ---------------------------------------------------------------------------------

/// Messages queued when the socket is closed are still delivered within the linger
/// period, here to a peer that is already connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_flushes_queued_messages_to_a_connected_pyzmq_peer() {
    for t in TRANSPORTS {
        eprintln!("--- {t:?}");
        let mut router = Py::start(py("ROUTER").bind(&their_bind_endpoint(t))).await;
        let mut dealer = Socket::new(SocketType::Dealer);
        dealer.connect(router.endpoint()).expect("connect");
        send(&mut dealer, "hello").await;
        let id = router.recv().await[0].clone();
        for i in 0..200 {
            send(&mut dealer, format!("queued {i}")).await;
        }
        timeout(WAIT, dealer.close())
            .await
            .expect("close within linger");
        for i in 0..200 {
            assert_eq!(
                router.recv().await,
                msg(&[&id, format!("queued {i}").as_bytes()])
            );
        }
    }
}

/// A message queued on a connecting endpoint whose peer is not there yet is still
/// delivered within the linger period after the socket is closed, as libzmq 4.3.5 does
/// (checked with pyzmq: DEALER connect, send, close with linger 30 s, then bind a
/// ROUTER: the ROUTER gets the message).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linger_delivers_to_a_peer_that_binds_after_close() {
    let ep = testkit::tcp_endpoint();
    let options = SocketOptions::default().linger(WAIT);
    let mut dealer = Socket::with_options(SocketType::Dealer, options).expect("options");
    dealer.connect(&ep).expect("connect");
    send(&mut dealer, "queued before the peer exists").await;
    drop(dealer); // the runtime lives on, so background tasks could keep lingering
    let mut router = Py::start(py("ROUTER").bind(&ep)).await;
    let got = router.recv().await;
    assert_eq!(got[1], "queued before the peer exists");
}
