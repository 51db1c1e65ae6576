//! Socket monitor: a stream of events about a socket's endpoints and connections,
//! what libzmq's `zmq_socket_monitor` gives, as typed Rust values.
//!
//! A socket sends events only while a [`Monitor`] taken from
//! [`Socket::monitor`](crate::Socket::monitor) is alive. The channel is bounded:
//! a monitor that is not read loses the events that do not fit (counted in
//! [`Monitor::dropped`]), the socket never waits for it.
//!
//! ```
//! use zmtp::{Socket, SocketEvent, SocketType};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), zmtp::Error> {
//! let mut server = Socket::new(SocketType::Router);
//! let mut events = server.monitor();
//! let endpoint = server.bind("tcp://127.0.0.1:0").await?;
//! assert!(matches!(events.recv().await, Some(SocketEvent::Listening { .. })));
//!
//! let mut client = Socket::new(SocketType::Dealer);
//! client.connect(&endpoint.to_string())?;
//! loop {
//!     if let Some(SocketEvent::HandshakeSucceeded { routing_id, .. }) = events.recv().await {
//!         assert!(routing_id.is_some(), "a ROUTER names every peer");
//!         break;
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::transport::Endpoint;

/// What kind of thing ended a handshake or a connection (see [`Reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReasonKind {
    /// The peer closed the connection.
    PeerClosed,
    /// The operating system reported an error (reset, broken pipe, ...).
    Io,
    /// The handshake failed: bad greeting, wrong mechanism or socket type, bad
    /// credentials, timeout.
    Handshake,
    /// Refused before or after the handshake by a cap or a defence (too many
    /// connections, a blocked address, a routing id in use, PAIR taken).
    Refused,
    /// The peer broke the protocol after its handshake (oversized or malformed
    /// message, a CURVE box that does not open).
    Protocol,
    /// Nothing came from the peer within the heartbeat window.
    HeartbeatTimeout,
    /// We closed it (the socket closed, or dropped the peer).
    Local,
}

/// Why a handshake failed or a connection ended: a [`ReasonKind`] to match on, and
/// the details in words (its `Display`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    kind: ReasonKind,
    detail: String,
}

impl Reason {
    /// A reason of `kind`, described by `detail`.
    pub fn new(kind: ReasonKind, detail: impl Into<String>) -> Reason {
        Reason {
            kind,
            detail: detail.into(),
        }
    }

    /// What kind of thing it was.
    pub fn kind(&self) -> ReasonKind {
        self.kind
    }

    /// The details, in words.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// Events a monitor holds before it starts dropping them.
pub const MONITOR_CAPACITY: usize = 4096;

/// Something that happened to one of a socket's endpoints or connections.
///
/// `peer` names the other side as the socket sees it: the remote address of an
/// accepted connection, or the endpoint given to `connect`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SocketEvent {
    /// `bind` succeeded: the socket listens on `endpoint` (with the real port).
    Listening {
        /// The bound endpoint.
        endpoint: Endpoint,
    },
    /// A connection was accepted on a bound endpoint; the handshake starts.
    Accepted {
        /// The listening endpoint.
        endpoint: Endpoint,
        /// The remote address.
        peer: String,
    },
    /// A connection to a connected endpoint is up; the handshake starts.
    Connected {
        /// The endpoint given to `connect`.
        endpoint: Endpoint,
    },
    /// Connecting failed (or the connection was lost) and will be tried again.
    ConnectRetried {
        /// The endpoint given to `connect`.
        endpoint: Endpoint,
        /// How long until the next attempt.
        after: Duration,
    },
    /// The ZMTP handshake completed: messages can flow.
    HandshakeSucceeded {
        /// The peer.
        peer: String,
        /// The routing id a ROUTER gave the peer (None for other socket types).
        routing_id: Option<Bytes>,
    },
    /// The ZMTP handshake failed; the connection is closed.
    HandshakeFailed {
        /// The peer.
        peer: String,
        /// Why.
        reason: Reason,
    },
    /// A connection whose handshake had succeeded is closed.
    Disconnected {
        /// The peer.
        peer: String,
        /// The routing id the peer had on a ROUTER (None for other socket types).
        /// Once this event is sent the id may name a new connection.
        routing_id: Option<Bytes>,
        /// Why.
        reason: Reason,
    },
    /// The socket closed: no more events will come.
    Closed,
}

/// The socket's side of its monitor: one atomic load when nobody listens.
#[derive(Debug, Default)]
pub(crate) struct EventSink {
    /// The monitor's channel and its dropped-events counter.
    sender: Mutex<Option<(mpsc::Sender<SocketEvent>, Arc<AtomicU64>)>>,
    active: AtomicBool,
}

impl EventSink {
    /// Starts sending events to a new monitor (replacing any previous one).
    pub(crate) fn attach(&self) -> Monitor {
        let (tx, events) = mpsc::channel(MONITOR_CAPACITY);
        let dropped = Arc::new(AtomicU64::new(0));
        *self.lock() = Some((tx, dropped.clone()));
        self.active.store(true, Ordering::Release);
        Monitor { events, dropped }
    }

    fn lock(&self) -> MutexGuard<'_, Option<(mpsc::Sender<SocketEvent>, Arc<AtomicU64>)>> {
        // Only ever replaced whole: a poisoned lock still holds a valid value.
        self.sender.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends the event `make` builds if a monitor is attached and has room; never
    /// waits.
    pub(crate) fn emit(&self, make: impl FnOnce() -> SocketEvent) {
        if !self.active.load(Ordering::Acquire) {
            return;
        }
        if let Some((tx, dropped)) = self.lock().as_ref() {
            if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(make()) {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sends [`SocketEvent::Closed`] and detaches the monitor.
    pub(crate) fn close(&self) {
        self.emit(|| SocketEvent::Closed);
        self.active.store(false, Ordering::Release);
        self.lock().take();
    }
}

/// The receiving end of a socket's events; see the [module docs](self).
///
/// It is also a [`futures_util::Stream`] of [`SocketEvent`]s.
#[derive(Debug)]
pub struct Monitor {
    events: mpsc::Receiver<SocketEvent>,
    dropped: Arc<AtomicU64>,
}

impl Monitor {
    /// The next event; `None` once the socket is closed and every event was read.
    pub async fn recv(&mut self) -> Option<SocketEvent> {
        self.events.recv().await
    }

    /// The next event if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<SocketEvent> {
        self.events.try_recv().ok()
    }

    /// Polls for the next event (the poll form of [`Monitor::recv`]).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<SocketEvent>> {
        self.events.poll_recv(cx)
    }

    /// Events lost because this monitor was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl futures_util::Stream for Monitor {
    type Item = SocketEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SocketEvent>> {
        self.get_mut().events.poll_recv(cx)
    }
}
