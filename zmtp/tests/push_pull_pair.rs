//! PUSH, PULL and PAIR (RFC 30, RFC 31): against themselves and against libzmq
//! (pyzmq), over tcp and ipc, binding and connecting.
//!
//! Every wait is bounded (generously, for loaded machines); nothing asserts on timing.
//! A timeout is only used to see that a `send` is blocked, never to measure it.

use std::time::Duration;

use tokio::time::{sleep, timeout, Instant};

use testkit::interop::{our_bind_endpoint, their_bind_endpoint, Transport, TRANSPORTS};
use zmtp::{Error, Message, Socket, SocketEvent, SocketOptions, SocketType};

/// Bound on every wait for a message or an event.
const WAIT: Duration = Duration::from_secs(30);

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

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

fn text(msg: &Message) -> String {
    assert_eq!(msg.len(), 1, "expected one frame, got {msg:?}");
    String::from_utf8_lossy(&msg[0]).into_owned()
}

// ---------------------------------------------------------------------------------
// Our sockets with each other
// ---------------------------------------------------------------------------------

/// A bound socket and a connected one, over `t`.
async fn linked(t: Transport, bound: SocketType, connected: SocketType) -> (Socket, Socket) {
    let mut b = Socket::new(bound);
    let endpoint = b.bind(&our_bind_endpoint(t)).await.expect("bind");
    let mut c = Socket::new(connected);
    c.connect(&endpoint.to_string()).expect("connect");
    (b, c)
}

#[tokio::test]
async fn our_push_to_our_pull_in_order() {
    for t in TRANSPORTS {
        for push_binds in [true, false] {
            let (mut push, mut pull) = if push_binds {
                linked(t, SocketType::Push, SocketType::Pull).await
            } else {
                let (pull, push) = linked(t, SocketType::Pull, SocketType::Push).await;
                (push, pull)
            };
            for i in 0..200 {
                send(&mut push, format!("m{i}")).await;
            }
            for i in 0..200 {
                assert_eq!(text(&recv(&mut pull).await), format!("m{i}"), "{t:?}");
            }
            // Each direction only: PUSH cannot receive, PULL cannot send.
            assert!(matches!(
                push.recv().await,
                Err(Error::Unsupported {
                    socket_type: SocketType::Push,
                    ..
                })
            ));
            assert!(matches!(
                pull.send("x").await,
                Err(Error::Unsupported {
                    socket_type: SocketType::Pull,
                    ..
                })
            ));
        }
    }
}

#[tokio::test]
async fn our_push_blocks_at_the_hwm_when_nobody_reads() {
    const SEND_HWM: usize = 10;
    // Big messages, so the kernel's socket buffers hold only a few dozen of them.
    const SIZE: usize = 256 * 1024;
    const LIMIT: usize = 500;
    for t in TRANSPORTS {
        let mut pull =
            Socket::with_options(SocketType::Pull, SocketOptions::default().recv_hwm(2)).unwrap();
        let endpoint = pull.bind(&our_bind_endpoint(t)).await.unwrap();
        let mut push = Socket::with_options(
            SocketType::Push,
            SocketOptions::default().send_hwm(SEND_HWM),
        )
        .unwrap();
        push.connect(&endpoint.to_string()).unwrap();

        let payload = vec![7u8; SIZE];
        let mut sent = 0;
        while sent < LIMIT {
            // Only to see that send is blocked: a slow send just ends the loop early.
            match timeout(Duration::from_millis(500), push.send(payload.clone())).await {
                Ok(result) => {
                    result.expect("send");
                    sent += 1;
                }
                Err(_) => break,
            }
        }
        assert!(
            sent < LIMIT,
            "{t:?}: PUSH never blocked ({sent} messages of {SIZE} bytes queued)"
        );
        assert!(sent >= 1, "{t:?}: not even one message fitted");

        // Reading releases it: everything sent arrives, and sending works again.
        for _ in 0..sent {
            assert_eq!(recv(&mut pull).await.byte_len(), SIZE);
        }
        send(&mut push, "after").await;
        assert_eq!(text(&recv(&mut pull).await), "after", "{t:?}");
    }
}

/// With room everywhere, PUSH deals its messages round-robin: with three PULLs
/// each gets every third, in order, and none twice.
#[tokio::test]
async fn our_push_deals_round_robin_over_three_pullers() {
    let mut push = Socket::new(SocketType::Push);
    let endpoint = push
        .bind(&our_bind_endpoint(Transport::Tcp))
        .await
        .unwrap()
        .to_string();
    let mut pulls = Vec::new();
    for _ in 0..3 {
        let mut pull = Socket::new(SocketType::Pull);
        pull.connect(&endpoint).unwrap();
        pulls.push(pull);
    }
    wait_until("three PULLs connected", || push.peer_count() == 3).await;
    for i in 0..300 {
        send(&mut push, format!("m{i}")).await;
    }
    let mut firsts = Vec::new();
    for pull in &mut pulls {
        let got: Vec<usize> = {
            let mut got = Vec::new();
            for _ in 0..100 {
                got.push(text(&recv(pull).await)[1..].parse::<usize>().unwrap());
            }
            got
        };
        assert!(
            got.windows(2).all(|w| w[1] == w[0] + 3),
            "not every third: {got:?}"
        );
        firsts.push(got[0]);
    }
    firsts.sort_unstable();
    assert_eq!(firsts, [0, 1, 2]);
}

#[tokio::test]
async fn our_pair_to_our_pair_both_ways() {
    for t in TRANSPORTS {
        let (mut a, mut b) = linked(t, SocketType::Pair, SocketType::Pair).await;
        // The connecting side queues before the link is up, as libzmq does.
        send(&mut b, "from b").await;
        assert_eq!(text(&recv(&mut a).await), "from b");
        send(&mut a, "from a").await;
        assert_eq!(text(&recv(&mut b).await), "from a");
    }
}

#[tokio::test]
async fn our_bound_pair_refuses_a_second_pair() {
    for t in TRANSPORTS {
        let mut a = Socket::new(SocketType::Pair);
        let mut events = a.monitor();
        let endpoint = a.bind(&our_bind_endpoint(t)).await.unwrap().to_string();
        let mut first = Socket::new(SocketType::Pair);
        first.connect(&endpoint).unwrap();
        send(&mut first, "hello").await;
        assert_eq!(text(&recv(&mut a).await), "hello");

        let mut second = Socket::new(SocketType::Pair);
        second.connect(&endpoint).unwrap();
        send(&mut second, "intruder").await; // queued on its own pipe
        wait_for_refusal(&mut events).await;

        for i in 0..20 {
            send(&mut a, format!("to first {i}")).await;
            send(&mut first, format!("from first {i}")).await;
        }
        for i in 0..20 {
            assert_eq!(text(&recv(&mut first).await), format!("to first {i}"));
            assert_eq!(text(&recv(&mut a).await), format!("from first {i}"));
        }
        assert!(
            timeout(Duration::from_millis(500), second.recv())
                .await
                .is_err(),
            "{t:?}: the second PAIR got a message"
        );
        assert!(
            timeout(Duration::from_millis(500), a.recv()).await.is_err(),
            "{t:?}: a message from the second PAIR got through"
        );
    }
}

/// Waits for the monitor to report a refused PAIR peer.
async fn wait_for_refusal(events: &mut zmtp::Monitor) {
    let deadline = Instant::now() + WAIT;
    loop {
        let event = timeout(deadline - Instant::now(), events.recv())
            .await
            .expect("no refusal event within the wait")
            .expect("monitor closed");
        if let SocketEvent::HandshakeFailed { reason, .. } = &event {
            if reason.detail().contains("PAIR") {
                return;
            }
        }
    }
}

#[tokio::test]
async fn incompatible_types_are_refused() {
    for (bound, connected) in [
        (SocketType::Push, SocketType::Push),
        (SocketType::Pull, SocketType::Pull),
        (SocketType::Pair, SocketType::Push),
        (SocketType::Pull, SocketType::Dealer),
    ] {
        let mut b = Socket::new(bound);
        let mut events = b.monitor();
        let endpoint = b.bind("tcp://127.0.0.1:0").await.unwrap();
        let mut c = Socket::new(connected);
        c.connect(&endpoint.to_string()).unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            let event = timeout(deadline - Instant::now(), events.recv())
                .await
                .unwrap_or_else(|_| panic!("{bound} <- {connected}: handshake not refused"))
                .expect("monitor closed");
            match event {
                SocketEvent::HandshakeFailed { .. } => break,
                SocketEvent::HandshakeSucceeded { .. } => {
                    panic!("{bound} accepted {connected}")
                }
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Against pyzmq (libzmq)
// ---------------------------------------------------------------------------------

/// A pyzmq socket (`tests/py/zmq_peer.py`), killed on drop.
type Py = testkit::interop::ZmqPeer<Message>;

/// Our socket of type `ours` and a pyzmq socket of type `theirs`, linked over `t`;
/// `we_bind` says who binds.
async fn with_py(t: Transport, we_bind: bool, ours: SocketType, theirs: &str) -> (Socket, Py) {
    let mut s = Socket::new(ours);
    let py = if we_bind {
        let endpoint = s.bind(&our_bind_endpoint(t)).await.unwrap();
        Py::connect(theirs, &endpoint.to_string()).await
    } else {
        let py = Py::bind(theirs, &their_bind_endpoint(t)).await;
        s.connect(py.endpoint()).unwrap();
        py
    };
    (s, py)
}

#[tokio::test]
async fn our_push_load_balances_over_two_pyzmq_pullers() {
    const N: usize = 1000;
    for t in TRANSPORTS {
        for we_bind in [true, false] {
            let mut push = Socket::new(SocketType::Push);
            let (mut a, mut b) = if we_bind {
                let endpoint = push.bind(&our_bind_endpoint(t)).await.unwrap();
                let a = Py::connect("PULL", &endpoint.to_string()).await;
                let b = Py::connect("PULL", &endpoint.to_string()).await;
                // Both must be in the table before the first send, or the first
                // would get everything.
                wait_until("both PULLers connected", || push.peer_count() == 2).await;
                (a, b)
            } else {
                let a = Py::bind("PULL", &their_bind_endpoint(t)).await;
                let b = Py::bind("PULL", &their_bind_endpoint(t)).await;
                push.connect(a.endpoint()).unwrap();
                push.connect(b.endpoint()).unwrap();
                (a, b)
            };
            for i in 0..N {
                send(&mut push, format!("m{i}")).await;
            }
            let deadline = Instant::now() + WAIT;
            let (mut got_a, mut got_b) = (0, 0);
            loop {
                got_a += a.drain().await;
                got_b += b.drain().await;
                if got_a + got_b >= N {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{t:?} we_bind={we_bind}: only {got_a} + {got_b} of {N} arrived"
                );
                sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(got_a + got_b, N, "{t:?} we_bind={we_bind}: duplicates");
            assert!(
                got_a >= N / 4 && got_b >= N / 4,
                "{t:?} we_bind={we_bind}: unfair split {got_a} / {got_b}"
            );
        }
    }
}

#[tokio::test]
async fn pyzmq_push_to_our_pull() {
    for t in TRANSPORTS {
        for we_bind in [true, false] {
            let (mut pull, mut py) = with_py(t, we_bind, SocketType::Pull, "PUSH").await;
            for i in 0..100 {
                py.send(format!("m{i}")).await;
            }
            for i in 0..100 {
                assert_eq!(
                    text(&recv(&mut pull).await),
                    format!("m{i}"),
                    "{t:?} we_bind={we_bind}"
                );
            }
        }
    }
}

#[tokio::test]
async fn our_push_to_pyzmq_pull() {
    for t in TRANSPORTS {
        for we_bind in [true, false] {
            let (mut push, mut py) = with_py(t, we_bind, SocketType::Push, "PULL").await;
            for i in 0..100 {
                send(&mut push, format!("m{i}")).await;
            }
            for i in 0..100 {
                assert_eq!(
                    text(&py.recv().await),
                    format!("m{i}"),
                    "{t:?} we_bind={we_bind}"
                );
            }
        }
    }
}

#[tokio::test]
async fn pair_with_pyzmq_pair_both_ways() {
    for t in TRANSPORTS {
        for we_bind in [true, false] {
            let (mut ours, mut py) = with_py(t, we_bind, SocketType::Pair, "PAIR").await;
            for i in 0..10 {
                send(&mut ours, format!("ping {i}")).await;
                assert_eq!(
                    text(&py.recv().await),
                    format!("ping {i}"),
                    "{t:?} we_bind={we_bind}"
                );
                py.send(format!("pong {i}")).await;
                assert_eq!(text(&recv(&mut ours).await), format!("pong {i}"));
            }
        }
    }
}

#[tokio::test]
async fn second_pyzmq_pair_does_not_disturb_the_first() {
    for t in TRANSPORTS {
        let mut ours = Socket::new(SocketType::Pair);
        let mut events = ours.monitor();
        let endpoint = ours.bind(&our_bind_endpoint(t)).await.unwrap().to_string();
        let mut first = Py::connect("PAIR", &endpoint).await;
        first.send("hello").await;
        assert_eq!(text(&recv(&mut ours).await), "hello");

        let mut second = Py::connect("PAIR", &endpoint).await;
        second.send("intruder").await; // libzmq queues it on its connect pipe
        wait_for_refusal(&mut events).await;

        for i in 0..20 {
            send(&mut ours, format!("to first {i}")).await;
            first.send(format!("from first {i}")).await;
        }
        for i in 0..20 {
            assert_eq!(text(&first.recv().await), format!("to first {i}"), "{t:?}");
            assert_eq!(text(&recv(&mut ours).await), format!("from first {i}"));
        }
        assert_eq!(
            second.recv_within(Duration::from_millis(500)).await,
            None,
            "{t:?}: the second PAIR got a message"
        );
        assert!(
            timeout(Duration::from_millis(500), ours.recv())
                .await
                .is_err(),
            "{t:?}: a message from the second PAIR got through"
        );
    }
}

/// A PUSH used as a `Sink` waits at its high-water mark like `send` does: a stream
/// of 2 000 messages through a queue of 2, to a peer that connects later, arrives
/// whole and in order.
#[tokio::test]
async fn a_push_sink_waits_at_the_hwm_and_loses_nothing() {
    use futures_util::SinkExt;
    let mut pull = Socket::new(SocketType::Pull);
    let endpoint = pull.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut push = Socket::with_options(SocketType::Push, SocketOptions::default().hwm(2)).unwrap();
    let sender = tokio::spawn(async move {
        let mut items = futures_util::stream::iter(
            (0..2000u32).map(|i| Ok(Message::from(i.to_be_bytes().to_vec()))),
        );
        push.connect(&endpoint).unwrap();
        push.send_all(&mut items).await.unwrap();
        push
    });
    for i in 0..2000u32 {
        let msg = recv(&mut pull).await;
        assert_eq!(msg.first().map(|f| &f[..]), Some(&i.to_be_bytes()[..]));
    }
    timeout(WAIT, sender)
        .await
        .expect("the sink finished")
        .expect("no panic");
}
