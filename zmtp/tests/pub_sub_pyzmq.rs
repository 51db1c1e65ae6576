//! PUB, SUB, XPUB and XSUB against libzmq 4.3 through pyzmq: topic filtering both
//! ways, subscription messages seen by XPUB applications, XSUB subscribing by
//! message, a pyzmq forwarder (`zmq.proxy`) between our sockets, our
//! [`zmtp::proxy`] between pyzmq sockets, and resubscription after a pyzmq
//! publisher restarts.
//!
//! Each pyzmq socket is `tests/py/zmq_peer.py` (the forwarder is
//! `tests/py/pubsub_proxy.py`), one process per socket, driven by lines. Everything
//! runs over tcp and ipc, with us binding and pyzmq connecting, and the other way
//! round. Waits are bounded (generously, for loaded machines) and nothing asserts
//! on timing. A subscription travels asynchronously, so a test publishes a probe
//! topic until the subscriber receives it ("warm-up") before asserting what arrives
//! after it; a cancel is proven by warming up a topic subscribed after it (both
//! travel in order on the same connection), or, for the empty topic, by a probe
//! that arrives without the unwanted message published just before it.
//!
//! A bound libzmq socket attaches a new connection only when its application calls
//! into it, so a pyzmq SUB waiting for our next line sends nothing to a peer that
//! connected meanwhile: tests that wait on our XPUB "poke" it (`Py::poke`).

use std::path::PathBuf;
use std::time::Duration;

use tokio::time::{timeout, Instant};

use testkit::interop::{
    answer, our_bind_endpoint, their_bind_endpoint, Side, Transport, ZmqArgs, COMBOS, TRANSPORTS,
};
use testkit::PyPeer;
use zmtp::{Message, Socket, SocketOptions, SocketType, XpubVerbosity};

/// Bound on every wait for something that must happen.
const WAIT: Duration = Duration::from_secs(30);
/// How long one warm-up round waits for the probe before publishing it again.
const PROBE_WAIT: Duration = Duration::from_millis(50);

fn py_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
}

// ---------------------------------------------------------------------------------
// The pyzmq peer (tests/py/zmq_peer.py)
// ---------------------------------------------------------------------------------

/// A running `zmq_peer.py` process (killed on drop).
type Py = testkit::interop::ZmqPeer<Message>;

/// Links `ours` and a new pyzmq `socket_type` peer: one binds, the other connects.
async fn link(ours: &mut Socket, socket_type: &str, t: Transport, side: Side) -> Py {
    match side {
        Side::WeBind => {
            let ep = ours.bind(&our_bind_endpoint(t)).await.expect("bind");
            Py::connect(socket_type, &ep.to_string()).await
        }
        Side::TheyBind => {
            let py = Py::bind(socket_type, &their_bind_endpoint(t)).await;
            ours.connect(py.endpoint()).expect("connect");
            py
        }
    }
}

// ---------------------------------------------------------------------------------
// Either side: our socket or a pyzmq one
// ---------------------------------------------------------------------------------

/// A publisher or subscriber of a scenario: ours, or a pyzmq process.
enum End {
    Ours(Box<Socket>),
    Theirs(Py),
}

impl End {
    fn describe(&self) -> String {
        match self {
            End::Ours(s) => format!("our {}", s.socket_type()),
            End::Theirs(py) => format!("pyzmq {}", py.socket_type()),
        }
    }

    async fn publish(&mut self, msg: impl Into<Message>) {
        match self {
            End::Ours(s) => timeout(WAIT, s.send(msg))
                .await
                .expect("our publisher blocked")
                .expect("publish"),
            End::Theirs(py) => py.send(msg).await,
        }
    }

    /// Subscribes (or cancels) `topic`: the socket option on a SUB, a `\x01topic`
    /// (`\x00topic`) message on a pyzmq XSUB.
    async fn set_subscription(&mut self, subscribe: bool, topic: &str) {
        match self {
            End::Ours(s) if subscribe => s.subscribe(topic.to_owned()).expect("subscribe"),
            End::Ours(s) => s.unsubscribe(topic.to_owned()).expect("unsubscribe"),
            End::Theirs(py) if py.socket_type() == "XSUB" => {
                let mut body = vec![u8::from(subscribe)];
                body.extend_from_slice(topic.as_bytes());
                py.send(body).await;
            }
            End::Theirs(py) => py.set_subscription(subscribe, topic.as_bytes()).await,
        }
    }

    async fn subscribe(&mut self, topic: &str) {
        self.set_subscription(true, topic).await;
    }

    async fn unsubscribe(&mut self, topic: &str) {
        self.set_subscription(false, topic).await;
    }

    async fn recv(&mut self) -> Message {
        match self {
            End::Ours(s) => timeout(WAIT, s.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("no message for our {} within {WAIT:?}", s.socket_type())
                })
                .expect("recv"),
            End::Theirs(py) => py.recv().await,
        }
    }

    /// The next message within `wait`, if any: only for warm-up rounds.
    async fn recv_within(&mut self, wait: Duration) -> Option<Message> {
        match self {
            End::Ours(s) => timeout(wait, s.recv()).await.ok().map(|r| r.expect("recv")),
            End::Theirs(py) => py.recv_within(wait).await,
        }
    }
}

/// Publishes `probe` until `sub` receives it, so every subscription change made
/// before it is known to have reached the publisher. Whatever else arrives meanwhile
/// is discarded; copies of the probe still in flight are skipped by [`collect`].
async fn warm_up(publisher: &mut End, sub: &mut End, probe: &str) {
    warm_up_without(publisher, sub, probe, None).await;
}

/// [`warm_up`], for a cancel that a new probe subscription cannot prove (after
/// cancelling the empty topic, which matches the probe too): each round publishes
/// `unwanted` + round number, then `probe` + round number, until a round's probe
/// arrives without its unwanted message in front of it, which it would have if the
/// publisher had not yet applied the cancel (messages keep their order).
async fn warm_up_without(publisher: &mut End, sub: &mut End, probe: &str, unwanted: Option<&str>) {
    assert!(probe.starts_with("probe."), "probes are skipped by collect");
    let deadline = Instant::now() + WAIT;
    for round in 0u64.. {
        assert!(
            Instant::now() < deadline,
            "{probe} never reached {} from {} (without {unwanted:?})",
            sub.describe(),
            publisher.describe()
        );
        let this_probe = format!("{probe}.{round}");
        let this_unwanted = unwanted.map(|u| format!("{u}.{round}"));
        if let Some(u) = &this_unwanted {
            publisher.publish(u.clone()).await;
        }
        publisher.publish(this_probe.clone()).await;
        let mut clean = true;
        while let Some(msg) = sub.recv_within(PROBE_WAIT).await {
            if this_unwanted
                .as_ref()
                .is_some_and(|u| msg[0] == u.as_bytes())
            {
                clean = false;
            }
            if msg[0] == this_probe.as_bytes() {
                if clean {
                    return;
                }
                break;
            }
        }
    }
}

/// Receives until a message whose first frame is `end`, and returns the messages
/// before it as text frames, leaving out warm-up probes.
async fn collect(sub: &mut End, end: &str) -> Vec<Vec<String>> {
    let mut got = Vec::new();
    loop {
        let msg = sub.recv().await;
        if msg[0] == end.as_bytes() {
            return got;
        }
        if !msg[0].starts_with(b"probe.") {
            got.push(text(&msg));
        }
    }
}

fn text(msg: &Message) -> Vec<String> {
    msg.iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

fn texts(expected: &[&[&str]]) -> Vec<Vec<String>> {
    expected
        .iter()
        .map(|m| m.iter().map(|f| (*f).to_owned()).collect())
        .collect()
}

/// The topic scenario, whatever the publisher and the subscriber are: several
/// topics, a cancel of one (proven by a later marker), the empty topic (everything)
/// and its cancel.
async fn topic_filtering(publisher: &mut End, sub: &mut End, context: &str) {
    let context = format!("{context}: {} -> {}", publisher.describe(), sub.describe());
    for topic in ["weather.", "sport", "end", "probe.a"] {
        sub.subscribe(topic).await;
    }
    warm_up(publisher, sub, "probe.a").await;

    publisher.publish("news.x").await;
    publisher.publish(["weather.paris", "21C"]).await;
    publisher.publish("sport.tennis").await;
    publisher.publish("weathe").await;
    publisher.publish(["sport", ""]).await;
    publisher.publish("end.1").await;
    assert_eq!(
        collect(sub, "end.1").await,
        texts(&[&["weather.paris", "21C"], &["sport.tennis"], &["sport", ""]]),
        "{context}: only subscribed topics"
    );

    // The cancel travels before the new probe subscription.
    sub.unsubscribe("weather.").await;
    sub.subscribe("probe.b").await;
    warm_up(publisher, sub, "probe.b").await;
    publisher.publish(["weather.rome", "19C"]).await;
    publisher.publish("sport.golf").await;
    publisher.publish("news.y").await;
    publisher.publish("end.2").await;
    assert_eq!(
        collect(sub, "end.2").await,
        texts(&[&["sport.golf"]]),
        "{context}: after cancelling weather."
    );

    // The empty topic takes everything (probe.c arrives only once it took effect).
    sub.subscribe("").await;
    warm_up(publisher, sub, "probe.c").await;
    publisher.publish("news.z").await;
    publisher.publish(["weather.lyon", "x"]).await;
    publisher.publish("sport.ski").await;
    publisher.publish("").await;
    publisher.publish("end.3").await;
    assert_eq!(
        collect(sub, "end.3").await,
        texts(&[&["news.z"], &["weather.lyon", "x"], &["sport.ski"], &[""]]),
        "{context}: with the empty topic"
    );

    // Cancelling it leaves the other subscriptions.
    sub.unsubscribe("").await;
    sub.subscribe("probe.d").await;
    warm_up_without(publisher, sub, "probe.d", Some("zz.unwanted")).await;
    publisher.publish("news.w").await;
    publisher.publish("weather.oslo").await;
    publisher.publish("sport.last").await;
    publisher.publish("end.4").await;
    assert_eq!(
        collect(sub, "end.4").await,
        texts(&[&["sport.last"]]),
        "{context}: after cancelling the empty topic"
    );
}

// ---------------------------------------------------------------------------------
// 1. PUB and SUB
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_pub_to_pyzmq_sub() {
    for (t, side) in COMBOS {
        let mut publisher = Socket::new(SocketType::Pub);
        let py = link(&mut publisher, "SUB", t, side).await;
        let (mut publisher, mut sub) = (End::Ours(Box::new(publisher)), End::Theirs(py));
        topic_filtering(&mut publisher, &mut sub, &format!("{t:?} {side:?}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzmq_pub_to_our_sub() {
    for (t, side) in COMBOS {
        let mut sub = Socket::new(SocketType::Sub);
        let py = link(&mut sub, "PUB", t, side).await;
        let (mut publisher, mut sub) = (End::Theirs(py), End::Ours(Box::new(sub)));
        topic_filtering(&mut publisher, &mut sub, &format!("{t:?} {side:?}")).await;
    }
}

/// A pyzmq XSUB does not filter, so what it receives shows our PUB's own filtering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_pub_filters_for_a_pyzmq_xsub() {
    for (t, side) in COMBOS {
        let mut publisher = Socket::new(SocketType::Pub);
        let py = link(&mut publisher, "XSUB", t, side).await;
        let (mut publisher, mut sub) = (End::Ours(Box::new(publisher)), End::Theirs(py));
        topic_filtering(&mut publisher, &mut sub, &format!("{t:?} {side:?}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzmq_pub_to_our_xsub_subscribed_by_option() {
    for (t, side) in COMBOS {
        let mut sub = Socket::new(SocketType::XSub);
        let py = link(&mut sub, "PUB", t, side).await;
        let (mut publisher, mut sub) = (End::Theirs(py), End::Ours(Box::new(sub)));
        topic_filtering(&mut publisher, &mut sub, &format!("{t:?} {side:?}")).await;
    }
}

// ---------------------------------------------------------------------------------
// 2. XPUB applications see subscriptions
// ---------------------------------------------------------------------------------

async fn recv_ours(s: &mut Socket) -> Message {
    timeout(WAIT, s.recv())
        .await
        .unwrap_or_else(|_| panic!("no message for our {} within {WAIT:?}", s.socket_type()))
        .expect("recv")
}

/// The next message of our `xpub`, letting the pyzmq `sub` process its commands
/// meanwhile (see [`Py::poke`]).
async fn recv_poking(xpub: &mut Socket, sub: &mut Py) -> Message {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(msg) = timeout(PROBE_WAIT, xpub.recv()).await {
            return msg.expect("recv");
        }
        assert!(
            Instant::now() < deadline,
            "no message for our {} within {WAIT:?}",
            xpub.socket_type()
        );
        sub.poke().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_xpub_sees_the_subscriptions_of_a_pyzmq_sub() {
    for (t, side) in COMBOS {
        let context = format!("{t:?} {side:?}");
        let mut xpub = Socket::new(SocketType::XPub);
        let mut sub = link(&mut xpub, "SUB", t, side).await;
        for (subscribe, topic, expected) in [
            (true, "topic", "\x01topic"),
            (true, "other", "\x01other"),
            (true, "", "\x01"),
        ] {
            sub.set_subscription(subscribe, topic.as_bytes()).await;
            let got = recv_poking(&mut xpub, &mut sub).await;
            assert_eq!(got, Message::from(expected), "{context}");
        }

        // Subscriptions took effect: what the XPUB application publishes arrives.
        xpub.send(["topic.1", "body"]).await.expect("send");
        let got = sub.recv().await;
        assert_eq!(got, Message::from(["topic.1", "body"]), "{context}");

        for (subscribe, topic, expected) in [(false, "topic", "\x00topic"), (false, "", "\x00")] {
            sub.set_subscription(subscribe, topic.as_bytes()).await;
            let got = recv_poking(&mut xpub, &mut sub).await;
            assert_eq!(got, Message::from(expected), "{context}");
        }

        // The subscriber dies: its last topic loses its last subscriber. (Unlike
        // libzmq, whose connecting XPUB keeps a dead peer's subscriptions for its
        // reconnection, ours also forgets them when it connected.)
        drop(sub);
        let got = recv_ours(&mut xpub).await;
        assert_eq!(
            got,
            Message::from("\x00other"),
            "{context}: after the pyzmq SUB died"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzmq_xpub_sees_the_subscriptions_of_our_sub() {
    for (t, side) in COMBOS {
        let context = format!("{t:?} {side:?}");
        let mut sub = Socket::new(SocketType::Sub);
        // Subscribed before any connection: sent once the connection is up.
        sub.subscribe("early").expect("subscribe");
        let mut xpub = link(&mut sub, "XPUB", t, side).await;
        assert_eq!(xpub.recv().await, Message::from("\x01early"), "{context}");
        sub.subscribe("topic").expect("subscribe");
        assert_eq!(xpub.recv().await, Message::from("\x01topic"), "{context}");
        sub.subscribe("").expect("subscribe");
        assert_eq!(xpub.recv().await, Message::from("\x01"), "{context}");

        xpub.send(["topic.1", "body"]).await;
        let got = recv_ours(&mut sub).await;
        assert_eq!(got, Message::from(["topic.1", "body"]), "{context}");

        sub.unsubscribe("topic").expect("unsubscribe");
        assert_eq!(xpub.recv().await, Message::from("\x00topic"), "{context}");
        sub.unsubscribe("").expect("unsubscribe");
        assert_eq!(xpub.recv().await, Message::from("\x00"), "{context}");

        // Our SUB goes away. A bound libzmq XPUB drops the connection's pipe and
        // cancels what only it subscribed to. A connecting one keeps its pipe (and
        // the pipe's subscriptions) for the reconnection and reports nothing, so
        // there is nothing to wait for then.
        sub.close().await;
        if let Side::TheyBind = side {
            let got = xpub.recv().await;
            assert_eq!(
                got,
                Message::from("\x00early"),
                "{context}: after our SUB closed"
            );
        }
    }
}

/// With the verbose option every subscribe is passed on, not only a topic's first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_xpubs_see_every_subscribe_from_the_other_library() {
    for t in TRANSPORTS {
        // Ours, verbose, and two pyzmq SUBs subscribing to the same topic.
        let options = SocketOptions::default().xpub_verbosity(XpubVerbosity::Subscribes);
        let mut xpub = Socket::with_options(SocketType::XPub, options).expect("options");
        let ep = xpub
            .bind(&our_bind_endpoint(t))
            .await
            .expect("bind")
            .to_string();
        let mut subs = Vec::new();
        for _ in 0..2 {
            let mut sub = Py::connect("SUB", &ep).await;
            sub.set_subscription(true, b"t").await;
            assert_eq!(
                recv_poking(&mut xpub, &mut sub).await,
                Message::from("\x01t"),
                "{t:?}"
            );
            subs.push(sub);
        }

        // pyzmq's, verbose, and two of our SUBs subscribing to the same topic.
        let mut xpub = Py::start(
            ZmqArgs::new("XPUB")
                .bind(&their_bind_endpoint(t))
                .xpub_verbose(),
        )
        .await;
        let mut subs = Vec::new();
        for _ in 0..2 {
            let mut sub = Socket::new(SocketType::Sub);
            sub.subscribe("t").expect("subscribe");
            sub.connect(xpub.endpoint()).expect("connect");
            assert_eq!(xpub.recv().await, Message::from("\x01t"), "{t:?}");
            subs.push(sub);
        }
    }
}

/// Our XPUB's welcome message reaches a pyzmq SUB subscribed to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_xpub_welcome_message_reaches_a_pyzmq_sub() {
    for (t, side) in COMBOS {
        let options = SocketOptions::default().xpub_welcome_message(["welcome", "aboard"]);
        let mut xpub = Socket::with_options(SocketType::XPub, options).expect("options");
        let mut sub = link(&mut xpub, "SUB", t, side).await;
        sub.set_subscription(true, b"welcome").await;
        assert_eq!(
            sub.recv().await,
            Message::from(["welcome", "aboard"]),
            "{t:?} {side:?}"
        );
        assert_eq!(
            recv_poking(&mut xpub, &mut sub).await,
            Message::from("\x01welcome")
        );
    }
}

// ---------------------------------------------------------------------------------
// 3. XSUB subscribing by message through a pyzmq XPUB
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_xsub_subscribes_by_message_through_a_pyzmq_xpub() {
    for (t, side) in COMBOS {
        let context = format!("{t:?} {side:?}");
        let mut xsub = Socket::new(SocketType::XSub);
        let mut xpub = link(&mut xsub, "XPUB", t, side).await;
        xsub.send(&b"\x01news"[..]).await.expect("send");
        assert_eq!(xpub.recv().await, Message::from("\x01news"), "{context}");

        // libzmq applied it before handing it to the application: only news flows.
        xpub.send(["news", "hello"]).await;
        xpub.send(["other", "hello"]).await;
        xpub.send("new").await;
        xpub.send(["news.more", "again"]).await;
        assert_eq!(
            recv_ours(&mut xsub).await,
            Message::from(["news", "hello"]),
            "{context}"
        );
        assert_eq!(
            recv_ours(&mut xsub).await,
            Message::from(["news.more", "again"]),
            "{context}"
        );

        // Anything that is not a subscription goes upstream to the XPUB application.
        xsub.send(["hello", "upstream"]).await.expect("send");
        assert_eq!(
            xpub.recv().await,
            Message::from(["hello", "upstream"]),
            "{context}"
        );

        // Cancel, then a new topic: once libzmq reports both, news no longer flows.
        xsub.send(&b"\x00news"[..]).await.expect("send");
        assert_eq!(xpub.recv().await, Message::from("\x00news"), "{context}");
        xsub.send(&b"\x01mark"[..]).await.expect("send");
        assert_eq!(xpub.recv().await, Message::from("\x01mark"), "{context}");
        xpub.send("news.late").await;
        xpub.send("mark").await;
        assert_eq!(
            recv_ours(&mut xsub).await,
            Message::from("mark"),
            "{context}"
        );
    }
}

// ---------------------------------------------------------------------------------
// 4. A pyzmq forwarder between our PUB and our SUB
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzmq_xsub_xpub_proxy_between_our_pub_and_our_sub() {
    for t in TRANSPORTS {
        let mut proxy = PyPeer::spawn_script(
            py_script("pubsub_proxy.py"),
            [
                "--xsub",
                &their_bind_endpoint(t),
                "--xpub",
                &their_bind_endpoint(t),
            ],
        );
        let xsub_ep = answer(&mut proxy, "READY xsub").await;
        let xpub_ep = answer(&mut proxy, "READY xpub").await;

        let mut publisher = Socket::new(SocketType::Pub);
        publisher.connect(&xsub_ep).expect("connect");
        let mut sub = Socket::new(SocketType::Sub);
        sub.connect(&xpub_ep).expect("connect");
        let (mut publisher, mut sub) = (End::Ours(Box::new(publisher)), End::Ours(Box::new(sub)));
        topic_filtering(&mut publisher, &mut sub, &format!("{t:?} via zmq.proxy")).await;

        drop(proxy);
        for ep in [xsub_ep, xpub_ep] {
            if let Some(path) = ep.strip_prefix("ipc://") {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// 5. Our proxy between a pyzmq PUB and a pyzmq SUB
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_proxy_between_pyzmq_pub_and_pyzmq_sub() {
    for t in TRANSPORTS {
        let mut xsub = Socket::new(SocketType::XSub);
        let xsub_ep = xsub
            .bind(&our_bind_endpoint(t))
            .await
            .expect("bind")
            .to_string();
        let mut xpub = Socket::new(SocketType::XPub);
        let xpub_ep = xpub
            .bind(&our_bind_endpoint(t))
            .await
            .expect("bind")
            .to_string();
        let forwarder = tokio::spawn(async move { zmtp::proxy(&mut xsub, &mut xpub, None).await });

        let publisher = Py::connect("PUB", &xsub_ep).await;
        let sub = Py::connect("SUB", &xpub_ep).await;
        let (mut publisher, mut sub) = (End::Theirs(publisher), End::Theirs(sub));
        topic_filtering(&mut publisher, &mut sub, &format!("{t:?} via zmtp::proxy")).await;

        assert!(
            !forwarder.is_finished(),
            "{t:?}: the proxy stopped: {:?}",
            forwarder.await
        );
        forwarder.abort();
    }
}

// ---------------------------------------------------------------------------------
// 6. Resubscription after a pyzmq publisher restarts
// ---------------------------------------------------------------------------------

/// The pyzmq PUB is killed and a new one binds the same endpoint: our SUB reconnects
/// and resubscribes by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_sub_resubscribes_after_the_pyzmq_pub_restarts() {
    for t in TRANSPORTS {
        let ep = match t {
            Transport::Tcp => testkit::restartable_endpoint(),
            Transport::Ipc => testkit::ipc_endpoint("restart"),
        };
        let mut socket = Socket::new(SocketType::Sub);
        socket.subscribe("t").expect("subscribe");
        socket.subscribe("probe.").expect("subscribe");
        let first = Py::bind("PUB", &ep).await;
        socket.connect(&ep).expect("connect");
        let mut sub = End::Ours(Box::new(socket));
        let mut publisher = End::Theirs(first);
        warm_up(&mut publisher, &mut sub, "probe.first").await;
        publisher.publish("x.not-subscribed").await;
        publisher.publish("t.before").await;
        assert_eq!(collect(&mut sub, "t.before").await, texts(&[]), "{t:?}");

        drop(publisher); // SIGKILL, reaped
        let mut publisher = End::Theirs(Py::bind("PUB", &ep).await);
        warm_up(&mut publisher, &mut sub, "probe.second").await;
        publisher.publish("x.not-subscribed").await;
        publisher.publish(["t.after", "body"]).await;
        publisher.publish("t.end").await;
        assert_eq!(
            collect(&mut sub, "t.end").await,
            texts(&[&["t.after", "body"]]),
            "{t:?}: after the restart"
        );
    }
}
