//! [`Socket`]: the user-facing ZeroMQ socket, and the routing each type applies.
//!
//! Every type is assembled from the same parts, as in libzmq: a table of peers with
//! one bounded [`Pipe`](crate::pipe::Pipe) each, load-balancing over pipes for sending
//! (DEALER, REQ), routing by identity (ROUTER, REP replies), and one fair inbound queue
//! fed by all connections.

mod admission;
mod hwm;
mod inproc;
mod lb;
mod pair;
mod peers;
mod publish;
mod rep;
mod req;
mod router;
mod session;
mod settings;
mod shared;
mod split;
mod sub;
mod subscriber_table;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use std::collections::{HashMap, VecDeque};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use hwm::Attempt;
pub use peers::PeerKey;
pub use router::{PeerId, RouterEvent};
pub use split::{RecvHalf, SendHalf};
pub(crate) use subscriber_table::Subscribers;
use subscriber_table::SubscriptionCaps;
pub use subscriber_table::XpubVerbosity;

use crate::error::Error;
use crate::inbound::{Inbound, InboundKind, InboundQueue};
use crate::monitor::{EventSink, Monitor, SocketEvent};
use crate::options::SocketOptions;
use crate::proto::SocketType;
use crate::transport::{Endpoint, Listener};
use crate::Message;
use peers::{PeerSnapshot, Peers};
use settings::Settings;
use shared::Core;

/// A ZeroMQ socket of any type, talking ZMTP 3.1 over tcp:// and ipc://, and linked
/// directly (no framing, no copy) to sockets of the same process over inproc://.
///
/// Semantics follow libzmq per type: DEALER load-balances sends and fair-queues
/// receives; ROUTER prefixes each received message with the sender's routing id and
/// routes each sent message by its first frame; REQ adds the empty delimiter and
/// enforces send/recv alternation; REP strips and restores the envelope. PUSH
/// load-balances sends and cannot receive; PULL fair-queues receives and cannot send;
/// PAIR talks to exactly one peer (a second connection to it is closed). PUB sends
/// each message to the peers whose subscriptions prefix its first frame and never
/// waits (a peer at its HWM misses the message; what every type does at the
/// high-water mark is in one table, in `socket/hwm.rs`); SUB receives what it subscribed to
/// with [`Socket::subscribe`]. XPUB also receives its peers' subscriptions as
/// `0x01|0x00 + topic` messages; XSUB also subscribes by sending such messages.
///
/// ```
/// use zmtp::{Message, Socket, SocketType};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), zmtp::Error> {
/// let mut server = Socket::new(SocketType::Rep);
/// let endpoint = server.bind("tcp://127.0.0.1:0").await?;
///
/// let mut client = Socket::new(SocketType::Req);
/// client.connect(&endpoint.to_string())?;
///
/// client.send("ping").await?;
/// let request = server.recv().await?;
/// assert_eq!(request, Message::from("ping"));
/// server.send("pong").await?;
/// assert_eq!(client.recv().await?, Message::from("pong"));
/// # Ok(())
/// # }
/// ```
///
/// Dropping a socket closes it; connections keep flushing queued messages in the
/// background for up to the linger period. [`Socket::close`] waits for that.
#[derive(Debug)]
pub struct Socket {
    core: Arc<Core>,
    /// Messages taken from the inbound queue, not yet returned by `recv`.
    received: VecDeque<Inbound>,
    options: SocketOptions,
    snapshot: PeerSnapshot,
    lb_next: usize,
    req: req::ReqState,
    rep: rep::RepState,
    last_endpoint: Option<Endpoint>,
    /// PUB/XPUB: the peers matching the message being sent (reused buffer).
    matched: Vec<PeerKey>,
    /// `poll_send_ready` and `poll_send`: the wake-up they wait for.
    send_ready: Option<Pin<Box<tokio::sync::futures::OwnedNotified>>>,
    /// The message given to the `Sink` and not yet sent.
    sink_slot: Option<Message>,
    /// Each connected tcp/ipc endpoint's stops (one per connect), for
    /// [`Socket::disconnect`].
    connected: HashMap<String, Vec<CancellationToken>>,
}

impl Socket {
    /// A socket with default options. Must be called inside a tokio runtime.
    pub fn new(socket_type: SocketType) -> Socket {
        Socket::build(socket_type, SocketOptions::default())
    }

    /// A socket with the given options.
    pub fn with_options(socket_type: SocketType, options: SocketOptions) -> Result<Socket, Error> {
        validate(&options)?;
        Ok(Socket::build(socket_type, options))
    }

    fn build(socket_type: SocketType, options: SocketOptions) -> Socket {
        Socket {
            core: Arc::new(Core {
                socket_type,
                peers: Peers::new(),
                inbound: Arc::new(InboundQueue::new(options.recv_hwm, options.recv_hwm_bytes)),
                cancel: CancellationToken::new(),
                tasks: TaskTracker::new(),
                events: EventSink::default(),
                pair: pair::PairSlot::default(),
                subscriptions: Default::default(),
                subscribers: match socket_type {
                    SocketType::Pub | SocketType::XPub => Some(Arc::new(Subscribers::new(
                        socket_type == SocketType::XPub,
                        options.xpub_verbosity,
                        SubscriptionCaps::from_options(&options),
                    ))),
                    _ => None,
                },
            }),
            received: VecDeque::new(),
            options,
            snapshot: PeerSnapshot::default(),
            lb_next: 0,
            req: req::ReqState::default(),
            rep: rep::RepState::default(),
            last_endpoint: None,
            matched: Vec::new(),
            send_ready: None,
            sink_slot: None,
            connected: HashMap::new(),
        }
    }

    /// The socket's type.
    pub fn socket_type(&self) -> SocketType {
        self.core.socket_type
    }

    /// The options new endpoints will use.
    pub fn options(&self) -> &SocketOptions {
        &self.options
    }

    /// Changes the options for endpoints bound or connected from now on.
    pub fn set_options(&mut self, options: SocketOptions) -> Result<(), Error> {
        validate(&options)?;
        if let Some(subscribers) = &self.core.subscribers {
            subscribers.set_verbosity(options.xpub_verbosity);
            subscribers.set_caps(SubscriptionCaps::from_options(&options));
        }
        self.options = options;
        Ok(())
    }

    /// The endpoint most recently bound, with the real port (ZMQ_LAST_ENDPOINT).
    pub fn last_endpoint(&self) -> Option<&Endpoint> {
        self.last_endpoint.as_ref()
    }

    /// Starts a monitor: a stream of [`SocketEvent`]s about this socket's endpoints
    /// and connections (listening, accepted, connected, retried, handshakes,
    /// disconnects, closed). A second call replaces the first monitor. See
    /// [`crate::monitor`].
    pub fn monitor(&mut self) -> Monitor {
        self.core.events.attach()
    }

    /// Number of peers: connected ones plus connecting endpoints.
    pub fn peer_count(&self) -> usize {
        self.core.peers.len()
    }

    /// Listens on `endpoint` (`tcp://host:port`, `tcp://*:0`, `ipc:///path`,
    /// `inproc://name`) and returns the endpoint actually bound, e.g. with the port the
    /// OS picked.
    pub async fn bind(&mut self, endpoint: &str) -> Result<Endpoint, Error> {
        let endpoint: Endpoint = endpoint.parse()?;
        if let Endpoint::Inproc(name) = &endpoint {
            let settings = Arc::new(Settings::new(self.core.socket_type, &self.options));
            inproc::bind(&self.core, name, settings).map_err(|source| Error::Bind {
                endpoint: endpoint.clone(),
                source,
            })?;
            self.core.events.emit(|| SocketEvent::Listening {
                endpoint: endpoint.clone(),
            });
            self.last_endpoint = Some(endpoint.clone());
            return Ok(endpoint);
        }
        let (listener, bound) = Listener::bind(&endpoint)
            .await
            .map_err(|source| Error::Bind { endpoint, source })?;
        let settings = Arc::new(Settings::new(self.core.socket_type, &self.options));
        let span =
            tracing::info_span!("zmtp_listen", socket = %self.core.socket_type, endpoint = %bound);
        self.core.events.emit(|| SocketEvent::Listening {
            endpoint: bound.clone(),
        });
        let listen = session::listen(self.core.clone(), listener, bound.clone(), settings);
        self.core.tasks.spawn(listen.instrument(span));
        self.last_endpoint = Some(bound.clone());
        Ok(bound)
    }

    /// Connects to `endpoint` in the background and keeps it connected: the call
    /// returns at once, messages queue (up to the HWM) until the peer is there, and a
    /// lost connection is re-established after the reconnect interval. An
    /// `inproc://` name may be connected before it is bound: the link is made when it
    /// is. Nothing here waits (as `zmq_connect`): only a malformed endpoint is an
    /// error; an unreachable peer is retried, and seen on the [`Monitor`].
    pub fn connect(&mut self, endpoint: &str) -> Result<(), Error> {
        let endpoint: Endpoint = endpoint.parse()?;
        let settings = Arc::new(Settings::new(self.core.socket_type, &self.options));
        let pipe = settings.new_pipe(self.core.peers.writable.clone(), None);
        let key = self.core.peers.add(pipe.clone());
        let span = tracing::info_span!("zmtp", socket = %self.core.socket_type, peer = %endpoint);
        let core = self.core.clone();
        match endpoint {
            Endpoint::Inproc(name) => self
                .core
                .tasks
                .spawn(inproc::keep_connected(core, name, settings, key, pipe).instrument(span)),
            endpoint => {
                // Not a child of the socket's token: closing the socket lingers
                // (keep_connected watches that token itself); this one stops at once.
                let stop = CancellationToken::new();
                self.connected
                    .entry(endpoint.to_string())
                    .or_default()
                    .push(stop.clone());
                // Not instrumented as a whole: its connections' engines run outside
                // the span (see `session::connection`).
                self.core.tasks.spawn(session::keep_connected(
                    core, endpoint, settings, key, pipe, stop, span,
                ))
            }
        };
        Ok(())
    }

    /// Stops what [`Socket::connect`] started for `endpoint` (tcp and ipc): no more
    /// reconnecting, and the connection, if there is one, closes after sending
    /// what is queued for it (within the linger). Messages still queued for it are
    /// dropped with it, as with `zmq_disconnect`.
    ///
    /// ```
    /// use zmtp::{Socket, SocketType};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), zmtp::Error> {
    /// let mut client = Socket::new(SocketType::Dealer);
    /// client.connect("tcp://127.0.0.1:5999")?;
    /// client.disconnect("tcp://127.0.0.1:5999")?;
    /// assert!(client.disconnect("tcp://127.0.0.1:5999").is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn disconnect(&mut self, endpoint: &str) -> Result<(), Error> {
        let endpoint: Endpoint = endpoint.parse()?;
        match self.connected.remove(&endpoint.to_string()) {
            Some(stops) => {
                stops.iter().for_each(CancellationToken::cancel);
                Ok(())
            }
            None => Err(Error::NotConnected(endpoint)),
        }
    }

    /// Sends a message; waits while the socket type says to wait (DEALER and REQ when
    /// every peer's queue is full or there is no peer yet).
    ///
    /// Cancel-safe in the sense that dropping the future never sends part of a
    /// message; a message not yet queued when the future is dropped is not sent.
    pub async fn send(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        let msg = msg.into();
        if msg.is_empty() {
            return Err(Error::EmptyMessage);
        }
        // The common case without the wait's machinery: room at once.
        if let Attempt::Full(msg) = self.try_send_once(msg)? {
            let mut slot = Some(msg);
            std::future::poll_fn(|cx| self.poll_send(cx, &mut slot)).await?;
        }
        let publishes = matches!(
            self.core.socket_type,
            SocketType::Pub | SocketType::XPub | SocketType::XSub
        );
        if publishes && hwm::at_hwm(self.core.socket_type, &self.options) == hwm::AtHwm::Drop {
            // A publisher never waits for room, so a tight publishing loop would
            // otherwise keep the connections' tasks from running (and drop all past
            // the HWM): give the scheduler its turn when the task's budget is spent.
            tokio::task::consume_budget().await;
        }
        Ok(())
    }

    /// Sends the message in `slot` as [`Socket::send`] does, without a future: the
    /// message is taken out of `slot` once it is queued (or dropped by the socket
    /// type's rule at the high-water mark, see the table in `socket/hwm.rs`);
    /// `Pending`, with `cx` registered and the message left in `slot`, while the rule
    /// says wait for room.
    pub fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        slot: &mut Option<Message>,
    ) -> Poll<Result<(), Error>> {
        loop {
            let Some(msg) = slot.take() else {
                return Poll::Ready(Ok(()));
            };
            if msg.is_empty() {
                return Poll::Ready(Err(Error::EmptyMessage));
            }
            // The common case first: room, and no wake-up to register.
            let msg = match self.try_send_once(msg) {
                Ok(Attempt::Done) => return Poll::Ready(Ok(())),
                Ok(Attempt::Full(msg)) => msg,
                Err(e) => return Poll::Ready(Err(e)),
            };
            // Full: register for the wake-up, then look again, so room made in
            // between cannot be missed.
            let writable = &self.core.peers.writable;
            let notified = self
                .send_ready
                .get_or_insert_with(|| Box::pin(writable.clone().notified_owned()));
            notified.as_mut().enable();
            match self.try_send_once(msg) {
                Ok(Attempt::Done) => {
                    self.rearm_send_ready();
                    return Poll::Ready(Ok(()));
                }
                Ok(Attempt::Full(msg)) => *slot = Some(msg),
                Err(e) => {
                    self.rearm_send_ready();
                    return Poll::Ready(Err(e));
                }
            }
            if self.core.cancel.is_cancelled() {
                return Poll::Ready(Err(Error::Closed));
            }
            let Some(notified) = self.send_ready.as_mut() else {
                continue;
            };
            std::task::ready!(notified.as_mut().poll(cx));
            self.rearm_send_ready();
        }
    }

    /// Replaces the wake-up `poll_send` waited for with a fresh one in the same
    /// allocation (a sender at its HWM waits often; this keeps it from allocating
    /// each time).
    fn rearm_send_ready(&mut self) {
        let writable = self.core.peers.writable.clone();
        if let Some(notified) = self.send_ready.as_mut() {
            notified.set(writable.notified_owned());
        }
    }

    /// One attempt to send `msg` by the socket type's routing.
    fn try_send_once(&mut self, msg: Message) -> Result<Attempt, Error> {
        match self.core.socket_type {
            // PAIR has at most one pipe (session.rs refuses a second peer).
            SocketType::Dealer | SocketType::Push | SocketType::Pair => {
                Ok(match self.try_load_balance(msg) {
                    Ok(_) => Attempt::Done,
                    Err(msg) => Attempt::Full(msg),
                })
            }
            SocketType::Req => self.try_send_request(msg),
            SocketType::Router => self.try_send_routed(msg),
            SocketType::Rep => self.send_reply(msg).map(|()| Attempt::Done),
            SocketType::Pub | SocketType::XPub => Ok(self.try_send_published(msg)),
            SocketType::XSub => {
                self.send_upstream(msg);
                Ok(Attempt::Done)
            }
            socket_type @ (SocketType::Pull | SocketType::Sub) => Err(Error::Unsupported {
                socket_type,
                operation: if socket_type == SocketType::Sub {
                    "send (use subscribe/unsubscribe)"
                } else {
                    "send"
                },
            }),
        }
    }

    /// Ready when a [`Socket::send`] would not wait for room: some peer's queue is
    /// below the HWM and below `send_hwm_bytes`, with room for a message it refused
    /// before (DEALER, PUSH, PAIR, REQ; REQ may still refuse a send out of turn), or
    /// the socket type never waits (PUB, XPUB without `xpub_nodrop`, XSUB, ROUTER
    /// without `router_mandatory`, REP). Only this socket fills its queues, so the
    /// room is still there when `send` is called; with a byte limit, a message larger
    /// than the bytes left still waits in `send` until the queue drains. Registers
    /// `cx` for a wake-up otherwise (libzmq `ZMQ_POLLOUT`).
    pub fn poll_send_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if hwm::at_hwm(self.core.socket_type, &self.options) != hwm::AtHwm::WaitForAny {
            return Poll::Ready(());
        }
        loop {
            let writable = &self.core.peers.writable;
            let notified = self
                .send_ready
                .get_or_insert_with(|| Box::pin(writable.clone().notified_owned()));
            // Registered before looking, so room made in between cannot be missed.
            notified.as_mut().enable();
            self.core.peers.refresh(&mut self.snapshot);
            let room = self
                .snapshot
                .ordered
                .iter()
                .any(|(_, pipe)| pipe.has_room());
            if room || self.core.cancel.is_cancelled() {
                self.send_ready = None;
                return Poll::Ready(());
            }
            std::task::ready!(notified.as_mut().poll(cx));
            self.send_ready = None;
        }
    }

    /// Receives the next message.
    ///
    /// Cancel-safe: if the future is dropped before it completes (for example in
    /// `tokio::select!`), no message is lost; it will be returned by the next call.
    pub async fn recv(&mut self) -> Result<Message, Error> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Returns the next message if one is already queued, without waiting
    /// ([`Error::WouldBlock`] otherwise). Useful to drain a burst in one go.
    pub fn try_recv(&mut self) -> Result<Message, Error> {
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        match self.poll_recv(&mut cx) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(Error::WouldBlock),
        }
    }

    /// Polls for the next message (the poll form of [`Socket::recv`]).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message, Error>> {
        match self.core.socket_type {
            SocketType::Router => loop {
                // Arrivals and departures are for `recv_event`.
                let inbound = std::task::ready!(self.poll_inbound(cx))?;
                if inbound.kind == InboundKind::Message {
                    return Poll::Ready(Ok(inbound.msg));
                }
            },
            SocketType::Dealer
            | SocketType::Pull
            | SocketType::Pair
            | SocketType::XPub
            | SocketType::XSub => self.poll_inbound(cx).map_ok(|inb| inb.msg),
            SocketType::Sub => self.poll_subscribed(cx),
            SocketType::Push | SocketType::Pub => Poll::Ready(Err(Error::Unsupported {
                socket_type: self.core.socket_type,
                operation: "recv",
            })),
            SocketType::Req => self.poll_reply(cx),
            SocketType::Rep => self.poll_request(cx),
        }
    }

    fn poll_inbound(&mut self, cx: &mut Context<'_>) -> Poll<Result<Inbound, Error>> {
        loop {
            if let Some(inbound) = self.received.pop_front() {
                return Poll::Ready(Ok(inbound));
            }
            std::task::ready!(self.core.inbound.poll_take(cx, &mut self.received));
        }
    }

    fn poll_subscribed(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message, Error>> {
        loop {
            if let Some(inbound) = self.received.pop_front() {
                return Poll::Ready(Ok(inbound.msg));
            }
            std::task::ready!(self.core.inbound.poll_take(cx, &mut self.received));
            self.filter_received();
        }
    }

    /// Messages waiting in this socket's outbound queues, over all peers: at most the
    /// send HWM per peer (and `send_hwm_bytes` worth of bytes, when set). A PUB whose
    /// subscriber stopped reading stays at that bound and drops the rest.
    pub fn queued(&self) -> usize {
        self.core.peers.queued()
    }

    /// PUB and XPUB: subscriptions ignored so far because a peer, or all peers
    /// together, held as many as the caps allow
    /// ([`SocketOptions::max_subscriptions_per_peer`] and the like); 0 for the other
    /// types.
    pub fn subscriptions_ignored(&self) -> u64 {
        self.core.subscribers.as_ref().map_or(0, |s| s.ignored())
    }

    /// Closes the socket and waits until queued messages are flushed or the linger
    /// period is over.
    pub async fn close(self) {
        let core = self.core.clone();
        drop(self);
        core.tasks.close();
        core.tasks.wait().await;
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.core.inbound.close();
        self.core.cancel.cancel();
        self.core.events.close();
    }
}

/// Sending through a [`futures_util::Sink`]: `poll_ready` and `poll_flush` finish
/// the message given to `start_send` (one at a time), waiting for room as
/// [`Socket::send`] does.
///
/// ```
/// use futures_util::SinkExt;
/// use zmtp::{Message, Socket, SocketType};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), zmtp::Error> {
/// let mut pull = Socket::new(SocketType::Pull);
/// let endpoint = pull.bind("tcp://127.0.0.1:0").await?;
/// let mut push = Socket::new(SocketType::Push);
/// push.connect(&endpoint.to_string())?;
/// push.send_all(&mut futures_util::stream::iter(
///     ["a", "b"].map(|s| Ok(Message::from(s))),
/// ))
/// .await?;
/// assert_eq!(pull.recv().await?, Message::from("a"));
/// assert_eq!(pull.recv().await?, Message::from("b"));
/// # Ok(())
/// # }
/// ```
impl futures_util::Sink<Message> for Socket {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_sink_slot(cx)
    }

    fn start_send(self: Pin<&mut Self>, msg: Message) -> Result<(), Error> {
        let this = self.get_mut();
        if this.sink_slot.is_some() {
            return Err(Error::WouldBlock);
        }
        this.sink_slot = Some(msg);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_sink_slot(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_sink_slot(cx)
    }
}

impl Socket {
    /// Sends what the sink holds, if anything.
    fn poll_sink_slot(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut slot = self.sink_slot.take();
        let polled = self.poll_send(cx, &mut slot);
        self.sink_slot = slot;
        polled
    }
}

impl futures_util::Stream for Socket {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut().poll_recv(cx) {
            Poll::Ready(Err(Error::Closed)) => Poll::Ready(None),
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending => Poll::Pending,
        }
    }
}

fn validate(options: &SocketOptions) -> Result<(), Error> {
    let id = &options.routing_id;
    if id.len() > 255 {
        return Err(Error::InvalidOption("routing id longer than 255 bytes"));
    }
    if id.first() == Some(&0) {
        return Err(Error::InvalidOption(
            "routing id may not start with 0x00 (reserved for generated ids)",
        ));
    }
    Ok(())
}
