//! Tests of the PLAIN mechanism: in-memory exchanges, refusals, the authenticator's
//! view and libzmq's damaged ERROR.

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
    let mut server = PlainServer::new(metadata("ROUTER", ""), authenticator, "127.0.0.1:1".into());
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

mod guarded {
    use std::sync::Arc;

    use super::*;
    use crate::proto::mechanism::guard::test_guard::TestGuard;

    fn users() -> Authenticator {
        let mut users = crate::auth::PasswordFile::new();
        users.insert("admin", "secret");
        Authenticator::plain_users(users)
    }

    fn server(guard: &Arc<TestGuard>) -> PlainServer {
        PlainServer::new(Metadata::new(), Some(users()), "127.0.0.2:1".into())
            .with_guard(Some(guard.clone() as _))
    }

    fn hello(password: &str) -> Bytes {
        let mut out = BytesMut::new();
        PlainClient::start(b"admin", password.as_bytes(), Metadata::new(), &mut out);
        bodies(out).remove(0)
    }

    fn initiate() -> Bytes {
        let mut body = BytesMut::from(&b"\x08INITIATE"[..]);
        metadata("DEALER", "x").encode(&mut body);
        body.freeze()
    }

    #[test]
    fn failed_logins_are_reported_and_a_blocked_address_gets_error_300_unchecked() {
        let guard = Arc::new(TestGuard::default());
        let mut out = BytesMut::new();
        let mut first = server(&guard);
        first.handle_command(hello("guess"), &mut out).unwrap();
        assert_eq!(&bodies(out.split())[0][..], b"\x07WELCOME");
        let err = first.handle_command(initiate(), &mut out).unwrap_err();
        assert!(matches!(err, HandshakeError::Denied(_)), "{err:?}");
        assert_eq!(
            bodies(out.split()),
            vec![Bytes::from_static(b"\x05ERROR\x03400")]
        );
        assert_eq!(guard.failures(), 1);

        // Blocked: refused at HELLO, no WELCOME.
        guard.block("the address is blocked");
        let err = server(&guard)
            .handle_command(hello("guess"), &mut out)
            .unwrap_err();
        assert_eq!(
            err,
            HandshakeError::Refused("the address is blocked".into())
        );
        assert_eq!(
            bodies(out.split()),
            vec![Bytes::from_static(b"\x05ERROR\x03300")]
        );

        // Blocked after HELLO: refused at INITIATE without checking, even the right
        // password, and nothing more is counted.
        let guard = Arc::new(TestGuard::default());
        let mut late = server(&guard);
        late.handle_command(hello("secret"), &mut out).unwrap();
        out.clear();
        guard.block("blocked");
        let err = late.handle_command(initiate(), &mut out).unwrap_err();
        assert_eq!(err, HandshakeError::Refused("blocked".into()));
        assert_eq!(
            bodies(out.split()),
            vec![Bytes::from_static(b"\x05ERROR\x03300")]
        );
        assert_eq!(guard.failures(), 0);
    }
}
