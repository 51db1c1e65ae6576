//! The connection handshake as a sans-IO state machine: greeting exchange, then the
//! security mechanism, then a check of the peer's socket type.
//!
//! The async engine only moves bytes: it writes whatever [`Handshake::take_output`]
//! returns and feeds what it reads to [`Handshake::handle_input`] until that returns
//! the peer's [`PeerInfo`]. Bytes after the peer's last handshake command stay in the
//! input buffer for the frame decoder.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

use super::command::CommandError;
use super::frame::{FrameCodec, FrameError};
use super::greeting::{Greeting, GreetingError, MechanismName, Version, GREETING_LEN};
use super::mechanism::curve::CurveCodec;
use super::mechanism::guard::Guard;
use super::mechanism::{Mechanism, MechanismConfig};
use super::metadata::{Metadata, IDENTITY, SOCKET_TYPE};
use super::socket_type::SocketType;

/// Handshake frames are small (metadata); refuse anything bigger before allocating.
const MAX_HANDSHAKE_FRAME: u64 = 64 * 1024;

/// What we announce during the handshake: start from [`HandshakeConfig::new`].
///
/// ```
/// use zmtp::proto::{HandshakeConfig, MechanismConfig, SocketType};
///
/// let config = HandshakeConfig::new(SocketType::Dealer)
///     .identity("client-1")
///     .mechanism(MechanismConfig::Null);
/// assert_eq!(&config.identity[..], b"client-1");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HandshakeConfig {
    /// Our socket type.
    pub socket_type: SocketType,
    /// Our routing id (sent as `Identity` by REQ, DEALER and ROUTER).
    pub identity: Bytes,
    /// Security mechanism.
    pub mechanism: MechanismConfig,
    /// Decides which peers may connect (servers of PLAIN and CURVE; NULL by address).
    pub authenticator: Option<crate::proto::Authenticator>,
}

impl HandshakeConfig {
    /// A `socket_type` with no routing id, NULL security and no authenticator.
    pub fn new(socket_type: SocketType) -> HandshakeConfig {
        HandshakeConfig {
            socket_type,
            identity: Bytes::new(),
            mechanism: MechanismConfig::Null,
            authenticator: None,
        }
    }

    /// Our routing id.
    pub fn identity(mut self, identity: impl Into<Bytes>) -> HandshakeConfig {
        self.identity = identity.into();
        self
    }

    /// The security mechanism.
    pub fn mechanism(mut self, mechanism: MechanismConfig) -> HandshakeConfig {
        self.mechanism = mechanism;
        self
    }

    /// Who may connect (servers).
    pub fn authenticator(
        mut self,
        authenticator: Option<crate::proto::Authenticator>,
    ) -> HandshakeConfig {
        self.authenticator = authenticator;
        self
    }
}

/// What we learnt about the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The ZMTP version the peer announced.
    pub version: Version,
    /// The peer's socket type (None when it sent no `Socket-Type`, which libzmq allows).
    pub socket_type: Option<SocketType>,
    /// The peer's `Identity` property (empty when absent).
    pub identity: Bytes,
    /// All properties the peer sent.
    pub metadata: Metadata,
}

/// Why a handshake failed. Every variant closes the connection; see
/// [`HandshakeError::is_retryable`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The peer's greeting is not acceptable.
    #[error(transparent)]
    Greeting(#[from] GreetingError),
    /// The peer wants another security mechanism.
    #[error("security mechanism mismatch: we use {ours}, the peer uses {theirs}")]
    MechanismMismatch {
        /// Ours.
        ours: String,
        /// The peer's.
        theirs: String,
    },
    /// A handshake frame could not be decoded.
    #[error("bad handshake frame: {0}")]
    Frame(#[from] FrameError),
    /// The peer sent message data before the handshake finished.
    #[error("peer sent a message before completing the handshake")]
    DataBeforeReady,
    /// A handshake command could not be parsed.
    #[error("bad handshake command: {0}")]
    Command(#[from] CommandError),
    /// A well-formed command that does not belong at this point.
    #[error("unexpected {0} command during the handshake")]
    UnexpectedCommand(String),
    /// The peer sent ERROR with this reason (libzmq servers send a ZAP status code:
    /// 300, 400 or 500).
    #[error("peer refused the handshake: {}", describe_status(.0))]
    PeerError(String),
    /// The peer's `Socket-Type` names no socket type we know.
    #[error("peer announced unknown socket type {0:?}")]
    UnknownSocketType(String),
    /// The socket types may not talk to each other (RFC 37).
    #[error("a {ours} socket cannot talk to a {peer} peer")]
    IncompatibleSocketType {
        /// Ours.
        ours: SocketType,
        /// The peer's.
        peer: SocketType,
    },
    /// The peer closed the connection before the handshake was done; the text says
    /// what that usually means at this point.
    #[error("{0}")]
    PeerClosed(&'static str),
    /// The handshake took longer than the configured handshake interval.
    #[error("handshake timed out")]
    Timeout,
    /// We refused the peer's credentials (and told it with ERROR).
    #[error("authentication failed: {0}")]
    Denied(String),
    /// A security command failed its cryptographic checks (bad box, key or nonce).
    #[error("security handshake failed: {0}")]
    Crypto(String),
    /// We refused the peer for now, before checking it (a replayed CURVE HELLO, too
    /// many HELLOs or failed logins from its address), and told it with ERROR 300.
    #[error("refused for now: {0}")]
    Refused(String),
}

/// A ZAP status code (RFC 27) with its meaning; any other reason as it is.
fn describe_status(reason: &str) -> String {
    let meaning = match reason {
        "300" => "temporary failure",
        "400" => "authentication failed",
        "500" => "the server's authenticator failed",
        _ => return reason.to_owned(),
    };
    format!("{reason} ({meaning})")
}

impl HandshakeError {
    /// Whether a connecting socket should try again later. libzmq reconnects after a
    /// timeout but not after a protocol error (session_base.cpp `engine_error`).
    ///
    /// Ours also reconnects after ERROR 300 (ZAP's "temporary failure", what a server
    /// says to an address over its rate or blocked for a while): the server asks to
    /// be tried again later, and the reconnect interval spaces the attempts.
    pub fn is_retryable(&self) -> bool {
        match self {
            HandshakeError::Timeout | HandshakeError::PeerClosed(_) => true,
            HandshakeError::PeerError(reason) => reason == "300",
            _ => false,
        }
    }
}

#[derive(Debug)]
enum State {
    Greeting,
    Mechanism(Version, Mechanism),
    Done,
}

/// One side of a handshake.
#[derive(Debug)]
pub struct Handshake {
    config: HandshakeConfig,
    state: State,
    out: BytesMut,
    codec: FrameCodec,
    /// Where the peer connects from, for the authenticator.
    peer_address: String,
    /// What CURVE leaves for the messages once the handshake is done.
    curve: Option<CurveCodec>,
    /// A server's per-address defences, asked before costly or sensitive steps.
    guard: Option<Guard>,
}

impl Handshake {
    /// Starts a handshake; our greeting is queued for output at once (never wait for
    /// the peer's greeting before sending ours: libzmq waits for our bytes).
    pub fn new(config: HandshakeConfig) -> Handshake {
        let mut out = BytesMut::with_capacity(GREETING_LEN + 64);
        Greeting::ours(config.mechanism.name(), config.mechanism.as_server()).encode(&mut out);
        Handshake {
            config,
            state: State::Greeting,
            out,
            codec: FrameCodec::new(MAX_HANDSHAKE_FRAME),
            peer_address: String::new(),
            curve: None,
            guard: None,
        }
    }

    /// Has a server ask `guard` before opening a CURVE HELLO and before checking
    /// credentials (see [`HandshakeGuard`](super::mechanism::guard::HandshakeGuard)).
    pub(crate) fn with_guard(mut self, guard: Guard) -> Handshake {
        self.guard = Some(guard);
        self
    }

    /// Names the peer's address for the authenticator (`127.0.0.1:40312`).
    pub fn with_peer_address(mut self, address: impl Into<String>) -> Handshake {
        self.peer_address = address.into();
        self
    }

    /// Bytes to send now, if any.
    pub fn take_output(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.split().freeze())
        }
    }

    /// Consumes handshake bytes from `input`; returns the peer's info once done.
    ///
    /// Leaves any bytes after the handshake in `input`. After an error the connection
    /// must be closed.
    pub fn handle_input(
        &mut self,
        input: &mut BytesMut,
    ) -> Result<Option<PeerInfo>, HandshakeError> {
        loop {
            match &mut self.state {
                State::Greeting => {
                    let Some(greeting) = Greeting::check(input)? else {
                        return Ok(None);
                    };
                    input.advance(GREETING_LEN);
                    let ours = self.config.mechanism.name();
                    if greeting.mechanism != ours {
                        return Err(mismatch(ours, greeting.mechanism));
                    }
                    let mechanism = self.config.mechanism.start(
                        self.own_metadata(),
                        &mut self.out,
                        self.config.authenticator.as_ref(),
                        &self.peer_address,
                        self.guard.as_ref(),
                    )?;
                    self.state = State::Mechanism(greeting.version, mechanism);
                }
                State::Mechanism(version, mechanism) => {
                    let Some(frame) = self.codec.decode(input)? else {
                        return Ok(None);
                    };
                    if !frame.command {
                        return Err(HandshakeError::DataBeforeReady);
                    }
                    let version = *version;
                    if let Some(metadata) = mechanism.handle_command(frame.body, &mut self.out)? {
                        if let State::Mechanism(_, mechanism) =
                            std::mem::replace(&mut self.state, State::Done)
                        {
                            self.curve = mechanism.into_codec();
                        }
                        return self.finish(version, metadata).map(Some);
                    }
                }
                State::Done => return Ok(None),
            }
        }
    }

    /// The error for a connection the peer closed before the handshake was done.
    pub fn peer_closed(&self) -> HandshakeError {
        let hint = match &self.state {
            State::Mechanism(_, mechanism) => mechanism.closed_hint(),
            _ => None,
        };
        HandshakeError::PeerClosed(
            hint.unwrap_or("the peer closed the connection during the handshake"),
        )
    }

    /// The MESSAGE codec of a finished CURVE handshake: every frame after the
    /// handshake must go through it. None for NULL and PLAIN.
    pub fn take_codec(&mut self) -> Option<CurveCodec> {
        self.curve.take()
    }

    fn own_metadata(&self) -> Metadata {
        let mut md = Metadata::new();
        md.insert(SOCKET_TYPE, self.config.socket_type.as_str());
        if self.config.socket_type.sends_identity() {
            md.insert(IDENTITY, self.config.identity.clone());
        }
        md
    }

    fn finish(&self, version: Version, metadata: Metadata) -> Result<PeerInfo, HandshakeError> {
        let socket_type = match metadata.get(SOCKET_TYPE) {
            // libzmq skips the check when the property is missing.
            None => None,
            Some(name) => {
                let peer = SocketType::from_name(name).ok_or_else(|| {
                    HandshakeError::UnknownSocketType(String::from_utf8_lossy(name).into_owned())
                })?;
                let ours = self.config.socket_type;
                if !ours.is_compatible(peer) {
                    return Err(HandshakeError::IncompatibleSocketType { ours, peer });
                }
                Some(peer)
            }
        };
        let identity = metadata.get(IDENTITY).cloned().unwrap_or_default();
        Ok(PeerInfo {
            version,
            socket_type,
            identity,
            metadata,
        })
    }
}

fn mismatch(ours: MechanismName, theirs: MechanismName) -> HandshakeError {
    HandshakeError::MechanismMismatch {
        ours: ours.display(),
        theirs: theirs.display(),
    }
}

#[cfg(test)]
#[path = "tests/handshake.rs"]
mod tests;
