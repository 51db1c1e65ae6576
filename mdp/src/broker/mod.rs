//! The Majordomo broker as a sans-IO state machine.
//!
//! Input: a connection that arrived ([`Broker::handle_connect`]), a message from it
//! ([`Broker::handle_message`]), its departure ([`Broker::handle_disconnect`]), a
//! message the socket could not deliver ([`Broker::handle_undeliverable`]) and the
//! passing of time ([`Broker::handle_tick`]); output: the messages to send, each
//! addressed to one connection ([`Broker::drain_outgoing`]), and which connections
//! to stop and start reading ([`Broker::drain_flow`]). No I/O and no clock, so every
//! rule is a unit test.
//!
//! Peers are [`PeerId`]s: a routing id *and* a connection number, so a reply for a
//! client whose connection is gone never reaches a newcomer that took its routing
//! id, and a worker that reconnects is a new worker.
//!
//! The rules (RFC 7, 18 and 8, and what the anchor brokers get wrong):
//! - one socket serves every dialect; each peer is answered in the dialect it spoke, and
//!   a client of one dialect can be served by a worker of another;
//! - idle workers are used oldest first; the requests waiting for a service are
//!   taken client by client in turn (`fair_queue`), so one client's flood delays
//!   another client by one request per turn, not by the whole flood; heartbeats go to
//!   idle *and* busy workers; every expired worker is purged;
//! - a worker that leaves or expires while holding a request: the request goes to
//!   another worker ([`WorkerDeath::Requeue`], the default) or is dropped;
//! - what the broker holds is charged to the client's connection, its source address
//!   and the total, in requests and bytes; a client at its quota is paused, not
//!   dropped ([`quota`]); requests for services that never had a worker (that the
//!   broker remembers) have a share of their own; requests wait at most the request
//!   TTL;
//! - a client that disconnects: its waiting requests are dropped, the replies of
//!   those in flight are discarded; this costs its own requests, not all of them;
//! - MMI: `mmi.service` answers 200 only when the service has live workers, else 404;
//!   `mmi.services`, `mmi.workers` and `mmi.stats` answer what the broker knows, in
//!   MessagePack (our extension, see [`snapshot`]), within a size bound; any other
//!   `mmi.*` answers 501; a worker registering `mmi.*` or a name longer than the
//!   maximum, sending a second READY, or speaking before READY gets DISCONNECT;
//! - clients whose dialect has no partial replies get one reply with every frame when
//!   FINAL arrives, bounded by the maximum message size, counting each frame's
//!   overhead, and charged to the client;
//! - malformed messages are dropped; nothing a peer sends can panic the broker or
//!   grow its memory without bound, and what peers cause is logged rate-limited
//!   ([`notices`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::{printable, IdHashMap, IdHashSet, Message, PeerId};

use crate::proto::{
    is_mmi, Dialect, FromPeer, PeerCommand, Reply, ReplyKind, Request, ToWorker, WorkerCommand,
};

mod fair_queue;
mod history;
mod invariants;
pub mod latency;
mod mmi;
mod name_map;
pub mod notices;
mod peering;
mod peers;
pub mod quota;
pub mod snapshot;

use fair_queue::{FairQueue, RequestId};
use history::History;
pub use history::MAX_SERVICE_HISTORY;
use name_map::NameMap;
use notices::Notices;
use peers::Peers;
pub use peers::{MAX_ACCEPTED_PEERS, MAX_PEER_OFFER_BYTES, MAX_PEER_SERVICES};
pub use quota::{Flow, Quotas, Source, Usage};
use quota::{Ledger, Refusal};

/// What the broker counts for each request it holds, beyond its frames: its record,
/// its entries in the maps and queues that find it.
pub const REQUEST_OVERHEAD: usize = 512;

/// What the broker counts for each frame it holds, beyond its bytes.
pub const FRAME_OVERHEAD: usize = 32;

/// Most frames gathered into one reply for a client without partial replies (the
/// same bound as a message's frames on the wire).
pub const MAX_GATHERED_FRAMES: usize = 65_536;

/// The largest set of a client's requests kept when it empties (about 300 bytes
/// for a connected client, which costs some 9 KiB in its connection anyway); a
/// larger one is dropped and made afresh when the client sends again.
const KEPT_HELD_CAPACITY: usize = 28;

/// What happens to a request whose worker died while holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerDeath {
    /// Give it to another worker of the service (the RFC's stated goal).
    Requeue,
    /// Drop it; the client's retry will bring it back.
    Drop,
}

/// Broker settings: start from [`BrokerConfig::default`] and change what you need.
///
/// ```
/// use std::time::Duration;
/// use mdp::broker::BrokerConfig;
///
/// let config = BrokerConfig::default()
///     .heartbeat_interval(Duration::from_secs(1))
///     .max_queue(10_000);
/// assert_eq!(config.liveness, 3);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BrokerConfig {
    /// Heartbeat interval (RFC 7: 2500 ms).
    pub heartbeat_interval: Duration,
    /// Missed heartbeats before a worker is declared dead (RFC 7: 3).
    pub liveness: u32,
    /// How long a request may wait for a worker.
    pub request_ttl: Duration,
    /// Most requests waiting in one service's queue; more are dropped.
    pub max_queue: usize,
    /// What the broker holds, per connection, per address and in all.
    pub quotas: Quotas,
    /// What to do with the request of a worker that died.
    pub on_worker_death: WorkerDeath,
    /// Largest reply gathered for a client without partial replies.
    pub max_message_size: usize,
    /// Longest service name (bytes) a request or READY may carry.
    pub max_service_name: usize,
    /// Largest MMI answer body (bytes): longer lists are cut short.
    pub max_mmi_reply: usize,
    /// How long an MMI list answer (`mmi.services`, `mmi.workers`, `mmi.stats`) may
    /// be given again instead of computed anew; zero: always fresh.
    pub mmi_cache: Duration,
    /// This broker's name, told to peered brokers (logs and MMI).
    pub name: String,
    /// Random per broker process: a peer link that says HELLO with our own
    /// instance is ourselves (our address in our own peer list).
    pub instance: u64,
}

impl BrokerConfig {
    /// Heartbeat interval (RFC 7: 2500 ms).
    pub fn heartbeat_interval(mut self, heartbeat_interval: Duration) -> BrokerConfig {
        self.heartbeat_interval = heartbeat_interval;
        self
    }

    /// Missed heartbeats before a worker is declared dead (RFC 7: 3).
    pub fn liveness(mut self, liveness: u32) -> BrokerConfig {
        self.liveness = liveness;
        self
    }

    /// How long a request may wait for a worker.
    pub fn request_ttl(mut self, request_ttl: Duration) -> BrokerConfig {
        self.request_ttl = request_ttl;
        self
    }

    /// Most requests waiting in one service's queue; more are dropped.
    pub fn max_queue(mut self, max_queue: usize) -> BrokerConfig {
        self.max_queue = max_queue;
        self
    }

    /// What the broker holds, per connection, per address and in all.
    pub fn quotas(mut self, quotas: Quotas) -> BrokerConfig {
        self.quotas = quotas;
        self
    }

    /// What to do with the request of a worker that died.
    pub fn on_worker_death(mut self, on_worker_death: WorkerDeath) -> BrokerConfig {
        self.on_worker_death = on_worker_death;
        self
    }

    /// Largest reply gathered for a client without partial replies.
    pub fn max_message_size(mut self, max_message_size: usize) -> BrokerConfig {
        self.max_message_size = max_message_size;
        self
    }

    /// Longest service name (bytes) a request or READY may carry.
    pub fn max_service_name(mut self, max_service_name: usize) -> BrokerConfig {
        self.max_service_name = max_service_name;
        self
    }

    /// Largest MMI answer body (bytes): longer lists are cut short.
    pub fn max_mmi_reply(mut self, max_mmi_reply: usize) -> BrokerConfig {
        self.max_mmi_reply = max_mmi_reply;
        self
    }

    /// How long an MMI list answer may be given again instead of computed anew.
    pub fn mmi_cache(mut self, mmi_cache: Duration) -> BrokerConfig {
        self.mmi_cache = mmi_cache;
        self
    }

    /// This broker's name, told to peered brokers.
    pub fn name(mut self, name: impl Into<String>) -> BrokerConfig {
        self.name = name.into();
        self
    }

    /// This broker process's instance (random by default).
    pub fn instance(mut self, instance: u64) -> BrokerConfig {
        self.instance = instance;
        self
    }
}

/// A number that differs between processes and between brokers of one process.
fn random_instance() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

impl Default for BrokerConfig {
    fn default() -> BrokerConfig {
        BrokerConfig {
            heartbeat_interval: Duration::from_millis(2500),
            liveness: 3,
            request_ttl: Duration::from_secs(60),
            max_queue: 1_000_000,
            quotas: Quotas::default(),
            on_worker_death: WorkerDeath::Requeue,
            max_message_size: 16 * 1024 * 1024,
            max_service_name: 255,
            max_mmi_reply: 1 << 20,
            mmi_cache: Duration::from_millis(100),
            name: String::from("mdp-broker"),
            instance: random_instance(),
        }
    }
}

#[derive(Debug)]
struct WorkerState {
    dialect: Dialect,
    service: Bytes,
    expiry: Instant,
    next_heartbeat: Instant,
    busy: Option<RequestId>,
    /// Final replies delivered.
    served: u64,
}

#[derive(Debug, Default)]
struct Service {
    /// Idle workers, oldest first.
    idle: VecDeque<PeerId>,
    /// Waiting requests, client by client in turn.
    queue: FairQueue,
    /// Registered workers.
    workers: usize,
}

impl Service {
    /// No workers and nothing waiting: the entry can go, so names invented by
    /// clients do not pile up.
    fn is_unused(&self) -> bool {
        self.workers == 0 && self.queue.is_empty()
    }
}

#[derive(Debug)]
struct PendingRequest {
    client: PeerId,
    dialect: Dialect,
    enveloped: bool,
    service: Bytes,
    body: Message,
    deadline: Instant,
    /// When the broker received it, for the service's latency.
    received: Instant,
    worker: Option<PeerId>,
    gathered: Message,
    /// The gathered frames' bytes plus [`FRAME_OVERHEAD`] each.
    gathered_cost: usize,
    /// What it costs its client now (gathered reply included).
    cost: Usage,
    /// Still counted in the share of services without workers.
    unserved: bool,
    /// False once its client left: its reply is discarded, nothing is charged.
    charged: bool,
    /// It came from a peered broker (its client), with that broker's tag: served
    /// here or bounced, never passed on.
    from_peer: Option<u64>,
}

/// Counters for logs and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerStats {
    /// Requests received from clients (MMI included).
    pub requests: u64,
    /// Final replies delivered to clients.
    pub replies: u64,
    /// Requests dropped: TTL, full queue, quota, dead worker with `drop`, client gone.
    pub dropped: u64,
    /// Requests given to another worker after theirs died.
    pub requeued: u64,
    /// Malformed messages ignored.
    pub malformed: u64,
    /// Messages the socket could not deliver (the peer's queue was full or it left).
    pub undelivered: u64,
    /// Requests handed to a peered broker.
    pub handed_to_peers: u64,
    /// Requests served here for a peered broker.
    pub served_for_peers: u64,
    /// Requests a peered broker bounced back (or held when it left), kept here.
    pub returned_by_peers: u64,
}

/// The broker's state. See the module documentation for the rules.
#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    workers: IdHashMap<PeerId, WorkerState>,
    services: NameMap<Service>,
    requests: IdHashMap<RequestId, PendingRequest>,
    /// Each client's requests, so a departure costs its own. A connected client
    /// may keep an empty set (see [`KEPT_HELD_CAPACITY`]).
    held_by: IdHashMap<PeerId, IdHashSet<RequestId>>,
    ledger: Ledger,
    /// Waiting requests' deadlines, soonest first; entries of requests that left
    /// or were requeued since are skipped, and swept when they pile up.
    deadlines: BinaryHeap<Reverse<(Instant, RequestId)>>,
    /// Requests waiting, over all services.
    waiting: usize,
    next_request: RequestId,
    outgoing: Vec<(PeerId, Message)>,
    stats: BrokerStats,
    history: History,
    notices: Notices,
    /// MMI answers given lately, with when and at which state.
    mmi_cache: mmi::Cache,
    /// Bumped by every change MMI answers could show.
    generation: u64,
    /// No later than the earliest heartbeat, expiry or TTL deadline (None: nothing
    /// is due). Lowered as things are added, recomputed by each tick.
    due: Option<Instant>,
    /// When the last tick ran: ticks are at least [`Broker::tick_resolution`] apart.
    last_tick: Option<Instant>,
    /// The links to peered brokers.
    peers: Peers,
}

/// How a request ended, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Its final reply went to its client.
    Served,
    /// Dropped, or its client left before the reply.
    Failed,
    /// Given back to the peered broker it came from (not counted as dropped).
    Bounced,
}

impl Broker {
    /// A broker with `config`.
    pub fn new(config: BrokerConfig) -> Broker {
        Broker {
            ledger: Ledger::new(config.quotas),
            config,
            workers: IdHashMap::default(),
            services: NameMap::default(),
            requests: IdHashMap::default(),
            held_by: IdHashMap::default(),
            deadlines: BinaryHeap::new(),
            waiting: 0,
            next_request: 0,
            outgoing: Vec::new(),
            stats: BrokerStats::default(),
            history: History::default(),
            notices: Notices::default(),
            mmi_cache: mmi::Cache::default(),
            generation: 0,
            due: None,
            last_tick: None,
            peers: Peers::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> &BrokerStats {
        &self.stats
    }

    /// Registered workers.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Requests held (queued or in flight).
    pub fn request_count(&self) -> usize {
        self.requests.len()
    }

    /// What the clients of the broker hold in all (requests and bytes charged).
    pub fn usage(&self) -> Usage {
        self.ledger.total()
    }

    /// What `client` holds.
    pub fn usage_of(&self, client: &PeerId) -> Usage {
        self.ledger.usage(client)
    }

    /// Whether `peer`'s input is paused now.
    pub fn is_paused(&self, peer: &PeerId) -> bool {
        self.ledger.is_paused(peer)
    }

    /// Connections paused now.
    pub fn paused_count(&self) -> usize {
        self.ledger.paused_count()
    }

    /// Messages to send, each to one connection. Drain after every input.
    pub fn drain_outgoing(&mut self) -> std::vec::Drain<'_, (PeerId, Message)> {
        self.advertise();
        self.outgoing.drain(..)
    }

    /// Connections to pause and resume, in order. Drain after every input.
    pub fn drain_flow(&mut self) -> std::vec::Drain<'_, Flow> {
        self.ledger.drain_flow()
    }

    /// When [`Broker::handle_tick`] should be called next. Constant time.
    pub fn next_tick(&self, now: Instant) -> Instant {
        let due = self
            .due
            .unwrap_or(now + self.config.heartbeat_interval)
            .min(now + self.config.heartbeat_interval);
        match self.last_tick {
            Some(last) => due.max(last + self.tick_resolution()),
            None => due,
        }
    }

    /// The least time between two ticks: a tenth of the heartbeat interval. Heartbeats
    /// and TTL drops may run that much late, which no peer can notice.
    pub fn tick_resolution(&self) -> Duration {
        self.config.heartbeat_interval / 10
    }

    fn note_due(&mut self, at: Instant) {
        self.due = Some(self.due.map_or(at, |due| due.min(at)));
    }

    fn expiry(&self, now: Instant) -> Instant {
        now + self.config.heartbeat_interval * self.config.liveness
    }

    /// Queues `msg` for `peer`: `what` it is, in which dialect, about which service
    /// (for the trace line at `-vv`).
    fn send(&mut self, peer: &PeerId, what: Outgoing<'_>, msg: Message) {
        queue_out(&mut self.outgoing, peer, what, msg);
    }

    /// Logs a warning about something a peer did, rate-limited (see [`notices`]).
    fn notice(&mut self, what: &'static str, peer: &PeerId, service: &[u8], now: Instant) {
        if self.notices.note(what, service, now) {
            tracing::warn!(peer = %printable(peer.routing_id()), service = %printable(service),
                "{what} (more like it are counted, one line a second)");
        }
    }

    /// A connection arrived from `address` (as the socket reports it: `1.2.3.4:5`,
    /// `ipc:///path`...), which decides its address quota.
    pub fn handle_connect(&mut self, peer: &PeerId, address: &str, now: Instant) {
        let _ = now;
        self.ledger.connect(peer, Source::of(address));
    }

    /// A message from `peer`, frames after the routing id.
    pub fn handle_message(&mut self, peer: &PeerId, frames: &[Bytes], now: Instant) {
        match FromPeer::parse(frames) {
            Ok(FromPeer::Client(request)) => self.on_request(peer, request, now),
            Ok(FromPeer::Worker { dialect, command }) => {
                self.on_worker(peer, dialect, command, now)
            }
            Ok(FromPeer::Broker(command)) => self.on_peer(peer, command, now),
            Err(e) => {
                self.stats.malformed += 1;
                if self.notices.note("dropping a malformed message", b"", now) {
                    tracing::warn!(peer = %printable(peer.routing_id()), reason = %e,
                        "dropping a malformed message (more like it are counted, one line a second)");
                }
            }
        }
    }

    fn on_request(&mut self, client: &PeerId, request: Request, now: Instant) {
        self.admit(client, request, None, now);
    }

    /// Takes a request of `client` (a peered broker's, with its `tag`, when
    /// `from_peer`) into the service's queue, or refuses it: dropped for a client,
    /// bounced for a peer.
    fn admit(&mut self, client: &PeerId, request: Request, from_peer: Option<u64>, now: Instant) {
        self.stats.requests += 1;
        tracing::trace!(peer = %printable(client.routing_id()), dialect = %request.dialect,
            command = "REQUEST", service = %printable(&request.service),
            frames = request.body.len(), bytes = request.body.byte_len(), "in");
        if request.service.len() > self.config.max_service_name {
            if let Some(tag) = from_peer {
                self.bounce(client, tag);
                return;
            }
            self.stats.dropped += 1;
            let name = request
                .service
                .slice(..self.config.max_service_name.min(32));
            self.notice(
                "dropping a request: its service name is too long",
                client,
                &name,
                now,
            );
            return;
        }
        if is_mmi(&request.service) && from_peer.is_none() {
            self.answer_mmi(client, request, now);
            return;
        }
        let name = request.service.clone();
        let (workers, queued) = self
            .services
            .get(&name)
            .map_or((0, 0), |s| (s.workers, s.queue.len()));
        if let Some(tag) = from_peer {
            // Served here or not at all: without a worker, or with a full queue,
            // the peer keeps it.
            if workers == 0 || queued >= self.config.max_queue {
                self.bounce(client, tag);
                return;
            }
        }
        // Unserved: nobody serves it now and nobody is remembered to have (a
        // service whose worker is restarting keeps the quotas of served ones).
        let unserved = workers == 0 && self.history.get(&name).is_none();
        if queued >= self.config.max_queue {
            self.count_failed(&name);
            self.notice(
                "dropping a request: the service's queue is full",
                client,
                &name,
                now,
            );
            return;
        }
        let cost = Usage::one(request_cost(&request));
        if let Err(refusal) = self.ledger.admit(client, cost, unserved) {
            if let Some(tag) = from_peer {
                self.bounce(client, tag);
                return;
            }
            self.count_failed(&name);
            let what = match refusal {
                Refusal::Connection => "dropping a request: its connection holds twice its quota",
                Refusal::Address => "dropping a request: its address holds twice its quota",
                Refusal::Total => "dropping a request: the broker holds its maximum",
                Refusal::Unserved => {
                    "dropping a request: the share for services without workers is used up"
                }
            };
            self.notice(what, client, &name, now);
            return;
        }
        let id = self.next_request;
        self.next_request += 1;
        let deadline = now + self.config.request_ttl;
        self.requests.insert(
            id,
            PendingRequest {
                client: client.clone(),
                dialect: request.dialect,
                enveloped: request.enveloped,
                service: request.service,
                body: request.body,
                deadline,
                received: now,
                worker: None,
                gathered: Message::new(),
                gathered_cost: 0,
                cost,
                unserved,
                charged: true,
                from_peer,
            },
        );
        self.held_by.entry(client.clone()).or_default().insert(id);
        self.waiting += 1;
        self.generation += 1;
        self.dispatch_with(&name, None, Some((client, id)));
        if self.requests.get(&id).is_some_and(|r| r.worker.is_none()) {
            self.wait_until(id, deadline);
        }
    }

    /// Remembers that waiting request `id` expires at `deadline`.
    fn wait_until(&mut self, id: RequestId, deadline: Instant) {
        self.deadlines.push(Reverse((deadline, id)));
        self.note_due(deadline);
    }

    fn on_worker(&mut self, peer: &PeerId, dialect: Dialect, command: WorkerCommand, now: Instant) {
        tracing::trace!(peer = %printable(peer.routing_id()), %dialect, command = command_name(&command), "in");
        let expiry = self.expiry(now);
        let known = self.workers.get_mut(peer);
        match (command, known) {
            (WorkerCommand::Ready { service }, None) => {
                let refused = if service.len() > self.config.max_service_name {
                    Some("refusing a worker: its service name is too long")
                } else if is_mmi(&service) {
                    Some("refusing a worker: it may not register an mmi.* service")
                } else {
                    None
                };
                if let Some(what) = refused {
                    let name = service.slice(..service.len().min(32));
                    self.notice(what, peer, &name, now);
                    let what = Outgoing::new("DISCONNECT", dialect, b"");
                    self.send(peer, what, ToWorker::Disconnect.encode(dialect));
                    return;
                }
                let next_heartbeat = now + self.config.heartbeat_interval;
                self.note_due(next_heartbeat.min(expiry));
                self.workers.insert(
                    peer.clone(),
                    WorkerState {
                        dialect,
                        service: service.clone(),
                        expiry,
                        next_heartbeat,
                        busy: None,
                        served: 0,
                    },
                );
                let s = self.services.entry(service.clone()).or_default();
                s.workers += 1;
                s.idle.push_back(peer.clone());
                let services = &self.services;
                self.history.register(&service, now, |name| {
                    services.get(name).is_some_and(|s| s.workers > 0)
                });
                self.generation += 1;
                tracing::debug!(worker = %printable(peer.routing_id()), service = %printable(&service), %dialect, "worker ready");
                self.dispatch(&service);
            }
            (WorkerCommand::Ready { .. }, Some(_)) => {
                self.notice(
                    "disconnecting a worker that sent a second READY",
                    peer,
                    b"",
                    now,
                );
                self.remove_worker(peer, now, true);
            }
            (WorkerCommand::Disconnect, Some(_)) => self.remove_worker(peer, now, false),
            (WorkerCommand::Disconnect, None) => {}
            // Speaking before READY (or to a broker that restarted): DISCONNECT makes
            // well-behaved workers register again.
            (_, None) => {
                tracing::debug!(peer = %printable(peer.routing_id()), "DISCONNECT to an unknown worker");
                let what = Outgoing::new("DISCONNECT", dialect, b"");
                self.send(peer, what, ToWorker::Disconnect.encode(dialect));
            }
            (WorkerCommand::Heartbeat, Some(w)) => w.expiry = expiry,
            (WorkerCommand::Reply { client, kind, body }, Some(w)) => {
                w.expiry = expiry;
                self.on_reply(peer, client, kind, body, now);
            }
        }
    }

    fn on_reply(
        &mut self,
        worker: &PeerId,
        client: Bytes,
        kind: ReplyKind,
        body: Message,
        now: Instant,
    ) {
        let Some(id) = self.workers.get(worker).and_then(|w| w.busy) else {
            tracing::debug!(worker = %printable(worker.routing_id()), "dropping a reply from a worker that holds no request");
            return;
        };
        let Some(request) = self.requests.get(&id) else {
            return;
        };
        if *request.client.routing_id() != client {
            self.notice(
                "dropping a reply addressed to another client",
                worker,
                b"",
                now,
            );
            return;
        }
        let charged = request.charged;
        if charged {
            self.forward_reply(id, kind, body, now);
        }
        if kind == ReplyKind::Final {
            let outcome = if charged {
                Outcome::Served
            } else {
                Outcome::Failed
            };
            let service = self.finish(id, outcome, now);
            if let Some(w) = self.workers.get_mut(worker) {
                w.busy = None;
                w.served += 1;
            }
            if let Some(service) = service {
                self.dispatch_with(&service, Some(worker.clone()), None);
            }
        }
    }

    /// Sends a reply of request `id` to its client, or gathers it for a client
    /// without partial replies (sending all of it with the final one).
    fn forward_reply(&mut self, id: RequestId, kind: ReplyKind, body: Message, now: Instant) {
        let Some(request) = self.requests.get_mut(&id) else {
            return;
        };
        let (client, service) = (request.client.clone(), request.service.clone());
        let dialect = request.dialect;
        if let Some(tag) = request.from_peer {
            let command = if kind == ReplyKind::Final {
                "FINAL"
            } else {
                "PARTIAL"
            };
            let msg = PeerCommand::Reply { tag, kind, body }.encode();
            self.send(&client, Outgoing::peer(command, &service), msg);
            return;
        }
        if dialect.streams() {
            let msg = Reply {
                service: Some(service.clone()),
                kind,
                body,
            }
            .into_message(dialect, request.enveloped);
            let command = if kind == ReplyKind::Final {
                "FINAL"
            } else {
                "PARTIAL"
            };
            self.send(&client, Outgoing::new(command, dialect, &service), msg);
            return;
        }
        let cost = gathered_cost(&body);
        let fits = request.gathered_cost.saturating_add(cost) <= self.config.max_message_size
            && request.gathered.len() + body.len() <= MAX_GATHERED_FRAMES;
        if fits && self.ledger.grow(&client, cost).is_ok() {
            if let Some(request) = self.requests.get_mut(&id) {
                request.gathered_cost += cost;
                request.cost.bytes += cost;
                request.gathered.extend(body);
            }
        } else {
            self.notice(
                "reply too large to gather: dropping the rest",
                &client,
                &service,
                now,
            );
        }
        if kind == ReplyKind::Final {
            let Some(request) = self.requests.get_mut(&id) else {
                return;
            };
            let reply = Reply {
                service: Some(service.clone()),
                kind: ReplyKind::Final,
                body: std::mem::take(&mut request.gathered),
            };
            let msg = reply.into_message(dialect, request.enveloped);
            self.send(&client, Outgoing::new("REPLY", dialect, &service), msg);
        }
    }

    /// Request `id` leaves the broker: uncharged, forgotten, counted. Returns its
    /// service.
    fn finish(&mut self, id: RequestId, outcome: Outcome, now: Instant) -> Option<Bytes> {
        let r = self.requests.remove(&id)?;
        self.generation += 1;
        if let Some(held) = self.held_by.get_mut(&r.client) {
            held.remove(&id);
            // An empty set stays with its connected client (it goes when the
            // client leaves), so a client with one request at a time does not
            // make and free it for every request; a large one gives its room back.
            if held.is_empty() && held.capacity() > KEPT_HELD_CAPACITY {
                self.held_by.remove(&r.client);
            }
        }
        if r.charged {
            if r.unserved {
                self.ledger.served(&r.client, r.cost);
            }
            self.ledger.release(&r.client, r.cost);
        }
        match outcome {
            Outcome::Served if r.from_peer.is_some() => self.stats.served_for_peers += 1,
            Outcome::Served => {
                self.stats.replies += 1;
                if let Some(h) = self.history.touch(&r.service, now) {
                    h.served += 1;
                    h.latency
                        .record(now.saturating_duration_since(r.received), now);
                }
            }
            Outcome::Failed => self.count_failed(&r.service),
            Outcome::Bounced => {}
        }
        Some(r.service)
    }

    /// Removes a worker; its request (if any) is requeued or dropped. `disconnect`:
    /// tell the worker.
    fn remove_worker(&mut self, peer: &PeerId, now: Instant, disconnect: bool) {
        let Some(w) = self.workers.remove(peer) else {
            return;
        };
        self.generation += 1;
        if disconnect {
            let what = Outgoing::new("DISCONNECT", w.dialect, &w.service);
            self.send(peer, what, ToWorker::Disconnect.encode(w.dialect));
        }
        let mut last = false;
        if let Some(s) = self.services.get_mut(&w.service) {
            s.workers = s.workers.saturating_sub(1);
            s.idle.retain(|id| id != peer);
            last = s.workers == 0;
        }
        self.peers.touch(&w.service);
        if let Some(id) = w.busy {
            let orphan = self.requests.get(&id).is_some_and(|r| !r.charged);
            match self.config.on_worker_death {
                WorkerDeath::Requeue if !orphan => self.requeue(id, peer, &w.service, now),
                WorkerDeath::Requeue => {
                    self.finish(id, Outcome::Failed, now);
                }
                WorkerDeath::Drop => {
                    self.finish(id, Outcome::Failed, now);
                    self.notice(
                        "worker lost with a request: dropping it",
                        peer,
                        &w.service,
                        now,
                    );
                }
            }
        }
        if last {
            self.bounce_waiting(&w.service, now);
        }
        self.dispatch(&w.service);
    }

    /// Gives request `id` of a worker that died back to the front of its service's
    /// queue, with a fresh TTL.
    fn requeue(&mut self, id: RequestId, worker: &PeerId, service: &Bytes, now: Instant) {
        let deadline = now + self.config.request_ttl;
        let Some(r) = self.requests.get_mut(&id) else {
            return;
        };
        r.worker = None;
        r.gathered = Message::new();
        let gathered = Usage {
            requests: 0,
            bytes: std::mem::take(&mut r.gathered_cost),
        };
        r.cost.bytes -= gathered.bytes;
        r.deadline = deadline;
        let client = r.client.clone();
        self.ledger.release(&client, gathered);
        if let Some(s) = self.services.get_mut(service) {
            s.queue.push_front(&client, id);
            self.waiting += 1;
        }
        self.wait_until(id, deadline);
        self.stats.requeued += 1;
        if let Some(h) = self.history.touch(service, now) {
            h.requeued += 1;
        }
        tracing::info!(worker = %printable(worker.routing_id()), service = %printable(service),
            "worker lost with a request: giving it to another worker");
    }

    /// Gives waiting requests of `name` to idle workers, in turn on both sides.
    fn dispatch(&mut self, name: &Bytes) {
        self.dispatch_with(name, None, None);
    }

    /// [`Broker::dispatch`], with `idle` (a worker that just finished) added to the
    /// service's idle workers first, and `arriving` (a request just admitted) served
    /// before the queue when the queue is empty, or queued behind it otherwise: a
    /// request that finds a worker waiting never enters the queue (a turn entry, a
    /// client entry and its list, made and dropped again, were a sixth of the state
    /// machine's instructions per request at 1x1).
    fn dispatch_with(
        &mut self,
        name: &Bytes,
        idle: Option<PeerId>,
        arriving: Option<(&PeerId, RequestId)>,
    ) {
        // One lookup for the whole turn: the service's queue and idle workers are
        // worked while the other fields (workers, requests, ledger, output) change.
        let service = match arriving {
            Some(_) => self.services.entry(name.clone()).or_default(),
            None => match self.services.get_mut(name) {
                Some(service) => service,
                None => return,
            },
        };
        service.idle.extend(idle);
        let mut arriving = arriving;
        if let Some((client, id)) = arriving.filter(|_| !service.queue.is_empty()) {
            // Others wait already: it takes its turn behind them.
            service.queue.push_back(client, id);
            arriving = None;
        }
        while arriving.is_some() || !service.queue.is_empty() {
            // The oldest idle worker that is still registered and idle.
            let worker = loop {
                match service.idle.pop_front() {
                    None => break None,
                    Some(w) if self.workers.get(&w).is_some_and(|s| s.busy.is_none()) => {
                        break Some(w)
                    }
                    Some(_) => {}
                }
            };
            let Some(worker) = worker else {
                break;
            };
            let id = match arriving.take() {
                Some((_, id)) => id,
                None => match service.queue.pop() {
                    Some((_, id)) => id,
                    None => {
                        service.idle.push_front(worker);
                        break;
                    }
                },
            };
            self.waiting -= 1;
            let (Some(w), Some(r)) = (self.workers.get_mut(&worker), self.requests.get_mut(&id))
            else {
                continue;
            };
            w.busy = Some(id);
            r.worker = Some(worker.clone());
            let msg = ToWorker::request(w.dialect, r.client.routing_id(), &r.body);
            let dialect = w.dialect;
            if std::mem::take(&mut r.unserved) {
                self.ledger.served(&r.client, r.cost);
            }
            queue_out(
                &mut self.outgoing,
                &worker,
                Outgoing::new("REQUEST", dialect, name),
                msg,
            );
        }
        if let Some((client, id)) = arriving {
            // No worker free: it waits.
            service.queue.push_back(client, id);
        }
        let unused = service.is_unused();
        self.peers.touch(name);
        if !self.peers.links.is_empty() {
            self.hand_to_peers(name);
            self.forget_if_unused(name);
        } else if unused {
            self.services.remove(name);
        }
    }

    /// Drops the entry of `name` if it is unused.
    fn forget_if_unused(&mut self, name: &Bytes) {
        if self.services.get(name).is_some_and(Service::is_unused) {
            self.services.remove(name);
        }
    }

    /// A peer's connection is gone: a worker is removed (its request requeued or
    /// dropped), a client's waiting requests are dropped and the replies of those in
    /// flight will be discarded. Costs the peer's own requests.
    pub fn handle_disconnect(&mut self, peer: &PeerId, now: Instant) {
        self.ledger.leaving(peer);
        if self.workers.contains_key(peer) {
            self.remove_worker(peer, now, false);
        }
        if self.peers.is_link(peer) {
            self.drop_link(peer, now);
            self.peers.links.remove(peer);
        }
        self.drop_requests_of(peer, now);
        // Its in-flight requests are no longer charged: forgetting the connection
        // releases what they cost.
        self.ledger.disconnect(peer);
    }

    /// Drops the waiting requests of client `peer` (which left, or a peered broker
    /// that said BYE or went silent); the replies of those in flight will be
    /// discarded.
    fn drop_requests_of(&mut self, peer: &PeerId, now: Instant) {
        if let Some(held) = self.held_by.remove(peer) {
            let mut services = HashSet::new();
            for id in held {
                let Some(r) = self.requests.get_mut(&id) else {
                    continue;
                };
                if r.worker.is_some() {
                    // In flight: its worker's reply will be discarded, and it no
                    // longer costs its client (whose connection may stay: a peered
                    // broker that said BYE).
                    r.charged = false;
                    let cost = r.cost;
                    self.ledger.release(peer, cost);
                    continue;
                }
                services.insert(r.service.clone());
            }
            for name in services {
                let gone = match self.services.get_mut(&name) {
                    Some(s) => s.queue.remove_client(peer),
                    None => continue,
                };
                self.waiting -= gone.len();
                for id in gone {
                    self.finish(id, Outcome::Failed, now);
                }
                self.forget_if_unused(&name);
            }
            tracing::debug!(peer = %printable(peer.routing_id()), "client gone: its requests dropped");
        }
    }

    /// The socket could not deliver a message to `peer` (its queue was full, or it
    /// left). A worker that does not take its requests is dropped (its request
    /// requeued); for a client it is counted.
    pub fn handle_undeliverable(&mut self, peer: &PeerId, now: Instant) {
        self.stats.undelivered += 1;
        if self.peers.is_link(peer) {
            // What was lost may have been a request of ours or a reply it waits
            // for: start the link afresh (its requests come back here).
            self.notice(
                "a peered broker does not take its messages: restarting the link",
                peer,
                b"",
                now,
            );
            self.restart_link(peer, now);
        } else if self.workers.contains_key(peer) {
            self.notice(
                "dropping a worker that does not take its messages",
                peer,
                b"",
                now,
            );
            self.remove_worker(peer, now, false);
        } else {
            self.notice(
                "a reply could not be delivered: its client does not read",
                peer,
                b"",
                now,
            );
        }
    }

    /// Counts a request of `service` dropped.
    fn count_failed(&mut self, service: &[u8]) {
        self.stats.dropped += 1;
        self.history.failed(service);
    }

    /// Time passes: purge every expired worker, heartbeat the others (idle and busy),
    /// drop requests that waited past their TTL, log what was counted.
    pub fn handle_tick(&mut self, now: Instant) {
        let expired: Vec<PeerId> = self
            .workers
            .iter()
            .filter(|(_, w)| w.expiry <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            tracing::info!(worker = %printable(id.routing_id()), "worker expired");
            self.remove_worker(&id, now, false);
        }
        let interval = self.config.heartbeat_interval;
        for (id, w) in self.workers.iter_mut() {
            if w.next_heartbeat <= now {
                w.next_heartbeat = now + interval;
                tracing::trace!(peer = %printable(id.routing_id()), connection = id.connection(),
                    command = "HEARTBEAT", dialect = %w.dialect, service = %printable(&w.service), "out");
                self.outgoing
                    .push((id.clone(), ToWorker::Heartbeat.encode(w.dialect)));
            }
        }
        self.tick_links(now);
        self.expire_waiting(now);
        self.history.rotate(now);
        self.notices.flush(now);
        self.last_tick = Some(now);
        let heartbeats = self
            .workers
            .values()
            .map(|w| w.next_heartbeat.min(w.expiry))
            .min();
        let deadline = self.deadlines.peek().map(|Reverse((at, _))| *at);
        self.due = [heartbeats, deadline, self.peers.next_due()]
            .into_iter()
            .flatten()
            .min();
    }

    /// Drops the waiting requests whose TTL passed; sweeps stale deadline entries
    /// once they outnumber the waiting requests.
    fn expire_waiting(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let waiting = self
                .requests
                .get(&id)
                .filter(|r| r.worker.is_none() && r.deadline == at)
                .map(|r| (r.client.clone(), r.service.clone(), r.from_peer));
            let Some((client, name, from_peer)) = waiting else {
                continue;
            };
            if let Some(s) = self.services.get_mut(&name) {
                if s.queue.remove(&client, id) {
                    self.waiting -= 1;
                }
            }
            if let Some(tag) = from_peer {
                self.bounce(&client, tag);
                self.finish(id, Outcome::Bounced, now);
                self.forget_if_unused(&name);
                continue;
            }
            self.finish(id, Outcome::Failed, now);
            self.forget_if_unused(&name);
            self.notice(
                "dropping a request: no worker took it within the request TTL",
                &client,
                &name,
                now,
            );
        }
        if self.deadlines.len() > 2 * self.waiting + 64 {
            let requests = &self.requests;
            self.deadlines.retain(|Reverse((at, id))| {
                requests
                    .get(id)
                    .is_some_and(|r| r.worker.is_none() && r.deadline == *at)
            });
        }
    }

    /// The broker is stopping: every worker gets DISCONNECT and is forgotten.
    pub fn shutdown(&mut self) {
        for (id, w) in self.workers.drain() {
            self.outgoing
                .push((id, ToWorker::Disconnect.encode(w.dialect)));
        }
        for (id, _) in self.peers.links.drain() {
            self.outgoing.push((id, PeerCommand::Bye.encode()));
        }
        for r in self.requests.values().filter(|r| r.charged) {
            if r.unserved {
                self.ledger.served(&r.client, r.cost);
            }
            self.ledger.release(&r.client, r.cost);
        }
        self.services.clear();
        self.requests.clear();
        self.held_by.clear();
        self.deadlines.clear();
        self.waiting = 0;
        self.generation += 1;
    }
}

/// What a message the broker sends is, for its trace line.
#[derive(Debug, Clone, Copy)]
struct Outgoing<'a> {
    command: &'static str,
    /// None: MDPB01.
    dialect: Option<Dialect>,
    service: &'a [u8],
}

impl<'a> Outgoing<'a> {
    fn new(command: &'static str, dialect: Dialect, service: &'a [u8]) -> Outgoing<'a> {
        Outgoing {
            command,
            dialect: Some(dialect),
            service,
        }
    }

    /// A message to a peered broker (MDPB01).
    fn peer(command: &'static str, service: &'a [u8]) -> Outgoing<'a> {
        Outgoing {
            command,
            dialect: None,
            service,
        }
    }
}

/// Queues `msg` for `peer` (and traces it).
fn queue_out(
    outgoing: &mut Vec<(PeerId, Message)>,
    peer: &PeerId,
    what: Outgoing<'_>,
    msg: Message,
) {
    tracing::trace!(peer = %printable(peer.routing_id()), connection = peer.connection(),
        command = what.command, dialect = what.dialect.map_or("MDPB01", Dialect::name), service = %printable(what.service),
        frames = msg.len(), bytes = msg.byte_len(), "out");
    outgoing.push((peer.clone(), msg));
}

/// What a request costs its client: its frames and the broker's bookkeeping.
fn request_cost(request: &Request) -> usize {
    REQUEST_OVERHEAD
        + request.service.len()
        + request
            .body
            .iter()
            .map(|f| f.len() + FRAME_OVERHEAD)
            .sum::<usize>()
}

/// What gathering `body` costs: its frames and their overhead.
fn gathered_cost(body: &Message) -> usize {
    body.iter().map(|f| f.len() + FRAME_OVERHEAD).sum()
}

fn command_name(command: &WorkerCommand) -> &'static str {
    match command {
        WorkerCommand::Ready { .. } => "READY",
        WorkerCommand::Reply {
            kind: ReplyKind::Partial,
            ..
        } => "PARTIAL",
        WorkerCommand::Reply { .. } => "REPLY",
        WorkerCommand::Heartbeat => "HEARTBEAT",
        WorkerCommand::Disconnect => "DISCONNECT",
    }
}

#[cfg(test)]
mod tests;
