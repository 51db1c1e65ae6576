//! [`Session`]: every decision of one [`Worker`](super::Worker) connection to the
//! broker, sans IO: registering, heartbeats both ways, when the broker counts as
//! dead, what a handler's outcome puts on the wire, and when to start over.
//!
//! It takes the broker's messages, the handlers' replies and failures, and the time,
//! and returns [`Action`]s (send a message, serve a request, end the session) and its
//! next deadline. The worker's task runs the handlers and moves the messages.
//!
//! The rules:
//! - a session starts with READY for the service;
//! - a HEARTBEAT goes to the broker every interval, busy or idle (the handler runs
//!   beside the session), and every message from the broker restores its liveness;
//!   after `liveness` intervals without one, the broker counts as dead and the
//!   session ends to reconnect;
//! - the session is *established* once the broker sent a HEARTBEAT or a REQUEST
//!   (it accepted the worker), which the reconnect [`Backoff`](zmtp::Backoff) uses;
//! - a DISCONNECT from the broker ends the session to reconnect and register again;
//! - a handler's parts go out as PARTIAL replies and its end as FINAL (dialects
//!   without streaming get one reply: the shell gathers the parts);
//! - a handler that fails gets the client an error reply where the dialect has one
//!   (Overseer's `{"error": text}`); otherwise the session ends to reconnect, so the
//!   broker does not keep the worker marked busy and the client's retry reaches a
//!   healthy worker;
//! - a session that ends sends DISCONNECT first (best effort), so the broker forgets
//!   the registration at once.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zmtp::Message;

use crate::codec::Format;
use crate::proto::{Dialect, ReplyKind, ToWorker, WorkerCommand};

/// The settings of a session.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// How the broker expects worker messages to be framed.
    pub dialect: Dialect,
    /// The service offered.
    pub service: Bytes,
    /// Heartbeat interval.
    pub heartbeat_interval: Duration,
    /// Silent intervals after which the broker counts as dead.
    pub liveness: u32,
}

impl SessionConfig {
    /// A session for `service` in `dialect`, heartbeating every `heartbeat_interval`
    /// and giving the broker up after `liveness` silent intervals.
    pub fn new(
        dialect: Dialect,
        service: Bytes,
        heartbeat_interval: Duration,
        liveness: u32,
    ) -> SessionConfig {
        SessionConfig {
            dialect,
            service,
            heartbeat_interval,
            liveness,
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum End {
    /// The worker was asked to stop.
    Shutdown,
    /// Reconnect and register again.
    Reconnect {
        /// Why, for the logs.
        reason: &'static str,
        /// The broker had accepted the worker (sent a HEARTBEAT or a REQUEST).
        established: bool,
    },
}

/// What the worker's task must do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Send this to the broker.
    Send(Message),
    /// Run the handler on a request; its outcome comes back through
    /// [`Session::handle_part`] and [`Session::handle_failure`].
    Serve {
        /// The client to answer (its address, opaque).
        client: Bytes,
        /// The request body.
        body: Message,
    },
    /// The session is over; nothing more comes out of it.
    End(End),
}

/// One worker session with the broker.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    /// Heartbeat intervals left before the broker counts as dead.
    liveness_left: u32,
    established: bool,
    next_heartbeat: Instant,
    ended: bool,
    actions: VecDeque<Action>,
}

impl Session {
    /// A session starting at `now`: READY is the first action.
    pub fn new(config: SessionConfig, now: Instant) -> Session {
        let ready = WorkerCommand::Ready {
            service: config.service.clone(),
        };
        let mut session = Session {
            liveness_left: config.liveness.max(1),
            established: false,
            next_heartbeat: now + config.heartbeat_interval,
            ended: false,
            actions: VecDeque::new(),
            config,
        };
        session.send(&ready);
        session
    }

    /// A message from the broker.
    pub fn handle_message(&mut self, msg: &Message) {
        if self.ended {
            return;
        }
        self.liveness_left = self.config.liveness.max(1);
        match ToWorker::parse(self.config.dialect, msg.frames()) {
            Ok(ToWorker::Request { client, body }) => {
                self.established = true;
                self.actions.push_back(Action::Serve { client, body });
            }
            Ok(ToWorker::Heartbeat) => self.established = true,
            Ok(ToWorker::Disconnect) => self.end("the broker sent DISCONNECT"),
            Err(e) => tracing::warn!(error = %e, "ignoring a malformed message from the broker"),
        }
    }

    /// A part of the reply to `client`: partial, or the final one.
    pub fn handle_part(&mut self, client: Bytes, kind: ReplyKind, body: Message) {
        if !self.ended {
            self.send(&WorkerCommand::Reply { client, kind, body });
        }
    }

    /// The handler for `client` failed with `error`.
    pub fn handle_failure(&mut self, client: Bytes, error: &str) {
        if self.ended {
            return;
        }
        tracing::error!(service = %zmtp::printable(&self.config.service), error, "handler failed");
        match error_reply(self.config.dialect, error) {
            Some(body) => self.handle_part(client, ReplyKind::Final, body),
            None => self.end("a handler failed and the dialect has no error reply"),
        }
    }

    /// The worker is stopping: DISCONNECT, then the end.
    pub fn shutdown(&mut self) {
        if !self.ended {
            self.send(&WorkerCommand::Disconnect);
            self.ended = true;
            self.actions.push_back(Action::End(End::Shutdown));
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.ended).then_some(self.next_heartbeat)
    }

    /// Time passed: a heartbeat is due, or the broker has been silent too long.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ended || now < self.next_heartbeat {
            return;
        }
        // Ticks missed while the task was busy are not made up: the next one is an
        // interval from now (tokio's `MissedTickBehavior::Delay`).
        self.next_heartbeat = now + self.config.heartbeat_interval;
        self.liveness_left = self.liveness_left.saturating_sub(1);
        if self.liveness_left == 0 {
            self.end("the broker went silent");
        } else {
            self.send(&WorkerCommand::Heartbeat);
        }
    }

    /// The next thing to do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn send(&mut self, command: &WorkerCommand) {
        self.actions
            .push_back(Action::Send(command.encode(self.config.dialect)));
    }

    /// Ends the session to reconnect, telling the broker first.
    fn end(&mut self, reason: &'static str) {
        self.send(&WorkerCommand::Disconnect);
        self.ended = true;
        self.actions.push_back(Action::End(End::Reconnect {
            reason,
            established: self.established,
        }));
    }
}

/// Longest error text put in an error reply.
const MAX_ERROR_TEXT: usize = u16::MAX as usize;

/// An error reply in dialects that have one: Overseer's MessagePack
/// `{"error": text}`.
fn error_reply(dialect: Dialect, text: &str) -> Option<Message> {
    match dialect {
        Dialect::Overseer => {
            let mut end = text.len().min(MAX_ERROR_TEXT);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let map = BTreeMap::from([("error", &text[..end])]);
            Format::MessagePack.encode(&map).ok().map(Message::from)
        }
        Dialect::Mdp01 | Dialect::Mdp02 | Dialect::Majortomo => None,
    }
}

#[cfg(test)]
#[path = "tests/session.rs"]
mod tests;
