//! The Majordomo broker as a sans-IO state machine.
//!
//! Input: a message from a peer (`handle_message(peer, frames, now)`), a peer that went
//! away (`handle_disconnect`) and the passing of time (`handle_tick(now)`); output: the
//! messages to send, drained with [`Broker::drain_outgoing`], each addressed by routing
//! id. No I/O and no clock, so every rule is a unit test.
//!
//! The rules (RFC 7, 18 and 8, and what the anchor brokers get wrong):
//! - one socket serves every dialect; each peer is answered in the dialect it spoke, and
//!   a client of one dialect can be served by a worker of another;
//! - idle workers are used oldest first; heartbeats go to idle *and* busy workers; every
//!   expired worker is purged;
//! - a worker that leaves or expires while holding a request: the request goes to
//!   another worker ([`WorkerDeath::Requeue`], the default) or is dropped;
//! - requests for a service without workers wait in a bounded queue for at most the
//!   request TTL; requests of a client that disconnected are dropped;
//! - MMI: `mmi.service` answers 200 only when the service has live workers, else 404;
//!   `mmi.services`, `mmi.workers` and `mmi.stats` answer what the broker knows, in
//!   MessagePack (our extension, see [`snapshot`]); any other `mmi.*` answers 501; a
//!   worker registering `mmi.*`, sending a second READY, or speaking before READY gets
//!   DISCONNECT;
//! - clients whose dialect has no partial replies get one reply with every frame when
//!   FINAL arrives, bounded by the maximum message size;
//! - malformed messages are dropped and logged; nothing a peer sends can panic the
//!   broker or grow its memory without bound.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::{printable, Message};

use crate::proto::{is_mmi, Dialect, FromPeer, Reply, ReplyKind, Request, ToWorker, WorkerCommand};

pub mod latency;
mod mmi;
pub mod snapshot;

use latency::LatencyWindow;

/// Most service names whose history (served, failed, latency) the broker keeps: names
/// come from workers' READY, and a bound keeps a peer inventing names from growing it.
pub const MAX_SERVICE_HISTORY: usize = 1024;

/// What happens to a request whose worker died while holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerDeath {
    /// Give it to another worker of the service (the RFC's stated goal).
    Requeue,
    /// Drop it; the client's retry will bring it back.
    Drop,
}

/// Broker settings.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Heartbeat interval (RFC 7: 2500 ms).
    pub heartbeat_interval: Duration,
    /// Missed heartbeats before a worker is declared dead (RFC 7: 3).
    pub liveness: u32,
    /// How long a request may wait for a worker.
    pub request_ttl: Duration,
    /// Most requests waiting in one service's queue.
    pub max_queue: usize,
    /// Most requests the broker holds in all (queued and in flight).
    pub max_requests: usize,
    /// What to do with the request of a worker that died.
    pub on_worker_death: WorkerDeath,
    /// Largest reply gathered for a client without partial replies.
    pub max_message_size: usize,
}

impl Default for BrokerConfig {
    fn default() -> BrokerConfig {
        BrokerConfig {
            heartbeat_interval: Duration::from_millis(2500),
            liveness: 3,
            request_ttl: Duration::from_secs(60),
            max_queue: 10_000,
            max_requests: 100_000,
            on_worker_death: WorkerDeath::Requeue,
            max_message_size: 16 * 1024 * 1024,
        }
    }
}

type RequestId = u64;

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

/// What happened to a service's requests since a worker first registered it.
#[derive(Debug, Default)]
struct ServiceHistory {
    served: u64,
    failed: u64,
    requeued: u64,
    latency: LatencyWindow,
}

#[derive(Debug, Default)]
struct Service {
    /// Idle workers, oldest first. May hold stale ids (checked when popped).
    idle: VecDeque<Bytes>,
    /// Waiting requests, oldest first. May hold finished ids (skipped when popped,
    /// swept out by `forget_if_unused` before they outnumber the waiting ones).
    queue: VecDeque<RequestId>,
    /// Registered workers.
    workers: usize,
    /// Requests waiting (entries of `queue` that are still live).
    waiting: usize,
}

#[derive(Debug)]
struct PendingRequest {
    client: Bytes,
    dialect: Dialect,
    enveloped: bool,
    service: Bytes,
    body: Message,
    deadline: Instant,
    /// When the broker received it, for the service's latency.
    received: Instant,
    worker: Option<Bytes>,
    gathered: Message,
    gathered_bytes: usize,
}

/// Counters for logs and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// Requests received from clients (MMI included).
    pub requests: u64,
    /// Final replies delivered to clients.
    pub replies: u64,
    /// Requests dropped: TTL, full queue, dead worker with `drop`, client gone.
    pub dropped: u64,
    /// Requests given to another worker after theirs died.
    pub requeued: u64,
    /// Malformed messages ignored.
    pub malformed: u64,
}

/// The broker's state. See the module documentation for the rules.
#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    workers: HashMap<Bytes, WorkerState>,
    services: HashMap<Bytes, Service>,
    requests: HashMap<RequestId, PendingRequest>,
    next_request: RequestId,
    outgoing: Vec<(Bytes, Message)>,
    stats: BrokerStats,
    /// Per service name, at most [`MAX_SERVICE_HISTORY`] of them.
    history: HashMap<Bytes, ServiceHistory>,
    /// No later than the earliest heartbeat, expiry or TTL deadline (None: nothing
    /// is due). Lowered as things are added, recomputed by each tick, so finding the
    /// next tick never scans the workers or the requests.
    due: Option<Instant>,
    /// When the last tick ran: ticks are at least [`Broker::tick_resolution`] apart,
    /// so a tick's scan happens a bounded number of times per second.
    last_tick: Option<Instant>,
}

impl Broker {
    /// A broker with `config`.
    pub fn new(config: BrokerConfig) -> Broker {
        Broker {
            config,
            workers: HashMap::new(),
            services: HashMap::new(),
            requests: HashMap::new(),
            next_request: 0,
            outgoing: Vec::new(),
            stats: BrokerStats::default(),
            history: HashMap::new(),
            due: None,
            last_tick: None,
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

    /// Messages to send: `(routing id, frames)`. Drain after every input.
    pub fn drain_outgoing(&mut self) -> std::vec::Drain<'_, (Bytes, Message)> {
        self.outgoing.drain(..)
    }

    /// When [`Broker::handle_tick`] should be called next. Constant time: the
    /// broker's loop asks after every burst of messages.
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

    fn send(&mut self, peer: &Bytes, msg: Message) {
        self.outgoing.push((peer.clone(), msg));
    }

    /// A message from `peer` (its ROUTER routing id), frames after the routing id.
    pub fn handle_message(&mut self, peer: &Bytes, frames: &[Bytes], now: Instant) {
        match FromPeer::parse(frames) {
            Ok(FromPeer::Client(request)) => self.on_request(peer, request, now),
            Ok(FromPeer::Worker { dialect, command }) => {
                self.on_worker(peer, dialect, command, now)
            }
            Err(e) => {
                self.stats.malformed += 1;
                tracing::warn!(peer = %printable(peer), reason = %e, "dropping a malformed message");
            }
        }
    }

    fn on_request(&mut self, client: &Bytes, request: Request, now: Instant) {
        self.stats.requests += 1;
        if is_mmi(&request.service) {
            self.answer_mmi(client, request, now);
            return;
        }
        if self.requests.len() >= self.config.max_requests {
            self.count_failed(&request.service);
            tracing::warn!(client = %printable(client), service = %printable(&request.service),
                limit = self.config.max_requests, "dropping a request: the broker holds its maximum");
            return;
        }
        // Checked before the service's entry is made: a request turned away (by a
        // `max_queue` of 0, say) must not leave an entry behind for its name.
        let waiting = self.services.get(&request.service).map_or(0, |s| s.waiting);
        if waiting >= self.config.max_queue {
            self.count_failed(&request.service);
            tracing::warn!(client = %printable(client), service = %printable(&request.service),
                limit = self.config.max_queue, "dropping a request: the service's queue is full");
            return;
        }
        let service = self.services.entry(request.service.clone()).or_default();
        let id = self.next_request;
        self.next_request += 1;
        service.queue.push_back(id);
        service.waiting += 1;
        let name = request.service.clone();
        let deadline = now + self.config.request_ttl;
        self.note_due(deadline);
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
                gathered_bytes: 0,
            },
        );
        self.dispatch(&name);
    }

    fn on_worker(&mut self, peer: &Bytes, dialect: Dialect, command: WorkerCommand, now: Instant) {
        let expiry = self.expiry(now);
        let known = self.workers.get_mut(peer);
        match (command, known) {
            (WorkerCommand::Ready { service }, None) => {
                if is_mmi(&service) {
                    tracing::warn!(worker = %printable(peer), "a worker may not register an mmi.* service");
                    self.send(peer, ToWorker::Disconnect.encode(dialect));
                    return;
                }
                let next_heartbeat = now + self.config.heartbeat_interval;
                self.note_due(next_heartbeat);
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
                if self.history.len() < MAX_SERVICE_HISTORY {
                    self.history.entry(service.clone()).or_default();
                }
                let s = self.services.entry(service.clone()).or_default();
                s.workers += 1;
                s.idle.push_back(peer.clone());
                tracing::debug!(worker = %printable(peer), service = %printable(&service), %dialect, "worker ready");
                self.dispatch(&service);
            }
            (WorkerCommand::Ready { .. }, Some(_)) => {
                tracing::warn!(worker = %printable(peer), "second READY from a worker: disconnecting it");
                self.remove_worker(peer, now, true);
            }
            (WorkerCommand::Disconnect, Some(_)) => self.remove_worker(peer, now, false),
            (WorkerCommand::Disconnect, None) => {}
            // Speaking before READY (or to a broker that restarted): DISCONNECT makes
            // well-behaved workers register again.
            (_, None) => self.send(peer, ToWorker::Disconnect.encode(dialect)),
            (WorkerCommand::Heartbeat, Some(w)) => w.expiry = expiry,
            (WorkerCommand::Reply { client, kind, body }, Some(w)) => {
                w.expiry = expiry;
                self.on_reply(peer, client, kind, body, now);
            }
        }
    }

    fn on_reply(
        &mut self,
        worker: &Bytes,
        client: Bytes,
        kind: ReplyKind,
        body: Message,
        now: Instant,
    ) {
        let Some(id) = self.workers.get(worker).and_then(|w| w.busy) else {
            tracing::debug!(worker = %printable(worker), "dropping a reply from a worker that holds no request");
            return;
        };
        let Some(request) = self.requests.get_mut(&id) else {
            return;
        };
        if request.client != client {
            tracing::warn!(worker = %printable(worker), "dropping a reply addressed to another client");
            return;
        }
        let service = request.service.clone();
        if request.dialect.streams() {
            let reply = Reply {
                service: Some(service.clone()),
                kind,
                body,
            };
            let msg = reply.encode(request.dialect, request.enveloped);
            let client = request.client.clone();
            self.send(&client, msg);
        } else {
            let size: usize = body.byte_len();
            if request.gathered_bytes + size > self.config.max_message_size {
                tracing::warn!(client = %printable(&client), service = %printable(&service),
                    limit = self.config.max_message_size, "reply too large to gather: dropping the rest");
            } else {
                request.gathered_bytes += size;
                request.gathered.extend(body);
            }
            if kind == ReplyKind::Final {
                let reply = Reply {
                    service: Some(service.clone()),
                    kind: ReplyKind::Final,
                    body: std::mem::take(&mut request.gathered),
                };
                let msg = reply.encode(request.dialect, request.enveloped);
                let client = request.client.clone();
                self.send(&client, msg);
            }
        }
        if kind == ReplyKind::Final {
            self.stats.replies += 1;
            if let Some(request) = self.requests.remove(&id) {
                if let Some(h) = self.history.get_mut(&service) {
                    h.served += 1;
                    h.latency
                        .record(now.saturating_duration_since(request.received), now);
                }
            }
            if let Some(w) = self.workers.get_mut(worker) {
                w.busy = None;
                w.served += 1;
            }
            if let Some(s) = self.services.get_mut(&service) {
                s.idle.push_back(worker.clone());
            }
            self.dispatch(&service);
        }
    }

    /// Removes a worker; its request (if any) is requeued or dropped. `disconnect`:
    /// tell the worker.
    fn remove_worker(&mut self, peer: &Bytes, now: Instant, disconnect: bool) {
        let Some(w) = self.workers.remove(peer) else {
            return;
        };
        if disconnect {
            self.send(peer, ToWorker::Disconnect.encode(w.dialect));
        }
        if let Some(s) = self.services.get_mut(&w.service) {
            s.workers = s.workers.saturating_sub(1);
            s.idle.retain(|id| id != peer);
        }
        if let Some(id) = w.busy {
            match self.config.on_worker_death {
                WorkerDeath::Requeue => {
                    if let Some(r) = self.requests.get_mut(&id) {
                        r.worker = None;
                        r.gathered = Message::new();
                        r.gathered_bytes = 0;
                        r.deadline = now + self.config.request_ttl;
                        let deadline = r.deadline;
                        self.note_due(deadline);
                        if let Some(s) = self.services.get_mut(&w.service) {
                            s.queue.push_front(id);
                            s.waiting += 1;
                        }
                        self.stats.requeued += 1;
                        if let Some(h) = self.history.get_mut(&w.service) {
                            h.requeued += 1;
                        }
                        tracing::info!(worker = %printable(peer), service = %printable(&w.service),
                            "worker lost with a request: giving it to another worker");
                    }
                }
                WorkerDeath::Drop => {
                    self.requests.remove(&id);
                    self.count_failed(&w.service);
                    tracing::warn!(worker = %printable(peer), service = %printable(&w.service),
                        "worker lost with a request: dropping it");
                }
            }
        }
        self.dispatch(&w.service);
    }

    /// Gives waiting requests of `name` to idle workers, oldest first on both sides.
    fn dispatch(&mut self, name: &Bytes) {
        loop {
            let Some(service) = self.services.get_mut(name) else {
                return;
            };
            // Skip finished requests left in the queue.
            while let Some(&front) = service.queue.front() {
                if self
                    .requests
                    .get(&front)
                    .is_some_and(|r| r.worker.is_none())
                {
                    break;
                }
                service.queue.pop_front();
            }
            let Some(&id) = service.queue.front() else {
                break;
            };
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
            service.queue.pop_front();
            service.waiting = service.waiting.saturating_sub(1);
            let (Some(w), Some(r)) = (self.workers.get_mut(&worker), self.requests.get_mut(&id))
            else {
                continue;
            };
            w.busy = Some(id);
            r.worker = Some(worker.clone());
            let msg = ToWorker::Request {
                client: r.client.clone(),
                body: r.body.clone(),
            }
            .encode(w.dialect);
            self.outgoing.push((worker, msg));
        }
        self.forget_if_unused(name);
    }

    /// Drops the entry of a service with no workers and nothing waiting, so names
    /// invented by clients do not pile up. Otherwise sweeps the finished requests out
    /// of its queue once they outnumber the waiting ones: requests dropped (TTL, client
    /// gone) behind one still waiting are not popped until it is, so without the sweep
    /// clients could pile them up for as long as it waits. A sweep removes more than
    /// half the queue, so its cost is amortised over the drops that made it.
    fn forget_if_unused(&mut self, name: &Bytes) {
        let Some(s) = self.services.get_mut(name) else {
            return;
        };
        if s.workers == 0 && s.waiting == 0 {
            self.services.remove(name);
        } else if s.queue.len() > 2 * s.waiting {
            let requests = &self.requests;
            s.queue
                .retain(|id| requests.get(id).is_some_and(|r| r.worker.is_none()));
        }
    }

    /// A peer's connection is gone: a worker is removed (its request requeued or
    /// dropped), a client's waiting requests are dropped.
    pub fn handle_disconnect(&mut self, peer: &Bytes, now: Instant) {
        if self.workers.contains_key(peer) {
            self.remove_worker(peer, now, false);
        }
        let gone: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.client == *peer && r.worker.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.drop_waiting(id, "its client disconnected");
        }
    }

    fn drop_waiting(&mut self, id: RequestId, why: &'static str) {
        if let Some(r) = self.requests.remove(&id) {
            self.count_failed(&r.service);
            tracing::warn!(client = %printable(&r.client), service = %printable(&r.service), reason = why, "dropping a request");
            if let Some(s) = self.services.get_mut(&r.service) {
                s.waiting = s.waiting.saturating_sub(1);
            }
            self.forget_if_unused(&r.service);
        }
    }

    /// Counts a request of `service` dropped.
    fn count_failed(&mut self, service: &Bytes) {
        self.stats.dropped += 1;
        if let Some(h) = self.history.get_mut(service) {
            h.failed += 1;
        }
    }

    /// Time passes: purge every expired worker, heartbeat the others (idle and busy),
    /// and drop requests that waited past their TTL.
    pub fn handle_tick(&mut self, now: Instant) {
        let expired: Vec<Bytes> = self
            .workers
            .iter()
            .filter(|(_, w)| w.expiry <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            tracing::info!(worker = %printable(&id), "worker expired");
            self.remove_worker(&id, now, false);
        }
        let interval = self.config.heartbeat_interval;
        for (id, w) in self.workers.iter_mut() {
            if w.next_heartbeat <= now {
                w.next_heartbeat = now + interval;
                self.outgoing
                    .push((id.clone(), ToWorker::Heartbeat.encode(w.dialect)));
            }
        }
        let stale: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.worker.is_none() && r.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.drop_waiting(id, "no worker took it within the request TTL");
        }
        for h in self.history.values_mut() {
            h.latency.rotate(now);
        }
        self.last_tick = Some(now);
        let heartbeats = self
            .workers
            .values()
            .map(|w| w.next_heartbeat.min(w.expiry));
        let deadlines = self.requests.values().filter(|r| r.worker.is_none());
        self.due = heartbeats.chain(deadlines.map(|r| r.deadline)).min();
    }

    /// The broker is stopping: every worker gets DISCONNECT and is forgotten.
    pub fn shutdown(&mut self) {
        for (id, w) in self.workers.drain() {
            self.outgoing
                .push((id, ToWorker::Disconnect.encode(w.dialect)));
        }
        self.services.clear();
        self.requests.clear();
    }

    /// Checks the internal invariants, for tests and fuzzing (linear in the broker's
    /// size: not for the hot path):
    /// - every in-flight request belongs to a live worker of its service that holds
    ///   it, and every busy worker's request is in flight on it;
    /// - every waiting request is in its service's queue exactly once, `waiting`
    ///   counts them, and finished entries never outnumber them in the queue;
    /// - a service's idle list holds exactly its registered idle workers, once each,
    ///   and is empty while requests of the service wait;
    /// - each service's worker count is right, no worker serves `mmi.*`, and a
    ///   service's entry exists exactly while it has workers or waiting requests;
    /// - replies are gathered only for clients without partial replies, within the
    ///   maximum message size;
    /// - the broker holds at most `max_requests` requests, and remembers at most
    ///   [`MAX_SERVICE_HISTORY`] services' history;
    /// - nothing is due before the time `next_tick` works from (heartbeats, expiries
    ///   and waiting requests' deadlines are all at or after it).
    ///
    /// `max_queue` limits what is admitted, not what waits: a request given back by a
    /// worker that died goes back to the front of its queue even when that queue is
    /// full, so a queue may exceed `max_queue` by such requests (`max_requests` still
    /// bounds them all).
    pub fn check_invariants(&self) -> Result<(), String> {
        // Throwaway sets ordered rather than hashed, and names rendered only for an
        // error: the fuzzer checks this after every step, on a handful of entries,
        // where hashing them and a string per service were much of its time.
        use std::collections::{BTreeMap, BTreeSet};

        struct Name<'a>(&'a [u8]);
        impl std::fmt::Display for Name<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&printable(self.0))
            }
        }

        if self.history.len() > MAX_SERVICE_HISTORY {
            return Err(format!("{} services remembered", self.history.len()));
        }
        if self.requests.len() > self.config.max_requests {
            return Err(format!(
                "{} requests held, more than max_requests ({})",
                self.requests.len(),
                self.config.max_requests
            ));
        }
        let names: BTreeSet<&Bytes> = self.services.keys().collect();
        for (id, r) in &self.requests {
            if !names.contains(&r.service) {
                return Err(format!(
                    "request {id} is for {}, which has no service entry",
                    printable(&r.service)
                ));
            }
            if let Some(w) = &r.worker {
                match self.workers.get(w) {
                    Some(state) if state.busy == Some(*id) && state.service == r.service => {}
                    _ => {
                        return Err(format!(
                            "request {id} is in flight on a worker that does not hold it"
                        ))
                    }
                }
            }
            if r.gathered.byte_len() != r.gathered_bytes
                || r.gathered_bytes > self.config.max_message_size
            {
                return Err(format!(
                    "request {id} gathered {} bytes, counted {} (limit {})",
                    r.gathered.byte_len(),
                    r.gathered_bytes,
                    self.config.max_message_size
                ));
            }
            if !r.gathered.is_empty() && (r.worker.is_none() || r.dialect.streams()) {
                return Err(format!(
                    "request {id} gathers a reply while waiting or for a streaming client"
                ));
            }
        }
        // Per service: registered workers, idle ones among them.
        let mut registered: BTreeMap<&Bytes, (usize, usize)> = BTreeMap::new();
        for (id, w) in &self.workers {
            if is_mmi(&w.service) {
                return Err(format!("worker {} serves an mmi.* name", printable(id)));
            }
            let counts = registered.entry(&w.service).or_default();
            counts.0 += 1;
            if let Some(r) = w.busy {
                if self.requests.get(&r).and_then(|r| r.worker.as_ref()) != Some(id) {
                    return Err(format!(
                        "worker {} holds a request that is not in flight on it",
                        printable(id)
                    ));
                }
            } else {
                counts.1 += 1;
            }
        }
        for (name, s) in &self.services {
            let service = Name(name);
            let (workers, idle_workers) = registered.get(name).copied().unwrap_or_default();
            if s.workers != workers {
                return Err(format!(
                    "{service} counts {} workers, {workers} registered",
                    s.workers
                ));
            }
            if s.workers == 0 && s.waiting == 0 {
                return Err(format!("{service} is kept with no workers and no requests"));
            }
            let mut waiting = BTreeSet::new();
            for id in &s.queue {
                let Some(r) = self.requests.get(id).filter(|r| r.worker.is_none()) else {
                    continue;
                };
                if r.service != *name {
                    return Err(format!("{service} queues request {id} of another service"));
                }
                if !waiting.insert(*id) {
                    return Err(format!("{service} queues request {id} twice"));
                }
            }
            if waiting.len() != s.waiting {
                return Err(format!(
                    "{service} counts {} requests waiting, queues {}",
                    s.waiting,
                    waiting.len()
                ));
            }
            if s.queue.len() > 2 * s.waiting {
                return Err(format!(
                    "{service} queues {} entries for {} waiting requests",
                    s.queue.len(),
                    s.waiting
                ));
            }
            let mut idle = BTreeSet::new();
            for w in &s.idle {
                match self.workers.get(w) {
                    Some(state) if state.busy.is_none() && state.service == *name => {}
                    _ => {
                        return Err(format!(
                            "{service} lists {} as idle, which is not an idle worker of it",
                            printable(w)
                        ))
                    }
                }
                if !idle.insert(w) {
                    return Err(format!("{service} lists {} as idle twice", printable(w)));
                }
            }
            if idle.len() != idle_workers {
                return Err(format!(
                    "{service} lists {} idle workers of {idle_workers}",
                    idle.len()
                ));
            }
            if s.waiting > 0 && idle_workers > 0 {
                return Err(format!(
                    "{service} has requests waiting beside {idle_workers} idle workers"
                ));
            }
        }
        if let Some(name) = registered.keys().find(|n| !names.contains(*n)) {
            return Err(format!(
                "{} has workers and no service entry",
                printable(name)
            ));
        }
        let heartbeats = self
            .workers
            .values()
            .map(|w| w.next_heartbeat.min(w.expiry));
        let deadlines = self.requests.values().filter(|r| r.worker.is_none());
        if let Some(first) = heartbeats.chain(deadlines.map(|r| r.deadline)).min() {
            if !self.due.is_some_and(|due| due <= first) {
                return Err(format!(
                    "something is due at {first:?}, before the next tick's {:?}",
                    self.due
                ));
            }
        }
        let waiting: usize = self.services.values().map(|s| s.waiting).sum();
        let unassigned = self
            .requests
            .values()
            .filter(|r| r.worker.is_none())
            .count();
        if waiting != unassigned {
            return Err(format!(
                "{waiting} requests counted waiting, {unassigned} unassigned"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
