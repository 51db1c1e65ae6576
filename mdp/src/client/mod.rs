//! [`Client`]: requests to services through a broker, in any dialect, many at once.
//!
//! # Correlating replies
//!
//! MDP replies carry no request id: a reply names at most its service, and majortomo's
//! not even that. So a reply can only be matched to its request if, on a connection,
//! at most one request with the same *reply key* is outstanding. The key is the service
//! (or the whole connection for dialects whose replies omit it). The client multiplexes
//! requests to different services over one DEALER connection and opens another
//! connection only for concurrent requests to the same service, so every reply reaches
//! the caller that asked for it, with any broker.
//!
//! # Timeouts and retries
//!
//! A request that gets no reply within the timeout is sent again, up to `attempts` in
//! all (defaults: 2500 ms × 3, as zguide's `mdcliapi`). A late reply to a timed-out
//! attempt must not be taken for the retry's, so that key is retired on that
//! connection, and a connection with retired keys is closed and replaced as soon as it
//! has nothing outstanding (the RFC's "reconnect after a timeout"). When all attempts
//! fail the caller gets [`ClientError::Timeout`].

pub mod dispatch;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;
use zmtp::clock::now;
use zmtp::proto::MechanismConfig;
use zmtp::CurveKeyPair;
use zmtp::{Message, Socket, SocketEvent, SocketOptions, SocketType};

use crate::codec::{CodecError, Format};
use crate::discovery::{self, Brokers, Change};
use crate::proto::{Dialect, ReplyKind};
use dispatch::{Action, CallId, ConnId, Dispatch};

/// Client settings: start from [`ClientOptions::default`] and change what you need.
///
/// ```
/// use std::time::Duration;
/// use mdp::{ClientOptions, Dialect};
///
/// let options = ClientOptions::default()
///     .dialect(Dialect::Mdp02)
///     .timeout(Duration::from_secs(1))
///     .attempts(5);
/// assert_eq!(options.attempts, 5);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// How the broker expects client messages to be framed (MDP 0.1 by default; use
    /// [`Dialect::Mdp02`] for RFC 18 brokers, [`Dialect::Majortomo`] for majortomo).
    pub dialect: Dialect,
    /// How long to wait for a reply (or the next partial reply) before trying again.
    pub timeout: Duration,
    /// Attempts in all before giving up with [`ClientError::Timeout`].
    pub attempts: u32,
    /// Most broker connections the client opens for concurrent requests to one service.
    pub max_connections: usize,
    /// Format of typed bodies in [`Client::call`].
    pub format: Format,
    /// Security towards the broker: NULL by default; see [`ClientOptions::curve`].
    pub mechanism: MechanismConfig,
}

impl ClientOptions {
    /// How the broker expects client messages to be framed.
    pub fn dialect(mut self, dialect: Dialect) -> ClientOptions {
        self.dialect = dialect;
        self
    }

    /// How long to wait for a reply (or the next partial reply) before trying again.
    pub fn timeout(mut self, timeout: Duration) -> ClientOptions {
        self.timeout = timeout;
        self
    }

    /// Attempts in all before giving up with [`ClientError::Timeout`].
    pub fn attempts(mut self, attempts: u32) -> ClientOptions {
        self.attempts = attempts;
        self
    }

    /// Most broker connections the client opens for concurrent requests to one service.
    pub fn max_connections(mut self, max_connections: usize) -> ClientOptions {
        self.max_connections = max_connections;
        self
    }

    /// Format of typed bodies in [`Client::call`].
    pub fn format(mut self, format: Format) -> ClientOptions {
        self.format = format;
        self
    }

    /// Security towards the broker (see also [`ClientOptions::curve`]).
    pub fn mechanism(mut self, mechanism: MechanismConfig) -> ClientOptions {
        self.mechanism = mechanism;
        self
    }

    /// Talks to the broker over CURVE: `keys` is this client's key pair (the
    /// broker's allow-list names its public key), `broker_public` the broker's
    /// public key.
    ///
    /// ```
    /// use mdp::ClientOptions;
    /// use zmtp::CurveKeyPair;
    ///
    /// let broker = CurveKeyPair::generate();
    /// let options = ClientOptions::default().curve(CurveKeyPair::generate(), broker.public);
    /// assert_eq!(options.mechanism.name(), zmtp::proto::MechanismName::CURVE);
    /// ```
    pub fn curve(mut self, keys: CurveKeyPair, broker_public: [u8; 32]) -> ClientOptions {
        self.mechanism = MechanismConfig::curve_client(keys, broker_public);
        self
    }
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            dialect: Dialect::Mdp01,
            timeout: Duration::from_millis(2500),
            attempts: 3,
            max_connections: 64,
            format: Format::MessagePack,
            mechanism: MechanismConfig::Null,
        }
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No reply after every attempt.
    #[error("no reply from service {service:?} after {attempts} attempts of {timeout:?}")]
    Timeout {
        /// The service asked.
        service: String,
        /// Attempts made.
        attempts: u32,
        /// Timeout of each.
        timeout: Duration,
    },
    /// The typed body could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A typed reply has no body frame.
    #[error("the reply has no body frame")]
    EmptyReply,
    /// The client's background task is gone.
    #[error("the client is closed")]
    Closed,
    /// The broker endpoint is invalid.
    #[error(transparent)]
    Socket(#[from] zmtp::Error),
}

/// One reply to a request: a partial one (MDP 0.2 streaming) or the final one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyPart {
    /// Partial or final.
    pub kind: ReplyKind,
    /// The reply body.
    pub body: Message,
}

/// Timeout and attempts of one call (see [`Client::request_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallOptions {
    /// How long to wait for a reply (or the next partial reply) before trying again.
    pub timeout: Duration,
    /// Attempts in all before giving up with [`ClientError::Timeout`].
    pub attempts: u32,
}

struct Call {
    id: CallId,
    service: Bytes,
    body: Message,
    limits: CallOptions,
    replies: mpsc::Sender<Result<ReplyPart, ClientError>>,
}

/// Tells the client's task that a call's caller stopped waiting, unless disarmed:
/// its place is freed at once, not at its timeout.
struct CancelOnDrop {
    id: CallId,
    cancels: mpsc::UnboundedSender<CallId>,
    armed: bool,
}

impl CancelOnDrop {
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.cancels.send(self.id);
        }
    }
}

/// The replies of one call, and its cancellation when dropped early.
struct Replies {
    rx: mpsc::Receiver<Result<ReplyPart, ClientError>>,
    guard: CancelOnDrop,
}

impl Replies {
    /// The next reply part; `None` when the client's task is gone. After a final
    /// part or an error, the call is over and dropping this cancels nothing.
    async fn next(&mut self) -> Option<Result<ReplyPart, ClientError>> {
        let part = self.rx.recv().await;
        if !matches!(&part, Some(Ok(p)) if p.kind == ReplyKind::Partial) {
            self.guard.disarm();
        }
        part
    }
}

/// A Majordomo client; cheap to clone, and every clone shares the connections.
///
/// ```no_run
/// use mdp::client::Client;
///
/// # async fn run() -> Result<(), mdp::client::ClientError> {
/// let client = Client::connect("tcp://127.0.0.1:5555")?;
/// let reply = client.request("echo", "hello").await?;
/// println!("{:?}", reply);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    calls: mpsc::Sender<Call>,
    cancels: mpsc::UnboundedSender<CallId>,
    next_call: Arc<AtomicU64>,
    options: Arc<ClientOptions>,
}

impl Client {
    /// A client of the broker at `brokers` with default options (MDP 0.1). Must be
    /// called inside a tokio runtime; connecting happens in the background.
    ///
    /// `brokers` is one endpoint or several ([`Brokers`]): requests spread over
    /// them and a request that times out is retried at another; `tcp://name:port`
    /// stands for every address of `name`, resolved again every few seconds.
    pub fn connect(brokers: impl Into<Brokers>) -> Result<Client, ClientError> {
        Client::connect_with(brokers, ClientOptions::default())
    }

    /// A client with the given options.
    pub fn connect_with(
        brokers: impl Into<Brokers>,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let brokers = brokers.into();
        brokers.validate()?;
        let (calls, calls_rx) = mpsc::channel(1024);
        let (cancels, cancels_rx) = mpsc::unbounded_channel();
        let options = Arc::new(options);
        // Names are resolved in the background; until then their requests wait.
        let literal: Vec<String> = if brokers.needs_resolving() {
            Vec::new()
        } else {
            brokers.endpoints().to_vec()
        };
        let dispatch = Dispatch::new(options.dialect, options.max_connections, &literal);
        let resolved = if brokers.needs_resolving() {
            discovery::watch(brokers)
        } else {
            mpsc::channel(1).1
        };
        let task = Task {
            dispatch,
            options: options.clone(),
            replies: HashMap::new(),
            connections: HashMap::new(),
        };
        tokio::spawn(task.run(calls_rx, cancels_rx, resolved));
        Ok(Client {
            calls,
            cancels,
            next_call: Arc::new(AtomicU64::new(0)),
            options,
        })
    }

    /// The options in use.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// The client's default timeout and attempts.
    pub fn call_options(&self) -> CallOptions {
        CallOptions {
            timeout: self.options.timeout,
            attempts: self.options.attempts,
        }
    }

    /// Sends a request and waits for the (final) reply. Partial replies of a streamed
    /// answer are concatenated in order.
    pub async fn request(
        &self,
        service: impl Into<Bytes>,
        body: impl Into<Message>,
    ) -> Result<Message, ClientError> {
        self.request_with(service, body, self.call_options()).await
    }

    /// [`Client::request`] with this call's own timeout and attempts.
    pub async fn request_with(
        &self,
        service: impl Into<Bytes>,
        body: impl Into<Message>,
        limits: CallOptions,
    ) -> Result<Message, ClientError> {
        let mut replies = self.start(service.into(), body.into(), limits).await?;
        let mut all = Message::new();
        while let Some(part) = replies.next().await {
            let part = part?;
            all.extend(part.body);
            if part.kind == ReplyKind::Final {
                return Ok(all);
            }
        }
        Err(ClientError::Closed)
    }

    /// Sends a request and yields its replies as they come: any partial replies, then
    /// the final one (MDP 0.2 streaming; other dialects yield one final reply).
    pub async fn request_stream(
        &self,
        service: impl Into<Bytes>,
        body: impl Into<Message>,
    ) -> Result<impl Stream<Item = Result<ReplyPart, ClientError>>, ClientError> {
        let replies = self
            .start(service.into(), body.into(), self.call_options())
            .await?;
        Ok(futures_util::stream::unfold(
            (replies, false),
            |(mut replies, done)| async move {
                if done {
                    return None;
                }
                let part = replies.next().await?;
                let done = !matches!(&part, Ok(p) if p.kind == ReplyKind::Partial);
                Some((part, (replies, done)))
            },
        ))
    }

    /// Sends a typed request and decodes the typed reply (one frame each, in the
    /// client's [`Format`], MessagePack by default).
    pub async fn call<Req, Resp>(
        &self,
        service: impl Into<Bytes>,
        request: &Req,
    ) -> Result<Resp, ClientError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let format = self.options.format;
        let reply = self.request(service, format.encode(request)?).await?;
        let frame = reply.first().ok_or(ClientError::EmptyReply)?;
        Ok(format.decode(frame)?)
    }

    /// Asks the broker whether a worker serves `name` (MMI `mmi.service`, RFC 8).
    pub async fn service_exists(&self, name: impl Into<Bytes>) -> Result<bool, ClientError> {
        let reply = self
            .request(&b"mmi.service"[..], Message::from(name.into()))
            .await?;
        Ok(reply.first().is_some_and(|code| code == "200"))
    }

    async fn start(
        &self,
        service: Bytes,
        body: Message,
        limits: CallOptions,
    ) -> Result<Replies, ClientError> {
        let (tx, rx) = mpsc::channel(64);
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        let call = Call {
            id,
            service,
            body,
            limits,
            replies: tx,
        };
        self.calls
            .send(call)
            .await
            .map_err(|_| ClientError::Closed)?;
        let guard = CancelOnDrop {
            id,
            cancels: self.cancels.clone(),
            armed: true,
        };
        Ok(Replies { rx, guard })
    }
}

/// The client's task: carries out what the [`Dispatch`] decides, with connection
/// tasks, reply channels and a timer.
struct Task {
    dispatch: Dispatch,
    options: Arc<ClientOptions>,
    /// Where each outstanding call's replies go.
    replies: HashMap<CallId, mpsc::Sender<Result<ReplyPart, ClientError>>>,
    /// What each connection task sends (unbounded: at most one outstanding request
    /// per reply key and connection).
    connections: HashMap<ConnId, mpsc::UnboundedSender<Message>>,
}

impl Task {
    async fn run(
        mut self,
        mut calls: mpsc::Receiver<Call>,
        mut cancels: mpsc::UnboundedReceiver<CallId>,
        mut resolved: mpsc::Receiver<Change>,
    ) {
        let (inbox_tx, mut inbox) = mpsc::channel::<(ConnId, FromConn)>(1024);
        let mut accepting = true;
        loop {
            self.carry_out(&inbox_tx);
            if !accepting && self.dispatch.is_idle() {
                return; // every Client handle is gone and nothing is outstanding
            }
            let deadline = self.dispatch.poll_timeout().map(Instant::from_std);
            tokio::select! {
                call = calls.recv(), if accepting => match call {
                    Some(call) => {
                        self.replies.insert(call.id, call.replies);
                        self.dispatch.submit(call.id, call.service, call.body, call.limits, now());
                    }
                    None => accepting = false,
                },
                Some(id) = cancels.recv() => {
                    self.replies.remove(&id);
                    self.dispatch.cancel(id, now());
                }
                Some((conn, from)) = inbox.recv() => match from {
                    FromConn::Message(msg) => self.dispatch.handle_reply(conn, &msg, now()),
                    FromConn::Up => self.dispatch.handle_up(conn),
                    FromConn::Down => self.dispatch.handle_down(conn, now()),
                },
                Some(change) = resolved.recv() => self.dispatch.set_brokers(&change.current, now()),
                () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    self.dispatch.handle_timeout(now());
                }
            }
        }
    }

    /// Does everything the dispatch asked for.
    fn carry_out(&mut self, inbox: &mpsc::Sender<(ConnId, FromConn)>) {
        while let Some(action) = self.dispatch.poll_action() {
            match action {
                Action::Open(conn, endpoint) => {
                    let (outbox, rx) = mpsc::unbounded_channel();
                    let options = SocketOptions::default()
                        .linger(Duration::ZERO)
                        .mechanism(self.options.mechanism.clone());
                    tokio::spawn(connection(conn, endpoint, options, rx, inbox.clone()));
                    self.connections.insert(conn, outbox);
                }
                // Dropping the sender ends the connection's task.
                Action::Close(conn) => drop(self.connections.remove(&conn)),
                Action::Send(conn, msg) => {
                    if let Some(outbox) = self.connections.get(&conn) {
                        let _ = outbox.send(msg);
                    }
                }
                Action::Deliver(id, part) => {
                    let last = part.kind == ReplyKind::Final;
                    let delivered = self
                        .replies
                        .get(&id)
                        .is_some_and(|tx| tx.try_send(Ok(part)).is_ok());
                    if last || !delivered {
                        self.replies.remove(&id);
                    }
                    if !delivered && !last {
                        // The caller is gone or not keeping up with the stream.
                        self.dispatch.cancel(id, now());
                    }
                }
                Action::Fail(id, error) => {
                    if let Some(tx) = self.replies.remove(&id) {
                        let _ = tx.try_send(Err(error));
                    }
                }
            }
        }
    }
}

/// What a connection task tells the client's task.
enum FromConn {
    /// A message from the broker.
    Message(Message),
    /// The handshake succeeded.
    Up,
    /// Connecting failed, or the connection was lost (zmtp tries again).
    Down,
}

/// One broker connection: a DEALER, fed by the dispatcher, feeding replies back,
/// and telling when it comes up and goes down.
async fn connection(
    id: ConnId,
    endpoint: String,
    options: SocketOptions,
    mut outbox: mpsc::UnboundedReceiver<Message>,
    inbox: mpsc::Sender<(ConnId, FromConn)>,
) {
    let Ok(mut socket) = Socket::with_options(SocketType::Dealer, options) else {
        return;
    };
    let mut monitor = socket.monitor();
    if socket.connect(&endpoint).is_err() {
        return;
    }
    loop {
        tokio::select! {
            Some(event) = monitor.recv() => {
                let told = match event {
                    SocketEvent::HandshakeSucceeded { .. } => Some(FromConn::Up),
                    SocketEvent::ConnectRetried { .. } | SocketEvent::Disconnected { .. } => Some(FromConn::Down),
                    _ => None,
                };
                if let Some(told) = told {
                    if inbox.send((id, told)).await.is_err() {
                        return;
                    }
                }
            }
            out = outbox.recv() => match out {
                Some(msg) => {
                    if socket.send(msg).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            received = socket.recv() => match received {
                Ok(msg) => {
                    if inbox.send((id, FromConn::Message(msg))).await.is_err() {
                        return;
                    }
                }
                Err(_) => return,
            },
        }
    }
}
