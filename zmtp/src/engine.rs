//! The engine: one task per connection that drives the sans-IO core over a stream.
//!
//! It runs the handshake under a timeout, then two loops over the split stream:
//! - the reader decodes every frame a read made available, assembles multipart
//!   messages (atomically: all frames or none), answers PING with PONG, ignores
//!   unknown commands (as libzmq does) and closes a peer silent for too long;
//! - the writer drains the peer's whole [`Pipe`] at once and encodes every queued
//!   message before one write, sends PINGs, and on close keeps flushing for the
//!   linger period.
//!
//! What the reader decodes goes to the socket through a [`Delivery`].
//!
//! Either loop ending ends the connection; the reason is a [`ConnectionError`].

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use crate::delivery::Delivery;
use crate::inbound::Inbound;
use crate::outbound_encoder::OutboundEncoder;
use crate::pipe::{Outbound, Pipe};
use crate::proto::mechanism::curve::{CurveCodec, CurveOpener, MESSAGE_OVERHEAD};
use crate::proto::mechanism::guard::Guard;
use crate::proto::{
    Command, FrameCodec, FrameError, Handshake, HandshakeConfig, HandshakeError, PeerInfo,
};
use crate::transport::{ReadHalf, Stream, WriteHalf};
use crate::wire_queue::WireQueue;
use crate::Message;

/// Encode at most this much before writing, so a long queue does not build one huge
/// buffer.
const WRITE_CHUNK: usize = 256 * 1024;

/// The read buffer of a connection starts this small, so an idle connection holds
/// little memory (a broker may have tens of thousands), and doubles each time a read
/// fills it, up to [`READ_CHUNK`].
const FIRST_READ: usize = 1024;

/// The largest read: one read of a busy connection brings in up to this much.
const READ_CHUNK: usize = 64 * 1024;

/// A message may not have more frames than this: without a cap, a peer could send
/// endless empty frames with MORE set and grow one pending message without bound.
const MAX_FRAMES_PER_MESSAGE: usize = 65_536;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectionError {
    #[error("connection closed by the peer")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    #[error("protocol error: {0}")]
    Frame(FrameError),
    #[error("CURVE: {0}")]
    Security(String),
    #[error("protocol error: message exceeds {0} bytes")]
    MessageTooLarge(u64),
    #[error("protocol error: message has more than {MAX_FRAMES_PER_MESSAGE} frames")]
    TooManyFrames,
    #[error("heartbeat timeout: the peer sent nothing for {0:?}")]
    HeartbeatTimeout(Duration),
    #[error("routing id {0} is already in use by another peer")]
    DuplicateRoutingId(String),
    #[error("PAIR socket already has a peer")]
    PairTaken,
    #[error("closed locally")]
    LocalClose,
    #[error("the peer fell too far behind reading our subscription changes; reconnecting sends the full set")]
    SubscriptionsLost,
}

impl ConnectionError {
    /// Whether a connecting socket should reconnect. libzmq does after connection and
    /// timeout errors, not after protocol errors (session_base.cpp `engine_error`).
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            ConnectionError::Closed
            | ConnectionError::Io(_)
            | ConnectionError::HeartbeatTimeout(_)
            | ConnectionError::DuplicateRoutingId(_)
            | ConnectionError::SubscriptionsLost => true,
            ConnectionError::Handshake(e) => e.is_retryable(),
            ConnectionError::Frame(FrameError::Io(_)) => true,
            _ => false,
        }
    }

    /// Whether this is the peer's fault (bad input), worth a warning in the logs.
    pub(crate) fn is_protocol_error(&self) -> bool {
        !self.is_retryable() && !matches!(self, ConnectionError::LocalClose)
    }
}

/// A CURVE MESSAGE that could not be opened or sealed, in words that fit the time
/// after the handshake.
fn security(e: HandshakeError) -> ConnectionError {
    ConnectionError::Security(match e {
        HandshakeError::Crypto(detail) => detail,
        HandshakeError::UnexpectedCommand(name) => {
            format!("a {name} command where only MESSAGE may come")
        }
        other => other.to_string(),
    })
}

impl From<FrameError> for ConnectionError {
    fn from(e: FrameError) -> ConnectionError {
        ConnectionError::Frame(e)
    }
}

/// Engine settings, taken from the socket options when the endpoint was set up.
#[derive(Debug, Clone)]
pub(crate) struct EngineConfig {
    pub heartbeat_interval: Option<Duration>,
    pub heartbeat_timeout: Option<Duration>,
    pub heartbeat_ttl: Option<Duration>,
    pub handshake_timeout: Duration,
    pub max_message_size: u64,
    pub linger: Duration,
}

/// A finished handshake.
#[derive(Debug)]
pub(crate) struct Established {
    /// What the peer announced.
    pub(crate) peer: PeerInfo,
    /// Bytes read past the handshake (the first frames).
    leftover: BytesMut,
    /// CURVE's MESSAGE codec: every frame goes through it.
    curve: Option<CurveCodec>,
}

/// Runs greeting and mechanism over `stream` until `deadline` (fixed when the
/// connection began: what the peer sends never moves it); returns the peer and any
/// bytes read past the handshake. A server's `guard` is asked before costly steps.
pub(crate) async fn handshake(
    stream: &mut Stream,
    config: HandshakeConfig,
    deadline: Instant,
    peer_address: &str,
    guard: Option<Guard>,
) -> Result<Established, ConnectionError> {
    let mut hs = Handshake::new(config).with_peer_address(peer_address);
    if let Some(guard) = guard {
        hs = hs.with_guard(guard);
    }
    let mut input = BytesMut::with_capacity(FIRST_READ);
    let exchange = async {
        loop {
            // Input first, then everything it made us want to say, then wait for more.
            let done = match hs.handle_input(&mut input) {
                Ok(done) => done,
                Err(e) => {
                    // An ERROR command for the peer (a refusal) goes out first.
                    if let Some(out) = hs.take_output() {
                        let _ = stream.write_all(&out).await;
                    }
                    return Err(e.into());
                }
            };
            while let Some(out) = hs.take_output() {
                stream.write_all(&out).await?;
            }
            if let Some(peer) = done {
                return Ok(peer);
            }
            if stream.read_buf(&mut input).await? == 0 {
                return Err(hs.peer_closed().into());
            }
        }
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(Ok(peer)) => Ok(Established {
            peer,
            leftover: input,
            curve: hs.take_codec(),
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(HandshakeError::Timeout.into()),
    }
}

/// Runs a connection after its handshake until it ends; returns why it ended.
/// A ZMTP 3.0 peer gets subscriptions as legacy messages, a 3.1 peer as commands.
pub(crate) async fn run(
    stream: Stream,
    established: Established,
    config: &EngineConfig,
    pipe: Arc<Pipe>,
    delivery: Delivery,
    close: CancellationToken,
) -> ConnectionError {
    let (read, write) = stream.into_split();
    let (control_tx, control_rx) = mpsc::channel(16);
    let (sealer, opener) = match established.curve {
        Some(codec) => {
            let (sealer, opener) = codec.split();
            (Some(sealer), Some(opener))
        }
        None => (None, None),
    };
    let reader = read_loop(
        read,
        established.leftover,
        opener,
        config,
        delivery,
        control_tx,
    );
    let legacy = established.peer.version.minor == 0;
    let encoder = OutboundEncoder::new(legacy, sealer);
    let writer = write_loop(write, config, &pipe, control_rx, &close, encoder);
    let both = async {
        tokio::select! {
            r = reader => r,
            w = writer => w,
        }
    };
    let linger = async {
        close.cancelled().await;
        tokio::time::sleep(config.linger).await;
    };
    tokio::select! {
        end = both => end,
        () = linger => ConnectionError::LocalClose,
    }
}

async fn read_loop(
    mut read: ReadHalf,
    leftover: BytesMut,
    mut curve: Option<CurveOpener>,
    config: &EngineConfig,
    delivery: Delivery,
    control: mpsc::Sender<Command>,
) -> ConnectionError {
    // A boxed frame is its data plus MESSAGE's name, nonce, MAC and flags.
    let overhead = if curve.is_some() { MESSAGE_OVERHEAD } else { 0 };
    let mut codec = FrameCodec::new(config.max_message_size.saturating_add(overhead));
    let mut buf = leftover;
    let mut pending = Message::new();
    let mut pending_bytes: u64 = 0;
    let mut batch: Vec<Inbound> = Vec::new();
    let mut read_size = FIRST_READ;

    // Silence detection: our heartbeat (interval + timeout) and the peer's PING TTL.
    // `seen` is set on every read and checked when the timer fires, so the hot path
    // never reads the clock; a silent peer is closed after one to two limits.
    let own_limit = config
        .heartbeat_interval
        .map(|ivl| ivl + config.heartbeat_timeout.unwrap_or(ivl));
    let limit = |peer_ttl: Option<Duration>| match (own_limit, peer_ttl) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let mut current_limit = limit(None);
    let far = Duration::from_secs(86_400 * 365);
    let timer = tokio::time::sleep(current_limit.unwrap_or(far));
    tokio::pin!(timer);
    let mut seen = false;

    loop {
        // Everything already buffered first: one read usually holds many frames.
        loop {
            let frame = match codec.decode(&mut buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => return e.into(),
            };
            let frame = match &mut curve {
                None => frame,
                Some(opener) => match opener.open_frame(frame) {
                    Ok(inner) => inner,
                    Err(e) => return security(e),
                },
            };
            if frame.command {
                match Command::parse(frame.body) {
                    Ok(Command::Ping {
                        ttl_deciseconds,
                        context,
                    }) => {
                        // Best effort: a full control queue means PONGs are pending anyway.
                        let _ = control.try_send(Command::Pong { context });
                        if ttl_deciseconds > 0 {
                            let ttl = Duration::from_millis(u64::from(ttl_deciseconds) * 100);
                            let new_limit = limit(Some(ttl));
                            if new_limit != current_limit {
                                current_limit = new_limit;
                                timer
                                    .as_mut()
                                    .reset(Instant::now() + current_limit.unwrap_or(far));
                            }
                        }
                    }
                    Ok(Command::Subscribe(topic)) => {
                        delivery.subscription(true, topic, &mut batch);
                    }
                    Ok(Command::Cancel(topic)) => {
                        delivery.subscription(false, topic, &mut batch);
                    }
                    Ok(cmd) => {
                        // PONG only proves liveness; libzmq drops every other command
                        // after the handshake (session_base.cpp push_msg).
                        tracing::trace!(command = %String::from_utf8_lossy(cmd.name()), "ignored command");
                    }
                    Err(e) => tracing::debug!(error = %e, "ignored malformed command"),
                }
                continue;
            }
            pending_bytes += frame.body.len() as u64;
            if pending_bytes > config.max_message_size {
                return ConnectionError::MessageTooLarge(config.max_message_size);
            }
            if pending.len() >= MAX_FRAMES_PER_MESSAGE {
                return ConnectionError::TooManyFrames;
            }
            pending.push_back(frame.body);
            if !frame.more {
                pending_bytes = 0;
                delivery.message(std::mem::take(&mut pending), &mut batch);
                if delivery.gate.is_paused() {
                    break;
                }
            }
        }
        if !batch.is_empty() && delivery.inbound.push(&mut batch).await.is_err() {
            // The socket is gone: it cancelled `close`, and the writer is flushing
            // what is queued (linger). Ending here would cut that short.
            std::future::pending::<()>().await;
        }
        if delivery.gate.is_paused() {
            // Nothing more is decoded until the socket resumes us. Reading goes on
            // up to one chunk ahead, only to notice a peer that leaves meanwhile (a
            // paused connection would otherwise hold its routing id until resumed);
            // the peer is not silent meanwhile either, we are not listening.
            if let Some(end) = read_while_paused(&mut read, &mut buf, &delivery).await {
                return end;
            }
            seen = true;
            continue;
        }
        if buf.capacity() - buf.len() < read_size / 4 {
            buf.reserve(read_size);
        }
        let room = buf.capacity() - buf.len();
        tokio::select! {
            n = read.read_buf(&mut buf) => match n {
                Ok(0) => return ConnectionError::Closed,
                Ok(n) => {
                    seen = true;
                    if n == room {
                        read_size = (read_size * 2).min(READ_CHUNK);
                    }
                }
                Err(e) => return e.into(),
            },
            () = &mut timer, if current_limit.is_some() => {
                let window = current_limit.unwrap_or(far);
                if !seen {
                    return ConnectionError::HeartbeatTimeout(window);
                }
                seen = false;
                timer.as_mut().reset(Instant::now() + window);
            }
        }
    }
}

/// Waits for the gate to open, reading at most [`READ_CHUNK`] ahead meanwhile so
/// that the peer's leaving is seen; returns how the connection ended if it did.
async fn read_while_paused(
    read: &mut ReadHalf,
    buf: &mut BytesMut,
    delivery: &Delivery,
) -> Option<ConnectionError> {
    while delivery.gate.is_paused() {
        if buf.len() >= READ_CHUNK {
            delivery.gate.opened().await;
            return None;
        }
        buf.reserve(READ_CHUNK - buf.len());
        tokio::select! {
            () = delivery.gate.opened() => return None,
            n = read.read_buf(buf) => match n {
                Ok(0) => return Some(ConnectionError::Closed),
                Ok(_) => {}
                Err(e) => return Some(e.into()),
            },
        }
    }
    None
}

async fn write_loop(
    mut write: WriteHalf,
    config: &EngineConfig,
    pipe: &Pipe,
    mut control: mpsc::Receiver<Command>,
    close: &CancellationToken,
    mut encoder: OutboundEncoder,
) -> ConnectionError {
    let mut batch: VecDeque<Outbound> = VecDeque::new();
    // Grows with what is written; an idle connection holds none.
    let mut buf = WireQueue::new();
    let ping = config.heartbeat_ttl.map_or(0, |ttl| {
        u16::try_from(ttl.as_millis() / 100).unwrap_or(u16::MAX)
    });
    let ping = Command::Ping {
        ttl_deciseconds: ping,
        context: Bytes::new(),
    };
    let mut next_ping = config.heartbeat_interval.map(|ivl| Instant::now() + ivl);
    let mut closing = false;

    loop {
        if pipe.subscriptions_lost() {
            return ConnectionError::SubscriptionsLost;
        }
        pipe.drain(&mut batch);
        while let Ok(cmd) = control.try_recv() {
            if let Err(e) = encoder.command(&cmd, &mut buf) {
                return security(e);
            }
        }
        if let (Some(at), Some(ivl)) = (next_ping, config.heartbeat_interval) {
            if Instant::now() >= at {
                if let Err(e) = encoder.command(&ping, &mut buf) {
                    return security(e);
                }
                next_ping = Some(Instant::now() + ivl);
            }
        }
        if batch.is_empty() && buf.is_empty() {
            if closing || pipe.is_closed() {
                let _ = write.shutdown().await;
                return ConnectionError::LocalClose;
            }
            let ping_at = next_ping.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
            tokio::select! {
                () = pipe.wait_for_messages() => {}
                cmd = control.recv() => match cmd {
                    Some(cmd) => {
                        if let Err(e) = encoder.command(&cmd, &mut buf) {
                            return security(e);
                        }
                    }
                    // The reader is gone; the select in `run` is ending this loop anyway.
                    None => std::future::pending::<()>().await,
                },
                () = sleep_until(ping_at), if next_ping.is_some() => {}
                () = close.cancelled(), if !closing => closing = true,
            }
            continue;
        }
        for item in batch.drain(..) {
            if let Err(e) = encoder.outbound(&item, &mut buf) {
                return security(e);
            }
            if buf.len() >= WRITE_CHUNK {
                if let Err(e) = buf.write_to(&mut write).await {
                    return e.into();
                }
            }
        }
        if let Err(e) = buf.write_to(&mut write).await {
            return e.into();
        }
    }
}
