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
use super::mechanism::{Mechanism, MechanismConfig};
use super::metadata::{Metadata, IDENTITY, SOCKET_TYPE};
use super::socket_type::SocketType;

/// Handshake frames are small (metadata); refuse anything bigger before allocating.
const MAX_HANDSHAKE_FRAME: u64 = 64 * 1024;

/// What we announce during the handshake.
#[derive(Debug, Clone)]
pub struct HandshakeConfig {
    /// Our socket type.
    pub socket_type: SocketType,
    /// Our routing id (sent as `Identity` by REQ, DEALER and ROUTER).
    pub identity: Bytes,
    /// Security mechanism.
    pub mechanism: MechanismConfig,
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
    /// The peer sent ERROR.
    #[error("peer refused the handshake: {0}")]
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
    /// The handshake took longer than the configured handshake interval.
    #[error("handshake timed out")]
    Timeout,
}

impl HandshakeError {
    /// Whether a connecting socket should try again later. libzmq reconnects after a
    /// timeout but not after a protocol error (session_base.cpp `engine_error`).
    pub fn is_retryable(&self) -> bool {
        matches!(self, HandshakeError::Timeout)
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
        }
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
                    let mechanism = self
                        .config
                        .mechanism
                        .start(self.own_metadata(), &mut self.out);
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
                        self.state = State::Done;
                        return self.finish(version, metadata).map(Some);
                    }
                }
                State::Done => return Ok(None),
            }
        }
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
mod tests {
    use super::*;
    use crate::proto::command::Command;
    use bytes::BufMut;

    fn config(t: SocketType, id: &'static str) -> HandshakeConfig {
        HandshakeConfig {
            socket_type: t,
            identity: Bytes::from_static(id.as_bytes()),
            mechanism: MechanismConfig::Null,
        }
    }

    /// Runs two handshakes against each other, delivering `chunk` bytes at a time.
    fn pair(
        a: HandshakeConfig,
        b: HandshakeConfig,
        chunk: usize,
    ) -> (
        Result<PeerInfo, HandshakeError>,
        Result<PeerInfo, HandshakeError>,
    ) {
        let mut ha = Handshake::new(a);
        let mut hb = Handshake::new(b);
        let (mut a_in, mut b_in) = (BytesMut::new(), BytesMut::new());
        let (mut a_wire, mut b_wire) = (BytesMut::new(), BytesMut::new());
        let (mut ra, mut rb) = (None, None);
        for _ in 0..10_000 {
            if let Some(o) = ha.take_output() {
                b_wire.extend_from_slice(&o);
            }
            if let Some(o) = hb.take_output() {
                a_wire.extend_from_slice(&o);
            }
            let n = chunk.min(a_wire.len());
            a_in.extend_from_slice(&a_wire.split_to(n));
            let n = chunk.min(b_wire.len());
            b_in.extend_from_slice(&b_wire.split_to(n));
            if ra.is_none() {
                match ha.handle_input(&mut a_in) {
                    Ok(Some(p)) => ra = Some(Ok(p)),
                    Ok(None) => {}
                    Err(e) => ra = Some(Err(e)),
                }
            }
            if rb.is_none() {
                match hb.handle_input(&mut b_in) {
                    Ok(Some(p)) => rb = Some(Ok(p)),
                    Ok(None) => {}
                    Err(e) => rb = Some(Err(e)),
                }
            }
            if ra.is_some() && rb.is_some() {
                break;
            }
        }
        (ra.expect("a finished"), rb.expect("b finished"))
    }

    #[test]
    fn dealer_router_in_pieces() {
        for chunk in [1, 3, 10, 64, 1000] {
            let (a, b) = pair(
                config(SocketType::Dealer, "client-1"),
                config(SocketType::Router, ""),
                chunk,
            );
            let a = a.unwrap();
            let b = b.unwrap();
            assert_eq!(a.socket_type, Some(SocketType::Router));
            assert_eq!(b.identity, "client-1");
            assert_eq!(b.version, Version { major: 3, minor: 1 });
        }
    }

    #[test]
    fn incompatible_types_refused() {
        let (a, _) = pair(config(SocketType::Req, ""), config(SocketType::Req, ""), 64);
        assert_eq!(
            a,
            Err(HandshakeError::IncompatibleSocketType {
                ours: SocketType::Req,
                peer: SocketType::Req
            })
        );
    }

    fn libzmq_greeting(mechanism: &[u8]) -> Vec<u8> {
        let mut g = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, 0];
        g.extend_from_slice(mechanism);
        g.resize(GREETING_LEN, 0);
        g
    }

    #[test]
    fn mechanism_mismatch() {
        let mut h = Handshake::new(config(SocketType::Dealer, ""));
        let mut input = BytesMut::from(&libzmq_greeting(b"PLAIN")[..]);
        assert_eq!(
            h.handle_input(&mut input),
            Err(HandshakeError::MechanismMismatch {
                ours: "NULL".into(),
                theirs: "PLAIN".into()
            })
        );
    }

    #[test]
    fn leftover_bytes_stay_for_the_frame_decoder() {
        let mut h = Handshake::new(config(SocketType::Dealer, ""));
        let mut input = BytesMut::from(&libzmq_greeting(b"NULL")[..]);
        let mut md = Metadata::new();
        md.insert("Socket-Type", "ROUTER");
        Command::Ready(md).encode_frame(&mut input);
        input.put_slice(&[0x00, 0x01, b'x']);
        let peer = h.handle_input(&mut input).unwrap().unwrap();
        assert_eq!(peer.version, Version { major: 3, minor: 0 });
        assert_eq!(&input[..], &[0x00, 0x01, b'x']);
        // Our greeting and READY went out.
        let out = h.take_output().unwrap();
        assert_eq!(out[0], 0xFF);
        assert!(out.len() > GREETING_LEN);
    }

    #[test]
    fn errors_and_unexpected_commands() {
        type Check = fn(&HandshakeError) -> bool;
        let cases: Vec<(Vec<u8>, Check)> = vec![
            (
                Command::Error(Bytes::from_static(b"400"))
                    .to_frame()
                    .body
                    .to_vec(),
                |e| matches!(e, HandshakeError::PeerError(r) if r == "400"),
            ),
            (
                Command::Ping {
                    ttl_deciseconds: 0,
                    context: Bytes::new(),
                }
                .to_frame()
                .body
                .to_vec(),
                |e| matches!(e, HandshakeError::UnexpectedCommand(_)),
            ),
            (
                b"\x05READY\x0bSocket-Type\x00\x00\x00\x06WIDGET".to_vec(),
                |e| matches!(e, HandshakeError::UnknownSocketType(_)),
            ),
            (b"\x05READY\x01".to_vec(), |e| {
                matches!(e, HandshakeError::Command(_))
            }),
        ];
        for (body, check) in cases {
            let mut h = Handshake::new(config(SocketType::Dealer, ""));
            let mut input = BytesMut::from(&libzmq_greeting(b"NULL")[..]);
            crate::proto::frame::encode_header(&mut input, false, true, body.len());
            input.put_slice(&body);
            let err = h.handle_input(&mut input).unwrap_err();
            assert!(check(&err), "{err:?}");
        }
    }

    #[test]
    fn data_before_ready_refused() {
        let mut h = Handshake::new(config(SocketType::Dealer, ""));
        let mut input = BytesMut::from(&libzmq_greeting(b"NULL")[..]);
        input.put_slice(&[0x00, 0x00]);
        assert_eq!(
            h.handle_input(&mut input),
            Err(HandshakeError::DataBeforeReady)
        );
    }

    #[test]
    fn missing_socket_type_is_accepted() {
        let mut h = Handshake::new(config(SocketType::Dealer, ""));
        let mut input = BytesMut::from(&libzmq_greeting(b"NULL")[..]);
        Command::Ready(Metadata::new()).encode_frame(&mut input);
        let peer = h.handle_input(&mut input).unwrap().unwrap();
        assert_eq!(peer.socket_type, None);
    }
}
