//! One test per broker rule; time is passed in, nothing sleeps.

use super::*;
use crate::proto::{Reply, ReplyKind, Request, ToWorker, WorkerCommand};
use std::collections::HashMap;

mod peering;
mod quotas;

fn id(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// Drives a broker with peers named by strings: each name is one connection at a
/// time (a new one after [`Harness::disconnect`]), from address 127.0.0.1 unless
/// [`Harness::connect_from`] says otherwise.
struct Harness {
    broker: Broker,
    now: Instant,
    /// Each name's current connection.
    connections: HashMap<&'static str, u64>,
    next_connection: u64,
    /// Pause and resume orders so far.
    flow: Vec<Flow>,
}

impl Harness {
    fn new(config: BrokerConfig) -> Harness {
        Harness {
            broker: Broker::new(config),
            now: Instant::now(),
            connections: HashMap::new(),
            next_connection: 1,
            flow: Vec::new(),
        }
    }

    /// `name`'s connection, connected from 127.0.0.1 if it is not yet.
    fn peer(&mut self, name: &'static str) -> PeerId {
        if !self.connections.contains_key(name) {
            self.connect_from(name, "127.0.0.1:40000");
        }
        PeerId::new(id(name), self.connections[name])
    }

    /// A new connection for `name`, from `address`.
    fn connect_from(&mut self, name: &'static str, address: &str) -> PeerId {
        let connection = self.next_connection;
        self.next_connection += 1;
        self.connections.insert(name, connection);
        let peer = PeerId::new(id(name), connection);
        self.broker.handle_connect(&peer, address, self.now);
        let sent = self.settle();
        assert!(sent.is_empty(), "an arrival sends nothing: {sent:?}");
        peer
    }

    /// `name`'s connection is gone; its next message comes on a new one.
    fn disconnect(&mut self, name: &'static str) -> Vec<(Bytes, Message)> {
        let peer = self.peer(name);
        self.connections.remove(name);
        self.broker.handle_disconnect(&peer, self.now);
        self.settle()
    }

    /// What the broker sent since the last input, with routing ids; checks the
    /// invariants and collects the flow orders.
    fn settle(&mut self) -> Vec<(Bytes, Message)> {
        self.broker.check_invariants().unwrap();
        self.flow.extend(self.broker.drain_flow());
        self.broker
            .drain_outgoing()
            .map(|(peer, msg)| (peer.routing_id().clone(), msg))
            .collect()
    }

    fn input(&mut self, peer: &'static str, msg: Message) -> Vec<(Bytes, Message)> {
        let p = self.peer(peer);
        self.broker.handle_message(&p, msg.frames(), self.now);
        self.settle()
    }

    fn ready(
        &mut self,
        worker: &'static str,
        dialect: Dialect,
        service: &'static str,
    ) -> Vec<(Bytes, Message)> {
        self.input(
            worker,
            WorkerCommand::Ready {
                service: id(service),
            }
            .encode(dialect),
        )
    }

    fn request(
        &mut self,
        client: &'static str,
        dialect: Dialect,
        service: &'static str,
        body: &'static str,
    ) -> Vec<(Bytes, Message)> {
        let req = Request {
            dialect,
            enveloped: dialect.leading_empty(),
            service: id(service),
            body: Message::from(body),
        };
        self.input(client, req.encode())
    }

    fn reply(
        &mut self,
        worker: &'static str,
        dialect: Dialect,
        client: &'static str,
        kind: ReplyKind,
        body: &'static str,
    ) -> Vec<(Bytes, Message)> {
        let cmd = WorkerCommand::Reply {
            client: id(client),
            kind,
            body: Message::from(body),
        };
        self.input(worker, cmd.encode(dialect))
    }

    fn advance(&mut self, by: Duration) -> Vec<(Bytes, Message)> {
        self.now += by;
        self.broker.handle_tick(self.now);
        self.settle()
    }
}

/// The only message in `out`, which must go to `peer`.
fn only(out: &[(Bytes, Message)], peer: &'static str) -> Message {
    assert_eq!(out.len(), 1, "expected one message, got {out:?}");
    assert_eq!(out[0].0, peer);
    out[0].1.clone()
}

fn as_request(dialect: Dialect, msg: &Message) -> (Bytes, Message) {
    match ToWorker::parse(dialect, msg.frames()).unwrap() {
        ToWorker::Request { client, body } => (client, body),
        other => panic!("expected REQUEST, got {other:?}"),
    }
}

#[test]
fn a_client_of_one_dialect_is_served_by_a_worker_of_another() {
    let mut h = Harness::new(BrokerConfig::default());
    assert!(h.ready("w", Dialect::Majortomo, "echo").is_empty());
    let out = h.request("c", Dialect::Mdp01, "echo", "hi");
    let (client, body) = as_request(Dialect::Majortomo, &only(&out, "w"));
    assert_eq!((client, body), (id("c"), Message::from("hi")));
    let out = h.reply("w", Dialect::Majortomo, "c", ReplyKind::Final, "HI");
    let reply = Reply::parse(Dialect::Mdp01, true, only(&out, "c").frames()).unwrap();
    assert_eq!(reply.service, Some(id("echo")));
    assert_eq!(reply.body, Message::from("HI"));
    assert_eq!(h.broker.stats().replies, 1);
}

#[test]
fn idle_workers_are_used_oldest_first() {
    let mut h = Harness::new(BrokerConfig::default());
    h.ready("a", Dialect::Mdp01, "s");
    h.ready("b", Dialect::Mdp01, "s");
    assert_eq!(h.request("c1", Dialect::Mdp01, "s", "1")[0].0, "a");
    h.reply("a", Dialect::Mdp01, "c1", ReplyKind::Final, "r");
    // b has been idle longer than a, which just finished.
    assert_eq!(h.request("c2", Dialect::Mdp01, "s", "2")[0].0, "b");
}

#[test]
fn heartbeats_go_to_idle_and_busy_workers() {
    let mut h = Harness::new(BrokerConfig::default());
    h.ready("idle", Dialect::Mdp02, "s");
    h.ready("busy", Dialect::Mdp01, "t");
    h.request("c", Dialect::Mdp01, "t", "x");
    let out = h.advance(Duration::from_millis(2500));
    let mut to: Vec<&Bytes> = out.iter().map(|(p, _)| p).collect();
    to.sort();
    assert_eq!(to, [&id("busy"), &id("idle")]);
    for (peer, msg) in &out {
        let dialect = if peer == "idle" {
            Dialect::Mdp02
        } else {
            Dialect::Mdp01
        };
        assert_eq!(
            ToWorker::parse(dialect, msg.frames()).unwrap(),
            ToWorker::Heartbeat
        );
    }
}

#[test]
fn every_expired_worker_is_purged() {
    let mut h = Harness::new(BrokerConfig::default());
    for w in ["w1", "w2", "w3"] {
        h.ready(w, Dialect::Mdp01, "s");
    }
    h.advance(Duration::from_millis(2500));
    h.input("w2", WorkerCommand::Heartbeat.encode(Dialect::Mdp01));
    h.advance(Duration::from_millis(5000));
    assert_eq!(
        h.broker.worker_count(),
        1,
        "w1 and w3 expired, w2 heartbeated"
    );
    h.advance(Duration::from_millis(2500));
    assert_eq!(h.broker.worker_count(), 0);
}

#[test]
fn a_dead_workers_request_goes_to_another_worker() {
    let mut h = Harness::new(BrokerConfig::default());
    h.ready("a", Dialect::Mdp01, "s");
    h.request("c", Dialect::Mdp01, "s", "job");
    h.ready("b", Dialect::Majortomo, "s");
    let out = h.disconnect("a");
    let (client, body) = as_request(Dialect::Majortomo, &only(&out, "b"));
    assert_eq!((client, body), (id("c"), Message::from("job")));
    assert_eq!(h.broker.stats().requeued, 1);
    // b's reply reaches the client.
    let out = h.reply("b", Dialect::Majortomo, "c", ReplyKind::Final, "done");
    assert_eq!(only(&out, "c").last().unwrap(), "done");
}

#[test]
fn with_drop_a_dead_workers_request_is_dropped() {
    let mut h = Harness::new(BrokerConfig {
        on_worker_death: WorkerDeath::Drop,
        ..BrokerConfig::default()
    });
    h.ready("a", Dialect::Mdp01, "s");
    h.request("c", Dialect::Mdp01, "s", "job");
    h.ready("b", Dialect::Mdp01, "s");
    // Expiry, not a disconnect: a never heartbeats.
    h.input("b", WorkerCommand::Heartbeat.encode(Dialect::Mdp01));
    let out = h.advance(Duration::from_millis(7500));
    assert!(
        out.iter()
            .all(|(_, m)| ToWorker::parse(Dialect::Mdp01, m.frames()).ok()
                != Some(ToWorker::Request {
                    client: id("c"),
                    body: Message::from("job"),
                })),
        "the request is not given to b"
    );
    assert_eq!(h.broker.request_count(), 0);
    assert_eq!(h.broker.stats().dropped, 1);
}

#[test]
fn requests_without_workers_wait_then_expire() {
    let mut h = Harness::new(BrokerConfig {
        request_ttl: Duration::from_secs(10),
        ..BrokerConfig::default()
    });
    assert!(h.request("c", Dialect::Mdp01, "later", "x").is_empty());
    h.advance(Duration::from_secs(5));
    // A worker arriving in time gets it.
    let out = h.ready("w", Dialect::Mdp01, "later");
    assert_eq!(only(&out, "w").len(), 6);
    // Another request with no worker free expires after the TTL.
    h.request("c", Dialect::Mdp01, "nobody", "y");
    h.advance(Duration::from_secs(11));
    assert_eq!(
        h.broker.request_count(),
        1,
        "only the dispatched one is left"
    );
    assert_eq!(h.broker.stats().dropped, 1);
}

#[test]
fn a_clients_empty_request_set_stays_while_it_is_connected_and_small() {
    let mut h = Harness::new(BrokerConfig::default());
    h.ready("w", Dialect::Mdp01, "s");
    let client = h.peer("c");
    h.request("c", Dialect::Mdp01, "s", "1");
    h.reply("w", Dialect::Mdp01, "c", ReplyKind::Final, "r");
    // Kept for its next request, not made and freed for each one.
    assert!(h.broker.held_by.get(&client).is_some_and(|s| s.is_empty()));
    h.disconnect("c");
    assert!(!h.broker.held_by.contains_key(&client));
    // One that held many gives its room back when it empties.
    let client = h.peer("d");
    for _ in 0..=KEPT_HELD_CAPACITY {
        h.request("d", Dialect::Mdp01, "s", "x");
    }
    for _ in 0..=KEPT_HELD_CAPACITY {
        h.reply("w", Dialect::Mdp01, "d", ReplyKind::Final, "r");
    }
    assert_eq!(h.broker.request_count(), 0);
    assert!(!h.broker.held_by.contains_key(&client));
}

#[test]
fn a_disconnected_clients_waiting_requests_are_dropped() {
    let mut h = Harness::new(BrokerConfig::default());
    h.request("c", Dialect::Mdp01, "s", "1");
    h.request("c", Dialect::Mdp01, "s", "2");
    h.request("other", Dialect::Mdp01, "s", "3");
    h.disconnect("c");
    assert_eq!(h.broker.request_count(), 1);
    let out = h.ready("w", Dialect::Mdp01, "s");
    assert_eq!(as_request(Dialect::Mdp01, &only(&out, "w")).0, "other");
}

#[test]
fn queues_are_bounded() {
    let mut h = Harness::new(BrokerConfig {
        max_queue: 2,
        ..BrokerConfig::default()
    });
    for body in ["1", "2", "3"] {
        h.request("c", Dialect::Mdp01, "s", body);
    }
    assert_eq!(h.broker.request_count(), 2);
    assert_eq!(h.broker.stats().dropped, 1);
    let mut h = Harness::new(BrokerConfig {
        quotas: Quotas {
            total: Usage {
                requests: 3,
                bytes: usize::MAX,
            },
            ..Quotas::default()
        },
        ..BrokerConfig::default()
    });
    for service in ["a", "b", "c", "d"] {
        h.request("c", Dialect::Mdp01, service, "x");
    }
    assert_eq!(h.broker.request_count(), 3);
}

#[test]
fn mmi_answers_in_the_clients_dialect() {
    let mut h = Harness::new(BrokerConfig::default());
    h.ready("w", Dialect::Mdp01, "echo");
    for (dialect, asked, code) in [
        (Dialect::Mdp01, "echo", "200"),
        (Dialect::Mdp02, "missing", "404"),
        (Dialect::Majortomo, "echo", "200"),
    ] {
        let req = Request {
            dialect,
            enveloped: dialect.leading_empty(),
            service: id("mmi.service"),
            body: Message::from(asked),
        };
        let out = h.input("c", req.encode());
        let reply =
            Reply::parse(dialect, dialect.leading_empty(), only(&out, "c").frames()).unwrap();
        assert_eq!(reply.body, Message::from(code), "{dialect}");
        if dialect != Dialect::Majortomo {
            assert_eq!(reply.service, Some(id("mmi.service")));
        }
    }
    let out = h.request("c", Dialect::Mdp01, "mmi.whatever", "x");
    let reply = Reply::parse(Dialect::Mdp01, true, only(&out, "c").frames()).unwrap();
    assert_eq!(reply.body, Message::from("501"));
    assert_eq!(reply.service, Some(id("mmi.whatever")));
    // A service whose only worker expired is 404 again.
    h.advance(Duration::from_secs(8));
    let out = h.request("c", Dialect::Mdp01, "mmi.service", "echo");
    let reply = Reply::parse(Dialect::Mdp01, true, out.last().unwrap().1.frames()).unwrap();
    assert_eq!(reply.body, Message::from("404"));
}

/// The one frame of the reply to an `mmi.*` request from MDP/0.1 client "c".
fn mmi(h: &mut Harness, service: &'static str, body: &'static str) -> Bytes {
    let out = if body.is_empty() {
        let req = Request {
            dialect: Dialect::Mdp01,
            enveloped: true,
            service: id(service),
            body: Message::new(),
        };
        h.input("c", req.encode())
    } else {
        h.request("c", Dialect::Mdp01, service, body)
    };
    let reply = Reply::parse(Dialect::Mdp01, true, only(&out, "c").frames()).unwrap();
    assert_eq!(reply.service, Some(id(service)));
    assert_eq!(reply.body.len(), 1);
    reply.body[0].clone()
}

#[test]
fn mmi_services_lists_workers_and_queues_per_service() {
    use snapshot::ServiceSummary;
    let mut h = Harness::new(BrokerConfig {
        mmi_cache: Duration::ZERO,
        ..BrokerConfig::default()
    });
    let list = |h: &mut Harness| -> Vec<ServiceSummary> {
        rmp_serde::from_slice(&mmi(h, "mmi.services", "")).unwrap()
    };
    assert_eq!(list(&mut h), []);
    h.ready("w1", Dialect::Mdp01, "echo");
    h.ready("w2", Dialect::Majortomo, "echo");
    h.request("c1", Dialect::Mdp01, "echo", "x");
    h.request("c2", Dialect::Mdp01, "nobody", "y");
    h.request("c3", Dialect::Mdp01, "nobody", "z");
    let summary = |name: &str, workers, idle, busy, queued| ServiceSummary {
        name: name.into(),
        workers,
        idle,
        busy,
        queued,
        via_peers: 0,
        peers: Vec::new(),
    };
    assert_eq!(
        list(&mut h),
        [summary("echo", 2, 1, 1, 0), summary("nobody", 0, 0, 0, 2)]
    );
}

#[test]
fn mmi_workers_lists_every_worker_or_one_services() {
    use snapshot::WorkerSummary;
    let mut h = Harness::new(BrokerConfig::default());
    h.ready("w1", Dialect::Mdp02, "echo");
    h.ready("w2", Dialect::Overseer, "add");
    h.request("c1", Dialect::Mdp01, "echo", "x");
    h.reply("w1", Dialect::Mdp02, "c1", ReplyKind::Final, "x");
    h.request("c1", Dialect::Mdp01, "add", "1");
    h.now += Duration::from_millis(700);
    let all: Vec<WorkerSummary> = rmp_serde::from_slice(&mmi(&mut h, "mmi.workers", "")).unwrap();
    assert_eq!(
        all,
        [
            WorkerSummary {
                identity: "w2".into(),
                service: "add".into(),
                dialect: "overseer".into(),
                busy: true,
                served: 0,
                last_heard_ms: 700,
            },
            WorkerSummary {
                identity: "w1".into(),
                service: "echo".into(),
                dialect: "MDP/0.2".into(),
                busy: false,
                served: 1,
                last_heard_ms: 700,
            },
        ]
    );
    let echo: Vec<WorkerSummary> =
        rmp_serde::from_slice(&mmi(&mut h, "mmi.workers", "echo")).unwrap();
    assert_eq!(echo, all[1..]);
    let none: Vec<WorkerSummary> =
        rmp_serde::from_slice(&mmi(&mut h, "mmi.workers", "missing")).unwrap();
    assert_eq!(none, []);
}

#[test]
fn mmi_stats_counts_served_failed_requeued_and_latency() {
    use snapshot::Stats;
    let mut h = Harness::new(BrokerConfig {
        request_ttl: Duration::from_secs(10),
        ..BrokerConfig::default()
    });
    h.ready("w1", Dialect::Mdp01, "echo");
    // Served in 40 ms, twice.
    for _ in 0..2 {
        h.request("c1", Dialect::Mdp01, "echo", "x");
        h.now += Duration::from_millis(40);
        h.reply("w1", Dialect::Mdp01, "c1", ReplyKind::Final, "x");
    }
    // Requeued: w1 dies holding a request, which then waits out its TTL: failed.
    h.request("c1", Dialect::Mdp01, "echo", "y");
    h.disconnect("w1");
    h.advance(Duration::from_secs(11));
    // A name no worker ever served is not remembered.
    h.request("c2", Dialect::Mdp01, "nobody", "z");
    let stats: Stats = rmp_serde::from_slice(&mmi(&mut h, "mmi.stats", "")).unwrap();
    assert_eq!(stats.totals.requests, 5, "MMI requests count too");
    assert_eq!(stats.totals.replies, 2);
    assert_eq!(stats.totals.requeued, 1);
    assert_eq!(stats.totals.dropped, 1);
    assert_eq!(stats.totals.held, 1);
    assert_eq!(stats.totals.workers, 0);
    let names: Vec<&str> = stats.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["echo", "nobody"]);
    let echo = &stats.services[0];
    assert_eq!(
        (echo.workers, echo.served, echo.failed, echo.requeued),
        (0, 2, 1, 1)
    );
    let p50 = echo.p50_ms.unwrap();
    assert!((37.0..=43.0).contains(&p50), "p50 {p50}");
    assert_eq!(echo.latency_count, 2);
    assert!((echo.latency_sum_seconds - 0.08).abs() < 1e-6);
    let nobody = &stats.services[1];
    assert_eq!((nobody.queued, nobody.served, nobody.p50_ms), (1, 0, None));
}

#[test]
fn other_mmi_names_still_answer_501() {
    let mut h = Harness::new(BrokerConfig::default());
    for name in ["mmi.service2", "mmi.stat", "mmi.", "mmi.workers.x"] {
        let out = h.request("c", Dialect::Mdp01, name, "x");
        let reply = Reply::parse(Dialect::Mdp01, true, only(&out, "c").frames()).unwrap();
        assert_eq!(reply.body, Message::from("501"), "{name}");
    }
}

#[test]
fn misbehaving_workers_get_disconnect() {
    let mut h = Harness::new(BrokerConfig::default());
    let disconnect = |out: &[(Bytes, Message)], dialect| {
        assert_eq!(
            ToWorker::parse(dialect, out[0].1.frames()).unwrap(),
            ToWorker::Disconnect
        );
    };
    disconnect(&h.ready("m", Dialect::Mdp01, "mmi.service"), Dialect::Mdp01);
    assert_eq!(h.broker.worker_count(), 0);
    h.ready("w", Dialect::Mdp02, "s");
    disconnect(&h.ready("w", Dialect::Mdp02, "s"), Dialect::Mdp02);
    assert_eq!(h.broker.worker_count(), 0, "a second READY unregisters");
    disconnect(
        &h.input("x", WorkerCommand::Heartbeat.encode(Dialect::Overseer)),
        Dialect::Overseer,
    );
    let out = h.reply("y", Dialect::Majortomo, "c", ReplyKind::Final, "r");
    disconnect(&out, Dialect::Majortomo);
}

#[test]
fn partials_are_gathered_for_clients_without_streaming() {
    let mut h = Harness::new(BrokerConfig::default());
    h.ready("w", Dialect::Majortomo, "s");
    h.request("old", Dialect::Mdp01, "s", "x");
    assert!(h
        .reply("w", Dialect::Majortomo, "old", ReplyKind::Partial, "a")
        .is_empty());
    assert!(h
        .reply("w", Dialect::Majortomo, "old", ReplyKind::Partial, "b")
        .is_empty());
    let out = h.reply("w", Dialect::Majortomo, "old", ReplyKind::Final, "c");
    let reply = Reply::parse(Dialect::Mdp01, true, only(&out, "old").frames()).unwrap();
    assert_eq!(reply.body, Message::from(["a", "b", "c"]));

    // A streaming client gets each part as it comes.
    h.request("new", Dialect::Mdp02, "s", "y");
    let out = h.reply("w", Dialect::Majortomo, "new", ReplyKind::Partial, "a");
    let reply = Reply::parse(Dialect::Mdp02, false, only(&out, "new").frames()).unwrap();
    assert_eq!(reply.kind, ReplyKind::Partial);
}

#[test]
fn gathering_is_bounded_by_the_maximum_message_size() {
    // Each frame counts its bytes and FRAME_OVERHEAD: "abc" and "g" fit, not "def".
    let mut h = Harness::new(BrokerConfig {
        max_message_size: 3 + 1 + 2 * FRAME_OVERHEAD,
        ..BrokerConfig::default()
    });
    h.ready("w", Dialect::Mdp02, "s");
    h.request("c", Dialect::Overseer, "s", "x");
    h.reply("w", Dialect::Mdp02, "c", ReplyKind::Partial, "abc");
    h.reply("w", Dialect::Mdp02, "c", ReplyKind::Partial, "def");
    let out = h.reply("w", Dialect::Mdp02, "c", ReplyKind::Final, "g");
    let reply = Reply::parse(Dialect::Overseer, true, only(&out, "c").frames()).unwrap();
    assert_eq!(reply.body, Message::from(["abc", "g"]));
}

#[test]
fn malformed_messages_are_counted_and_ignored() {
    let mut h = Harness::new(BrokerConfig::default());
    assert!(h.input("p", Message::from(["", "MDPX01", "s"])).is_empty());
    assert!(h.input("p", Message::from("junk")).is_empty());
    assert_eq!(h.broker.stats().malformed, 2);
}

#[test]
fn a_reply_for_another_client_is_ignored() {
    let mut h = Harness::new(BrokerConfig::default());
    h.ready("w", Dialect::Mdp01, "s");
    h.request("c", Dialect::Mdp01, "s", "x");
    assert!(h
        .reply("w", Dialect::Mdp01, "intruder", ReplyKind::Final, "r")
        .is_empty());
    assert_eq!(h.broker.request_count(), 1);
}

#[test]
fn next_tick_is_never_later_than_a_heartbeat() {
    let h = Harness::new(BrokerConfig::default());
    assert!(h.broker.next_tick(h.now) <= h.now + Duration::from_millis(2500));
}

#[test]
fn next_tick_comes_by_the_earliest_ttl_deadline() {
    let mut h = Harness::new(BrokerConfig {
        request_ttl: Duration::from_millis(300),
        ..BrokerConfig::default()
    });
    h.request("c", Dialect::Mdp01, "nobody", "x");
    let tick = h.broker.next_tick(h.now);
    assert!(tick <= h.now + Duration::from_millis(300), "{tick:?}");
    h.advance(tick - h.now);
    assert_eq!(h.broker.request_count(), 0, "dropped at its deadline");
}

#[test]
fn ticks_are_at_least_a_resolution_apart() {
    let mut h = Harness::new(BrokerConfig {
        request_ttl: Duration::from_millis(1),
        ..BrokerConfig::default()
    });
    h.advance(Duration::ZERO);
    // Something due right now still waits for the resolution after the last tick.
    h.request("c", Dialect::Mdp01, "nobody", "x");
    let resolution = h.broker.tick_resolution();
    assert!(resolution > Duration::ZERO);
    assert_eq!(h.broker.next_tick(h.now), h.now + resolution);
}

/// Driving the broker by its own `next_tick`, as the binary does, heartbeats a
/// worker about once per interval, never less often.
#[test]
fn ticking_at_next_tick_heartbeats_every_interval() {
    let mut h = Harness::new(BrokerConfig::default());
    h.ready("w", Dialect::Mdp01, "s");
    let interval = Duration::from_millis(2500);
    let start = h.now;
    let mut heartbeats = Vec::new();
    while h.now < start + interval * 20 {
        let tick = h.broker.next_tick(h.now);
        assert!(tick > h.now, "ticks move forward");
        let out = h.advance(tick - h.now);
        heartbeats.extend(out.iter().map(|_| h.now));
        // Keep the worker alive.
        h.input("w", WorkerCommand::Heartbeat.encode(Dialect::Mdp01));
    }
    assert!(heartbeats.len() >= 19, "{} heartbeats", heartbeats.len());
    let late = interval + h.broker.tick_resolution();
    for pair in heartbeats.windows(2) {
        assert!(pair[1] - pair[0] <= late, "gap {:?}", pair[1] - pair[0]);
    }
}
