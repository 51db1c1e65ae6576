//! The NULL mechanism (RFC 37 "The NULL Security Mechanism").
//!
//! Both sides send READY with their metadata right after the greeting, without waiting
//! for the other's (libzmq's `null_mechanism_t` does the same), and the handshake is
//! done once each has sent and received one. Any other command is a protocol error;
//! ERROR carries the peer's reason.

use bytes::{Bytes, BytesMut};

use crate::proto::command::Command;
use crate::proto::handshake::HandshakeError;
use crate::proto::metadata::Metadata;

/// NULL handshake state: READY has been sent, waiting for the peer's.
#[derive(Debug)]
pub(crate) struct NullMechanism {
    done: bool,
}

impl NullMechanism {
    /// Sends our READY.
    pub(crate) fn start(own: Metadata, out: &mut BytesMut) -> NullMechanism {
        Command::Ready(own).encode_frame(out);
        NullMechanism { done: false }
    }

    pub(crate) fn handle_command(
        &mut self,
        body: Bytes,
        _out: &mut BytesMut,
    ) -> Result<Option<Metadata>, HandshakeError> {
        if self.done {
            return Err(HandshakeError::UnexpectedCommand("READY".into()));
        }
        match Command::parse(body)? {
            Command::Ready(metadata) => {
                self.done = true;
                Ok(Some(metadata))
            }
            Command::Error(reason) => Err(super::peer_error(&reason)),
            other => Err(HandshakeError::UnexpectedCommand(
                String::from_utf8_lossy(other.name()).into_owned(),
            )),
        }
    }
}
