//! Security mechanisms: the part of the handshake between the greeting and the first
//! message (RFC 37 "Authentication and Confidentiality").
//!
//! A mechanism is a sans-IO state machine: it is started once the greeting exchange
//! is done, then fed each command frame the peer sends, and writes the command frames
//! it wants sent into an output buffer. It finishes with the peer's metadata.

pub mod curve;
pub mod null;
pub mod plain;

use bytes::{Bytes, BytesMut};

use super::greeting::MechanismName;
use super::handshake::HandshakeError;
use super::metadata::Metadata;
use crate::auth::{AuthRequest, Authenticator, Credentials};

/// Which mechanism a socket uses, with its settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MechanismConfig {
    /// No authentication, no encryption (RFC 37 NULL). An authenticator, when the
    /// socket has one, still decides by address (libzmq's ZAP for NULL).
    #[default]
    Null,
    /// PLAIN client: sends a user name and password, in clear (RFC 24). Each is at
    /// most 255 bytes.
    PlainClient {
        /// The user name.
        username: Bytes,
        /// The password.
        password: Bytes,
    },
    /// PLAIN server: checks clients' user names and passwords with the socket's
    /// authenticator (everyone is let in without one, as in libzmq).
    PlainServer,
}

impl MechanismConfig {
    /// A PLAIN client with these credentials.
    pub fn plain_client(username: impl Into<Bytes>, password: impl Into<Bytes>) -> MechanismConfig {
        MechanismConfig::PlainClient {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The name announced in the greeting.
    pub fn name(&self) -> MechanismName {
        match self {
            MechanismConfig::Null => MechanismName::NULL,
            MechanismConfig::PlainClient { .. } | MechanismConfig::PlainServer => {
                MechanismName::PLAIN
            }
        }
    }

    /// Whether we act as the server in the greeting's as-server field.
    pub fn as_server(&self) -> bool {
        matches!(self, MechanismConfig::PlainServer)
    }

    pub(crate) fn start(
        &self,
        own: Metadata,
        out: &mut BytesMut,
        authenticator: Option<&Authenticator>,
        peer_address: &str,
    ) -> Result<Mechanism, HandshakeError> {
        Ok(match self {
            MechanismConfig::Null => {
                if let Some(auth) = authenticator {
                    let request = AuthRequest {
                        mechanism: "NULL",
                        peer_address,
                        routing_id: &[],
                        credentials: &Credentials::Null,
                    };
                    if let Err(reason) = auth.authenticate(&request) {
                        super::command::Command::Error(Bytes::from(reason.clone()))
                            .encode_frame(out);
                        return Err(HandshakeError::Denied(reason));
                    }
                }
                Mechanism::Null(null::NullMechanism::start(own, out))
            }
            MechanismConfig::PlainClient { username, password } => {
                Mechanism::PlainClient(plain::PlainClient::start(username, password, own, out))
            }
            MechanismConfig::PlainServer => Mechanism::PlainServer(plain::PlainServer::new(
                own,
                authenticator.cloned(),
                peer_address.to_owned(),
            )),
        })
    }
}

/// libzmq 4.3's servers refuse a client (its ZAP handler said no) with a damaged
/// ERROR command: the name-length byte is missing and the first letter overwritten
/// (`0x5E "RROR" 0x03 "400"`, seen from libzmq 4.3.5 PLAIN with `zmq.auth`). Its own
/// clients then fail with a protocol error; ours recognise the shape (which no valid
/// command has: its name length would exceed the body) and report the status code.
pub(crate) fn damaged_libzmq_error(body: &[u8]) -> Option<HandshakeError> {
    let rest = body.get(1..)?.strip_prefix(b"RROR")?;
    let (&len, rest) = rest.split_first()?;
    let reason = rest.get(..usize::from(len))?;
    Some(HandshakeError::PeerError(
        String::from_utf8_lossy(reason).into_owned(),
    ))
}

/// A running mechanism.
#[derive(Debug)]
pub(crate) enum Mechanism {
    Null(null::NullMechanism),
    PlainClient(plain::PlainClient),
    PlainServer(plain::PlainServer),
}

impl Mechanism {
    /// Feeds one command body from the peer; returns the peer's metadata once done.
    pub(crate) fn handle_command(
        &mut self,
        body: Bytes,
        out: &mut BytesMut,
    ) -> Result<Option<Metadata>, HandshakeError> {
        match self {
            Mechanism::Null(m) => m.handle_command(body, out),
            Mechanism::PlainClient(m) => m.handle_command(body, out),
            Mechanism::PlainServer(m) => m.handle_command(body, out),
        }
    }
}
