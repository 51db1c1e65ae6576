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

use crate::auth::{AuthRequest, Authenticator, Credentials};
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
        }
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
                command(b"WELCOME", Bytes::new()).encode_frame(out);
                self.state = ServerState::WaitingForInitiate { username, password };
                Ok(None)
            }
            (
                ServerState::WaitingForInitiate { username, password },
                Received::Named(name, data),
            ) if &name[..] == b"INITIATE" => {
                let metadata = Metadata::parse(data).map_err(crate::proto::CommandError::from)?;
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
                    Err(reason) => Err(super::refuse(reason, out)),
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
mod tests {
    use super::*;
    use crate::proto::frame::FrameCodec;
    use tokio_util::codec::Decoder;

    fn bodies(mut out: BytesMut) -> Vec<Bytes> {
        let mut codec = FrameCodec::new(1 << 16);
        let mut bodies = Vec::new();
        while let Some(frame) = codec.decode(&mut out).unwrap() {
            assert!(frame.command);
            bodies.push(frame.body);
        }
        bodies
    }

    fn metadata(socket_type: &str, identity: &str) -> Metadata {
        let mut md = Metadata::new();
        md.insert("Socket-Type", socket_type.to_string());
        md.insert("Identity", identity.to_string());
        md
    }

    /// Runs a whole exchange; returns what each side concluded.
    fn exchange(
        user: &str,
        password: &str,
        authenticator: Option<Authenticator>,
    ) -> (
        Result<Option<Metadata>, HandshakeError>,
        Result<Option<Metadata>, HandshakeError>,
    ) {
        let mut to_server = BytesMut::new();
        let mut client = PlainClient::start(
            user.as_bytes(),
            password.as_bytes(),
            metadata("DEALER", "client-1"),
            &mut to_server,
        );
        let mut server =
            PlainServer::new(metadata("ROUTER", ""), authenticator, "127.0.0.1:1".into());
        let mut to_client = BytesMut::new();
        let hello = bodies(to_server.split());
        assert_eq!(hello.len(), 1);
        assert!(server
            .handle_command(hello[0].clone(), &mut to_client)
            .unwrap()
            .is_none());
        let welcome = bodies(to_client.split());
        assert_eq!(&welcome[0][..], b"\x07WELCOME");
        assert!(client
            .handle_command(welcome[0].clone(), &mut to_server)
            .unwrap()
            .is_none());
        let initiate = bodies(to_server.split());
        let server_result = server.handle_command(initiate[0].clone(), &mut to_client);
        let reply = bodies(to_client.split());
        let client_result = client.handle_command(reply[0].clone(), &mut to_server);
        (client_result, server_result)
    }

    #[test]
    fn hello_is_what_libzmq_sends() {
        let mut out = BytesMut::new();
        PlainClient::start(b"admin", b"secret", Metadata::new(), &mut out);
        assert_eq!(&bodies(out)[0][..], b"\x05HELLO\x05admin\x06secret");
    }

    #[test]
    fn allowed_users_get_in_with_metadata_both_ways() {
        let mut users = crate::auth::PasswordFile::new();
        users.insert("admin", "secret");
        let (client, server) = exchange("admin", "secret", Some(Authenticator::plain_users(users)));
        let server_md = client.unwrap().unwrap();
        assert_eq!(
            server_md.get("Socket-Type").map(|v| &v[..]),
            Some(&b"ROUTER"[..])
        );
        let client_md = server.unwrap().unwrap();
        assert_eq!(
            client_md.get("Identity").map(|v| &v[..]),
            Some(&b"client-1"[..])
        );
    }

    #[test]
    fn the_authenticator_sees_address_routing_id_and_credentials() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let seen2 = seen.clone();
        let auth = Authenticator::new(move |request| {
            *seen2.lock().unwrap() = Some((
                request.mechanism.to_owned(),
                request.peer_address.to_owned(),
                request.routing_id.to_vec(),
                request.credentials.clone(),
            ));
            Err("go away".into())
        });
        let (client, server) = exchange("u", "p", Some(auth));
        assert_eq!(client.unwrap_err(), HandshakeError::PeerError("400".into()));
        assert_eq!(
            server.unwrap_err(),
            HandshakeError::Denied("go away".into())
        );
        let (mechanism, address, routing_id, credentials) = seen.lock().unwrap().take().unwrap();
        assert_eq!(mechanism, "PLAIN");
        assert_eq!(address, "127.0.0.1:1");
        assert_eq!(routing_id, b"client-1");
        assert_eq!(
            credentials,
            Credentials::Plain {
                username: Bytes::from_static(b"u"),
                password: Bytes::from_static(b"p"),
            }
        );
    }

    #[test]
    fn without_an_authenticator_anyone_gets_in() {
        let (client, server) = exchange("anyone", "", None);
        assert!(client.unwrap().is_some());
        assert!(server.unwrap().is_some());
    }

    #[test]
    fn malformed_or_misplaced_commands_fail_without_panic() {
        for body in [
            &b"\x05HELLO"[..],
            b"\x05HELLO\x05adm",
            b"\x05HELLO\x01a\x05bc",
            b"\x05HELLO\x01a\x01bc",
            b"\x08INITIATE",
            b"\x05READY",
            b"\x07WELCOME",
            b"\x04PING\x00\x00",
        ] {
            let mut server = PlainServer::new(Metadata::new(), None, String::new());
            assert!(
                server
                    .handle_command(Bytes::copy_from_slice(body), &mut BytesMut::new())
                    .is_err(),
                "{body:?}"
            );
        }
        let mut out = BytesMut::new();
        let mut client = PlainClient::start(b"u", b"p", Metadata::new(), &mut out);
        assert!(client
            .handle_command(Bytes::from_static(b"\x05READY"), &mut out)
            .is_err());
        let mut client = PlainClient::start(b"u", b"p", Metadata::new(), &mut out);
        assert!(client
            .handle_command(Bytes::from_static(b"\x07WELCOMEx"), &mut out)
            .is_err());
    }

    #[test]
    fn the_damaged_error_of_libzmq_4_3_is_a_refusal() {
        let mut out = BytesMut::new();
        let mut client = PlainClient::start(b"u", b"p", Metadata::new(), &mut out);
        let err = client
            .handle_command(Bytes::from_static(b"\x5eRROR\x03400"), &mut out)
            .unwrap_err();
        assert_eq!(err, HandshakeError::PeerError("400".into()));
    }

    #[test]
    fn password_files_load_and_check() {
        let dir = std::env::temp_dir().join(format!("zmtp-plain-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("passwords");
        std::fs::write(&path, "# users\nadmin=se=cret\n\n bob = pw\n").unwrap();
        let users = crate::auth::PasswordFile::load(&path).unwrap();
        assert!(users.check(b"admin", b"se=cret"));
        assert!(users.check(b"bob", b" pw"));
        assert!(!users.check(b"admin", b"se=creT"));
        assert!(!users.check(b"eve", b""));
        std::fs::write(&path, "no equals sign\n").unwrap();
        let err = crate::auth::PasswordFile::load(&path)
            .unwrap_err()
            .to_string();
        assert!(err.contains(":1:"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
