//! Tests of `proto::command`.

use super::*;
use proptest::prelude::*;

fn round_trip(cmd: Command) {
    let frame = cmd.to_frame();
    assert!(frame.command && !frame.more);
    assert_eq!(Command::parse(frame.body).unwrap(), cmd);
}

#[test]
fn every_command_round_trips() {
    let mut md = Metadata::new();
    md.insert("Socket-Type", "ROUTER");
    md.insert("Identity", "");
    round_trip(Command::Ready(md));
    round_trip(Command::Error(Bytes::from_static(b"400")));
    round_trip(Command::Ping {
        ttl_deciseconds: 300,
        context: Bytes::from_static(b"ctx"),
    });
    round_trip(Command::Pong {
        context: Bytes::new(),
    });
    round_trip(Command::Subscribe(Bytes::from_static(b"topic")));
    round_trip(Command::Cancel(Bytes::new()));
    round_trip(Command::Unknown {
        name: Bytes::from_static(b"HELLO"),
        data: Bytes::from_static(b"\x01\x00"),
    });
}

#[test]
fn libzmq_ping_without_context() {
    let cmd = Command::parse(Bytes::from_static(b"\x04PING\x00\x64")).unwrap();
    assert_eq!(
        cmd,
        Command::Ping {
            ttl_deciseconds: 100,
            context: Bytes::new()
        }
    );
}

#[test]
fn long_ping_context_is_cut() {
    let mut raw = b"\x04PING\x00\x00".to_vec();
    raw.extend_from_slice(&[9; 40]);
    let Command::Ping { context, .. } = Command::parse(Bytes::from(raw)).unwrap() else {
        panic!("not a ping");
    };
    assert_eq!(context.len(), MAX_PING_CONTEXT);
}

#[test]
fn truncated_commands() {
    for raw in [
        &b""[..],
        b"\x05REA",
        b"\x04PING\x00",
        b"\x05ERROR",
        b"\x05ERROR\x05ab",
    ] {
        assert!(
            Command::parse(Bytes::copy_from_slice(raw)).is_err(),
            "{raw:?}"
        );
    }
    assert!(matches!(
        Command::parse(Bytes::from_static(b"\x05READY\x0bSocket-Ty")),
        Err(CommandError::Metadata(_))
    ));
}

proptest! {
    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Command::parse(Bytes::from(bytes));
    }
}
