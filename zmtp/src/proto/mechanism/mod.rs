//! Security mechanisms: the part of the handshake between the greeting and the first
//! message (RFC 37 "Authentication and Confidentiality").
//!
//! A mechanism is a sans-IO state machine: it is started once the greeting exchange
//! is done, then fed each command frame the peer sends, and writes the command frames
//! it wants sent into an output buffer. It finishes with the peer's metadata.

pub mod null;

use bytes::{Bytes, BytesMut};

use super::greeting::MechanismName;
use super::handshake::HandshakeError;
use super::metadata::Metadata;

/// Which mechanism a socket uses, with its settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MechanismConfig {
    /// No authentication, no encryption (RFC 37 NULL).
    #[default]
    Null,
}

impl MechanismConfig {
    /// The name announced in the greeting.
    pub fn name(&self) -> MechanismName {
        match self {
            MechanismConfig::Null => MechanismName::NULL,
        }
    }

    /// Whether we act as the server in the greeting (informational for NULL).
    pub fn as_server(&self) -> bool {
        false
    }

    pub(crate) fn start(&self, own: Metadata, out: &mut BytesMut) -> Mechanism {
        match self {
            MechanismConfig::Null => Mechanism::Null(null::NullMechanism::start(own, out)),
        }
    }
}

/// A running mechanism.
#[derive(Debug)]
pub(crate) enum Mechanism {
    Null(null::NullMechanism),
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
        }
    }
}
