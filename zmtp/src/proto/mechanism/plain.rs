//! The PLAIN mechanism (RFC 24 as libzmq implements it): a user name and a password
//! in clear, checked by the server.
//!
//! ```text
//! client                                   server
//! HELLO    len user len password  ──►
//!                                  ◄──    WELCOME
//! INITIATE metadata               ──►
//!                                  ◄──    READY metadata   (or ERROR reason)
//! ```
//!
//! libzmq's server asks its ZAP handler at HELLO and answers ERROR instead of
//! WELCOME; ours asks the [`Authenticator`] at INITIATE, once the client's metadata
//! (its routing id) is known too, and answers ERROR instead of READY. libzmq clients
//! accept ERROR at either point, so a refused client fails the same way.
//! Without an authenticator a PLAIN server lets anyone in, as libzmq does without
//! a ZAP handler.

use bytes::{BufMut, Bytes, BytesMut};

use super::guard::{check_login, Guard};
use crate::proto::authenticator::{AuthRequest, Authenticator, Credentials};
use crate::proto::command::Command;
use crate::proto::handshake::HandshakeError;
use crate::proto::metadata::{Metadata, IDENTITY};

/// The longest user name or password (one length byte on the wire).
pub const MAX_CREDENTIAL_LEN: usize = 255;

fn command(name: &'static [u8], data: Bytes) -> Command {
    Command::Unknown {
        name: Bytes::from_static(name),
        data,
    }
}

/// What the peer sent, as far as PLAIN cares.
enum Received {
    Named(Bytes, Bytes),
    Ready(Metadata),
}

fn receive(body: Bytes) -> Result<Received, HandshakeError> {
    if let Some(refusal) = super::damaged_libzmq_error(&body) {
        return Err(refusal);
    }
    match Command::parse(body)? {
        Command::Ready(metadata) => Ok(Received::Ready(metadata)),
        Command::Error(reason) => Err(super::peer_error(&reason)),
        Command::Unknown { name, data } => Ok(Received::Named(name, data)),
        other => Err(unexpected(other.name())),
    }
}

fn unexpected(name: &[u8]) -> HandshakeError {
    HandshakeError::UnexpectedCommand(String::from_utf8_lossy(name).into_owned())
}

/// PLAIN client: HELLO sent, then WELCOME expected, then READY.
#[derive(Debug)]
pub(crate) struct PlainClient {
    metadata: Option<Metadata>,
}

impl PlainClient {
    /// Sends HELLO with the credentials (each cut to 255 bytes).
    pub(crate) fn start(
        username: &[u8],
        password: &[u8],
        own: Metadata,
        out: &mut BytesMut,
    ) -> PlainClient {
        let mut hello = BytesMut::new();
        for field in [username, password] {
            let field = &field[..field.len().min(MAX_CREDENTIAL_LEN)];
            hello.put_u8(field.len() as u8); // ok: cut to 255 above
            hello.put_slice(field);
        }
        command(b"HELLO", hello.freeze()).encode_frame(out);
        PlainClient {
            metadata: Some(own),
        }
    }

    pub(crate) fn handle_command(
        &mut self,
        body: Bytes,
        out: &mut BytesMut,
    ) -> Result<Option<Metadata>, HandshakeError> {
        match (receive(body)?, self.metadata.take()) {
            (Received::Named(name, data), Some(own)) if &name[..] == b"WELCOME" => {
                if !data.is_empty() {
                    return Err(HandshakeError::UnexpectedCommand(
                        "WELCOME with data".into(),
                    ));
                }
                let mut initiate = BytesMut::new();
                own.encode(&mut initiate);
                command(b"INITIATE", initiate.freeze()).encode_frame(out);
                Ok(None)
            }
            (Received::Ready(metadata), None) => Ok(Some(metadata)),
            (Received::Ready(_), Some(_)) => Err(unexpected(b"READY")),
            (Received::Named(name, _), _) => Err(unexpected(&name)),
        }
    }
}

#[derive(Debug)]
enum ServerState {
    WaitingForHello,
    WaitingForInitiate { username: Bytes, password: Bytes },
    Done,
}

/// PLAIN server: waits for HELLO, answers WELCOME, checks the credentials at
/// INITIATE and answers READY or ERROR.
#[derive(Debug)]
pub(crate) struct PlainServer {
    state: ServerState,
    own: Metadata,
    authenticator: Option<Authenticator>,
    peer_address: String,
    guard: Option<Guard>,
}

impl PlainServer {
    /// A server; it sends nothing until the client's HELLO.
    pub(crate) fn new(
        own: Metadata,
        authenticator: Option<Authenticator>,
        peer_address: String,
    ) -> PlainServer {
        PlainServer {
            state: ServerState::WaitingForHello,
            own,
            authenticator,
            peer_address,
            guard: None,
        }
    }

    /// Asks `guard` before checking credentials (a blocked address is refused with
    /// ERROR 300 at HELLO and at INITIATE) and tells it of each refusal.
    pub(crate) fn with_guard(mut self, guard: Option<Guard>) -> PlainServer {
        self.guard = guard;
        self
    }

    pub(crate) fn handle_command(
        &mut self,
        body: Bytes,
        out: &mut BytesMut,
    ) -> Result<Option<Metadata>, HandshakeError> {
        let received = receive(body)?;
        match (
            std::mem::replace(&mut self.state, ServerState::Done),
            received,
        ) {
            (ServerState::WaitingForHello, Received::Named(name, data))
                if &name[..] == b"HELLO" =>
            {
                let (username, password) = parse_hello(data)?;
                check_login(self.guard.as_ref(), out)?;
                command(b"WELCOME", Bytes::new()).encode_frame(out);
                self.state = ServerState::WaitingForInitiate { username, password };
                Ok(None)
            }
            (
                ServerState::WaitingForInitiate { username, password },
                Received::Named(name, data),
            ) if &name[..] == b"INITIATE" => {
                let metadata = Metadata::parse(data).map_err(crate::proto::CommandError::from)?;
                check_login(self.guard.as_ref(), out)?;
                let credentials = Credentials::Plain { username, password };
                let routing_id = metadata.get(IDENTITY).cloned().unwrap_or_default();
                let verdict = self.authenticator.as_ref().map_or(Ok(()), |auth| {
                    auth.authenticate(&AuthRequest {
                        mechanism: "PLAIN",
                        peer_address: &self.peer_address,
                        routing_id: &routing_id,
                        credentials: &credentials,
                    })
                });
                match verdict {
                    Ok(()) => {
                        Command::Ready(self.own.clone()).encode_frame(out);
                        Ok(Some(metadata))
                    }
                    Err(reason) => {
                        if let Some(guard) = &self.guard {
                            guard.login_failed();
                        }
                        Err(super::refuse(reason, out))
                    }
                }
            }
            (_, Received::Named(name, _)) => Err(unexpected(&name)),
            (_, Received::Ready(_)) => Err(unexpected(b"READY")),
        }
    }
}

/// HELLO's data: `len(1) user len(1) password`, nothing after.
fn parse_hello(data: Bytes) -> Result<(Bytes, Bytes), HandshakeError> {
    let malformed = || HandshakeError::UnexpectedCommand("malformed HELLO".into());
    let user_len = usize::from(*data.first().ok_or_else(malformed)?);
    let pass_at = 1 + user_len;
    let pass_len = usize::from(*data.get(pass_at).ok_or_else(malformed)?);
    if data.len() != pass_at + 1 + pass_len {
        return Err(malformed());
    }
    Ok((data.slice(1..pass_at), data.slice(pass_at + 1..)))
}

#[cfg(test)]
#[path = "../tests/plain.rs"]
mod tests;
