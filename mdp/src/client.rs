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

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;
use zmtp::proto::MechanismConfig;
use zmtp::CurveKeyPair;
use zmtp::{Message, Socket, SocketOptions, SocketType};

use crate::codec::{CodecError, Format};
use crate::proto::{Dialect, Reply, ReplyKind, Request};

/// Client settings.
#[derive(Debug, Clone)]
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
    service: Bytes,
    body: Message,
    limits: CallOptions,
    replies: mpsc::Sender<Result<ReplyPart, ClientError>>,
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
    options: Arc<ClientOptions>,
}

impl Client {
    /// A client of the broker at `endpoint` with default options (MDP 0.1). Must be
    /// called inside a tokio runtime; connecting happens in the background.
    pub fn connect(endpoint: &str) -> Result<Client, ClientError> {
        Client::connect_with(endpoint, ClientOptions::default())
    }

    /// A client with the given options.
    pub fn connect_with(endpoint: &str, options: ClientOptions) -> Result<Client, ClientError> {
        endpoint
            .parse::<zmtp::Endpoint>()
            .map_err(zmtp::Error::from)?;
        let (calls, rx) = mpsc::channel(1024);
        let options = Arc::new(options);
        tokio::spawn(Dispatcher::new(endpoint.to_string(), options.clone()).run(rx));
        Ok(Client { calls, options })
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
        while let Some(part) = replies.recv().await {
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
                let part = replies.recv().await?;
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
    ) -> Result<mpsc::Receiver<Result<ReplyPart, ClientError>>, ClientError> {
        let (tx, rx) = mpsc::channel(64);
        let call = Call {
            service,
            body,
            limits,
            replies: tx,
        };
        self.calls
            .send(call)
            .await
            .map_err(|_| ClientError::Closed)?;
        Ok(rx)
    }
}

type CallId = u64;
type ConnId = u64;

/// Which outstanding request a reply can belong to on one connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ReplyKey {
    Service(Bytes),
    Connection,
}

struct Pending {
    call: Call,
    key: ReplyKey,
    attempts_left: u32,
    placed: Option<(ConnId, Instant)>,
}

struct Connection {
    outbox: mpsc::UnboundedSender<Message>,
    busy: HashMap<ReplyKey, CallId>,
    retired: HashSet<ReplyKey>,
}

/// The background task: owns the connections and every outstanding request.
struct Dispatcher {
    endpoint: String,
    options: Arc<ClientOptions>,
    connections: HashMap<ConnId, Connection>,
    pending: HashMap<CallId, Pending>,
    waiting: VecDeque<CallId>,
    inbox_tx: mpsc::Sender<(ConnId, Message)>,
    inbox: mpsc::Receiver<(ConnId, Message)>,
    next_id: u64,
}

impl Dispatcher {
    fn new(endpoint: String, options: Arc<ClientOptions>) -> Dispatcher {
        let (inbox_tx, inbox) = mpsc::channel(1024);
        Dispatcher {
            endpoint,
            options,
            connections: HashMap::new(),
            pending: HashMap::new(),
            waiting: VecDeque::new(),
            inbox_tx,
            inbox,
            next_id: 0,
        }
    }

    async fn run(mut self, mut calls: mpsc::Receiver<Call>) {
        let mut accepting = true;
        loop {
            if !accepting && self.pending.is_empty() {
                return; // every Client handle is gone and nothing is outstanding
            }
            let deadline = self.next_deadline();
            tokio::select! {
                call = calls.recv(), if accepting => match call {
                    Some(call) => self.submit(call),
                    None => accepting = false,
                },
                Some((conn, msg)) = self.inbox.recv() => self.on_reply(conn, msg),
                () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    self.expire(Instant::now());
                }
            }
        }
    }

    fn submit(&mut self, call: Call) {
        let key = if self.options.dialect == Dialect::Majortomo {
            ReplyKey::Connection
        } else {
            ReplyKey::Service(call.service.clone())
        };
        let id = self.next_id;
        self.next_id += 1;
        let attempts_left = call.limits.attempts.max(1);
        self.pending.insert(
            id,
            Pending {
                call,
                key,
                attempts_left,
                placed: None,
            },
        );
        self.place(id);
    }

    /// Sends request `id` on a connection where its reply key is free, opening one if
    /// needed and allowed; otherwise it waits for a free slot.
    fn place(&mut self, id: CallId) {
        let Some(p) = self.pending.get(&id) else {
            return;
        };
        let free = self
            .connections
            .iter()
            .find(|(_, c)| !c.busy.contains_key(&p.key) && !c.retired.contains(&p.key))
            .map(|(cid, _)| *cid);
        let conn = match free {
            Some(conn) => conn,
            None if self.connections.len() < self.options.max_connections.max(1) => self.open(),
            None => {
                self.waiting.push_back(id);
                return;
            }
        };
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        p.attempts_left = p.attempts_left.saturating_sub(1);
        p.placed = Some((conn, Instant::now() + p.call.limits.timeout));
        let request = Request {
            dialect: self.options.dialect,
            enveloped: self.options.dialect.leading_empty(),
            service: p.call.service.clone(),
            body: p.call.body.clone(),
        };
        if let Some(c) = self.connections.get_mut(&conn) {
            c.busy.insert(p.key.clone(), id);
            let _ = c.outbox.send(request.encode());
        }
    }

    fn open(&mut self) -> ConnId {
        let id = self.next_id;
        self.next_id += 1;
        // Bounded in practice: at most one outstanding request per reply key.
        let (outbox, rx) = mpsc::unbounded_channel();
        let options = SocketOptions::default()
            .linger(Duration::ZERO)
            .mechanism(self.options.mechanism.clone());
        tokio::spawn(connection(
            id,
            self.endpoint.clone(),
            options,
            rx,
            self.inbox_tx.clone(),
        ));
        self.connections.insert(
            id,
            Connection {
                outbox,
                busy: HashMap::new(),
                retired: HashSet::new(),
            },
        );
        id
    }

    fn on_reply(&mut self, conn: ConnId, msg: Message) {
        let dialect = self.options.dialect;
        let reply = match Reply::parse(dialect, dialect.leading_empty(), msg.frames()) {
            Ok(reply) => reply,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring a malformed reply from the broker");
                return;
            }
        };
        let key = match (&reply.service, dialect) {
            (_, Dialect::Majortomo) => ReplyKey::Connection,
            (Some(service), _) => ReplyKey::Service(service.clone()),
            (None, _) => return,
        };
        let Some(c) = self.connections.get_mut(&conn) else {
            return;
        };
        let Some(&id) = c.busy.get(&key) else {
            tracing::debug!("dropping a reply to a request that timed out or was abandoned");
            return;
        };
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        let part = ReplyPart {
            kind: reply.kind,
            body: reply.body,
        };
        let delivered = p.call.replies.try_send(Ok(part)).is_ok();
        if reply.kind == ReplyKind::Final || !delivered {
            c.busy.remove(&key);
            self.pending.remove(&id);
            self.after_free(conn);
        } else if let Some((_, deadline)) = &mut p.placed {
            // A partial reply proves progress: the timeout restarts.
            *deadline = Instant::now() + p.call.limits.timeout;
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.pending
            .values()
            .filter_map(|p| p.placed.map(|(_, d)| d))
            .min()
    }

    fn expire(&mut self, now: Instant) {
        let expired: Vec<CallId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.placed.is_some_and(|(_, d)| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let Some(p) = self.pending.get_mut(&id) else {
                continue;
            };
            let Some((conn, _)) = p.placed.take() else {
                continue;
            };
            if let Some(c) = self.connections.get_mut(&conn) {
                c.busy.remove(&p.key);
                c.retired.insert(p.key.clone());
            }
            if p.attempts_left > 0 && !p.call.replies.is_closed() {
                tracing::debug!(service = %zmtp::printable(&p.call.service), "request timed out; retrying");
                self.place(id);
            } else if let Some(p) = self.pending.remove(&id) {
                let _ = p.call.replies.try_send(Err(ClientError::Timeout {
                    service: String::from_utf8_lossy(&p.call.service).into_owned(),
                    attempts: p.call.limits.attempts.max(1),
                    timeout: p.call.limits.timeout,
                }));
            }
            self.after_free(conn);
        }
    }

    /// A slot on `conn` was freed: close it if it has retired keys and nothing
    /// outstanding, and give waiting requests a chance.
    fn after_free(&mut self, conn: ConnId) {
        if let Some(c) = self.connections.get(&conn) {
            if c.busy.is_empty() && !c.retired.is_empty() {
                self.connections.remove(&conn); // dropping the outbox ends its task
            }
        }
        let waiting = std::mem::take(&mut self.waiting);
        for id in waiting {
            self.place(id);
        }
    }
}

/// One broker connection: a DEALER, fed by the dispatcher, feeding replies back.
async fn connection(
    id: ConnId,
    endpoint: String,
    options: SocketOptions,
    mut outbox: mpsc::UnboundedReceiver<Message>,
    inbox: mpsc::Sender<(ConnId, Message)>,
) {
    let Ok(mut socket) = Socket::with_options(SocketType::Dealer, options) else {
        return;
    };
    if socket.connect(&endpoint).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
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
                    if inbox.send((id, msg)).await.is_err() {
                        return;
                    }
                }
                Err(_) => return,
            },
        }
    }
}
