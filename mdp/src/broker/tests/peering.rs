//! Peered brokers, wired to each other in memory: every message a broker sends on
//! a link is handed to the broker at its other end, until nothing moves.

use super::*;

/// Brokers 0, 1, 2… and their clients, workers and links.
struct Cluster {
    brokers: Vec<Option<Broker>>,
    now: Instant,
    /// (broker, link id there) → (broker at the other end, link id there).
    links: HashMap<(usize, PeerId), (usize, PeerId)>,
    /// Clients and workers: name → (broker, connection).
    locals: HashMap<&'static str, (usize, PeerId)>,
    next_connection: u64,
}

impl Cluster {
    fn new(n: usize) -> Cluster {
        let brokers = (0..n)
            .map(|i| {
                let config = BrokerConfig::default()
                    .instance(100 + i as u64)
                    .name(format!("b{i}"));
                Some(Broker::new(config))
            })
            .collect();
        Cluster {
            brokers,
            now: Instant::now(),
            links: HashMap::new(),
            locals: HashMap::new(),
            next_connection: 1,
        }
    }

    fn broker(&mut self, i: usize) -> &mut Broker {
        self.brokers[i].as_mut().expect("a live broker")
    }

    fn connection(&mut self) -> u64 {
        self.next_connection += 1;
        self.next_connection
    }

    /// Broker `a` dials broker `b`.
    fn dial(&mut self, a: usize, b: usize) -> Vec<(&'static str, Message)> {
        let at_a = PeerId::new(format!("to{b}"), self.connection());
        let at_b = PeerId::new(format!("from{a}"), self.connection());
        let now = self.now;
        self.broker(b).handle_connect(&at_b, "127.0.0.9:1", now);
        self.broker(a).handle_dialed(&at_a, "127.0.0.9:2", now);
        if a != b {
            self.links.insert((a, at_a.clone()), (b, at_b.clone()));
            self.links.insert((b, at_b), (a, at_a));
        } else {
            // Ourselves: what we send on the dialed end arrives on the accepted one.
            self.links.insert((a, at_a.clone()), (a, at_b.clone()));
            self.links.insert((a, at_b), (a, at_a));
        }
        self.pump()
    }

    /// Everyone peers with everyone.
    fn mesh(n: usize) -> Cluster {
        let mut c = Cluster::new(n);
        for a in 0..n {
            for b in a + 1..n {
                c.dial(a, b);
            }
        }
        c
    }

    /// Delivers what the brokers send until nothing moves; returns what went to
    /// clients and workers, by name.
    fn pump(&mut self) -> Vec<(&'static str, Message)> {
        let mut out = Vec::new();
        for _ in 0..1000 {
            let mut moved = false;
            for i in 0..self.brokers.len() {
                let Some(broker) = self.brokers[i].as_mut() else {
                    continue;
                };
                broker.check_invariants().unwrap();
                let _ = broker.drain_flow().count();
                let sent: Vec<(PeerId, Message)> = broker.drain_outgoing().collect();
                for (to, msg) in sent {
                    moved = true;
                    if let Some((j, there)) = self.links.get(&(i, to.clone())).cloned() {
                        let now = self.now;
                        if let Some(b) = self.brokers[j].as_mut() {
                            b.handle_message(&there, msg.frames(), now);
                        }
                        continue;
                    }
                    let name = self
                        .locals
                        .iter()
                        .find(|(_, (b, p))| *b == i && *p == to)
                        .map(|(name, _)| *name)
                        .unwrap_or("?");
                    out.push((name, msg));
                }
            }
            if !moved {
                return out;
            }
        }
        panic!("the brokers never stop talking");
    }

    /// `name` (a client or worker) on broker `i`, connected if new.
    fn local(&mut self, name: &'static str, i: usize) -> PeerId {
        if let Some((b, p)) = self.locals.get(name) {
            assert_eq!(*b, i, "{name} is on broker {b}");
            return p.clone();
        }
        let peer = PeerId::new(id(name), self.connection());
        let now = self.now;
        self.broker(i).handle_connect(&peer, "127.0.0.1:40000", now);
        self.locals.insert(name, (i, peer.clone()));
        peer
    }

    fn input(
        &mut self,
        name: &'static str,
        i: usize,
        msg: Message,
    ) -> Vec<(&'static str, Message)> {
        let peer = self.local(name, i);
        let now = self.now;
        self.broker(i).handle_message(&peer, msg.frames(), now);
        self.pump()
    }

    fn ready(&mut self, worker: &'static str, i: usize, service: &'static str) {
        let ready = WorkerCommand::Ready {
            service: id(service),
        };
        let out = self.input(worker, i, ready.encode(Dialect::Mdp02));
        assert!(out.is_empty(), "READY answered: {out:?}");
    }

    fn request(
        &mut self,
        client: &'static str,
        i: usize,
        dialect: Dialect,
        service: &'static str,
        body: &'static str,
    ) -> Vec<(&'static str, Message)> {
        let req = Request {
            dialect,
            enveloped: dialect.leading_empty(),
            service: id(service),
            body: Message::from(body),
        };
        self.input(client, i, req.encode())
    }

    /// Worker `worker` answers the request it got from `client` (the address in
    /// its REQUEST).
    fn reply(
        &mut self,
        worker: &'static str,
        client: &Bytes,
        kind: ReplyKind,
        body: &'static str,
    ) -> Vec<(&'static str, Message)> {
        let i = self.locals[worker].0;
        let cmd = WorkerCommand::Reply {
            client: client.clone(),
            kind,
            body: Message::from(body),
        };
        self.input(worker, i, cmd.encode(Dialect::Mdp02))
    }

    /// Broker `i` dies: every link to it drops at the other end.
    fn kill(&mut self, i: usize) -> Vec<(&'static str, Message)> {
        self.brokers[i] = None;
        let ends: Vec<(usize, PeerId)> = self
            .links
            .iter()
            .filter(|((a, _), (b, _))| *b == i && *a != i)
            .map(|((a, at), _)| (*a, at.clone()))
            .collect();
        let now = self.now;
        for (a, at) in ends {
            self.broker(a).handle_disconnect(&at, now);
            self.links.remove(&(a, at));
        }
        self.locals.retain(|_, (b, _)| *b != i);
        self.pump()
    }

    fn advance(&mut self, by: Duration) -> Vec<(&'static str, Message)> {
        self.now += by;
        let now = self.now;
        for b in self.brokers.iter_mut().flatten() {
            b.handle_tick(now);
        }
        self.pump()
    }
}

/// The client addresses of the REQUESTs to `worker` in `out`.
fn requests_in(out: &[(&'static str, Message)], worker: &str) -> Vec<Bytes> {
    out.iter()
        .filter(|(to, _)| *to == worker)
        .filter_map(|(_, m)| match ToWorker::parse(Dialect::Mdp02, m.frames()) {
            Ok(ToWorker::Request { client, .. }) => Some(client),
            _ => None,
        })
        .collect()
}

/// The one REQUEST in `out`, which must go to `worker`: (client address, body).
fn request_to(out: &[(&'static str, Message)], worker: &str) -> (Bytes, Message) {
    let requests: Vec<_> = out
        .iter()
        .filter(|(_, m)| {
            matches!(
                ToWorker::parse(Dialect::Mdp02, m.frames()),
                Ok(ToWorker::Request { .. })
            )
        })
        .collect();
    assert_eq!(requests.len(), 1, "expected one REQUEST, got {out:?}");
    assert_eq!(requests[0].0, worker, "{out:?}");
    as_request(Dialect::Mdp02, &requests[0].1)
}

/// The replies in `out` to `client`, parsed in `dialect`.
fn replies_to(out: &[(&'static str, Message)], client: &str, dialect: Dialect) -> Vec<Reply> {
    out.iter()
        .filter(|(to, _)| *to == client)
        .map(|(_, m)| Reply::parse(dialect, dialect.leading_empty(), m.frames()).unwrap())
        .collect()
}

#[test]
fn a_request_reaches_a_worker_through_a_peer_and_its_reply_comes_back_in_the_clients_dialect() {
    let mut c = Cluster::mesh(2);
    assert_eq!(c.broker(0).peers_up(), 1);
    assert_eq!(c.broker(1).peers_up(), 1);
    c.ready("w", 1, "echo");
    let out = c.request("client", 0, Dialect::Mdp01, "echo", "hi");
    let (address, body) = request_to(&out, "w");
    assert_eq!(body, Message::from("hi"));
    let out = c.reply("w", &address, ReplyKind::Final, "HI");
    let replies = replies_to(&out, "client", Dialect::Mdp01);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].service, Some(id("echo")));
    assert_eq!(replies[0].body, Message::from("HI"));
    assert_eq!(c.broker(0).stats().replies, 1);
    assert_eq!(c.broker(0).stats().handed_to_peers, 1);
    // Its figures count it as served, through a peer's worker.
    let stats = c.broker(0).stats_snapshot();
    let echo = stats.services.iter().find(|s| s.name == "echo").unwrap();
    assert_eq!((echo.served, echo.workers, echo.via_peers), (1, 0, 1));
    assert_eq!(stats.totals.peers_up, 1);
    assert_eq!(stats.peers.len(), 1);
    let services = c.broker(0).services_summary();
    assert_eq!(services[0].peers, ["b1"]);
    assert_eq!(c.broker(1).stats().served_for_peers, 1);
    assert_eq!(c.broker(0).request_count(), 0);
    assert_eq!(c.broker(1).request_count(), 0);
}

#[test]
fn local_idle_workers_come_first() {
    let mut c = Cluster::mesh(2);
    c.ready("remote", 1, "echo");
    c.ready("local", 0, "echo");
    let out = c.request("client", 0, Dialect::Mdp02, "echo", "x");
    request_to(&out, "local");
    // The local worker is busy now, the remote one idle: the next goes there.
    let out = c.request("client", 0, Dialect::Mdp02, "echo", "y");
    request_to(&out, "remote");
    // Both busy: the third waits here for the local worker.
    let out = c.request("client", 0, Dialect::Mdp02, "echo", "z");
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(c.broker(1).request_count(), 1);
}

#[test]
fn without_local_workers_peers_get_requests_up_to_twice_their_workers_and_the_rest_wait_here() {
    let mut c = Cluster::mesh(2);
    c.ready("w", 1, "echo");
    let mut addresses = Vec::new();
    for _ in 0..5 {
        let out = c.request("client", 0, Dialect::Mdp02, "echo", "x");
        addresses.extend(requests_in(&out, "w"));
    }
    // One at the worker, one waiting at broker 1, three waiting at broker 0.
    assert_eq!(addresses.len(), 1);
    assert_eq!(c.broker(1).request_count(), 2);
    assert_eq!(c.broker(0).stats().handed_to_peers, 2);
    // Each answer lets the next one through, until all five are served.
    let mut served = 0;
    while let Some(address) = addresses.pop() {
        let out = c.reply("w", &address, ReplyKind::Final, "r");
        served += replies_to(&out, "client", Dialect::Mdp02).len();
        addresses.extend(requests_in(&out, "w"));
    }
    assert_eq!(served, 5);
    assert_eq!(c.broker(0).request_count(), 0);
}

#[test]
fn partial_replies_stream_through_a_peer_or_are_gathered_for_clients_without_them() {
    let mut c = Cluster::mesh(2);
    c.ready("w", 1, "stream");
    for (client, dialect) in [("c02", Dialect::Mdp02), ("c01", Dialect::Mdp01)] {
        let out = c.request(client, 0, dialect, "stream", "go");
        let (address, _) = request_to(&out, "w");
        let out = c.reply("w", &address, ReplyKind::Partial, "1");
        let partials = replies_to(&out, client, dialect);
        let out = c.reply("w", &address, ReplyKind::Final, "2");
        let finals = replies_to(&out, client, dialect);
        if dialect == Dialect::Mdp02 {
            assert_eq!(partials.len(), 1);
            assert_eq!(partials[0].kind, ReplyKind::Partial);
            assert_eq!(finals[0].body, Message::from("2"));
        } else {
            assert!(partials.is_empty());
            let body: Vec<&[u8]> = finals[0].body.iter().map(|f| &f[..]).collect();
            assert_eq!(body, [&b"1"[..], b"2"]);
        }
    }
}

#[test]
fn a_request_handed_to_a_broker_that_dies_is_served_by_another() {
    let mut c = Cluster::mesh(3);
    c.ready("w1", 1, "echo");
    let out = c.request("client", 0, Dialect::Mdp02, "echo", "x");
    request_to(&out, "w1");
    c.ready("w2", 2, "echo");
    // Broker 1 dies with the request: broker 0 takes it back and hands it to 2.
    let out = c.kill(1);
    let (address, body) = request_to(&out, "w2");
    assert_eq!(body, Message::from("x"));
    let out = c.reply("w2", &address, ReplyKind::Final, "X");
    assert_eq!(replies_to(&out, "client", Dialect::Mdp02).len(), 1);
    assert_eq!(c.broker(0).stats().returned_by_peers, 1);
}

#[test]
fn a_silent_peer_is_given_up_after_the_liveness_and_its_requests_come_back() {
    let mut c = Cluster::mesh(2);
    c.ready("w", 1, "echo");
    c.request("client", 0, Dialect::Mdp02, "echo", "x");
    // Broker 1 hangs: nothing it would send arrives, nothing reaches it.
    let hung = c.brokers[1].take();
    let interval = BrokerConfig::default().heartbeat_interval;
    for _ in 0..4 {
        c.advance(interval);
    }
    assert_eq!(c.broker(0).peers_up(), 0);
    assert_eq!(c.broker(0).stats().returned_by_peers, 1);
    // A local worker takes it.
    c.brokers[1] = hung;
    let out = c.input(
        "late",
        0,
        WorkerCommand::Ready {
            service: id("echo"),
        }
        .encode(Dialect::Mdp02),
    );
    assert_eq!(request_to(&out, "late").1, Message::from("x"));
}

#[test]
fn a_request_from_a_peer_is_never_passed_on() {
    let mut c = Cluster::mesh(3);
    c.ready("w", 1, "echo");
    let out = c.request("client", 0, Dialect::Mdp02, "echo", "x");
    let (address, _) = request_to(&out, "w");
    // Broker 1's only worker leaves before answering; broker 2 gets a worker.
    // Broker 1 bounces the request to broker 0 (never to 2), which hands it to 2.
    c.ready("w2", 2, "echo");
    let out = c.input("w", 1, WorkerCommand::Disconnect.encode(Dialect::Mdp02));
    let (again, body) = request_to(&out, "w2");
    assert_eq!(body, Message::from("x"));
    assert_ne!(again, Bytes::new());
    assert_eq!(c.broker(1).stats().handed_to_peers, 0);
    assert_eq!(c.broker(0).stats().handed_to_peers, 2);
    // The first worker's late reply (it left) reaches nobody.
    let _ = address;
    let out = c.reply("w2", &again, ReplyKind::Final, "X");
    assert_eq!(replies_to(&out, "client", Dialect::Mdp02).len(), 1);
}

#[test]
fn a_broker_that_peers_with_itself_ignores_that_link() {
    let mut c = Cluster::new(1);
    let out = c.dial(0, 0);
    assert!(out.is_empty());
    assert_eq!(c.broker(0).peers_up(), 0);
    // Both ends are ours; the entry of its peer list counts once.
    assert_eq!(c.broker(0).links_to_itself(), 1);
    c.ready("w", 0, "echo");
    c.request("client", 0, Dialect::Mdp02, "other", "x");
    assert_eq!(c.broker(0).stats().handed_to_peers, 0);
    let out = c.advance(Duration::from_secs(30));
    assert!(out.iter().all(|(to, _)| *to == "w"), "{out:?}");
}

#[test]
fn mmi_service_knows_what_peers_serve() {
    let mut c = Cluster::mesh(2);
    c.ready("w", 1, "echo");
    for (service, code) in [("echo", "200"), ("nothing", "404")] {
        let req = Request {
            dialect: Dialect::Mdp02,
            enveloped: false,
            service: id("mmi.service"),
            body: Message::from(service),
        };
        let out = c.input("client", 0, req.encode());
        let replies = replies_to(&out, "client", Dialect::Mdp02);
        assert_eq!(replies[0].body, Message::from(code), "{service}");
    }
    // The worker leaves: broker 0 hears of it.
    c.input("w", 1, WorkerCommand::Disconnect.encode(Dialect::Mdp02));
    assert!(!c.broker(0).peers.serves(b"echo"));
}

#[test]
fn a_link_that_speaks_before_hello_gets_bye_and_a_peer_cannot_answer_what_it_does_not_hold() {
    let mut h = super::Harness::new(BrokerConfig::default());
    let out = h.input("stranger", PeerCommand::Heartbeat.encode());
    assert_eq!(
        PeerCommand::parse(only(&out, "stranger").frames()),
        Ok(PeerCommand::Bye)
    );
    let hello = PeerCommand::Hello {
        instance: 1,
        name: id("x"),
    };
    let out = h.input("peer", hello.encode());
    assert!(matches!(
        PeerCommand::parse(out[0].1.frames()),
        Ok(PeerCommand::Hello { .. })
    ));
    let forged = PeerCommand::Reply {
        tag: 0,
        kind: ReplyKind::Final,
        body: Message::from("x"),
    };
    assert!(h.input("peer", forged.encode()).is_empty());
    // A request for a service nobody here serves is bounced at once.
    let req = PeerCommand::Request {
        tag: 5,
        service: id("echo"),
        body: Message::from("x"),
    };
    let out = h.input("peer", req.encode());
    assert_eq!(
        PeerCommand::parse(only(&out, "peer").frames()),
        Ok(PeerCommand::Bounce { tag: 5 })
    );
    assert_eq!(h.broker.request_count(), 0);
}

#[test]
fn a_client_that_leaves_while_a_peer_serves_its_request_gets_nothing_and_costs_nothing() {
    let mut c = Cluster::mesh(2);
    c.ready("w", 1, "echo");
    let out = c.request("client", 0, Dialect::Mdp02, "echo", "x");
    let (address, _) = request_to(&out, "w");
    let peer = c.local("client", 0);
    let now = c.now;
    c.broker(0).handle_disconnect(&peer, now);
    c.locals.remove("client");
    let out = c.reply("w", &address, ReplyKind::Final, "X");
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(c.broker(0).request_count(), 0);
    assert_eq!(c.broker(0).usage().requests, 0);
}

#[test]
fn brokers_that_dial_in_are_capped() {
    let mut h = super::Harness::new(BrokerConfig::default());
    let names: Vec<&'static str> = (0..=MAX_ACCEPTED_PEERS)
        .map(|i| &*Box::leak(format!("peer{i}").into_boxed_str()))
        .collect();
    for (i, name) in names.iter().enumerate() {
        let hello = PeerCommand::Hello {
            instance: 1000 + i as u64,
            name: id("x"),
        };
        let out = h.input(name, hello.encode());
        let answer = PeerCommand::parse(out[0].1.frames()).unwrap();
        if i < MAX_ACCEPTED_PEERS {
            assert!(matches!(answer, PeerCommand::Hello { .. }), "{i}");
        } else {
            assert_eq!(answer, PeerCommand::Bye, "{i}");
        }
    }
    assert_eq!(h.broker.peers_up(), MAX_ACCEPTED_PEERS);
}

#[test]
fn a_peer_that_says_bye_with_requests_in_flight_is_charged_nothing_more() {
    let mut c = Cluster::mesh(2);
    c.ready("w", 1, "echo");
    let out = c.request("client", 0, Dialect::Mdp02, "echo", "x");
    let (address, _) = request_to(&out, "w");
    // Broker 0's dialed link at broker 1 says BYE (as a broker that stops would).
    let at_one = c
        .links
        .keys()
        .find(|(b, id)| *b == 1 && id.routing_id().starts_with(b"from0"))
        .unwrap()
        .1
        .clone();
    assert_eq!(c.broker(1).usage_of(&at_one).requests, 1);
    let now = c.now;
    c.broker(1)
        .handle_message(&at_one, PeerCommand::Bye.encode().frames(), now);
    c.pump();
    assert_eq!(c.broker(1).usage_of(&at_one).requests, 0);
    // The worker's late reply goes nowhere; broker 0 takes the request back on
    // its side when its link is restarted.
    let out = c.reply("w", &address, ReplyKind::Final, "X");
    assert!(replies_to(&out, "client", Dialect::Mdp02).is_empty());
}
