//! The body of the `peering` fuzz target: three brokers' state machines
//! ([`mdp::broker::Broker`]) wired together in memory by links whose messages wait
//! in queues until a step delivers them, with clients, workers, links that come
//! and go, brokers that die and come back, clocks that move, and links that forge
//! whatever MDPB01 they like.
//!
//! Like `broker.rs`, this file may only use `mdp`, `zmtp` and `bytes`;
//! `mdp/tests/peering_fuzz_corpus.rs` includes it by path to replay
//! `corpus/peering/`.
//!
//! # Input encoding
//!
//! Steps, each an opcode byte and its arguments (a missing one reads as 0). The
//! high nibble of the opcode, modulo 11, is the kind; its low two bits (modulo 3)
//! a broker `b`:
//!
//! | kind | step | arguments |
//! |---|---|---|
//! | 0 | client `c % 4` of broker `b` sends a request | `c`, framing `f % 3` (MDP/0.1, MDP/0.2, majortomo), service `s % 3`, body length `l % 8` |
//! | 1 | worker `w % 4` of broker `b` sends READY (MDP/0.2) | `w`, service `s % 3` |
//! | 2 | worker `w` answers its last REQUEST with PARTIAL | `w` |
//! | 3 | worker `w` answers its last REQUEST with FINAL | `w` |
//! | 4 | worker `w`'s connection goes away | `w` |
//! | 5 | broker `b` dials broker `t % 3` (itself too) | `t` |
//! | 6 | a link of broker `b` drops at both ends | `i` (which of its links) |
//! | 7 | up to `n % 16 + 1` messages on broker `b`'s links are delivered, oldest first per link | `i`, `n` |
//! | 8 | every clock moves `t * 50` ms and every broker ticks | `t` |
//! | 9 | link `i` of broker `b` delivers a forged MDPB01 command to it | `i`, command `k % 7`, tag `g`, service `s % 3`, counts `x`, `y` |
//! | 10 | broker `b` dies (its links drop at the other ends) and starts again | |
//!
//! Services are `echo`, `add` and `mmi.service`; MDPB01 tags forged are `g` (small:
//! real request ids collide with them).
//!
//! # Invariants
//!
//! Besides never panicking, after every step on every broker:
//! [`Broker::check_invariants`] (which includes: a request from a peer is never passed
//! on, what a link holds is in flight on it, offers are within their byte bound);
//! every message a broker sends on a link parses as MDPB01; a broker never sends
//! anything on a link or to a connection that went away; and the next tick is
//! never more than a heartbeat (and a tick resolution) away.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use ::mdp::broker::{Broker, BrokerConfig};
use ::mdp::proto::{Capacity, Dialect, PeerCommand, ReplyKind, Request, ToWorker, WorkerCommand};
use bytes::Bytes;
use zmtp::{Message, PeerId};

/// Brokers in the cluster.
pub const BROKERS: usize = 3;
/// The services clients ask for and workers serve.
pub const SERVICES: [&[u8]; 3] = [b"echo", b"add", b"mmi.service"];
/// How clients frame requests.
pub const FRAMINGS: [Dialect; 3] = [Dialect::Mdp01, Dialect::Mdp02, Dialect::Majortomo];
/// The heartbeat interval (liveness 3).
pub const HEARTBEAT_MS: u64 = 1000;

/// One end of a link: the broker it belongs to and the id it knows the link by.
type End = (usize, PeerId);

/// A worker: its broker, connection, and the client address of the last REQUEST
/// it got.
struct WorkerState {
    broker: usize,
    id: PeerId,
    last_client: Option<Bytes>,
}

struct Cluster {
    brokers: Vec<Broker>,
    /// Each broker's restarts so far (a new instance each time).
    lives: [u64; BROKERS],
    now: Instant,
    /// Each link end → the other end.
    links: BTreeMap<End, End>,
    /// Messages on their way to a link end, oldest first.
    wires: BTreeMap<End, VecDeque<Message>>,
    /// Clients and workers by (broker, name).
    clients: BTreeMap<(usize, u8), PeerId>,
    workers: BTreeMap<u8, WorkerState>,
    /// Connections (and link ends) that went away, per broker.
    closed: BTreeSet<End>,
    next_connection: u64,
}

impl Cluster {
    fn new() -> Cluster {
        let brokers = (0..BROKERS).map(|b| Broker::new(config(b, 0))).collect();
        Cluster {
            brokers,
            lives: [0; BROKERS],
            now: Instant::now(),
            links: BTreeMap::new(),
            wires: BTreeMap::new(),
            clients: BTreeMap::new(),
            workers: BTreeMap::new(),
            closed: BTreeSet::new(),
            next_connection: 1,
        }
    }

    fn connection(&mut self, name: &str) -> PeerId {
        self.next_connection += 1;
        PeerId::new(Bytes::from(name.to_owned()), self.next_connection)
    }

    fn client(&mut self, b: usize, c: u8) -> PeerId {
        if let Some(id) = self.clients.get(&(b, c)) {
            return id.clone();
        }
        let id = self.connection(&format!("client-{b}-{c}"));
        self.brokers[b].handle_connect(&id, "10.0.0.1:1", self.now);
        self.clients.insert((b, c), id.clone());
        id
    }

    fn worker(&mut self, b: usize, w: u8) -> PeerId {
        if let Some(state) = self.workers.get(&w).filter(|s| s.broker == b) {
            return state.id.clone();
        }
        self.worker_leaves(w);
        let id = self.connection(&format!("worker-{w}"));
        self.brokers[b].handle_connect(&id, "10.0.0.2:1", self.now);
        self.workers.insert(
            w,
            WorkerState {
                broker: b,
                id: id.clone(),
                last_client: None,
            },
        );
        id
    }

    fn worker_leaves(&mut self, w: u8) {
        if let Some(state) = self.workers.remove(&w) {
            self.route(state.broker);
            self.brokers[state.broker].handle_disconnect(&state.id, self.now);
            self.closed.insert((state.broker, state.id));
        }
    }

    /// Broker `a` dials broker `t`.
    fn dial(&mut self, a: usize, t: usize) {
        let at_a = self.connection(&format!("to-{t}"));
        let at_t = self.connection(&format!("from-{a}"));
        self.brokers[t].handle_connect(&at_t, "10.0.0.3:1", self.now);
        self.brokers[a].handle_dialed(&at_a, "10.0.0.3:2", self.now);
        self.links.insert((a, at_a.clone()), (t, at_t.clone()));
        self.links.insert((t, at_t), (a, at_a));
    }

    /// The `i`-th link end of broker `b`, if it has any.
    fn link_of(&self, b: usize, i: u8) -> Option<End> {
        let ends: Vec<&End> = self.links.keys().filter(|(x, _)| *x == b).collect();
        (!ends.is_empty()).then(|| ends[usize::from(i) % ends.len()].clone())
    }

    /// Both ends of a link learn it is gone, one after the other. What their
    /// brokers sent before that goes on the wire first (and is lost with it), and
    /// what each does on learning it is routed before the next end learns it, as
    /// two brokers' loops would.
    fn drop_link(&mut self, end: End) {
        let Some(other) = self.links.get(&end).cloned() else {
            return;
        };
        self.route(end.0);
        self.route(other.0);
        self.links.remove(&end);
        self.links.remove(&other);
        for e in [end, other] {
            self.wires.remove(&e);
            self.brokers[e.0].handle_disconnect(&e.1, self.now);
            self.closed.insert(e.clone());
            self.route(e.0);
        }
    }

    fn kill(&mut self, b: usize) {
        let ends: Vec<End> = self
            .links
            .keys()
            .filter(|(x, _)| *x == b)
            .cloned()
            .collect();
        for end in ends {
            self.drop_link(end);
        }
        self.workers.retain(|_, s| s.broker != b);
        self.clients.retain(|(x, _), _| *x != b);
        self.closed.retain(|(x, _)| *x != b);
        self.lives[b] += 1;
        self.brokers[b] = Broker::new(config(b, self.lives[b]));
    }

    /// Delivers up to `n` queued messages to broker `b`'s link ends.
    fn deliver(&mut self, b: usize, n: usize) {
        let ends: Vec<End> = self
            .wires
            .keys()
            .filter(|(x, _)| *x == b)
            .cloned()
            .collect();
        let mut left = n;
        for end in ends {
            while left > 0 {
                let Some(msg) = self.wires.get_mut(&end).and_then(VecDeque::pop_front) else {
                    break;
                };
                left -= 1;
                self.brokers[b].handle_message(&end.1, msg.frames(), self.now);
            }
        }
    }

    /// Checks every broker's invariants and moves what it sent.
    fn settle(&mut self) {
        for b in 0..BROKERS {
            if let Err(broken) = self.brokers[b].check_invariants() {
                panic!("broker {b}: {broken}");
            }
            self.route(b);
            let next = self.brokers[b].next_tick(self.now);
            assert!(
                next <= self.now
                    + Duration::from_millis(HEARTBEAT_MS)
                    + self.brokers[b].tick_resolution(),
                "broker {b}'s next tick is too late"
            );
        }
    }

    /// Moves what broker `b` sent: onto the wires, or to its clients and workers.
    /// Nothing may go to a link or connection it was told went away.
    fn route(&mut self, b: usize) {
        let _ = self.brokers[b].drain_flow().count();
        let out: Vec<(PeerId, Message)> = self.brokers[b].drain_outgoing().collect();
        for (to, msg) in out {
            let end = (b, to.clone());
            assert!(
                !self.closed.contains(&end),
                "{msg:?} to {to:?}, which went away"
            );
            if let Some(other) = self.links.get(&end).cloned() {
                assert!(
                    PeerCommand::parse(msg.frames()).is_ok(),
                    "on a link, not MDPB01: {msg:?}"
                );
                self.wires.entry(other).or_default().push_back(msg);
                continue;
            }
            if let Some(state) = self
                .workers
                .values_mut()
                .find(|s| s.broker == b && s.id == to)
            {
                if let Ok(ToWorker::Request { client, .. }) =
                    ToWorker::parse(Dialect::Mdp02, msg.frames())
                {
                    state.last_client = Some(client);
                }
            }
        }
    }
}

/// Broker `b`'s configuration in its `life`-th life.
fn config(b: usize, life: u64) -> BrokerConfig {
    BrokerConfig::default()
        .heartbeat_interval(Duration::from_millis(HEARTBEAT_MS))
        .liveness(3)
        .request_ttl(Duration::from_millis(4000))
        .mmi_cache(Duration::ZERO)
        .name(format!("b{b}"))
        .instance(((b as u64) << 32) | life)
}

/// Reads bytes off an input; past its end, every byte reads as 0.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn service(&mut self) -> Bytes {
        Bytes::from_static(SERVICES[usize::from(self.byte()) % SERVICES.len()])
    }
}

/// A forged MDPB01 command.
fn forged(input: &mut Reader<'_>) -> PeerCommand {
    let kind = input.byte() % 7;
    let tag = u64::from(input.byte());
    let service = input.service();
    let (x, y) = (u32::from(input.byte()), u32::from(input.byte()));
    match kind {
        0 => PeerCommand::Hello {
            instance: u64::from(x) << 32 | u64::from(y),
            name: Bytes::from_static(b"forger"),
        },
        1 => PeerCommand::Services(vec![Capacity {
            service,
            workers: x % 5,
            idle: y % 5,
        }]),
        2 => PeerCommand::Request {
            tag,
            service,
            body: Message::from("forged"),
        },
        3 => PeerCommand::Reply {
            tag,
            kind: if x % 2 == 0 {
                ReplyKind::Partial
            } else {
                ReplyKind::Final
            },
            body: Message::from("forged"),
        },
        4 => PeerCommand::Bounce { tag },
        5 => PeerCommand::Heartbeat,
        _ => PeerCommand::Bye,
    }
}

/// Runs the steps `data` encodes (see the module's documentation).
pub fn peering(data: &[u8]) {
    let mut cluster = Cluster::new();
    let mut input = Reader(data);
    while !input.0.is_empty() {
        let op = input.byte();
        let b = usize::from(op & 3) % BROKERS;
        match (op >> 4) % 11 {
            0 => {
                let c = input.byte() % 4;
                let dialect = FRAMINGS[usize::from(input.byte()) % FRAMINGS.len()];
                let service = input.service();
                let len = usize::from(input.byte() % 8);
                let request = Request {
                    dialect,
                    enveloped: dialect.leading_empty(),
                    service,
                    body: Message::from(vec![b'x'; len]),
                };
                let id = cluster.client(b, c);
                cluster.brokers[b].handle_message(&id, request.encode().frames(), cluster.now);
            }
            1 => {
                let w = input.byte() % 4;
                let service = input.service();
                let id = cluster.worker(b, w);
                let ready = WorkerCommand::Ready { service };
                cluster.brokers[b].handle_message(
                    &id,
                    ready.encode(Dialect::Mdp02).frames(),
                    cluster.now,
                );
            }
            kind @ (2 | 3) => {
                let w = input.byte() % 4;
                if let Some(state) = cluster.workers.get(&w) {
                    let reply = WorkerCommand::Reply {
                        client: state.last_client.clone().unwrap_or_default(),
                        kind: if kind == 2 {
                            ReplyKind::Partial
                        } else {
                            ReplyKind::Final
                        },
                        body: Message::from("reply"),
                    };
                    let (broker, id) = (state.broker, state.id.clone());
                    cluster.brokers[broker].handle_message(
                        &id,
                        reply.encode(Dialect::Mdp02).frames(),
                        cluster.now,
                    );
                }
            }
            4 => {
                let w = input.byte() % 4;
                cluster.worker_leaves(w);
            }
            5 => {
                let t = usize::from(input.byte()) % BROKERS;
                cluster.dial(b, t);
            }
            6 => {
                let i = input.byte();
                if let Some(end) = cluster.link_of(b, i) {
                    cluster.drop_link(end);
                }
            }
            7 => {
                let _ = input.byte();
                let n = usize::from(input.byte() % 16) + 1;
                cluster.deliver(b, n);
            }
            8 => {
                cluster.now += Duration::from_millis(u64::from(input.byte()) * 50);
                let now = cluster.now;
                for broker in &mut cluster.brokers {
                    broker.handle_tick(now);
                }
            }
            9 => {
                let i = input.byte();
                let command = forged(&mut input);
                if let Some((_, id)) = cluster.link_of(b, i) {
                    cluster.brokers[b].handle_message(&id, command.encode().frames(), cluster.now);
                }
            }
            _ => cluster.kill(b),
        }
        cluster.settle();
    }
    // In the end every link delivers everything, and time passes: nothing may
    // break either.
    for _ in 0..64 {
        for b in 0..BROKERS {
            cluster.deliver(b, usize::MAX);
        }
        cluster.settle();
        if cluster.wires.values().all(VecDeque::is_empty) {
            break;
        }
    }
}
