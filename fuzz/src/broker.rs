//! The body of the `broker` fuzz target: the Majordomo broker's state machine
//! ([`mdp::broker::Broker`]) driven by a sequence of peer messages, disconnects and
//! clock steps, with its invariants checked after every step.
//!
//! Like `mdp.rs`, this file is kept out of zmtp's tests: `lib.rs` declares it only
//! outside `cfg(test)` (for the fuzz crate), and `mdp/tests/broker_fuzz_corpus.rs`
//! includes it by path to replay `corpus/broker/`. It may only use `mdp`, `zmtp` and
//! `bytes`.
//!
//! # Input encoding
//!
//! Byte 0 is the broker's configuration (see [`config`]): bit 0 set drops the request
//! of a worker that dies instead of requeueing it, bits 1-3 are `max_queue` (0-7),
//! bits 4-6 give the total quota `T = 1 + 2 * n` requests (1-15) and `T` ×
//! [`BYTES_PER_REQUEST`] bytes, from which the other quotas follow (a connection a
//! quarter, an address half, the share of services without workers half, of it per
//! address a quarter), bit 7 sets `max_message_size` to [`SMALL_MESSAGE`] bytes. The
//! heartbeat interval is [`HEARTBEAT_MS`], liveness [`LIVENESS`], the request TTL
//! [`TTL_MS`].
//!
//! Each peer talks over connections: a message goes on its newest one (opened from
//! `ADDRESSES[p % 3]` if it has none), a close ends its oldest, and a reconnect opens
//! another beside the old ones (a newcomer that takes a routing id before the old
//! connection's departure is handled). Every connection has a number no other ever
//! gets.
//!
//! Then steps, each an opcode byte and its arguments. A missing argument (the input
//! ended) reads as 0. The high nibble of the opcode is the kind (modulo 13: kinds
//! 13-15 are kinds 0-2 again), its low three bits the peer `p` (one of [`PEERS`]):
//!
//! | kind | step | arguments |
//! |---|---|---|
//! | `0x0` | client `p` sends REQUEST | framing `f`, service `s`, body `b` |
//! | `0x1` | worker `p` sends READY | dialect `d`, service `s` |
//! | `0x2` | worker `p` sends PARTIAL (a plain REPLY in MDP/0.1 and Overseer) | dialect `d`, client `c`, body `b` |
//! | `0x3` | worker `p` sends FINAL (REPLY in MDP/0.1 and Overseer) | dialect `d`, client `c`, body `b` |
//! | `0x4` | worker `p` sends HEARTBEAT | dialect `d` |
//! | `0x5` | worker `p` sends DISCONNECT | dialect `d` |
//! | `0x6` | `p` sends raw frames | count `k`, then `k % 8` frames, each a length byte and that many bytes |
//! | `0x7` | `p`'s oldest connection goes away (`handle_disconnect`; one never seen if it has none) | |
//! | `0x8` | the clock advances `t * 25` ms, then a tick | `t` |
//! | `0x9` | the clock advances `t * 25` ms, no tick | `t` |
//! | `0xa` | shutdown (the broker is used on afterwards) | |
//! | `0xb` | `p` opens a new connection from `ADDRESSES[a % 4]` (`handle_connect`) | `a` |
//! | `0xc` | the socket cannot deliver to `p`'s newest connection (`handle_undeliverable`) | |
//!
//! Arguments: `f % 5` indexes [`FRAMINGS`] (how a client frames requests), `d % 4`
//! indexes [`Dialect::ALL`], `s % 5` indexes [`SERVICES`], `c % 9` is a peer (8: the
//! [`STRANGER`], who never speaks). A body byte `b` makes `b & 3` frames of
//! `(b >> 2) & 7` bytes each (the `j`-th made of the letter `'a' + j`), preceded, when
//! bit 5 is set, by a frame naming `SERVICES[b >> 6]` (what `mmi.service` asks about).
//!
//! # Invariants
//!
//! Besides never panicking, after every step:
//! - [`Broker::check_invariants`] holds (in-flight requests belong to live workers of
//!   their service, queues and idle lists agree with the requests and workers, at
//!   most `max_requests` requests, queues free of piled-up finished entries, ...);
//! - the broker holds at most its total quota of requests, and at most one worker per
//!   connection;
//! - its counters never go down, count one request per request received and one
//!   malformed message per message that does not parse, and every request received
//!   is either answered, dropped, still held or forgotten by a shutdown;
//! - every message it sends parses: as a broker command in a dialect its peer spoke
//!   as a worker, or as a reply in a framing its peer used as a client; nothing goes
//!   to the [`STRANGER`];
//! - nothing is ever sent to a connection that went away, nor paused or resumed: a
//!   reply for a departed client never reaches a newer connection of its routing id;
//! - a connection is paused only while it sends, never twice without a resume in
//!   between, and resumed only when paused;
//! - DISCONNECT goes only to the connection that just spoke (or to every worker, all
//!   at once, at shutdown, which leaves nothing held); a tick sends HEARTBEAT and
//!   REQUEST only, a disconnect or an undeliverable REQUEST only (requeued), a clock
//!   step nothing;
//! - [`Broker::next_tick`] is at most a heartbeat interval away (or a tick resolution
//!   after the last tick).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ::mdp::broker::{Broker, BrokerConfig, BrokerStats, Flow, Quotas, Usage, WorkerDeath};
use ::mdp::proto::{is_mmi, Dialect, FromPeer, Reply, ReplyKind, Request, ToWorker, WorkerCommand};
use bytes::Bytes;
use zmtp::{Message, PeerId};

/// The peers' routing ids.
pub const PEERS: [&[u8]; 8] = [
    b"peer-0", b"peer-1", b"peer-2", b"peer-3", b"peer-4", b"peer-5", b"peer-6", b"peer-7",
];

/// A client address workers may reply to that no peer has.
pub const STRANGER: &[u8] = b"stranger";

/// Where connections come from: two from one address, one from another, one local.
pub const ADDRESSES: [&str; 4] = [
    "10.0.0.1:1000",
    "10.0.0.1:1001",
    "10.0.0.2:1000",
    "ipc:///broker",
];

/// The total quota's bytes per request of its count: about one small request's cost,
/// so bodies of a few frames run into the byte bounds before the count ones.
pub const BYTES_PER_REQUEST: usize = 600;

/// The service names requests, READY and MMI queries use.
pub const SERVICES: [&[u8]; 5] = [b"echo", b"add", b"mmi.service", b"mmi.foo", b""];

/// How clients frame requests: the dialect and whether the message starts with an
/// empty frame (only MDP/0.2 clients may do without, on a DEALER socket).
pub const FRAMINGS: [(Dialect, bool); 5] = [
    (Dialect::Mdp01, true),
    (Dialect::Mdp02, false),
    (Dialect::Mdp02, true),
    (Dialect::Majortomo, true),
    (Dialect::Overseer, true),
];

/// Names of [`FRAMINGS`], for [`Summary::events`].
pub const FRAMING_NAMES: [&str; 5] = [
    "MDP/0.1",
    "MDP/0.2",
    "MDP/0.2 behind REQ",
    "majortomo",
    "overseer",
];

/// The heartbeat interval.
pub const HEARTBEAT_MS: u64 = 1000;
/// Missed heartbeats before a worker expires.
pub const LIVENESS: u32 = 3;
/// How long a request may wait for a worker.
pub const TTL_MS: u64 = 5000;
/// The clock moves in steps of this many milliseconds (up to 255 of them at once).
pub const STEP_MS: u64 = 25;
/// `max_message_size` when bit 7 of the configuration byte is set: two frames of up
/// to eight bytes with their overhead.
pub const SMALL_MESSAGE: usize = 2 * (8 + ::mdp::broker::FRAME_OVERHEAD);

/// Opcode kinds (the high nibble; the low three bits are the peer).
pub mod kind {
    /// Client REQUEST.
    pub const REQUEST: u8 = 0x00;
    /// Worker READY.
    pub const READY: u8 = 0x10;
    /// Worker PARTIAL.
    pub const PARTIAL: u8 = 0x20;
    /// Worker FINAL.
    pub const FINAL: u8 = 0x30;
    /// Worker HEARTBEAT.
    pub const HEARTBEAT: u8 = 0x40;
    /// Worker DISCONNECT.
    pub const DISCONNECT: u8 = 0x50;
    /// Raw frames.
    pub const RAW: u8 = 0x60;
    /// The peer's connection goes away.
    pub const CLOSE: u8 = 0x70;
    /// Clock step and tick.
    pub const TICK: u8 = 0x80;
    /// Clock step without a tick.
    pub const WAIT: u8 = 0x90;
    /// Shutdown.
    pub const SHUTDOWN: u8 = 0xa0;
    /// A new connection.
    pub const RECONNECT: u8 = 0xb0;
    /// A message the socket could not deliver.
    pub const UNDELIVERABLE: u8 = 0xc0;
}

/// The broker configuration byte 0 of an input selects.
pub fn config(byte: u8) -> BrokerConfig {
    let total = 1 + 2 * usize::from((byte >> 4) & 7);
    let share = |divisor: usize| Usage {
        requests: (total / divisor).max(1),
        bytes: total * BYTES_PER_REQUEST / divisor,
    };
    BrokerConfig::default()
        .heartbeat_interval(Duration::from_millis(HEARTBEAT_MS))
        .liveness(LIVENESS)
        .request_ttl(Duration::from_millis(TTL_MS))
        .max_queue(usize::from((byte >> 1) & 7))
        .quotas(
            Quotas::default()
                .total(share(1))
                .per_connection(share(4))
                .per_address(share(2))
                .unserved_total(share(2))
                .unserved_per_address(share(4)),
        )
        .mmi_cache(Duration::ZERO)
        .on_worker_death(if byte & 1 == 0 {
            WorkerDeath::Requeue
        } else {
            WorkerDeath::Drop
        })
        .max_message_size(if byte & 0x80 == 0 {
            1 << 20
        } else {
            SMALL_MESSAGE
        })
}

/// One step of an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `PEERS[peer]` sends these frames.
    Message {
        /// Index in [`PEERS`].
        peer: usize,
        /// The frames after the routing id.
        frames: Vec<Bytes>,
    },
    /// `PEERS[peer]`'s oldest connection goes away.
    Close {
        /// Index in [`PEERS`].
        peer: usize,
    },
    /// `PEERS[peer]` opens a new connection from `ADDRESSES[address]`.
    Reconnect {
        /// Index in [`PEERS`].
        peer: usize,
        /// Index in [`ADDRESSES`].
        address: usize,
    },
    /// The socket cannot deliver to `PEERS[peer]`'s newest connection.
    Undeliverable {
        /// Index in [`PEERS`].
        peer: usize,
    },
    /// The clock advances, then the broker ticks.
    Tick {
        /// By how much.
        ms: u64,
    },
    /// The clock advances without a tick.
    Wait {
        /// By how much.
        ms: u64,
    },
    /// The broker shuts down.
    Shutdown,
}

/// Reads bytes off an input; past its end, every byte reads as 0.
struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn bytes(&mut self, len: usize) -> Bytes {
        let (taken, rest) = self.data.split_at(len.min(self.data.len()));
        self.data = rest;
        Bytes::copy_from_slice(taken)
    }

    fn dialect(&mut self) -> Dialect {
        Dialect::ALL[usize::from(self.byte()) % Dialect::ALL.len()]
    }

    fn service(&mut self) -> Bytes {
        Bytes::from_static(SERVICES[usize::from(self.byte()) % SERVICES.len()])
    }

    fn client(&mut self) -> Bytes {
        let c = usize::from(self.byte()) % (PEERS.len() + 1);
        Bytes::from_static(PEERS.get(c).copied().unwrap_or(STRANGER))
    }

    fn body(&mut self) -> Message {
        let b = self.byte();
        let mut body = Message::new();
        if b & 0x20 != 0 {
            body.push_back(Bytes::from_static(SERVICES[usize::from(b >> 6)]));
        }
        let size = usize::from((b >> 2) & 7);
        for j in 0..b & 3 {
            body.push_back(vec![b'a' + j; size]);
        }
        body
    }

    fn ms(&mut self) -> u64 {
        u64::from(self.byte()) * STEP_MS
    }
}

/// The configuration and steps `data` encodes (see the module's documentation).
pub fn decode(data: &[u8]) -> (BrokerConfig, Vec<Step>) {
    let Some((&first, rest)) = data.split_first() else {
        return (config(0), Vec::new());
    };
    let mut input = Reader { data: rest };
    let mut steps = Vec::new();
    while let Some(&op) = input.data.first() {
        input.data = &input.data[1..];
        let peer = usize::from(op & 7);
        let worker = |command: WorkerCommand, dialect: Dialect| Step::Message {
            peer,
            frames: command.encode(dialect).into_vec(),
        };
        let step = match ((op >> 4) % 13) << 4 {
            kind::REQUEST => {
                let (dialect, enveloped) = FRAMINGS[usize::from(input.byte()) % FRAMINGS.len()];
                let request = Request {
                    dialect,
                    enveloped,
                    service: input.service(),
                    body: input.body(),
                };
                Step::Message {
                    peer,
                    frames: request.encode().into_vec(),
                }
            }
            kind::READY => {
                let dialect = input.dialect();
                let service = input.service();
                worker(WorkerCommand::Ready { service }, dialect)
            }
            code @ (kind::PARTIAL | kind::FINAL) => {
                let dialect = input.dialect();
                let command = WorkerCommand::Reply {
                    client: input.client(),
                    kind: if code == kind::PARTIAL {
                        ReplyKind::Partial
                    } else {
                        ReplyKind::Final
                    },
                    body: input.body(),
                };
                worker(command, dialect)
            }
            kind::HEARTBEAT => {
                let dialect = input.dialect();
                worker(WorkerCommand::Heartbeat, dialect)
            }
            kind::DISCONNECT => {
                let dialect = input.dialect();
                worker(WorkerCommand::Disconnect, dialect)
            }
            kind::RAW => {
                let count = input.byte() % 8;
                let frames = (0..count)
                    .map(|_| {
                        let len = input.byte();
                        input.bytes(usize::from(len))
                    })
                    .collect();
                Step::Message { peer, frames }
            }
            kind::CLOSE => Step::Close { peer },
            kind::TICK => Step::Tick { ms: input.ms() },
            kind::WAIT => Step::Wait { ms: input.ms() },
            kind::SHUTDOWN => Step::Shutdown,
            kind::RECONNECT => Step::Reconnect {
                peer,
                address: usize::from(input.byte()) % ADDRESSES.len(),
            },
            _ => Step::Undeliverable { peer },
        };
        steps.push(step);
    }
    (config(first), steps)
}

/// What a run went through, for checking that seeds reach the states they are
/// meant to (`(what, detail, detail)`; details are dialect or framing names).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Things that happened, e.g. `("served", "MDP/0.1", "majortomo")`: a client
    /// framing requests as MDP/0.1 got a final reply from a majortomo worker.
    pub events: BTreeSet<(&'static str, &'static str, &'static str)>,
    /// The broker's counters at the end.
    pub stats: BrokerStats,
}

/// What the harness knows of a peer from what it sent.
#[derive(Debug, Clone, Default)]
struct PeerState {
    /// Its open connections' numbers, oldest first.
    connections: Vec<u64>,
    /// Bit `i`: sent a request framed as `FRAMINGS[i]`.
    framings: u8,
    /// Bit `i`: sent a worker command in `Dialect::ALL[i]`.
    dialects: u8,
}

/// A message the broker sent, classified by what its peer can parse.
enum Out {
    Command(Dialect, ToWorker),
    Reply(usize, Reply),
}

fn dialect_index(dialect: Dialect) -> usize {
    Dialect::ALL
        .iter()
        .position(|&d| d == dialect)
        .expect("a dialect of Dialect::ALL")
}

fn framing_index(request: &Request) -> usize {
    FRAMINGS
        .iter()
        .position(|&f| f == (request.dialect, request.enveloped))
        .expect("a request framing of FRAMINGS")
}

fn bits(mask: u8) -> impl Iterator<Item = usize> {
    (0..8).filter(move |i| mask & (1 << i) != 0)
}

struct Harness {
    broker: Broker,
    now: Instant,
    last_tick: Option<Instant>,
    peers: [PeerState; 8],
    /// The next connection's number.
    next_connection: u64,
    /// Connections that went away.
    closed: BTreeSet<u64>,
    /// Connections paused now.
    paused: BTreeSet<u64>,
    /// Requests a shutdown forgot.
    forgotten: u64,
    summary: Summary,
}

impl Harness {
    fn classify(&self, to: usize, msg: &Message) -> Out {
        let peer = &self.peers[to];
        for d in bits(peer.dialects) {
            let dialect = Dialect::ALL[d];
            if let Ok(command) = ToWorker::parse(dialect, msg.frames()) {
                return Out::Command(dialect, command);
            }
        }
        for f in bits(peer.framings) {
            let (dialect, enveloped) = FRAMINGS[f];
            if let Ok(reply) = Reply::parse(dialect, enveloped, msg.frames()) {
                return Out::Reply(f, reply);
            }
        }
        panic!(
            "{msg:?} to {}: neither a broker command in a dialect it spoke as a worker \
             nor a reply in a framing it used as a client ({peer:?})",
            String::from_utf8_lossy(PEERS[to])
        )
    }

    fn event(&mut self, what: &'static str, a: &'static str, b: &'static str) {
        self.summary.events.insert((what, a, b));
    }

    /// Opens a connection for `peer` from `ADDRESSES[address]`.
    fn connect(&mut self, peer: usize, address: usize) -> PeerId {
        let connection = self.next_connection;
        self.next_connection += 1;
        self.peers[peer].connections.push(connection);
        let id = PeerId::new(Bytes::from_static(PEERS[peer]), connection);
        self.broker
            .handle_connect(&id, ADDRESSES[address], self.now);
        id
    }

    /// `peer`'s newest connection, opened if it has none.
    fn newest(&mut self, peer: usize) -> PeerId {
        match self.peers[peer].connections.last() {
            Some(&c) => PeerId::new(Bytes::from_static(PEERS[peer]), c),
            None => self.connect(peer, peer % 3),
        }
    }

    fn step(&mut self, step: &Step) {
        let before = self.broker.stats().clone();
        let workers_before = self.broker.worker_count();
        let requests_before = self.broker.request_count();
        let mut parsed = None;
        match step {
            Step::Message { peer, frames } => {
                let id = self.newest(*peer);
                let state = &mut self.peers[*peer];
                match FromPeer::parse(frames) {
                    Ok(FromPeer::Client(request)) => {
                        state.framings |= 1 << framing_index(&request);
                        parsed = Some(FromPeer::Client(request));
                    }
                    Ok(FromPeer::Worker { dialect, command }) => {
                        state.dialects |= 1 << dialect_index(dialect);
                        parsed = Some(FromPeer::Worker { dialect, command });
                    }
                    // A peered broker's messages (MDPB01).
                    Ok(_) => {}
                    Err(_) => {}
                }
                self.broker.handle_message(&id, frames, self.now);
            }
            Step::Close { peer } => {
                let connections = &mut self.peers[*peer].connections;
                // One never seen when it has none: a departure the broker never saw
                // arrive.
                let connection = if connections.is_empty() {
                    u64::MAX - *peer as u64
                } else {
                    connections.remove(0)
                };
                self.closed.insert(connection);
                self.paused.remove(&connection);
                let id = PeerId::new(Bytes::from_static(PEERS[*peer]), connection);
                self.broker.handle_disconnect(&id, self.now);
            }
            Step::Reconnect { peer, address } => {
                self.connect(*peer, *address);
                self.event("reconnected", "", "");
            }
            Step::Undeliverable { peer } => {
                let id = self.newest(*peer);
                self.broker.handle_undeliverable(&id, self.now);
            }
            Step::Tick { ms } => {
                self.now += Duration::from_millis(*ms);
                self.broker.handle_tick(self.now);
                self.last_tick = Some(self.now);
            }
            Step::Wait { ms } => self.now += Duration::from_millis(*ms),
            Step::Shutdown => {
                self.broker.shutdown();
                self.forgotten += requests_before as u64;
            }
        }
        let out: Vec<(PeerId, Message)> = self.broker.drain_outgoing().collect();
        let flow: Vec<Flow> = self.broker.drain_flow().collect();
        if let Err(broken) = self.broker.check_invariants() {
            panic!("after {step:?}: {broken}");
        }
        self.check_counts(step, &before, parsed.is_some(), requests_before);
        self.check_outgoing(step, parsed.as_ref(), &out, workers_before);
        self.check_flow(step, &flow);

        let stats = self.broker.stats().clone();
        let op = match step {
            Step::Message { .. } => "message",
            Step::Close { .. } => "close",
            Step::Tick { .. } => "tick",
            Step::Wait { .. } => "wait",
            Step::Shutdown => "shutdown",
            Step::Reconnect { .. } => "reconnect",
            Step::Undeliverable { .. } => "undeliverable",
        };
        if stats.requeued > before.requeued {
            self.event("requeued", op, "");
        }
        if stats.dropped > before.dropped {
            let why = match (step, &parsed) {
                (Step::Message { .. }, Some(FromPeer::Client(_))) => "refused",
                (Step::Tick { .. }, _) if self.broker.worker_count() == workers_before => "ttl",
                _ => op,
            };
            self.event("dropped", why, "");
        }
        if stats.malformed > before.malformed {
            self.event("malformed", "", "");
        }
        if matches!(step, Step::Tick { .. }) && self.broker.worker_count() < workers_before {
            self.event("expired", "", "");
        }
        if matches!(step, Step::Shutdown) && workers_before > 0 {
            self.event("shutdown", "", "");
        }
    }

    /// Bounds and the broker's counters.
    fn check_counts(
        &self,
        step: &Step,
        before: &BrokerStats,
        parsed: bool,
        requests_before: usize,
    ) {
        let config = self.broker.config();
        let stats = self.broker.stats();
        let held = self.broker.request_count();
        let usage = self.broker.usage();
        assert!(
            usage.requests <= config.quotas.total.requests
                && usage.bytes <= config.quotas.total.bytes,
            "{usage:?} held, over the total {:?}",
            config.quotas.total
        );
        let open: usize = self.peers.iter().map(|p| p.connections.len()).sum();
        assert!(
            self.broker.worker_count() <= open,
            "more workers than open connections"
        );
        assert!(
            stats.requests >= before.requests
                && stats.replies >= before.replies
                && stats.dropped >= before.dropped
                && stats.requeued >= before.requeued
                && stats.malformed >= before.malformed,
            "a counter went down: {before:?} then {stats:?}"
        );
        let message = matches!(step, Step::Message { .. });
        assert_eq!(
            stats.malformed - before.malformed,
            u64::from(message && !parsed),
            "malformed messages counted"
        );
        assert_eq!(
            stats.replies + stats.dropped + self.forgotten + held as u64,
            stats.requests,
            "every request is answered, dropped, held or forgotten: {stats:?}, {held} held, \
             {} forgotten",
            self.forgotten
        );
        if !message {
            assert_eq!(
                stats.requests, before.requests,
                "requests without a message"
            );
        }
        if matches!(step, Step::Wait { .. }) {
            assert_eq!(stats, before, "counters moved without input");
            assert_eq!(held, requests_before);
        }
        if matches!(step, Step::Shutdown) {
            assert_eq!(held, 0, "a shutdown leaves requests");
            assert_eq!(self.broker.worker_count(), 0, "a shutdown leaves workers");
        }
        let next = self.broker.next_tick(self.now);
        let mut latest = self.now + config.heartbeat_interval;
        if let Some(last) = self.last_tick {
            latest = latest.max(last + self.broker.tick_resolution());
        }
        assert!(next <= latest, "next tick {:?} too late", next - self.now);
    }

    /// What the broker sent during `step`.
    fn check_outgoing(
        &mut self,
        step: &Step,
        parsed: Option<&FromPeer>,
        out: &[(PeerId, Message)],
        workers_before: usize,
    ) {
        let mut disconnected = Vec::new();
        for (to, msg) in out {
            let Some(index) = PEERS.iter().position(|p| *p == &to.routing_id()[..]) else {
                panic!("a message to {to:?}, not a peer: {msg:?}");
            };
            assert!(
                !self.closed.contains(&to.connection()),
                "{msg:?} to {to:?}, a connection that went away"
            );
            assert!(
                self.peers[index].connections.contains(&to.connection()),
                "{msg:?} to {to:?}, a connection never opened"
            );
            let sent = self.classify(index, msg);
            let sender = match step {
                Step::Message { peer, .. } => self.peers[*peer].connections.last().copied(),
                _ => None,
            };
            match (&sent, step) {
                (Out::Command(_, ToWorker::Disconnect), Step::Shutdown) => {
                    assert!(
                        !disconnected.contains(&to.connection()),
                        "two DISCONNECTs to {to:?}"
                    );
                    disconnected.push(to.connection());
                }
                (_, Step::Shutdown) => panic!("{msg:?} at shutdown"),
                (Out::Command(_, ToWorker::Disconnect), _) => assert_eq!(
                    sender,
                    Some(to.connection()),
                    "DISCONNECT to {to:?}, who did not just speak"
                ),
                (Out::Command(_, ToWorker::Heartbeat), Step::Tick { .. }) => {}
                (Out::Command(_, ToWorker::Heartbeat), _) => panic!("HEARTBEAT outside a tick"),
                (Out::Command(_, ToWorker::Request { .. }), _) => {}
                (Out::Reply(..), Step::Message { .. }) => {}
                (Out::Reply(..), _) => panic!("{msg:?} without a message ({step:?})"),
            }
            if matches!(step, Step::Wait { .. }) {
                panic!("{msg:?} after a clock step without a tick");
            }
            self.record(&sent, parsed);
        }
        if matches!(step, Step::Shutdown) {
            assert_eq!(
                disconnected.len(),
                workers_before,
                "DISCONNECT to every worker"
            );
        }
    }

    /// The pauses and resumes of `step`.
    fn check_flow(&mut self, step: &Step, flow: &[Flow]) {
        for f in flow {
            match f {
                Flow::Pause(p) => {
                    let sender = match step {
                        Step::Message { peer, .. } => self.peers[*peer].connections.last(),
                        _ => None,
                    };
                    assert_eq!(sender, Some(&p.connection()), "{p:?} paused, not sending");
                    assert!(self.paused.insert(p.connection()), "{p:?} paused twice");
                    self.event("paused", "", "");
                }
                Flow::Resume(p) => {
                    assert!(
                        !self.closed.contains(&p.connection()),
                        "{p:?} resumed after it left"
                    );
                    assert!(
                        self.paused.remove(&p.connection()),
                        "{p:?} resumed, not paused"
                    );
                    self.event("resumed", "", "");
                }
            }
        }
    }

    fn record(&mut self, sent: &Out, parsed: Option<&FromPeer>) {
        match sent {
            Out::Command(dialect, ToWorker::Request { .. }) => {
                self.event("dispatched", dialect.name(), "")
            }
            Out::Command(_, ToWorker::Heartbeat) => self.event("heartbeat", "", ""),
            Out::Command(_, ToWorker::Disconnect) => {
                let why = match parsed {
                    Some(FromPeer::Worker {
                        command: WorkerCommand::Ready { service },
                        ..
                    }) if is_mmi(service) => "READY mmi.*",
                    Some(FromPeer::Worker {
                        command: WorkerCommand::Ready { .. },
                        ..
                    }) => "second READY",
                    Some(FromPeer::Worker { .. }) => "before READY",
                    _ => "shutdown",
                };
                self.event("disconnect", why, "")
            }
            Out::Reply(framing, reply) => {
                let framing = FRAMING_NAMES[*framing];
                match parsed {
                    Some(FromPeer::Client(request)) if is_mmi(&request.service) => {
                        let code = match reply.body.first().map(|b| &b[..]) {
                            Some(b"200") => "200",
                            Some(b"404") => "404",
                            Some(b"501") => "501",
                            _ => panic!("MMI answered {reply:?}"),
                        };
                        self.event("mmi", code, framing);
                    }
                    Some(FromPeer::Worker {
                        dialect,
                        command: WorkerCommand::Reply { kind, body, .. },
                    }) => {
                        if reply.kind == ReplyKind::Partial {
                            self.event("partial", framing, dialect.name());
                        } else if *kind == ReplyKind::Final {
                            self.event("served", framing, dialect.name());
                            if reply.body.len() > body.len() {
                                self.event("gathered", framing, dialect.name());
                            }
                        }
                    }
                    _ => panic!("{reply:?} after {parsed:?}"),
                }
            }
        }
    }
}

/// Runs the steps `data` encodes through a broker, checking the invariants listed in
/// the module's documentation after each; returns what happened.
pub fn run(data: &[u8]) -> Summary {
    let (config, steps) = decode(data);
    let mut harness = Harness {
        broker: Broker::new(config),
        now: Instant::now(),
        last_tick: None,
        peers: Default::default(),
        next_connection: 1,
        closed: BTreeSet::new(),
        paused: BTreeSet::new(),
        forgotten: 0,
        summary: Summary::default(),
    };
    for step in &steps {
        harness.step(step);
    }
    harness.summary.stats = harness.broker.stats().clone();
    harness.summary
}

/// The fuzz target's body: [`run`], keeping only its panics.
pub fn broker(data: &[u8]) {
    run(data);
}
