//! Tests of the CURVE mechanism: in-memory handshakes, exact sizes, tampering,
//! replays and truncation.

use bytes::{Bytes, BytesMut};
use rand::{Rng, RngCore};
use tokio_util::codec::Decoder;

use super::*;
use crate::proto::connection::Fault;
use crate::proto::frame::FrameCodec;
use crate::proto::metadata::Metadata;
use crate::proto::z85;

/// libzmq's test keys (zmq_curve man page / testutil_security).
const CLIENT_PUBLIC: &str = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
const CLIENT_SECRET: &str = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs";
const SERVER_PUBLIC: &str = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
const SERVER_SECRET: &str = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";

/// Takes the one command frame in `out` and returns its body.
fn one_body(out: &mut BytesMut) -> Bytes {
    let mut codec = FrameCodec::new(u64::MAX);
    let frame = codec.decode(out).unwrap().expect("a whole frame");
    assert!(frame.command && !frame.more);
    assert!(out.is_empty(), "exactly one frame");
    frame.body
}

fn allow_all(_: &[u8; KEY_LEN], _: &Metadata) -> Result<(), String> {
    Ok(())
}

fn metadata(pairs: &[(&str, &'static str)]) -> Metadata {
    let mut md = Metadata::new();
    for (name, value) in pairs {
        md.insert(*name, Bytes::from_static(value.as_bytes()));
    }
    md
}

fn client_md() -> Metadata {
    metadata(&[("Socket-Type", "DEALER"), ("Identity", "client-1")])
}

fn server_md() -> Metadata {
    metadata(&[("Socket-Type", "ROUTER"), ("X-Extra", "some value")])
}

fn server_keys() -> CurveKeyPair {
    CurveKeyPair::from_z85_secret(SERVER_SECRET).unwrap()
}

fn client_config(server_public: [u8; KEY_LEN]) -> CurveClientConfig {
    CurveClientConfig {
        keys: CurveKeyPair::from_z85_secret(CLIENT_SECRET).unwrap(),
        server_public,
    }
}

/// A client, a server, and every command of a successful handshake.
struct Run {
    client: CurveClient,
    server: CurveServer,
    hello: Bytes,
    welcome: Bytes,
    initiate: Bytes,
    ready: Bytes,
}

/// Runs the handshake up to (and including) the command named by `stop`.
fn run(stop: &str) -> Run {
    let keys = server_keys();
    let mut out = BytesMut::new();
    let mut client = CurveClient::start(client_config(keys.public), client_md(), &mut out);
    let hello = one_body(&mut out);
    let mut server = CurveServer::new(CurveServerConfig { keys }, server_md());
    let (mut welcome, mut initiate, mut ready) = (Bytes::new(), Bytes::new(), Bytes::new());
    if stop != "HELLO" {
        let step = server.handle_command(hello.clone(), &mut out, &mut allow_all);
        assert_eq!(step, Ok(None));
        welcome = one_body(&mut out);
    }
    if stop == "INITIATE" || stop == "READY" {
        assert_eq!(client.handle_command(welcome.clone(), &mut out), Ok(None));
        initiate = one_body(&mut out);
    }
    if stop == "READY" {
        let step = server.handle_command(initiate.clone(), &mut out, &mut allow_all);
        assert_eq!(step, Ok(Some(client_md())));
        ready = one_body(&mut out);
    }
    Run {
        client,
        server,
        hello,
        welcome,
        initiate,
        ready,
    }
}

/// Both codecs after a whole handshake.
pub(crate) fn codecs() -> (CurveCodec, CurveCodec) {
    let mut r = run("READY");
    let md = r
        .client
        .handle_command(r.ready, &mut BytesMut::new())
        .unwrap();
    assert_eq!(md, Some(server_md()));
    (
        r.client.into_codec().unwrap(),
        r.server.into_codec().unwrap(),
    )
}

fn encrypt(codec: &mut CurveCodec, flags: u8, data: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    codec.encrypt(flags, data, &mut out).unwrap();
    out.freeze()
}

/// Byte positions to tamper with: every 5th and the last (each try costs X25519
/// operations, slow in debug builds).
fn sample_positions(len: usize) -> impl Iterator<Item = usize> {
    (0..len).filter(move |i| i % 5 == 0 || i + 1 == len)
}

fn nonce_of(body: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(body[at..at + 8].try_into().unwrap())
}

fn encoded_len(md: &Metadata) -> usize {
    let mut b = BytesMut::new();
    md.encode(&mut b);
    b.len()
}

#[test]
fn keys_derive_like_libsodium() {
    // libzmq's published pairs: our X25519 base-point multiplication must agree.
    let client = CurveKeyPair::from_z85_secret(CLIENT_SECRET).unwrap();
    assert_eq!(client.public_z85(), CLIENT_PUBLIC);
    assert_eq!(client.secret_z85(), CLIENT_SECRET);
    let server = server_keys();
    assert_eq!(server.public, z85::decode_key(SERVER_PUBLIC).unwrap());
    let generated = CurveKeyPair::generate();
    assert_eq!(CurveKeyPair::from_secret(generated.secret), generated);
    assert_ne!(generated, CurveKeyPair::generate());
    let debug = format!("{generated:?}");
    assert!(!debug.contains(&generated.secret_z85()));
}

#[test]
fn full_handshake_sizes_and_nonces() {
    let mut r = run("READY");
    assert_eq!(r.hello.len(), HELLO_LEN);
    assert_eq!(&r.hello[..8], b"\x05HELLO\x01\x00");
    assert!(r.hello[8..80].iter().all(|&b| b == 0));
    assert_eq!(nonce_of(&r.hello, 112), 1);
    assert_eq!(r.welcome.len(), WELCOME_LEN);
    assert_eq!(&r.welcome[..8], b"\x07WELCOME");
    assert_eq!(
        r.initiate.len(),
        INITIATE_MIN_LEN + encoded_len(&client_md())
    );
    assert_eq!(&r.initiate[..9], b"\x08INITIATE");
    assert_eq!(nonce_of(&r.initiate, 105), 2);
    assert_eq!(r.ready.len(), READY_MIN_LEN + encoded_len(&server_md()));
    assert_eq!(&r.ready[..6], b"\x05READY");
    assert_eq!(nonce_of(&r.ready, 6), 1);

    let md = r
        .client
        .handle_command(r.ready.clone(), &mut BytesMut::new())
        .unwrap();
    assert_eq!(md, Some(server_md()));
    let mut client = r.client.into_codec().unwrap();
    let mut server = r.server.into_codec().unwrap();

    // Client to server: nonces go on from INITIATE (2).
    let m1 = encrypt(&mut client, 0x01, b"first part");
    assert_eq!(&m1[..8], b"\x07MESSAGE");
    assert_eq!(nonce_of(&m1, 8), 3);
    assert_eq!(m1.len(), MESSAGE_MIN_LEN + b"first part".len());
    let m2 = encrypt(&mut client, 0x00, b"");
    assert_eq!(nonce_of(&m2, 8), 4);
    assert_eq!(m2.len(), MESSAGE_MIN_LEN);
    assert_eq!(
        server.decrypt(m1).unwrap(),
        (0x01, Bytes::from_static(b"first part"))
    );
    assert_eq!(server.decrypt(m2).unwrap(), (0x00, Bytes::new()));

    // Server to client: nonces go on from READY (1).
    let s1 = encrypt(&mut server, FLAG_COMMAND, b"\x04PING\x00\x00");
    assert_eq!(nonce_of(&s1, 8), 2);
    assert_eq!(
        client.decrypt(s1).unwrap(),
        (FLAG_COMMAND, Bytes::from_static(b"\x04PING\x00\x00"))
    );
    // Only MORE and COMMAND travel.
    let s2 = encrypt(&mut server, 0xFF, &[7; 1000]);
    assert_eq!(
        client.decrypt(s2).unwrap(),
        (FLAG_MORE | FLAG_COMMAND, Bytes::from(vec![7; 1000]))
    );
}

#[test]
fn empty_metadata_gives_minimum_sizes() {
    let keys = server_keys();
    let mut out = BytesMut::new();
    let mut client = CurveClient::start(client_config(keys.public), Metadata::new(), &mut out);
    let mut server = CurveServer::new(CurveServerConfig { keys }, Metadata::new());
    server
        .handle_command(one_body(&mut out), &mut out, &mut allow_all)
        .unwrap();
    client.handle_command(one_body(&mut out), &mut out).unwrap();
    let initiate = one_body(&mut out);
    assert_eq!(initiate.len(), INITIATE_MIN_LEN);
    let md = server
        .handle_command(initiate, &mut out, &mut allow_all)
        .unwrap();
    assert_eq!(md, Some(Metadata::new()));
    let ready = one_body(&mut out);
    assert_eq!(ready.len(), READY_MIN_LEN);
    assert_eq!(
        client.handle_command(ready, &mut out).unwrap(),
        Some(Metadata::new())
    );
}

#[test]
fn authorize_sees_client_key_and_metadata() {
    let mut r = run("INITIATE");
    let mut seen = None;
    let mut check = |key: &[u8; KEY_LEN], md: &Metadata| {
        seen = Some((*key, md.clone()));
        Ok(())
    };
    let mut out = BytesMut::new();
    r.server
        .handle_command(r.initiate, &mut out, &mut check)
        .unwrap();
    let (key, md) = seen.unwrap();
    assert_eq!(key, z85::decode_key(CLIENT_PUBLIC).unwrap());
    assert_eq!(md, client_md());
}

#[test]
fn refused_client_gets_error() {
    let mut r = run("INITIATE");
    let mut deny = |_: &[u8; KEY_LEN], _: &Metadata| Err("not on the list".to_string());
    let mut out = BytesMut::new();
    let err = r
        .server
        .handle_command(r.initiate, &mut out, &mut deny)
        .unwrap_err();
    assert_eq!(err, HandshakeError::Denied("not on the list".into()));
    // The reason stays with us; the wire carries ZAP's 400, which libzmq clients
    // report as an authentication failure.
    let error = one_body(&mut out);
    assert_eq!(&error[..], b"\x05ERROR\x03400");
    assert!(r.server.into_codec().is_none());
    let err = r
        .client
        .handle_command(error, &mut BytesMut::new())
        .unwrap_err();
    assert_eq!(err, HandshakeError::PeerError("400".into()));
    assert_eq!(
        err.to_string(),
        "peer refused the handshake: 400 (authentication failed)"
    );
    assert!(r.client.into_codec().is_none());
}

#[test]
fn wrong_server_key_fails_hello() {
    let keys = server_keys();
    let other = CurveKeyPair::generate();
    let mut out = BytesMut::new();
    let _client = CurveClient::start(client_config(other.public), client_md(), &mut out);
    let mut server = CurveServer::new(CurveServerConfig { keys }, server_md());
    let err = server
        .handle_command(one_body(&mut out), &mut out, &mut allow_all)
        .unwrap_err();
    assert!(matches!(err, HandshakeError::Crypto(_)), "{err:?}");
    assert!(out.is_empty(), "no WELCOME");
}

#[test]
fn tampered_welcome_fails() {
    // WELCOME is boxed with the server's long-term key: one flipped bit fails it.
    let mut r = run("WELCOME");
    let mut forged = BytesMut::from(&r.welcome[..]);
    forged[100] ^= 1;
    let err = r
        .client
        .handle_command(forged.freeze(), &mut BytesMut::new())
        .unwrap_err();
    assert!(matches!(err, HandshakeError::Crypto(_)), "{err:?}");
}

#[test]
fn initiate_for_another_connection_fails() {
    // Cookie keys and short-term keys are per connection.
    let a = run("INITIATE");
    let mut b = run("WELCOME");
    let err = b
        .server
        .handle_command(a.initiate, &mut BytesMut::new(), &mut allow_all)
        .unwrap_err();
    assert!(matches!(err, HandshakeError::Crypto(_)), "{err:?}");
}

#[test]
fn hello_checks() {
    let r = run("HELLO");
    let server = || {
        CurveServer::new(
            CurveServerConfig {
                keys: server_keys(),
            },
            server_md(),
        )
    };
    // Bad version.
    let mut bad = BytesMut::from(&r.hello[..]);
    bad[6] = 2;
    assert!(matches!(
        server().handle_command(bad.freeze(), &mut BytesMut::new(), &mut allow_all),
        Err(HandshakeError::Crypto(_))
    ));
    // One byte too long.
    let mut long = BytesMut::from(&r.hello[..]);
    long.extend_from_slice(&[0]);
    assert!(matches!(
        server().handle_command(long.freeze(), &mut BytesMut::new(), &mut allow_all),
        Err(HandshakeError::Crypto(_))
    ));
    // Flipped bytes after the padding.
    for i in sample_positions(HELLO_LEN).filter(|&i| i >= 80) {
        let mut bad = BytesMut::from(&r.hello[..]);
        bad[i] ^= 0x20;
        assert!(
            server()
                .handle_command(bad.freeze(), &mut BytesMut::new(), &mut allow_all)
                .is_err(),
            "byte {i}"
        );
    }
    // A second HELLO is out of order.
    let mut s = server();
    let mut out = BytesMut::new();
    s.handle_command(r.hello.clone(), &mut out, &mut allow_all)
        .unwrap();
    assert!(matches!(
        s.handle_command(r.hello.clone(), &mut out, &mut allow_all),
        Err(HandshakeError::UnexpectedCommand(_))
    ));
}

#[test]
fn commands_out_of_order_are_refused() {
    let mut r = run("READY");
    // The client wants WELCOME first.
    let mut out = BytesMut::new();
    let mut fresh = CurveClient::start(client_config(server_keys().public), client_md(), &mut out);
    assert_eq!(
        fresh.handle_command(r.ready.clone(), &mut out),
        Err(HandshakeError::UnexpectedCommand("READY".into()))
    );
    // The server wants HELLO first.
    let mut fresh = CurveServer::new(
        CurveServerConfig {
            keys: server_keys(),
        },
        server_md(),
    );
    assert_eq!(
        fresh.handle_command(r.initiate.clone(), &mut out, &mut allow_all),
        Err(HandshakeError::UnexpectedCommand("INITIATE".into()))
    );
    // A second WELCOME is refused, and the client stays failed.
    assert!(r
        .client
        .handle_command(r.welcome.clone(), &mut out)
        .is_err());
    assert!(r.client.handle_command(r.ready.clone(), &mut out).is_err());
    assert!(r.client.into_codec().is_none());
}

#[test]
fn initiate_and_ready_tampering_fails() {
    let r = run("INITIATE");
    for i in sample_positions(r.initiate.len()) {
        let mut server = r.server.clone();
        let mut bad = BytesMut::from(&r.initiate[..]);
        bad[i] ^= 0x01;
        assert!(
            server
                .handle_command(bad.freeze(), &mut BytesMut::new(), &mut allow_all)
                .is_err(),
            "INITIATE byte {i}"
        );
    }
    let r = run("READY");
    for i in sample_positions(r.ready.len()) {
        let mut client = r.client.clone();
        let mut bad = BytesMut::from(&r.ready[..]);
        bad[i] ^= 0x01;
        assert!(
            client
                .handle_command(bad.freeze(), &mut BytesMut::new())
                .is_err(),
            "READY byte {i}"
        );
    }
    // The untouched commands still pass on clones of the same states.
    let mut client = r.client.clone();
    assert!(client.handle_command(r.ready, &mut BytesMut::new()).is_ok());
}

#[test]
fn tampered_message_fails() {
    let (mut client, mut server) = codecs();
    let msg = encrypt(&mut client, 0x01, b"hello world");
    for i in 0..msg.len() {
        let mut bad = BytesMut::from(&msg[..]);
        bad[i] ^= 0x01;
        assert!(server.decrypt(bad.freeze()).is_err(), "byte {i}");
    }
    // Failures do not advance the peer nonce: the genuine one still opens.
    assert_eq!(
        server.decrypt(msg).unwrap(),
        (0x01, Bytes::from_static(b"hello world"))
    );
}

#[test]
fn replayed_or_reordered_message_fails() {
    let (mut client, mut server) = codecs();
    let m3 = encrypt(&mut client, 0, b"a");
    let m4 = encrypt(&mut client, 0, b"b");
    let m5 = encrypt(&mut client, 0, b"c");
    assert!(server.decrypt(m3.clone()).is_ok());
    assert!(matches!(server.decrypt(m3), Err(Fault::Security(_))));
    // Skipping ahead is allowed (nonce only has to grow), going back is not.
    assert!(server.decrypt(m5).is_ok());
    assert!(matches!(server.decrypt(m4), Err(Fault::Security(_))));
}

/// A MESSAGE body boxed by hand from client to server, with any inner flags.
fn hand_boxed(keys: (&SecretKey, &[u8; KEY_LEN]), nonce: u64, plaintext: &[u8]) -> Bytes {
    let mut out = BytesMut::from(&b"\x07MESSAGE"[..]);
    out.extend_from_slice(&nonce.to_be_bytes());
    let boxed = salsa_box(keys.1, keys.0).unwrap();
    seal_into(
        &boxed,
        &short_nonce(MESSAGE_NONCE_CLIENT, nonce),
        plaintext,
        &mut out,
    )
    .unwrap();
    out.freeze()
}

#[test]
fn command_flag_is_libzmqs_0x02_and_the_frame_bit_is_accepted() {
    let client = SecretKey::from_bytes([1; KEY_LEN]);
    let server = SecretKey::from_bytes([2; KEY_LEN]);
    let server_public = server.public_key().to_bytes();
    let client_public = client.public_key().to_bytes();
    let mut opener = CurveCodec::new(
        std::sync::Arc::new(salsa_box(&client_public, &server).unwrap()),
        1,
        0,
        true,
    );
    let sent_by_libzmq = hand_boxed((&client, &server_public), 1, b"\x02\x04PING\x00\x00");
    assert_eq!(opener.decrypt(sent_by_libzmq).unwrap().0, FLAG_COMMAND);
    let frame_bit = hand_boxed((&client, &server_public), 2, b"\x05\x04PONG");
    assert_eq!(
        opener.decrypt(frame_bit).unwrap().0,
        FLAG_COMMAND | FLAG_MORE
    );
    // What we box for a command opens, by hand, to libzmq's flag byte.
    let mut sealer = CurveCodec::new(
        std::sync::Arc::new(salsa_box(&server_public, &client).unwrap()),
        3,
        0,
        false,
    );
    let body = encrypt(&mut sealer, FLAG_COMMAND, b"\x09SUBSCRIBEnews");
    let nonce = short_nonce(MESSAGE_NONCE_CLIENT, 3);
    let plaintext = open(
        &salsa_box(&client_public, &server).unwrap(),
        &nonce,
        &body[16..],
        "test",
    )
    .unwrap();
    assert_eq!(&plaintext[..], b"\x02\x09SUBSCRIBEnews");
}

#[test]
fn sealed_frames_carry_more_and_command_inside_only() {
    let (client, server) = codecs();
    let (mut sealer, _) = client.split();
    let (_, mut opener) = server.split();
    let mut wire = BytesMut::new();
    sealer.seal_frame(true, false, b"part", &mut wire).unwrap();
    sealer
        .seal_frame(false, true, b"\x04PING\x00\x00", &mut wire)
        .unwrap();
    let mut codec = FrameCodec::new(u64::MAX);
    let first = codec.decode(&mut wire).unwrap().unwrap();
    let second = codec.decode(&mut wire).unwrap().unwrap();
    for outer in [&first, &second] {
        assert!(!outer.more && !outer.command, "libzmq sets no outer flags");
    }
    let first = opener.open_frame(first).unwrap();
    assert!(first.more && !first.command);
    assert_eq!(&first.body[..], b"part");
    // The outer COMMAND bit (RFC 37 says MESSAGE is a command) is accepted too.
    let mut second = second;
    second.command = true;
    let second = opener.open_frame(second).unwrap();
    assert!(!second.more && second.command);
    assert_eq!(&second.body[..], b"\x04PING\x00\x00");
}

#[test]
fn messages_do_not_reflect() {
    // A client MESSAGE sent back to the client fails: the prefixes differ (C/S).
    let (mut client, _server) = codecs();
    let mut other = codecs().0;
    let msg = encrypt(&mut client, 0, b"x");
    assert!(other.decrypt(msg.clone()).is_err());
    assert!(client.decrypt(msg).is_err());
}

#[test]
fn non_message_bodies_are_refused() {
    let (_client, mut server) = codecs();
    assert!(matches!(
        server.decrypt(Bytes::from_static(b"\x05READY")),
        Err(Fault::Security(detail)) if detail.contains("READY")
    ));
    assert!(server.decrypt(Bytes::new()).is_err());
    assert!(server.decrypt(Bytes::from_static(b"\x07MESSAG")).is_err());
}

#[test]
fn every_truncation_fails_without_panic() {
    // Each command cut at every length, fed to a copy of the state that expects it.
    let r = run("READY");
    for len in 0..r.hello.len() {
        let mut server = CurveServer::new(
            CurveServerConfig {
                keys: server_keys(),
            },
            server_md(),
        );
        let mut out = BytesMut::new();
        let cut = r.hello.slice(..len);
        assert!(
            server
                .handle_command(cut, &mut out, &mut allow_all)
                .is_err(),
            "HELLO at {len}"
        );
        assert!(out.is_empty());
    }
    let at_welcome = run("WELCOME");
    for len in 0..at_welcome.welcome.len() {
        let mut client = at_welcome.client.clone();
        let mut out = BytesMut::new();
        let cut = at_welcome.welcome.slice(..len);
        assert!(
            client.handle_command(cut, &mut out).is_err(),
            "WELCOME at {len}"
        );
        assert!(out.is_empty());
    }
    let at_initiate = run("INITIATE");
    for len in 0..at_initiate.initiate.len() {
        let mut server = at_initiate.server.clone();
        let mut out = BytesMut::new();
        let cut = at_initiate.initiate.slice(..len);
        assert!(
            server
                .handle_command(cut, &mut out, &mut allow_all)
                .is_err(),
            "INITIATE at {len}"
        );
        assert!(out.is_empty());
    }
    for len in 0..r.ready.len() {
        let mut client = r.client.clone();
        let cut = r.ready.slice(..len);
        assert!(
            client.handle_command(cut, &mut BytesMut::new()).is_err(),
            "READY at {len}"
        );
    }
    // ERROR, to a client waiting for WELCOME.
    let error = Bytes::from_static(b"\x05ERROR\x06denied");
    for len in 0..error.len() {
        let mut client = at_welcome.client.clone();
        assert!(client
            .handle_command(error.slice(..len), &mut BytesMut::new())
            .is_err());
    }
    let mut client = at_welcome.client.clone();
    assert_eq!(
        client.handle_command(error, &mut BytesMut::new()),
        Err(HandshakeError::PeerError("denied".into()))
    );
    // MESSAGE, to one codec (failures leave it usable).
    let (mut client, mut server) = codecs();
    let msg = encrypt(&mut client, 0x01, b"payload");
    for len in 0..msg.len() {
        assert!(
            server.decrypt(msg.slice(..len)).is_err(),
            "MESSAGE cut at {len}"
        );
    }
    assert!(server.decrypt(msg).is_ok());
}

#[test]
fn random_bodies_never_panic() {
    let mut rng = rand::thread_rng();
    let names: [&[u8]; 6] = [
        b"\x05HELLO",
        b"\x07WELCOME",
        b"\x08INITIATE",
        b"\x05READY",
        b"\x05ERROR",
        b"\x07MESSAGE",
    ];
    let (_client_codec, mut server_codec) = codecs();
    let at_hello = run("HELLO");
    let at_welcome = run("WELCOME");
    let sizes = [0, 1, 5, 30, 33, 100, 168, 200, 257, 300];
    for _ in 0..200 {
        let mut body = names[rng.gen_range(0..names.len())].to_vec();
        let size = sizes[rng.gen_range(0..sizes.len())].max(body.len());
        let start = body.len();
        body.resize(size, 0);
        rng.fill_bytes(&mut body[start..]);
        let body = Bytes::from(body);
        let _ = at_hello.server.clone().handle_command(
            body.clone(),
            &mut BytesMut::new(),
            &mut allow_all,
        );
        let _ = at_hello
            .client
            .clone()
            .handle_command(body.clone(), &mut BytesMut::new());
        let _ = at_welcome.server.clone().handle_command(
            body.clone(),
            &mut BytesMut::new(),
            &mut allow_all,
        );
        let _ = at_welcome
            .client
            .clone()
            .handle_command(body.clone(), &mut BytesMut::new());
        let _ = server_codec.decrypt(body);
    }
}

#[test]
fn small_order_keys_are_recognised() {
    let mut zero = [0u8; KEY_LEN];
    assert!(has_small_order(&zero));
    zero[KEY_LEN - 1] = 0x80; // the top bit is ignored, as X25519 ignores it
    assert!(has_small_order(&zero));
    for _ in 0..100 {
        assert!(!has_small_order(&CurveKeyPair::generate().public));
    }
    assert!(!has_small_order(&server_keys().public));
}

#[test]
fn hello_from_a_small_order_key_is_refused() {
    // Anyone can box for C' = 0: the shared secret is 0 whatever the server's key.
    let forged = crypto_box::SalsaBox::new(
        &crypto_box::PublicKey::from_bytes([0; KEY_LEN]),
        &SecretKey::from_bytes([7; KEY_LEN]),
    );
    let mut hello = BytesMut::from(&b"\x05HELLO\x01\x00"[..]);
    hello.extend_from_slice(&[0; 72]);
    hello.extend_from_slice(&[0; KEY_LEN]);
    hello.extend_from_slice(&1u64.to_be_bytes());
    seal_into(&forged, &short_nonce(HELLO_NONCE, 1), &[0; 64], &mut hello).unwrap();
    assert_eq!(hello.len(), HELLO_LEN);
    let mut server = CurveServer::new(
        CurveServerConfig {
            keys: server_keys(),
        },
        server_md(),
    );
    let mut out = BytesMut::new();
    let err = server
        .handle_command(hello.freeze(), &mut out, &mut allow_all)
        .unwrap_err();
    assert!(
        matches!(&err, HandshakeError::Crypto(m) if m.contains("small order")),
        "{err:?}"
    );
    assert!(out.is_empty(), "no WELCOME for a forged HELLO");
}

mod guarded {
    use std::sync::Arc;

    use super::*;
    use crate::proto::mechanism::guard::test_guard::TestGuard;

    fn guarded_server(guard: &Arc<TestGuard>) -> CurveServer {
        CurveServer::new(
            CurveServerConfig {
                keys: server_keys(),
            },
            server_md(),
        )
        .with_guard(Some(guard.clone() as _))
    }

    #[test]
    fn a_refused_hello_gets_error_300_before_any_public_key_work() {
        let guard = Arc::new(TestGuard {
            refuse_hellos: Some("replayed CURVE HELLO".into()),
            ..TestGuard::default()
        });
        let r = run("HELLO");
        // A HELLO whose box would not open: the refusal comes first, so nothing
        // tried to open it.
        let mut garbled = r.hello.to_vec();
        garbled[150] ^= 0xFF;
        let mut out = BytesMut::new();
        let err = guarded_server(&guard)
            .handle_command(Bytes::from(garbled), &mut out, &mut allow_all)
            .unwrap_err();
        assert_eq!(err, HandshakeError::Refused("replayed CURVE HELLO".into()));
        assert_eq!(&one_body(&mut out)[..], b"\x05ERROR\x03300");
        assert_eq!(guard.hellos.lock().unwrap().len(), 1, "asked with C'");
        assert!(guard.opened.lock().unwrap().is_empty(), "nothing opened");
        // The client reads it as a temporary failure, and will try again.
        let mut client = r.client;
        let err = client
            .handle_command(
                Bytes::from_static(b"\x05ERROR\x03300"),
                &mut BytesMut::new(),
            )
            .unwrap_err();
        assert_eq!(err, HandshakeError::PeerError("300".into()));
        assert!(err.is_retryable(), "{err}");
        assert_eq!(
            err.to_string(),
            "peer refused the handshake: 300 (temporary failure)"
        );
    }

    #[test]
    fn an_opened_hello_is_reported_and_refused_logins_counted() {
        let guard = Arc::new(TestGuard::default());
        let mut r = run("HELLO");
        let mut server = guarded_server(&guard);
        let mut out = BytesMut::new();
        assert_eq!(
            server.handle_command(r.hello.clone(), &mut out, &mut allow_all),
            Ok(None)
        );
        let welcome = one_body(&mut out);
        let client_short = guard.hellos.lock().unwrap()[0];
        assert_eq!(*guard.opened.lock().unwrap(), vec![client_short]);
        assert_eq!(&r.hello[80..112], &client_short[..]);
        assert_eq!(r.client.handle_command(welcome, &mut out), Ok(None));
        let initiate = one_body(&mut out);
        let mut deny = |_: &[u8; KEY_LEN], _: &Metadata| Err("not on the list".to_string());
        let err = server
            .handle_command(initiate, &mut out, &mut deny)
            .unwrap_err();
        assert_eq!(err, HandshakeError::Denied("not on the list".into()));
        assert_eq!(guard.failures(), 1);
    }

    #[test]
    fn a_blocked_address_is_refused_at_hello_and_at_initiate_unchecked() {
        let guard = Arc::new(TestGuard::default());
        guard.block("blocked for 2.0 s more");
        let r = run("HELLO");
        let mut out = BytesMut::new();
        let err = guarded_server(&guard)
            .handle_command(r.hello.clone(), &mut out, &mut allow_all)
            .unwrap_err();
        assert_eq!(
            err,
            HandshakeError::Refused("blocked for 2.0 s more".into())
        );
        assert_eq!(&one_body(&mut out)[..], b"\x05ERROR\x03300");
        assert!(guard.opened.lock().unwrap().is_empty());

        // Blocked between HELLO and INITIATE: the key is not even looked at.
        let unblocked = Arc::new(TestGuard::default());
        let mut r = run("HELLO");
        let mut server2 = guarded_server(&unblocked);
        server2
            .handle_command(r.hello.clone(), &mut out, &mut allow_all)
            .unwrap();
        let welcome = one_body(&mut out);
        r.client.handle_command(welcome, &mut out).unwrap();
        let initiate = one_body(&mut out);
        unblocked.block("blocked");
        let mut asked = false;
        let mut check = |_: &[u8; KEY_LEN], _: &Metadata| {
            asked = true;
            Ok(())
        };
        let err = server2
            .handle_command(initiate, &mut out, &mut check)
            .unwrap_err();
        assert_eq!(err, HandshakeError::Refused("blocked".into()));
        assert!(!asked, "the key was not checked");
        assert_eq!(&one_body(&mut out)[..], b"\x05ERROR\x03300");
        assert_eq!(unblocked.failures(), 0);
    }
}
