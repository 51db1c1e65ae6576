//! Tests of `proto::handshake`.

use super::*;
use crate::proto::command::Command;
use bytes::BufMut;

fn config(t: SocketType, id: &'static str) -> HandshakeConfig {
    HandshakeConfig {
        socket_type: t,
        identity: Bytes::from_static(id.as_bytes()),
        mechanism: MechanismConfig::Null,
        authenticator: None,
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
