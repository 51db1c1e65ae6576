//! Security mechanisms: the part of the handshake between the greeting and the first
//! message (RFC 37 "Authentication and Confidentiality").
//!
//! A mechanism is a sans-IO state machine: it is started once the greeting exchange
//! is done, then fed each command frame the peer sends, and writes the command frames
//! it wants sent into an output buffer. It finishes with the peer's metadata.

pub mod curve;
pub(crate) mod guard;
pub mod null;
pub mod plain;

use bytes::{Bytes, BytesMut};

use super::greeting::MechanismName;
use super::handshake::HandshakeError;
use super::metadata::{Metadata, IDENTITY};
use crate::proto::authenticator::{AuthRequest, Authenticator, Credentials};

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
    /// CURVE client: encrypts everything with the server's public key and proves
    /// its own key pair (RFC 26).
    CurveClient(curve::CurveClientConfig),
    /// CURVE server: lets in clients the socket's authenticator accepts (everyone
    /// holding the server's public key without one, as in libzmq) and encrypts
    /// everything.
    CurveServer(curve::CurveServerConfig),
}

impl MechanismConfig {
    /// A PLAIN client with these credentials.
    pub fn plain_client(username: impl Into<Bytes>, password: impl Into<Bytes>) -> MechanismConfig {
        MechanismConfig::PlainClient {
            username: username.into(),
            password: password.into(),
        }
    }

    /// A CURVE client with our key pair and the server's public key.
    pub fn curve_client(keys: curve::CurveKeyPair, server_public: [u8; curve::KEY_LEN]) -> Self {
        MechanismConfig::CurveClient(curve::CurveClientConfig {
            keys,
            server_public,
        })
    }

    /// A CURVE server with our key pair.
    pub fn curve_server(keys: curve::CurveKeyPair) -> MechanismConfig {
        MechanismConfig::CurveServer(curve::CurveServerConfig { keys })
    }

    /// The name announced in the greeting.
    pub fn name(&self) -> MechanismName {
        match self {
            MechanismConfig::Null => MechanismName::NULL,
            MechanismConfig::PlainClient { .. } | MechanismConfig::PlainServer => {
                MechanismName::PLAIN
            }
            MechanismConfig::CurveClient(_) | MechanismConfig::CurveServer(_) => {
                MechanismName::CURVE
            }
        }
    }

    /// Whether we act as the server in the greeting's as-server field.
    pub fn as_server(&self) -> bool {
        matches!(
            self,
            MechanismConfig::PlainServer | MechanismConfig::CurveServer(_)
        )
    }

    pub(crate) fn start(
        &self,
        own: Metadata,
        out: &mut BytesMut,
        authenticator: Option<&Authenticator>,
        peer_address: &str,
        guard: Option<&guard::Guard>,
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
                        return Err(refuse(reason, out));
                    }
                }
                Mechanism::Null(null::NullMechanism::start(own, out))
            }
            MechanismConfig::PlainClient { username, password } => {
                Mechanism::PlainClient(plain::PlainClient::start(username, password, own, out))
            }
            MechanismConfig::PlainServer => Mechanism::PlainServer(
                plain::PlainServer::new(own, authenticator.cloned(), peer_address.to_owned())
                    .with_guard(guard.cloned()),
            ),
            MechanismConfig::CurveClient(config)
                if curve::has_small_order(&config.server_public) =>
            {
                return Err(HandshakeError::Crypto(
                    "the server public key is not a usable CURVE key (small order)".into(),
                ));
            }
            MechanismConfig::CurveClient(config) => Mechanism::CurveClient(Box::new(
                curve::CurveClient::start(config.clone(), own, out),
            )),
            MechanismConfig::CurveServer(config) => Mechanism::CurveServer {
                server: Box::new(
                    curve::CurveServer::new(config.clone(), own).with_guard(guard.cloned()),
                ),
                authenticator: authenticator.cloned(),
                peer_address: peer_address.to_owned(),
            },
        })
    }
}

/// The ZAP status code a refusal carries in ERROR (RFC 27: 400, authentication
/// failed). libzmq clients read a three-digit reason as a status code and report
/// it (`ZMQ_EVENT_HANDSHAKE_FAILED_AUTH`); the reason itself stays on our side.
const DENIED_STATUS: &[u8] = b"400";

/// Refuses the peer: writes ERROR and returns [`HandshakeError::Denied`] with the
/// authenticator's reason (for our logs and monitor).
pub(crate) fn refuse(reason: String, out: &mut BytesMut) -> HandshakeError {
    super::command::Command::Error(Bytes::from_static(DENIED_STATUS)).encode_frame(out);
    HandshakeError::Denied(reason)
}

/// The error for an ERROR command the peer sent.
pub(crate) fn peer_error(reason: &[u8]) -> HandshakeError {
    HandshakeError::PeerError(String::from_utf8_lossy(reason).into_owned())
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
    CurveClient(Box<curve::CurveClient>),
    CurveServer {
        server: Box<curve::CurveServer>,
        authenticator: Option<Authenticator>,
        peer_address: String,
    },
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
            Mechanism::CurveClient(m) => m.handle_command(body, out),
            Mechanism::CurveServer {
                server,
                authenticator,
                peer_address,
            } => {
                let Some(auth) = authenticator else {
                    return server.handle_command(body, out, &mut |_, _| Ok(()));
                };
                server.handle_command(body, out, &mut |public_key, metadata| {
                    auth.authenticate(&AuthRequest {
                        mechanism: "CURVE",
                        peer_address,
                        routing_id: metadata.get(IDENTITY).map_or(&[][..], |id| &id[..]),
                        credentials: &Credentials::Curve {
                            public_key: *public_key,
                        },
                    })
                })
            }
        }
    }

    /// What it means that the peer closed the connection now, when it means more
    /// than that.
    pub(crate) fn closed_hint(&self) -> Option<&'static str> {
        match self {
            // libzmq closes without a word when HELLO does not open (curve_server.cpp
            // process_hello), which is what a wrong server key does.
            Mechanism::CurveClient(m) if m.awaiting_welcome() => Some(
                "the CURVE server closed the connection on our HELLO: it could not open \
                 it, so the server public key we were given is probably wrong",
            ),
            _ => None,
        }
    }

    /// The MESSAGE codec a finished CURVE handshake leaves (None for NULL and
    /// PLAIN, which send messages in clear).
    pub(crate) fn into_codec(self) -> Option<curve::CurveCodec> {
        match self {
            Mechanism::CurveClient(m) => m.into_codec(),
            Mechanism::CurveServer { server, .. } => server.into_codec(),
            _ => None,
        }
    }
}
