//! `send_hwm_bytes`: a peer's outbound queue is bounded in bytes as well as in
//! messages, and each socket type does at the byte limit what it does at the HWM:
//! ROUTER and PUB drop, DEALER waits (and loses nothing). An empty queue still takes
//! one message larger than the limit. `recv_hwm_bytes`: a socket that does not read
//! stops reading its peers once that many bytes wait, and TCP pushes back.

use std::time::Duration;

use futures_util::FutureExt;
use zmtp::{Message, Socket, SocketOptions, SocketType};

/// Bound of every wait for something that normally takes well under a second.
const WAIT: Duration = Duration::from_secs(60);

/// The byte limit of these tests, and the size of their messages: 16 fill it.
const LIMIT: usize = 1 << 20;
const BODY: usize = 64 * 1024;

/// How many `BODY`-sized messages a queue bounded by `LIMIT` may hold.
const MOST_QUEUED: usize = LIMIT / BODY;

fn body(i: usize) -> Vec<u8> {
    let mut body = vec![0u8; BODY];
    body[..8].copy_from_slice(&(i as u64).to_be_bytes());
    body
}

async fn recv(socket: &mut Socket) -> Message {
    tokio::time::timeout(WAIT, socket.recv())
        .await
        .expect("a message in time")
        .expect("the socket works")
}

/// A subscriber to everything whose engine stops reading once one batch waits, so
/// TCP backs up to the publisher; returned once `publisher` reaches it.
async fn stalled_subscriber(publisher: &mut Socket, endpoint: &str) -> Socket {
    let options = SocketOptions::default().recv_hwm(1);
    let mut subscriber = Socket::with_options(SocketType::Sub, options).unwrap();
    subscriber.subscribe("").unwrap();
    subscriber.connect(endpoint).unwrap();
    let wait = tokio::time::Instant::now() + WAIT;
    loop {
        publisher.send("probe").await.unwrap();
        match tokio::time::timeout(Duration::from_millis(50), subscriber.recv()).await {
            Ok(got) => break assert_eq!(got.unwrap(), Message::from("probe")),
            Err(_) => assert!(tokio::time::Instant::now() < wait, "never subscribed"),
        }
    }
    subscriber
}

/// Publishes `count` messages of `BODY` bytes to a stalled subscriber; what stays
/// queued for it must fit the byte limit.
async fn publish_past_the_limit(publisher: &mut Socket, count: usize) {
    for i in 0..count {
        publisher.send(body(i)).await.unwrap();
    }
    let queued = publisher.queued();
    assert!(
        queued <= MOST_QUEUED,
        "{queued} messages of {BODY} bytes queued under a {LIMIT}-byte limit"
    );
}

#[tokio::test]
async fn router_drops_at_the_byte_limit() {
    let options = SocketOptions::default().send_hwm_bytes(LIMIT);
    let mut router = Socket::with_options(SocketType::Router, options).unwrap();
    let endpoint = router.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut dealer = Socket::with_options(
        SocketType::Dealer,
        SocketOptions::default().routing_id("reader"),
    )
    .unwrap();
    dealer.connect(&endpoint).unwrap();
    dealer.send("hello").await.unwrap();
    recv(&mut router).await;

    // A ROUTER send never waits, so on this one thread the peer's engine does not
    // run during the loop: the queue fills to the byte limit and the rest is
    // dropped, although the message HWM (1000) would have taken them all.
    for i in 0..1000 {
        router
            .send(Message::from(vec![b"reader".to_vec(), body(i)]))
            .now_or_never()
            .expect("a ROUTER send never waits")
            .unwrap();
    }
    let queued = router.queued();
    assert!(
        (1..=MOST_QUEUED).contains(&queued),
        "{queued} messages of {BODY} bytes queued under a {LIMIT}-byte limit"
    );
    // What was kept arrives, in order, then room is back. The first send may have
    // gone straight to the kernel (a reply to what the peer sent: a direct write),
    // so one more than was queued may arrive.
    for i in 0..queued {
        assert_eq!(recv(&mut dealer).await, Message::from(body(i)));
    }
    router.send(["reader", "after"]).await.unwrap();
    let next = recv(&mut dealer).await;
    if next != Message::from("after") {
        assert_eq!(next, Message::from(body(queued)), "in order, none skipped");
        assert_eq!(recv(&mut dealer).await, Message::from("after"));
    }
}

#[tokio::test]
async fn pub_drops_at_the_byte_limit_for_a_subscriber_that_does_not_read() {
    let options = SocketOptions::default().send_hwm_bytes(LIMIT);
    let mut publisher = Socket::with_options(SocketType::Pub, options).unwrap();
    let endpoint = publisher.bind("tcp://127.0.0.1:0").await.unwrap();
    let mut subscriber = stalled_subscriber(&mut publisher, &endpoint.to_string()).await;

    // 64 MiB published while the subscriber reads nothing: far more than the
    // kernel's socket buffers, the engine's batch in flight and the queue can hold.
    let sent = 1000;
    publish_past_the_limit(&mut publisher, sent).await;

    // The subscriber reads again: what it gets ends with the marker, and some of
    // the 1000 messages were dropped on the way, unlike under the HWM alone.
    let mut received = 0;
    let marker = Message::from("end");
    let wait = tokio::time::Instant::now() + WAIT;
    loop {
        let _ = publisher.send(marker.clone()).await;
        match tokio::time::timeout(Duration::from_millis(50), subscriber.recv()).await {
            Ok(got) if got.as_ref().ok() == Some(&marker) => break,
            Ok(_) => received += 1,
            Err(_) => assert!(tokio::time::Instant::now() < wait, "no marker"),
        }
    }
    assert!(
        received < sent,
        "all {sent} messages reached a subscriber that did not read"
    );
}

#[tokio::test]
async fn dealer_waits_at_the_byte_limit_and_loses_nothing() {
    // Nobody is there yet: the DEALER's one pipe fills, and send waits.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("tcp://{}", probe.local_addr().unwrap());
    drop(probe);
    let options = SocketOptions::default().send_hwm_bytes(LIMIT);
    let mut dealer = Socket::with_options(SocketType::Dealer, options).unwrap();
    dealer.connect(&endpoint).unwrap();
    let mut sent = 0;
    while sent < 1000 {
        match dealer.send(body(sent)).now_or_never() {
            Some(result) => {
                result.unwrap();
                sent += 1;
            }
            None => break,
        }
    }
    assert!(
        (1..=MOST_QUEUED).contains(&sent),
        "{sent} messages of {BODY} bytes taken under a {LIMIT}-byte limit"
    );
    let mut ready = std::pin::pin!(std::future::poll_fn(|cx| dealer.poll_send_ready(cx)));
    assert!(
        ready.as_mut().now_or_never().is_none(),
        "poll_send_ready waits too"
    );

    // The peer arrives: the waiting send goes through, and every message arrives.
    let mut router = Socket::new(SocketType::Router);
    router.bind(&endpoint).await.unwrap();
    let more = 100;
    let sending = async {
        for i in sent..sent + more {
            dealer.send(body(i)).await.unwrap();
        }
    };
    let receiving = async {
        for i in 0..sent + more {
            let got = recv(&mut router).await;
            assert_eq!(got.get(1).map(|f| f.to_vec()), Some(body(i)), "message {i}");
        }
    };
    tokio::time::timeout(WAIT, async { tokio::join!(sending, receiving) })
        .await
        .expect("everything delivered in time");
}

#[tokio::test]
async fn an_empty_queue_takes_a_message_larger_than_the_limit() {
    let options = SocketOptions::default().send_hwm_bytes(1024);
    let mut push = Socket::with_options(SocketType::Push, options).unwrap();
    let endpoint = push.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut pull = Socket::new(SocketType::Pull);
    pull.connect(&endpoint).unwrap();
    for i in 0..5 {
        tokio::time::timeout(WAIT, push.send(body(i)))
            .await
            .expect("a large message goes, one at a time")
            .unwrap();
    }
    for i in 0..5 {
        assert_eq!(recv(&mut pull).await, Message::from(body(i)));
    }
}

#[tokio::test]
async fn inproc_pub_drops_at_the_byte_limit() {
    let options = SocketOptions::default().send_hwm_bytes(LIMIT);
    let mut publisher = Socket::with_options(SocketType::Pub, options).unwrap();
    publisher.bind("inproc://send-hwm-bytes").await.unwrap();
    let _subscriber = stalled_subscriber(&mut publisher, "inproc://send-hwm-bytes").await;
    publish_past_the_limit(&mut publisher, 1000).await;
}

#[tokio::test]
async fn a_receiver_at_its_byte_limit_stops_reading_and_the_sender_waits() {
    let options = SocketOptions::default().recv_hwm_bytes(256 * 1024);
    let mut pull = Socket::with_options(SocketType::Pull, options).unwrap();
    let endpoint = pull.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut push =
        Socket::with_options(SocketType::Push, SocketOptions::default().send_hwm(10)).unwrap();
    push.connect(&endpoint).unwrap();
    // 1000 messages of 64 KiB fit the receive HWM (1000 messages) but not 256 KiB:
    // the receiver stops reading, the kernel's buffers and the sender's queue fill,
    // and a send waits. (A stalled machine could only make it stop sooner.)
    let total = 1000;
    let mut sent = 0;
    while sent < total {
        match tokio::time::timeout(Duration::from_secs(2), push.send(body(sent))).await {
            Ok(result) => {
                result.unwrap();
                sent += 1;
            }
            Err(_) => break,
        }
    }
    assert!(
        sent < total,
        "a receiver that does not read took all {total}"
    );
    for i in 0..sent {
        assert_eq!(recv(&mut pull).await, Message::from(body(i)));
    }
}

/// `send_hwm_bytes_total`: the peers of one endpoint share a budget. Peers that do
/// not read use it up; what is queued for all of them stays within it (plus one
/// message each), and a peer with an empty queue still gets its message.
#[tokio::test]
async fn peers_that_do_not_read_cannot_take_the_budget_of_one_that_does() {
    let options = SocketOptions::default()
        .send_hwm_bytes(LIMIT)
        .send_hwm_bytes_total(2 * LIMIT);
    let mut router = Socket::with_options(SocketType::Router, options).unwrap();
    let endpoint = router.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut peers = Vec::new();
    for name in ["idle-0", "idle-1", "idle-2", "idle-3", "reader"] {
        let options = SocketOptions::default().routing_id(name);
        let mut dealer = Socket::with_options(SocketType::Dealer, options).unwrap();
        dealer.connect(&endpoint).unwrap();
        dealer.send("hello").await.unwrap();
        recv(&mut router).await;
        peers.push(dealer);
    }
    // As above: no engine runs during the loop, so nothing leaves the queues.
    for i in 0..100 {
        for idle in ["idle-0", "idle-1", "idle-2", "idle-3"] {
            router
                .send(Message::from(vec![idle.as_bytes().to_vec(), body(i)]))
                .now_or_never()
                .expect("a ROUTER send never waits")
                .unwrap();
        }
    }
    let queued = router.queued();
    assert!(
        queued <= 2 * MOST_QUEUED + 4,
        "{queued} messages of {BODY} bytes queued under a {}-byte budget",
        2 * LIMIT
    );
    router.send(["reader", "yours"]).await.unwrap();
    let reader = peers.last_mut().unwrap();
    assert_eq!(recv(reader).await, Message::from("yours"));
}

/// `send_hwm_bytes_per_address`: the peers of one host (libzmq peers connecting
/// from 127.0.0.2) that do not read use up their address's share of the budget,
/// not the whole: a peer from another address still has room for a backlog.
#[tokio::test]
async fn one_address_cannot_use_up_the_budget_of_the_others() {
    type Py = testkit::interop::ZmqPeer<Message>;
    let options = SocketOptions::default()
        .send_hwm_bytes(LIMIT)
        .send_hwm_bytes_total(4 * LIMIT)
        .send_hwm_bytes_per_address(2 * LIMIT);
    let mut router = Socket::with_options(SocketType::Router, options).unwrap();
    let endpoint = router.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let from_elsewhere = format!(
        "tcp://127.0.0.2:0;{}",
        endpoint.trim_start_matches("tcp://")
    );
    let mut idle = Vec::new();
    for name in ["idle-0", "idle-1", "idle-2", "idle-3"] {
        let args = testkit::interop::ZmqArgs::new("DEALER")
            .identity(name.as_bytes())
            .connect(&from_elsewhere);
        let mut peer = Py::start(args).await;
        peer.send(Message::from("hello")).await;
        recv(&mut router).await;
        idle.push(peer);
    }
    let mut reader = Socket::with_options(
        SocketType::Dealer,
        SocketOptions::default().routing_id("reader"),
    )
    .unwrap();
    reader.connect(&endpoint).unwrap();
    reader.send("hello").await.unwrap();
    recv(&mut router).await;

    // As above: no engine runs during these loops.
    fn flood(router: &mut Socket, to: &str) {
        for i in 0..100 {
            router
                .send(Message::from(vec![to.as_bytes().to_vec(), body(i)]))
                .now_or_never()
                .expect("a ROUTER send never waits")
                .unwrap();
        }
    }
    for name in ["idle-0", "idle-1", "idle-2", "idle-3"] {
        flood(&mut router, name);
    }
    let by_idle = router.queued();
    assert!(
        by_idle <= 2 * MOST_QUEUED + 4,
        "{by_idle} messages queued for one address's peers under its {}-byte share",
        2 * LIMIT
    );
    flood(&mut router, "reader");
    let for_reader = router.queued() - by_idle;
    assert!(
        for_reader >= MOST_QUEUED / 2,
        "the other address's peer got {for_reader} messages queued"
    );
}
