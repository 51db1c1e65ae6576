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
//! - a cancelled call (its caller stopped waiting) frees its place at once.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use zmtp::Message;

use super::{CallOptions, ClientError, ReplyPart};
use crate::proto::{Dialect, Reply, ReplyKind, Request};

/// A call, numbered by whoever submits it.
pub type CallId = u64;
/// A broker connection, numbered by the dispatch.
pub type ConnId = u64;

/// What the client's task must do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Action {
    /// Open a broker connection known as this number from now on.
    Open(ConnId),
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
}

#[derive(Debug, Default)]
struct Conn {
    busy: HashMap<ReplyKey, CallId>,
    retired: HashSet<ReplyKey>,
}

/// The client's state: connections, outstanding calls and their deadlines.
#[derive(Debug)]
pub struct Dispatch {
    dialect: Dialect,
    max_connections: usize,
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
    /// broker connections.
    pub fn new(dialect: Dialect, max_connections: usize) -> Dispatch {
        Dispatch {
            dialect,
            max_connections: max_connections.max(1),
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
            let Some(mut p) = self.pending.remove(&id) else {
                self.deadlines.remove(&(at, id));
                continue;
            };
            let Some(conn) = self.unplace(id, &mut p, true) else {
                self.pending.insert(id, p);
                continue;
            };
            if p.attempts_left > 0 {
                tracing::debug!(service = %zmtp::printable(&p.service), "request timed out; retrying");
                self.pending.insert(id, p);
                self.place(id, now);
            } else {
                let error = ClientError::Timeout {
                    service: String::from_utf8_lossy(&p.service).into_owned(),
                    attempts: p.limits.attempts.max(1),
                    timeout: p.limits.timeout,
                };
                self.actions.push_back(Action::Fail(id, error));
            }
            self.after_free(conn, now);
        }
    }

    /// The next thing to do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// No call is outstanding.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// Sends call `id` on a connection where its reply key is free, opening one if
    /// needed and allowed; otherwise it waits for a free place.
    fn place(&mut self, id: CallId, now: Instant) {
        let Some(p) = self.pending.get(&id) else {
            return;
        };
        let free = self
            .connections
            .iter()
            .filter(|(_, c)| !c.busy.contains_key(&p.key) && !c.retired.contains(&p.key))
            .map(|(&conn, _)| conn)
            .min();
        let conn = match free {
            Some(conn) => conn,
            None if self.connections.len() < self.max_connections => self.open(),
            None => {
                self.waiting.push_back(id);
                return;
            }
        };
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        p.attempts_left = p.attempts_left.saturating_sub(1);
        let deadline = now + p.limits.timeout;
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
        }
        self.actions.push_back(Action::Send(conn, request.encode()));
    }

    fn open(&mut self) -> ConnId {
        let conn = self.next_conn;
        self.next_conn += 1;
        self.connections.insert(conn, Conn::default());
        self.actions.push_back(Action::Open(conn));
        conn
    }

    /// Takes call `id` off its connection, returning the connection. A call that
    /// will get no reply (timed out, cancelled) has its key `retired` there: a late
    /// reply must be dropped; an answered call leaves the key free.
    fn unplace(&mut self, id: CallId, p: &mut Pending, retire: bool) -> Option<ConnId> {
        let (conn, deadline) = p.placed.take()?;
        self.deadlines.remove(&(deadline, id));
        if let Some(c) = self.connections.get_mut(&conn) {
            c.busy.remove(&p.key);
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

#[cfg(test)]
#[path = "tests/dispatch.rs"]
mod tests;
