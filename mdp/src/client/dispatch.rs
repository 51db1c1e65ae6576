//! [`Dispatch`]: every decision of the [`Client`](super::Client), sans IO: which
//! broker connection a request goes on, which request a reply belongs to, when a
//! request is tried again or given up, and when a connection is replaced.
//!
//! It takes calls, cancellations, replies and the time, and returns [`Action`]s
//! (open or close a connection, send a request, deliver a reply, fail a call) and
//! its next deadline. The client's task only carries those out.
//!
//! The rules (see the [module documentation](super) for why):
//! - on one connection, at most one outstanding request per *reply key* (the
//!   service, or the whole connection for majortomo, whose replies do not name it);
//!   another connection is opened for concurrent requests to one service, up to
//!   `max_connections`, and beyond that requests wait their turn in order;
//! - a request without a reply (or a next partial reply) within its timeout is sent
//!   again, up to its attempts, then fails with [`ClientError::Timeout`];
//! - a key whose request timed out or was cancelled is *retired* on its connection
//!   (a late reply must not be taken for another request's), and a connection with
//!   retired keys is closed and replaced once nothing is outstanding on it;
//! - a cancelled call (its caller stopped waiting) frees its place at once;
//! - a call that waits for a place (no broker known yet, every connection busy
//!   with its service) fails with [`ClientError::Timeout`] once it waited its
//!   timeout times its attempts;
//! - with several brokers, each request goes to the broker with the fewest of our
//!   requests outstanding; a broker whose request timed out is *suspect* for one
//!   timeout (others are preferred) and the retry goes to another broker when
//!   there is one; a reply clears the suspicion. A connection that fails before
//!   it was ever up delivered nothing: its requests move at once (keeping their
//!   deadlines and attempts) to a broker that is not known to be down, if any. A broker that is no longer in the
//!   list has its connections closed and its requests placed elsewhere, without
//!   counting an attempt.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::Message;

use super::{CallOptions, ClientError, ReplyPart};
use crate::proto::{Dialect, Reply, ReplyKind, Request};

/// How long a broker that could not be reached is passed over for others.
pub const DOWN_FOR: Duration = Duration::from_secs(1);

/// A call, numbered by whoever submits it.
pub type CallId = u64;
/// A broker connection, numbered by the dispatch.
pub type ConnId = u64;

/// What the client's task must do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Action {
    /// Open a connection to the broker at this endpoint, known as this number
    /// from now on.
    Open(ConnId, String),
    /// Close this connection (nothing more goes to it, replies from it are dropped).
    Close(ConnId),
    /// Send this request on this connection.
    Send(ConnId, Message),
    /// A reply to this call; after a final one nothing more comes for it.
    Deliver(CallId, ReplyPart),
    /// This call failed; nothing more comes for it.
    Fail(CallId, ClientError),
}

/// Which outstanding request a reply can belong to on one connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ReplyKey {
    Service(Bytes),
    Connection,
}

#[derive(Debug)]
struct Pending {
    service: Bytes,
    body: Message,
    limits: CallOptions,
    key: ReplyKey,
    attempts_left: u32,
    /// Where the current attempt went, and until when it may wait for a reply.
    placed: Option<(ConnId, Instant)>,
    /// The broker whose attempt timed out last: the retry goes elsewhere if it can.
    avoid: Option<String>,
    /// While it waits for a place: when it gives up.
    wait_deadline: Option<Instant>,
}

#[derive(Debug)]
struct Conn {
    broker: String,
    /// Its handshake succeeded once: what was sent on it may have arrived.
    up: bool,
    busy: HashMap<ReplyKey, CallId>,
    retired: HashSet<ReplyKey>,
}

/// One broker we may send to.
#[derive(Debug, Default)]
struct BrokerState {
    /// Our requests outstanding there.
    outstanding: usize,
    /// A request there timed out: others are preferred until then.
    suspect_until: Option<Instant>,
    /// It could not be reached: others are preferred until then.
    down_until: Option<Instant>,
}

/// The client's state: connections, outstanding calls and their deadlines.
#[derive(Debug)]
pub struct Dispatch {
    dialect: Dialect,
    max_connections: usize,
    /// The brokers, by endpoint.
    brokers: std::collections::BTreeMap<String, BrokerState>,
    connections: HashMap<ConnId, Conn>,
    pending: HashMap<CallId, Pending>,
    /// Calls with no free place yet, oldest first.
    waiting: VecDeque<CallId>,
    /// Every placed call's deadline, earliest first.
    deadlines: BTreeSet<(Instant, CallId)>,
    next_conn: ConnId,
    actions: VecDeque<Action>,
}

impl Dispatch {
    /// A client speaking `dialect`, with at most `max_connections` (at least one)
    /// broker connections, to the brokers at `endpoints` (see
    /// [`Dispatch::set_brokers`]).
    pub fn new(dialect: Dialect, max_connections: usize, endpoints: &[String]) -> Dispatch {
        Dispatch {
            dialect,
            max_connections: max_connections.max(1),
            brokers: endpoints
                .iter()
                .map(|e| (e.clone(), BrokerState::default()))
                .collect(),
            connections: HashMap::new(),
            pending: HashMap::new(),
            waiting: VecDeque::new(),
            deadlines: BTreeSet::new(),
            next_conn: 0,
            actions: VecDeque::new(),
        }
    }

    /// A new call `id` (not in use) asks `service`.
    pub fn submit(
        &mut self,
        id: CallId,
        service: Bytes,
        body: Message,
        limits: CallOptions,
        now: Instant,
    ) {
        let key = if self.dialect == Dialect::Majortomo {
            ReplyKey::Connection
        } else {
            ReplyKey::Service(service.clone())
        };
        let pending = Pending {
            service,
            body,
            limits,
            key,
            attempts_left: limits.attempts.max(1),
            placed: None,
            avoid: None,
            wait_deadline: None,
        };
        if self.pending.insert(id, pending).is_none() {
            self.place(id, now);
        }
    }

    /// Call `id`'s caller stopped waiting: its place is freed now (a reply to it
    /// that still comes is dropped).
    pub fn cancel(&mut self, id: CallId, now: Instant) {
        let Some(mut p) = self.pending.remove(&id) else {
            return;
        };
        if let Some(at) = p.wait_deadline.take() {
            self.deadlines.remove(&(at, id));
        }
        match self.unplace(id, &mut p, true) {
            Some(conn) => self.after_free(conn, now),
            None => self.waiting.retain(|&waiting| waiting != id),
        }
    }

    /// A message from the broker on connection `conn`.
    pub fn handle_reply(&mut self, conn: ConnId, msg: &Message, now: Instant) {
        let dialect = self.dialect;
        let reply = match Reply::parse(dialect, dialect.leading_empty(), msg.frames()) {
            Ok(reply) => reply,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring a malformed reply from the broker");
                return;
            }
        };
        let key = match (reply.service, dialect) {
            (_, Dialect::Majortomo) => ReplyKey::Connection,
            (Some(service), _) => ReplyKey::Service(service),
            (None, _) => return,
        };
        if let Some(b) = self
            .connections
            .get(&conn)
            .and_then(|c| self.brokers.get_mut(&c.broker))
        {
            b.suspect_until = None;
        }
        let Some(&id) = self.connections.get(&conn).and_then(|c| c.busy.get(&key)) else {
            tracing::debug!("dropping a reply to a request that timed out or was cancelled");
            return;
        };
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        let part = ReplyPart {
            kind: reply.kind,
            body: reply.body,
        };
        let last = part.kind == ReplyKind::Final;
        self.actions.push_back(Action::Deliver(id, part));
        if last {
            if let Some(mut p) = self.pending.remove(&id) {
                self.unplace(id, &mut p, false);
            }
            self.after_free(conn, now);
        } else if let Some((_, deadline)) = &mut p.placed {
            // A partial reply proves progress: the timeout starts again.
            self.deadlines.remove(&(*deadline, id));
            *deadline = now + p.limits.timeout;
            self.deadlines.insert((*deadline, id));
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(at, _)| at)
    }

    /// Time passed: requests past their deadline are tried again or failed.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            let Some(p) = self.pending.get(&id) else {
                self.deadlines.remove(&(at, id));
                continue;
            };
            if p.wait_deadline == Some(at) {
                self.deadlines.remove(&(at, id));
                self.waiting.retain(|&waiting| waiting != id);
                if let Some(p) = self.pending.remove(&id) {
                    self.actions.push_back(Action::Fail(id, timeout_error(&p)));
                }
                continue;
            }
            if p.placed.is_none() {
                self.deadlines.remove(&(at, id));
                continue;
            }
            self.give_up_attempt(id, now);
        }
    }

    /// Call `id`'s attempt will get no reply (it timed out, or its connection
    /// dropped): its broker is suspect, and it is tried again elsewhere if it has
    /// attempts left, else it fails.
    fn give_up_attempt(&mut self, id: CallId, now: Instant) {
        let Some(mut p) = self.pending.remove(&id) else {
            return;
        };
        let Some(conn) = self.unplace(id, &mut p, true) else {
            self.pending.insert(id, p);
            return;
        };
        let broker = self.connections.get(&conn).map(|c| c.broker.clone());
        if let Some(b) = broker.as_ref().and_then(|b| self.brokers.get_mut(b)) {
            b.suspect_until = Some(now + p.limits.timeout);
        }
        p.avoid = broker;
        if p.attempts_left > 0 {
            tracing::debug!(service = %zmtp::printable(&p.service), "no reply; retrying");
            self.pending.insert(id, p);
            self.place(id, now);
        } else {
            self.actions.push_back(Action::Fail(id, timeout_error(&p)));
        }
        self.after_free(conn, now);
    }

    /// The next thing to do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// No call is outstanding.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// The brokers in the order a request of call `p` should try them: not the one
    /// to avoid, then not suspect, then fewest outstanding (then by endpoint).
    fn broker_order(&self, p: &Pending, now: Instant) -> Vec<String> {
        let mut order: Vec<(&String, &BrokerState)> = self.brokers.iter().collect();
        order.sort_by_key(|(endpoint, b)| {
            (
                p.avoid.as_ref() == Some(*endpoint),
                b.down_until.is_some_and(|until| until > now),
                b.suspect_until.is_some_and(|until| until > now),
                b.outstanding,
            )
        });
        order.into_iter().map(|(e, _)| e.clone()).collect()
    }

    /// Sends call `id` on a connection where its reply key is free (to the
    /// brokers in [`Dispatch::broker_order`]), opening one if needed and allowed;
    /// otherwise it waits for a free place.
    fn place(&mut self, id: CallId, now: Instant) {
        self.place_until(id, now, None);
    }

    /// [`Dispatch::place`], as a new attempt (`keep` None) or as the same attempt
    /// moved, keeping its deadline.
    fn place_until(&mut self, id: CallId, now: Instant, keep: Option<Instant>) {
        let Some(p) = self.pending.get(&id) else {
            return;
        };
        let mut chosen = None;
        for broker in self.broker_order(p, now) {
            let free = self
                .connections
                .iter()
                .filter(|(_, c)| {
                    c.broker == broker
                        && !c.busy.contains_key(&p.key)
                        && !c.retired.contains(&p.key)
                })
                .map(|(&conn, _)| conn)
                .min();
            chosen = match free {
                Some(conn) => Some(conn),
                None if self.connections.len() < self.max_connections => Some(self.open(broker)),
                None => continue,
            };
            break;
        }
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        let Some(conn) = chosen else {
            if p.wait_deadline.is_none() {
                let at = now + p.limits.timeout * p.attempts_left.max(1);
                p.wait_deadline = Some(at);
                self.deadlines.insert((at, id));
            }
            self.waiting.push_back(id);
            return;
        };
        if let Some(at) = p.wait_deadline.take() {
            self.deadlines.remove(&(at, id));
        }
        let deadline = match keep {
            Some(deadline) => deadline,
            None => {
                p.attempts_left = p.attempts_left.saturating_sub(1);
                now + p.limits.timeout
            }
        };
        p.placed = Some((conn, deadline));
        self.deadlines.insert((deadline, id));
        let request = Request {
            dialect: self.dialect,
            enveloped: self.dialect.leading_empty(),
            service: p.service.clone(),
            body: p.body.clone(),
        };
        if let Some(c) = self.connections.get_mut(&conn) {
            c.busy.insert(p.key.clone(), id);
            if let Some(b) = self.brokers.get_mut(&c.broker) {
                b.outstanding += 1;
            }
        }
        self.actions.push_back(Action::Send(conn, request.encode()));
    }

    fn open(&mut self, broker: String) -> ConnId {
        let conn = self.next_conn;
        self.next_conn += 1;
        self.connections.insert(
            conn,
            Conn {
                broker: broker.clone(),
                up: false,
                busy: HashMap::new(),
                retired: HashSet::new(),
            },
        );
        self.actions.push_back(Action::Open(conn, broker));
        conn
    }

    /// Connection `conn`'s handshake succeeded.
    pub fn handle_up(&mut self, conn: ConnId) {
        if let Some(c) = self.connections.get_mut(&conn) {
            c.up = true;
            if let Some(b) = self.brokers.get_mut(&c.broker) {
                b.down_until = None;
            }
        }
    }

    /// Connection `conn` failed: its broker is passed over for a while. If it
    /// was never up, nothing sent on it arrived: when another broker is not known
    /// to be down, the connection is closed and its requests move there (same
    /// deadlines, same attempts). If it was up, no reply can come for what was sent
    /// on it any more (a broker answers a connection, not a routing id): those
    /// requests are tried again at once, as if they had timed out.
    pub fn handle_down(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.connections.get(&conn) else {
            return;
        };
        let (broker, was_up) = (c.broker.clone(), c.up);
        if let Some(b) = self.brokers.get_mut(&broker) {
            b.down_until = Some(now + DOWN_FOR);
        }
        let elsewhere = self
            .brokers
            .iter()
            .any(|(e, b)| *e != broker && !b.down_until.is_some_and(|until| until > now));
        if was_up {
            let calls: Vec<CallId> = c.busy.values().copied().collect();
            for id in calls {
                self.give_up_attempt(id, now);
            }
            return;
        }
        if !elsewhere {
            return;
        }
        let Some(c) = self.connections.remove(&conn) else {
            return;
        };
        self.actions.push_back(Action::Close(conn));
        if let Some(b) = self.brokers.get_mut(&broker) {
            b.outstanding = b.outstanding.saturating_sub(c.busy.len());
        }
        for id in c.busy.into_values() {
            let Some(p) = self.pending.get_mut(&id) else {
                continue;
            };
            let Some((_, deadline)) = p.placed.take() else {
                continue;
            };
            self.deadlines.remove(&(deadline, id));
            self.place_until(id, now, Some(deadline));
        }
    }

    /// The brokers are now those at `endpoints` (a name resolved again, say):
    /// connections to brokers that left are closed, and their requests placed
    /// elsewhere without counting an attempt. An empty list changes nothing.
    pub fn set_brokers(&mut self, endpoints: &[String], now: Instant) {
        if endpoints.is_empty() {
            return;
        }
        let gone: Vec<String> = self
            .brokers
            .keys()
            .filter(|e| !endpoints.contains(e))
            .cloned()
            .collect();
        for endpoint in endpoints {
            self.brokers.entry(endpoint.clone()).or_default();
        }
        // Calls waiting for a broker to be known have one now.
        for id in std::mem::take(&mut self.waiting) {
            self.place(id, now);
        }
        for endpoint in gone {
            self.brokers.remove(&endpoint);
            let conns: Vec<ConnId> = self
                .connections
                .iter()
                .filter(|(_, c)| c.broker == endpoint)
                .map(|(&id, _)| id)
                .collect();
            let mut moved = Vec::new();
            for conn in conns {
                if let Some(c) = self.connections.remove(&conn) {
                    moved.extend(c.busy.into_values());
                }
                self.actions.push_back(Action::Close(conn));
            }
            for id in moved {
                if let Some(p) = self.pending.get_mut(&id) {
                    if let Some((_, deadline)) = p.placed.take() {
                        self.deadlines.remove(&(deadline, id));
                    }
                    p.attempts_left += 1;
                }
                self.place(id, now);
            }
        }
    }

    /// Takes call `id` off its connection, returning the connection. A call that
    /// will get no reply (timed out, cancelled) has its key `retired` there: a late
    /// reply must be dropped; an answered call leaves the key free.
    fn unplace(&mut self, id: CallId, p: &mut Pending, retire: bool) -> Option<ConnId> {
        let (conn, deadline) = p.placed.take()?;
        self.deadlines.remove(&(deadline, id));
        if let Some(c) = self.connections.get_mut(&conn) {
            c.busy.remove(&p.key);
            if let Some(b) = self.brokers.get_mut(&c.broker) {
                b.outstanding = b.outstanding.saturating_sub(1);
            }
            if retire {
                c.retired.insert(p.key.clone());
            }
        }
        Some(conn)
    }

    /// A place on `conn` was freed: close it if it has retired keys and nothing
    /// outstanding, and give waiting calls a chance.
    fn after_free(&mut self, conn: ConnId, now: Instant) {
        if let Some(c) = self.connections.get(&conn) {
            if c.busy.is_empty() && !c.retired.is_empty() {
                self.connections.remove(&conn);
                self.actions.push_back(Action::Close(conn));
            }
        }
        for id in std::mem::take(&mut self.waiting) {
            self.place(id, now);
        }
    }
}

/// The error of call `p` that got no reply in any attempt.
fn timeout_error(p: &Pending) -> ClientError {
    ClientError::Timeout {
        service: String::from_utf8_lossy(&p.service).into_owned(),
        attempts: p.limits.attempts.max(1),
        timeout: p.limits.timeout,
    }
}

#[cfg(test)]
#[path = "tests/dispatch.rs"]
mod tests;
