//! [`Connection`]: one ZMTP connection after its handshake, as a plain struct.
//!
//! Bytes in ([`poll_event`](Connection::poll_event) decodes what was read), time in
//! ([`handle_timeout`](Connection::handle_timeout)), things to send in
//! ([`send_message`](Connection::send_message),
//! [`send_subscription`](Connection::send_subscription)); out come the peer's
//! messages and subscription changes as [`Event`]s, bytes to write (a
//! [`WireQueue`]), the next deadline ([`poll_timeout`](Connection::poll_timeout)) and,
//! when the connection must end, a [`Fault`] that says why. Whoever owns the socket
//! only moves bytes and time.
//!
//! The rules it keeps:
//! - a message is delivered whole or not at all, within `max_message_size` bytes and
//!   [`MAX_FRAMES_PER_MESSAGE`] frames;
//! - PING is answered with PONG echoing its context, and its TTL bounds how long the
//!   peer may stay silent ([`Liveness`]); our own PINGs go out every heartbeat
//!   interval;
//! - SUBSCRIBE and CANCEL commands (ZMTP 3.1) become events; a ZMTP 3.0 peer gets our
//!   subscriptions as `0x01|0x00 + topic` messages (RFC 37, reference §16);
//! - every other command after the handshake is ignored, as libzmq does
//!   (`session_base_t::push_msg`);
//! - with CURVE, every frame in both directions is boxed in a MESSAGE.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::Decoder;

use super::frame::encode_header;
use super::liveness::{HeartbeatConfig, Liveness};
use super::mechanism::curve::{CurveCodec, CurveOpener, CurveSealer, MESSAGE_OVERHEAD};
use super::{Command, FrameCodec, FrameError, Version, WireQueue};
use crate::proto::Message;

/// A message may not have more frames than this: without a cap, a peer could send
/// endless empty frames with MORE set and grow one pending message without bound.
pub const MAX_FRAMES_PER_MESSAGE: usize = 65_536;

/// PONGs waiting to be sent at most: a peer that floods PINGs faster than we write
/// gets some answered, and costs no memory for the rest.
const MAX_PENDING_PONGS: usize = 16;

/// The settings of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// The largest message the peer may send, in bytes of frame bodies.
    pub max_message_size: u64,
    /// Our heartbeats.
    pub heartbeat: HeartbeatConfig,
}

impl ConnectionConfig {
    /// Messages up to `max_message_size` bytes, no heartbeats.
    pub fn new(max_message_size: u64) -> ConnectionConfig {
        ConnectionConfig {
            max_message_size,
            heartbeat: HeartbeatConfig::off(),
        }
    }

    /// The same, with `heartbeat`.
    pub fn with_heartbeat(mut self, heartbeat: HeartbeatConfig) -> ConnectionConfig {
        self.heartbeat = heartbeat;
        self
    }
}

/// What the peer sent, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A complete message.
    Message(Message),
    /// A SUBSCRIBE command: the peer wants messages starting with this prefix.
    Subscribe(Bytes),
    /// A CANCEL command: it no longer does.
    Cancel(Bytes),
}

/// Why a connection must end: the peer broke a rule, or went silent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// A frame could not be decoded (too large, malformed).
    #[error("protocol error: {0}")]
    Frame(FrameError),
    /// A CURVE MESSAGE could not be opened or sealed.
    #[error("CURVE: {0}")]
    Security(String),
    /// A message's frames add up to more than the maximum.
    #[error("protocol error: message exceeds {0} bytes")]
    MessageTooLarge(u64),
    /// A message has more than [`MAX_FRAMES_PER_MESSAGE`] frames.
    #[error("protocol error: message has more than {MAX_FRAMES_PER_MESSAGE} frames")]
    TooManyFrames,
    /// Nothing arrived from the peer for this long.
    #[error("heartbeat timeout: the peer sent nothing for {0:?}")]
    HeartbeatTimeout(Duration),
}

impl From<FrameError> for Fault {
    fn from(e: FrameError) -> Fault {
        Fault::Frame(e)
    }
}

/// One established ZMTP connection.
#[derive(Debug)]
pub struct Connection {
    max_message_size: u64,
    decoder: FrameCodec,
    opener: Option<CurveOpener>,
    sealer: Option<CurveSealer>,
    /// The peer speaks ZMTP 3.0: subscriptions go as messages.
    legacy_subscriptions: bool,
    /// The message being assembled, and the bytes of its frames.
    pending: Message,
    pending_bytes: u64,
    liveness: Liveness,
    /// PING contexts to answer.
    pongs: VecDeque<Bytes>,
    /// Scratch space for a command body before it is boxed.
    scratch: BytesMut,
}

impl Connection {
    /// A connection whose handshake finished at `now` with a peer speaking
    /// `peer_version`; `curve` is the handshake's MESSAGE codec, if CURVE was used.
    pub fn new(
        config: ConnectionConfig,
        peer_version: Version,
        curve: Option<CurveCodec>,
        now: Instant,
    ) -> Connection {
        // A boxed frame is its data plus MESSAGE's name, nonce, MAC and flags.
        let overhead = if curve.is_some() { MESSAGE_OVERHEAD } else { 0 };
        let (sealer, opener) = match curve {
            Some(codec) => {
                let (sealer, opener) = codec.split();
                (Some(sealer), Some(opener))
            }
            None => (None, None),
        };
        Connection {
            max_message_size: config.max_message_size,
            decoder: FrameCodec::new(config.max_message_size.saturating_add(overhead)),
            opener,
            sealer,
            legacy_subscriptions: peer_version.minor == 0,
            pending: Message::new(),
            pending_bytes: 0,
            liveness: Liveness::new(config.heartbeat, now),
            pongs: VecDeque::new(),
            scratch: BytesMut::new(),
        }
    }

    /// Decodes the next event from `input`, the bytes read and not yet decoded (the
    /// decoded ones are split off); `None` when `input` holds no complete one.
    /// Commands that need no one else (PING, PONG, unknown ones) are handled here.
    /// Call [`on_input`](Self::on_input) for every read that brought bytes.
    pub fn poll_event(
        &mut self,
        input: &mut BytesMut,
        now: Instant,
    ) -> Result<Option<Event>, Fault> {
        loop {
            let Some(frame) = self.decoder.decode(input)? else {
                return Ok(None);
            };
            let frame = match &mut self.opener {
                None => frame,
                Some(opener) => opener.open_frame(frame)?,
            };
            if frame.command {
                if let Some(event) = self.command(frame.body, now) {
                    return Ok(Some(event));
                }
                continue;
            }
            self.pending_bytes += frame.body.len() as u64;
            if self.pending_bytes > self.max_message_size {
                return Err(Fault::MessageTooLarge(self.max_message_size));
            }
            if self.pending.len() >= MAX_FRAMES_PER_MESSAGE {
                return Err(Fault::TooManyFrames);
            }
            self.pending.push_back(frame.body);
            if !frame.more {
                self.pending_bytes = 0;
                return Ok(Some(Event::Message(std::mem::take(&mut self.pending))));
            }
        }
    }

    fn command(&mut self, body: Bytes, now: Instant) -> Option<Event> {
        match Command::parse(body) {
            Ok(Command::Ping {
                ttl_deciseconds,
                context,
            }) => {
                if self.pongs.len() < MAX_PENDING_PONGS {
                    // Copied (at most 16 bytes): a slice would keep the whole read
                    // buffer it came from alive until the PONG is written.
                    self.pongs.push_back(Bytes::copy_from_slice(&context));
                }
                let ttl = Duration::from_millis(u64::from(ttl_deciseconds) * 100);
                self.liveness.on_peer_ttl(ttl, now);
                None
            }
            Ok(Command::Subscribe(topic)) => Some(Event::Subscribe(topic)),
            Ok(Command::Cancel(topic)) => Some(Event::Cancel(topic)),
            Ok(cmd) => {
                // PONG only proves liveness (every arrival does); libzmq drops every
                // other command after the handshake (session_base.cpp push_msg).
                tracing::trace!(command = %String::from_utf8_lossy(cmd.name()), "ignored command");
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "ignored malformed command");
                None
            }
        }
    }

    /// Whether a message is part way in: some of its frames decoded, not its last.
    pub(crate) fn assembling(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The largest message accepted, in bytes.
    pub(crate) fn max_message_size(&self) -> u64 {
        self.max_message_size
    }

    /// A read brought bytes from the peer: it is alive.
    pub fn on_input(&mut self) {
        self.liveness.on_input();
    }

    /// We stop (`false`) or start again (`true`) reading the peer's input (the
    /// application paused it, or its queue is full): meanwhile its silence does not
    /// count against it.
    pub fn set_listening(&mut self, listening: bool) {
        self.liveness.set_listening(listening);
    }

    /// Encodes `msg` into `out`, MORE on every frame but the last; in clear, large
    /// bodies are queued without a copy.
    pub fn send_message(&mut self, msg: &Message, out: &mut WireQueue) -> Result<(), Fault> {
        let Some(sealer) = &mut self.sealer else {
            out.push_message(msg);
            return Ok(());
        };
        let last = msg.len().saturating_sub(1);
        for (i, frame) in msg.iter().enumerate() {
            sealer.seal_frame(i < last, false, frame, out.tail())?;
        }
        Ok(())
    }

    /// Encodes a one-frame message from its body. Out of line: the engine's loop
    /// around [`send_message`](Self::send_message) stays as it was (inlined, this
    /// arm cost the current-thread PUSH->PULL 16 B path, which never takes it, a
    /// sixth of its rate).
    #[inline(never)]
    pub(crate) fn send_one_frame(&mut self, body: &[u8], out: &mut WireQueue) -> Result<(), Fault> {
        let Some(sealer) = &mut self.sealer else {
            out.push_one_frame(body);
            return Ok(());
        };
        sealer.seal_frame(false, false, body, out.tail())?;
        Ok(())
    }

    /// Encodes a subscription change: a SUBSCRIBE or CANCEL command for a ZMTP 3.1
    /// peer, the one-frame message `0x01|0x00 + topic` for a 3.0 peer.
    pub fn send_subscription(
        &mut self,
        subscribe: bool,
        topic: &Bytes,
        out: &mut WireQueue,
    ) -> Result<(), Fault> {
        if self.legacy_subscriptions {
            let mut body = BytesMut::with_capacity(1 + topic.len());
            body.put_u8(u8::from(subscribe));
            body.put_slice(topic);
            self.send_message(&Message::from(body.freeze()), out)
        } else if subscribe {
            self.send_command(&Command::Subscribe(topic.clone()), out)
        } else {
            self.send_command(&Command::Cancel(topic.clone()), out)
        }
    }

    /// Encodes what the connection itself has to say (PONGs, a due PING) into `out`.
    pub fn poll_transmit(&mut self, out: &mut WireQueue) -> Result<(), Fault> {
        while let Some(context) = self.pongs.pop_front() {
            self.send_command(&Command::Pong { context }, out)?;
        }
        if self.liveness.take_ping() {
            let ping = Command::Ping {
                ttl_deciseconds: self.liveness.ping_ttl_deciseconds(),
                context: Bytes::new(),
            };
            self.send_command(&ping, out)?;
        }
        Ok(())
    }

    /// How many bytes the frame at the start of `input` still lacks once its header
    /// is in (bounded: a huge declared frame is read a slice at a time), so the
    /// reader can make room for it before reading.
    pub fn frame_missing_bytes(&self, input: &[u8]) -> Option<usize> {
        super::frame::missing_bytes(input)
    }

    /// Whether messages go on the wire as plain frames (NULL, PLAIN), so that
    /// anyone may encode them; a CURVE connection seals each one with its own keys
    /// and nonce.
    pub fn frames_in_clear(&self) -> bool {
        self.sealer.is_none()
    }

    /// Whether [`poll_transmit`](Self::poll_transmit) has something to encode.
    pub fn wants_transmit(&self) -> bool {
        !self.pongs.is_empty() || self.liveness.ping_due()
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.liveness.poll_timeout()
    }

    /// Time passed: PINGs fall due, a silent peer is given up.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Fault> {
        self.liveness
            .handle_timeout(now)
            .map_err(|silent| Fault::HeartbeatTimeout(silent.window))
    }

    fn send_command(&mut self, command: &Command, out: &mut WireQueue) -> Result<(), Fault> {
        self.scratch.clear();
        command.encode_body(&mut self.scratch);
        let out = out.tail();
        match &mut self.sealer {
            Some(sealer) => sealer.seal_frame(false, true, &self.scratch, out),
            None => {
                encode_header(out, false, true, self.scratch.len());
                out.put_slice(&self.scratch);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
#[path = "tests/connection.rs"]
mod tests;
