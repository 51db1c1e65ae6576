//! [`Worker`]: serves one service through a broker, in any dialect.
//!
//! The worker connects a DEALER to the broker, registers with READY, and answers each
//! REQUEST with the handler's reply. It heartbeats while idle *and* while a handler
//! runs (the handler runs on its own task), counts the broker dead after `liveness`
//! silent intervals, and then reconnects with a fresh socket and registers again; so a
//! broker restart needs nothing from the application. On shutdown it sends DISCONNECT.
//!
//! A handler that returns an error or panics does not stop the worker: the error is
//! logged, the client gets an error reply where the dialect has one (Overseer's
//! `{"error": ...}` map), and otherwise the worker re-registers so the broker does not
//! keep it marked busy forever; the client's retry then reaches a healthy worker.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use futures_util::Stream;
use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use zmtp::clock::now;
use zmtp::proto::MechanismConfig;
use zmtp::{Backoff, CurveKeyPair};
use zmtp::{Message, Socket, SocketOptions, SocketType};

pub mod session;

use crate::codec::Format;
use crate::discovery::{self, Brokers};
use crate::proto::{is_mmi, Dialect, ReplyKind};
use session::{Action, End, Session, SessionConfig};

/// An error from a handler, for the logs (and the client, where the dialect can carry
/// one).
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// What a handler returns: the reply body, or an error.
pub type HandlerResult = Result<Message, HandlerError>;

/// Every kind of handler, reduced to one: a request in, a stream of reply parts out.
type Respond = Arc<dyn Fn(Message) -> BoxStream<'static, HandlerResult> + Send + Sync>;

/// Worker settings; the defaults are zguide's (2.5 s heartbeats, liveness 3). Start
/// from [`WorkerOptions::default`] and change what you need.
///
/// ```
/// use std::time::Duration;
/// use mdp::{Dialect, WorkerOptions};
///
/// let options = WorkerOptions::default()
///     .dialect(Dialect::Majortomo)
///     .heartbeat_interval(Duration::from_millis(500))
///     .concurrency(4);
/// assert_eq!(options.concurrency, 4);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerOptions {
    /// How the broker expects worker messages to be framed.
    pub dialect: Dialect,
    /// Heartbeat interval.
    pub heartbeat_interval: Duration,
    /// Silent intervals after which the broker is presumed dead.
    pub liveness: u32,
    /// First wait before reconnecting; doubles up to `reconnect_interval_max` while
    /// the broker does not accept the worker, and starts over once it has.
    pub reconnect_interval: Duration,
    /// Longest wait between reconnects.
    pub reconnect_interval_max: Duration,
    /// Requests served at once, each through its own broker connection.
    pub concurrency: usize,
    /// Format of typed bodies in [`Worker::run_typed`].
    pub format: Format,
    /// Security towards the broker: NULL by default; see [`WorkerOptions::curve`].
    pub mechanism: MechanismConfig,
}

impl WorkerOptions {
    /// How the broker expects worker messages to be framed.
    pub fn dialect(mut self, dialect: Dialect) -> WorkerOptions {
        self.dialect = dialect;
        self
    }

    /// Heartbeat interval.
    pub fn heartbeat_interval(mut self, interval: Duration) -> WorkerOptions {
        self.heartbeat_interval = interval;
        self
    }

    /// Silent intervals after which the broker is presumed dead.
    pub fn liveness(mut self, liveness: u32) -> WorkerOptions {
        self.liveness = liveness;
        self
    }

    /// First wait before reconnecting.
    pub fn reconnect_interval(mut self, interval: Duration) -> WorkerOptions {
        self.reconnect_interval = interval;
        self
    }

    /// Longest wait between reconnects.
    pub fn reconnect_interval_max(mut self, interval: Duration) -> WorkerOptions {
        self.reconnect_interval_max = interval;
        self
    }

    /// Requests served at once, each through its own broker connection.
    pub fn concurrency(mut self, concurrency: usize) -> WorkerOptions {
        self.concurrency = concurrency;
        self
    }

    /// Format of typed bodies in [`Worker::run_typed`].
    pub fn format(mut self, format: Format) -> WorkerOptions {
        self.format = format;
        self
    }

    /// Security towards the broker (see also [`WorkerOptions::curve`]).
    pub fn mechanism(mut self, mechanism: MechanismConfig) -> WorkerOptions {
        self.mechanism = mechanism;
        self
    }

    /// Talks to the broker over CURVE: `keys` is this worker's key pair (the
    /// broker's allow-list names its public key), `broker_public` the broker's
    /// public key.
    pub fn curve(mut self, keys: CurveKeyPair, broker_public: [u8; 32]) -> WorkerOptions {
        self.mechanism = MechanismConfig::curve_client(keys, broker_public);
        self
    }
}

impl Default for WorkerOptions {
    fn default() -> WorkerOptions {
        WorkerOptions {
            dialect: Dialect::Mdp01,
            heartbeat_interval: Duration::from_millis(2500),
            liveness: 3,
            reconnect_interval: Duration::from_millis(100),
            reconnect_interval_max: Duration::from_millis(2500),
            concurrency: 1,
            format: Format::MessagePack,
            mechanism: MechanismConfig::Null,
        }
    }
}

/// Why a worker could not run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// `mmi.*` services belong to the broker (RFC 8).
    #[error("service names starting with \"mmi.\" are reserved for the broker")]
    ReservedService,
    /// The socket could not be set up (bad endpoint, for instance).
    #[error(transparent)]
    Socket(#[from] zmtp::Error),
    /// A worker task died unexpectedly (a bug: please report it).
    #[error("worker task failed: {0}")]
    Task(String),
}

fn flatten(
    done: Result<Result<(), zmtp::Error>, tokio::task::JoinError>,
) -> Result<(), WorkerError> {
    match done {
        Ok(result) => result.map_err(WorkerError::from),
        Err(e) => Err(WorkerError::Task(e.to_string())),
    }
}

/// A Majordomo worker for one service.
///
/// ```no_run
/// use mdp::worker::Worker;
///
/// # async fn run() -> Result<(), mdp::worker::WorkerError> {
/// Worker::new("tcp://127.0.0.1:5555", "echo")
///     .run(|request| async move { Ok(request) })
///     .await
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Worker {
    brokers: Brokers,
    service: Bytes,
    options: WorkerOptions,
}

impl Worker {
    /// A worker for `service` at the broker `brokers`, with default options.
    ///
    /// `brokers` is one endpoint or several ([`Brokers`]): the worker registers
    /// with every broker (each gets [`WorkerOptions::concurrency`] sessions), so
    /// it carries on through the others when one dies; `tcp://name:port` stands
    /// for every address of `name`, resolved again every few seconds (brokers
    /// that appear are joined, brokers that go are left).
    pub fn new(brokers: impl Into<Brokers>, service: impl Into<Bytes>) -> Worker {
        Worker {
            brokers: brokers.into(),
            service: service.into(),
            options: WorkerOptions::default(),
        }
    }

    /// Replaces the options.
    pub fn options(mut self, options: WorkerOptions) -> Worker {
        self.options = options;
        self
    }

    /// Serves requests with a handler that returns one reply, until the process ends.
    ///
    /// Every way to run has two forms: `run`, `run_streaming` and `run_typed` serve
    /// until the process ends; `run_until`, `run_streaming_until` and
    /// `run_typed_until` until a shutdown future completes, then send DISCONNECT and
    /// return.
    pub async fn run<H, F>(self, handler: H) -> Result<(), WorkerError>
    where
        H: Fn(Message) -> F + Send + Sync + 'static,
        F: Future<Output = HandlerResult> + Send + 'static,
    {
        self.run_until(handler, std::future::pending()).await
    }

    /// Serves requests with a one-reply handler until `shutdown` completes, then sends
    /// DISCONNECT and returns.
    pub async fn run_until<H, F>(
        self,
        handler: H,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), WorkerError>
    where
        H: Fn(Message) -> F + Send + Sync + 'static,
        F: Future<Output = HandlerResult> + Send + 'static,
    {
        let respond: Respond =
            Arc::new(move |req| futures_util::stream::once(handler(req)).boxed());
        self.run_sessions(respond, shutdown).await
    }

    /// Serves requests with a handler that streams its reply, until the process ends
    /// (see [`Worker::run_streaming_until`]).
    pub async fn run_streaming<H, S>(self, handler: H) -> Result<(), WorkerError>
    where
        H: Fn(Message) -> S + Send + Sync + 'static,
        S: Stream<Item = HandlerResult> + Send + 'static,
    {
        self.run_streaming_until(handler, std::future::pending())
            .await
    }

    /// Serves requests with a handler that streams its reply, until `shutdown`
    /// completes: every item but the last goes out as PARTIAL, the last as FINAL (MDP
    /// 0.2 and majortomo). Dialects without streaming get one reply with the frames of
    /// all items.
    pub async fn run_streaming_until<H, S>(
        self,
        handler: H,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), WorkerError>
    where
        H: Fn(Message) -> S + Send + Sync + 'static,
        S: Stream<Item = HandlerResult> + Send + 'static,
    {
        let respond: Respond = Arc::new(move |req| handler(req).boxed());
        self.run_sessions(respond, shutdown).await
    }

    /// Serves requests with a typed handler until the process ends (see
    /// [`Worker::run_typed_until`]).
    pub async fn run_typed<Req, Resp, E, H, F>(self, handler: H) -> Result<(), WorkerError>
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        E: Into<HandlerError> + Send + 'static,
        H: Fn(Req) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Resp, E>> + Send + 'static,
    {
        self.run_typed_until(handler, std::future::pending()).await
    }

    /// Serves requests with a typed handler until `shutdown` completes: the request's
    /// first frame is decoded and the reply encoded in the worker's [`Format`]
    /// (MessagePack by default).
    ///
    /// ```no_run
    /// use mdp::worker::Worker;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Add { x: i64, y: i64 }
    ///
    /// # async fn run() -> Result<(), mdp::worker::WorkerError> {
    /// Worker::new("tcp://127.0.0.1:5555", "add")
    ///     .run_typed_until(|add: Add| async move { Ok::<_, std::io::Error>(add.x + add.y) }, std::future::pending())
    ///     .await
    /// # }
    /// ```
    pub async fn run_typed_until<Req, Resp, E, H, F>(
        self,
        handler: H,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), WorkerError>
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        E: Into<HandlerError> + Send + 'static,
        H: Fn(Req) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Resp, E>> + Send + 'static,
    {
        let format = self.options.format;
        let handler = Arc::new(handler);
        let respond: Respond = Arc::new(move |req: Message| {
            let handler = handler.clone();
            futures_util::stream::once(async move {
                let frame = req.first().ok_or("the request has no body frame")?;
                let request: Req = format.decode(frame)?;
                let reply = handler(request).await.map_err(Into::into)?;
                Ok(Message::from(format.encode(&reply)?))
            })
            .boxed()
        });
        self.run_sessions(respond, shutdown).await
    }

    async fn run_sessions(
        self,
        respond: Respond,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), WorkerError> {
        if is_mmi(&self.service) {
            return Err(WorkerError::ReservedService);
        }
        // Fail fast on a malformed endpoint rather than retrying it forever.
        self.brokers.validate()?;
        let stop = CancellationToken::new();
        let this = Arc::new(self);
        let mut changes = discovery::watch(this.brokers.clone());
        // Each broker's sessions stop together when it leaves the list.
        let mut groups: HashMap<String, CancellationToken> = HashMap::new();
        let mut sessions = JoinSet::new();
        tokio::pin!(shutdown);
        let mut outcome = Ok(());
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(change) = changes.recv() => {
                    for endpoint in change.removed {
                        tracing::info!(%endpoint, "broker gone from the list: leaving it");
                        if let Some(group) = groups.remove(&endpoint) {
                            group.cancel();
                        }
                    }
                    for endpoint in change.added {
                        let group = stop.child_token();
                        for _ in 0..this.options.concurrency.max(1) {
                            let (this, respond, group) = (this.clone(), respond.clone(), group.clone());
                            let endpoint = endpoint.clone();
                            sessions.spawn(async move { this.keep_session(&endpoint, respond, group).await });
                        }
                        groups.insert(endpoint, group);
                    }
                }
                Some(done) = sessions.join_next() => {
                    // A session ends by itself only on an error (or when its
                    // broker left the list).
                    outcome = flatten(done);
                    if outcome.is_err() {
                        break;
                    }
                }
            }
        }
        stop.cancel();
        while let Some(done) = sessions.join_next().await {
            outcome = outcome.and(flatten(done));
        }
        outcome
    }

    /// One broker connection, re-established whenever it is lost.
    async fn keep_session(
        &self,
        endpoint: &str,
        respond: Respond,
        stop: CancellationToken,
    ) -> Result<(), zmtp::Error> {
        let mut backoff = Backoff::new(
            self.options.reconnect_interval,
            Some(self.options.reconnect_interval_max),
        );
        loop {
            let wait = match self.session(endpoint, &respond, &stop).await? {
                End::Reconnect {
                    reason,
                    established,
                } => {
                    tracing::info!(%endpoint, reason, "reconnecting to the broker");
                    backoff.after(established)
                }
                _ => return Ok(()),
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => return Ok(()),
            }
        }
    }

    /// One session: a fresh socket, driven by a [`Session`] until it ends.
    async fn session(
        &self,
        endpoint: &str,
        respond: &Respond,
        stop: &CancellationToken,
    ) -> Result<End, zmtp::Error> {
        let dialect = self.options.dialect;
        let options = SocketOptions::default()
            .linger(Duration::from_secs(1))
            .mechanism(self.options.mechanism.clone());
        let mut socket = Socket::with_options(SocketType::Dealer, options)?;
        socket.connect(endpoint)?;
        let config = SessionConfig::new(
            dialect,
            self.service.clone(),
            self.options.heartbeat_interval,
            self.options.liveness,
        );
        let mut core = Session::new(config, now());
        // Handler tasks: each drives one request's reply stream, sends partial replies
        // through `partials`, and returns the final reply.
        let mut in_flight: JoinSet<(Bytes, HandlerResult)> = JoinSet::new();
        let mut clients: HashMap<tokio::task::Id, Bytes> = HashMap::new();
        let (partials_tx, mut partials) = mpsc::channel::<(Bytes, Message)>(64);
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);

        loop {
            while let Some(action) = core.poll_action() {
                match action {
                    Action::Send(msg) => socket.send(msg).await?,
                    Action::Serve { client, body } => {
                        let task = drive(
                            respond(body),
                            client.clone(),
                            dialect.streams(),
                            partials_tx.clone(),
                        );
                        let handle = in_flight.spawn(task);
                        clients.insert(handle.id(), client);
                    }
                    Action::End(end) => {
                        if end == End::Shutdown {
                            socket.close().await;
                        }
                        return Ok(end);
                    }
                }
            }
            let deadline = core.poll_timeout().map(tokio::time::Instant::from_std);
            if let Some(at) = deadline {
                timer.as_mut().reset(at);
            }
            tokio::select! {
                received = socket.recv() => core.handle_message(&received?),
                Some((client, body)) = partials.recv() => core.handle_part(client, ReplyKind::Partial, body),
                Some(done) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                    let (client, result) = match done {
                        Ok((id, done)) => {
                            clients.remove(&id);
                            done
                        }
                        Err(e) => {
                            let client = clients.remove(&e.id()).unwrap_or_default();
                            (client, Err(format!("handler panicked: {e}").into()))
                        }
                    };
                    // Partials the task sent before finishing go out before its FINAL.
                    while let Ok((client, body)) = partials.try_recv() {
                        core.handle_part(client, ReplyKind::Partial, body);
                    }
                    match result {
                        Ok(body) => core.handle_part(client, ReplyKind::Final, body),
                        Err(e) => core.handle_failure(client, &e.to_string()),
                    }
                }
                () = &mut timer, if deadline.is_some() => core.handle_timeout(now()),
                () = stop.cancelled() => core.shutdown(),
            }
        }
    }
}

/// Drives one request's reply stream: every part but the last is sent as a partial
/// reply (or, without streaming, gathered), and the last is returned as the final one.
async fn drive(
    mut parts: BoxStream<'static, HandlerResult>,
    client: Bytes,
    streams: bool,
    partials: mpsc::Sender<(Bytes, Message)>,
) -> (Bytes, HandlerResult) {
    let mut last: Option<Message> = None;
    let mut gathered = Message::new();
    while let Some(part) = parts.next().await {
        let part = match part {
            Ok(part) => part,
            Err(e) => return (client, Err(e)),
        };
        if let Some(previous) = last.replace(part) {
            if streams {
                if partials.send((client.clone(), previous)).await.is_err() {
                    return (client, Err("the worker session ended".into()));
                }
            } else {
                gathered.extend(previous);
            }
        }
    }
    gathered.extend(last.unwrap_or_default());
    (client, Ok(gathered))
}
