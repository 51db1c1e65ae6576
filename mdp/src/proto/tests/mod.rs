//! Round trips for every message of every dialect, and errors that name the frame.

use bytes::Bytes;
use proptest::prelude::*;
use zmtp::Message;

use super::*;

fn frames(list: &[&'static [u8]]) -> Vec<Bytes> {
    list.iter().map(|f| Bytes::from_static(f)).collect()
}

fn arb_body() -> impl Strategy<Value = Message> {
    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..4)
        .prop_map(|frames| frames.into_iter().collect())
}

fn arb_dialect() -> impl Strategy<Value = Dialect> {
    proptest::sample::select(Dialect::ALL.to_vec())
}

proptest! {
    #[test]
    fn requests_round_trip(dialect in arb_dialect(), req_envelope in any::<bool>(),
                           service in "[a-z.]{1,12}", body in arb_body()) {
        let enveloped = dialect.leading_empty() || req_envelope;
        let request = Request { dialect, enveloped, service: Bytes::from(service), body };
        let parsed = FromPeer::parse(request.encode().frames()).unwrap();
        prop_assert_eq!(parsed, FromPeer::Client(request));
    }

    #[test]
    fn worker_commands_round_trip(dialect in arb_dialect(), which in 0..4u8,
                                  partial in any::<bool>(), body in arb_body()) {
        let kind = if partial && dialect.streams() { ReplyKind::Partial } else { ReplyKind::Final };
        let command = match which {
            0 => WorkerCommand::Ready { service: Bytes::from("echo") },
            1 => WorkerCommand::Reply { client: Bytes::from_static(b"\x00\x01\x02\x03\x04"), kind, body },
            2 => WorkerCommand::Heartbeat,
            _ => WorkerCommand::Disconnect,
        };
        let parsed = FromPeer::parse(command.encode(dialect).frames()).unwrap();
        prop_assert_eq!(parsed, FromPeer::Worker { dialect, command });
    }

    #[test]
    fn broker_to_worker_round_trips(dialect in arb_dialect(), which in 0..3u8, body in arb_body()) {
        let msg = match which {
            0 => ToWorker::Request { client: Bytes::from("c"), body },
            1 => ToWorker::Heartbeat,
            _ => ToWorker::Disconnect,
        };
        prop_assert_eq!(ToWorker::parse(dialect, msg.encode(dialect).frames()).unwrap(), msg);
    }

    #[test]
    fn a_reply_moved_into_its_message_is_the_one_encoded(dialect in arb_dialect(),
            enveloped in any::<bool>(), partial in any::<bool>(),
            service in proptest::option::of("[a-z.]{1,12}"), body in arb_body()) {
        let kind = if partial { ReplyKind::Partial } else { ReplyKind::Final };
        let reply = Reply { service: service.map(Bytes::from), kind, body };
        let encoded = reply.encode(dialect, enveloped);
        prop_assert_eq!(reply.into_message(dialect, enveloped), encoded);
    }

    #[test]
    fn replies_round_trip(dialect in arb_dialect(), req_envelope in any::<bool>(),
                          partial in any::<bool>(), body in arb_body()) {
        let enveloped = dialect.leading_empty() || req_envelope;
        let kind = if partial && dialect.streams() { ReplyKind::Partial } else { ReplyKind::Final };
        let service = (dialect != Dialect::Majortomo).then(|| Bytes::from("echo"));
        let reply = Reply { service, kind, body };
        let wire = reply.encode(dialect, enveloped);
        prop_assert_eq!(Reply::parse(dialect, enveloped, wire.frames()).unwrap(), reply);
    }

    #[test]
    fn arbitrary_frames_never_panic(fs in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..8), 0..8)) {
        let fs: Vec<Bytes> = fs.into_iter().map(Bytes::from).collect();
        let _ = FromPeer::parse(&fs);
        for d in Dialect::ALL {
            let _ = ToWorker::parse(d, &fs);
            let _ = Reply::parse(d, true, &fs);
            let _ = Reply::parse(d, false, &fs);
        }
    }
}

#[test]
fn errors_name_the_wrong_frame() {
    assert_eq!(
        FromPeer::parse(&frames(&[b"", b"MDPX01", b"svc"])),
        Err(ParseError::UnknownHeader {
            index: 1,
            found: "MDPX01".into()
        })
    );
    assert_eq!(
        FromPeer::parse(&frames(&[b"", b"MDPW01", b"\x09"])),
        Err(ParseError::UnknownCommand {
            index: 2,
            dialect: Dialect::Mdp01,
            found: "0x09".into()
        })
    );
    assert_eq!(
        FromPeer::parse(&frames(&[
            b"MDPW02",
            b"\x04",
            b"client",
            b"not-empty",
            b"body"
        ])),
        Err(ParseError::NotEmpty { index: 3 })
    );
    assert!(matches!(
        FromPeer::parse(&frames(&[b"", b"MDPC01"])),
        Err(ParseError::TooShort { got: 2, .. })
    ));
    assert!(matches!(
        FromPeer::parse(&[]),
        Err(ParseError::TooShort { got: 0, .. })
    ));
    assert_eq!(
        FromPeer::parse(&frames(&[b"MDPC02", b"\x02", b"svc"])),
        Err(ParseError::UnknownCommand {
            index: 1,
            dialect: Dialect::Mdp02,
            found: "0x02".into()
        })
    );
    assert!(matches!(
        ToWorker::parse(Dialect::Mdp01, &frames(&[b"", b"MDPC01", b"\x02"])),
        Err(ParseError::WrongHeader { index: 1, .. })
    ));
}

#[test]
fn rfc18_client_behind_req_is_answered_with_an_envelope() {
    let parsed = FromPeer::parse(&frames(&[b"", b"MDPC02", b"\x01", b"echo", b"hi"])).unwrap();
    let FromPeer::Client(request) = parsed else {
        panic!("client request expected");
    };
    assert_eq!(request.dialect, Dialect::Mdp02);
    assert!(request.enveloped);
}

#[test]
fn mmi_names() {
    assert!(is_mmi(b"mmi.service"));
    assert!(!is_mmi(b"echo"));
}
