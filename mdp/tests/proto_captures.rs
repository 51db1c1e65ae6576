//! Parse frames captured from real Python peers (majortomo 0.2.0; zguide-style and
//! Overseer-style framing from pyzmq REQ/DEALER sockets), kept as test data in
//! `tests/captures/`, and check each re-encodes to the same bytes.

use bytes::Bytes;
use mdp::proto::{Dialect, FromPeer, ReplyKind, WorkerCommand};

fn captures(text: &str) -> Vec<(String, Vec<Bytes>)> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("json line");
            let from = v["from"].as_str().expect("from").to_string();
            let frames = v["frames"]
                .as_array()
                .expect("frames")
                .iter()
                .map(|h| Bytes::from(hex(h.as_str().expect("hex"))))
                .collect();
            (from, frames)
        })
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// Every captured message parses as what its sender meant, and encodes back to the
/// same frames.
fn check_round_trip(from: &str, frames: &[Bytes]) -> FromPeer {
    let parsed = FromPeer::parse(frames).unwrap_or_else(|e| panic!("{frames:?}: {e}"));
    let encoded = match &parsed {
        FromPeer::Client(request) => {
            assert_eq!(from, "client");
            request.encode()
        }
        FromPeer::Worker { dialect, command } => {
            assert_eq!(from, "worker");
            command.encode(*dialect)
        }
        FromPeer::Broker(command) => {
            assert_eq!(from, "broker");
            command.encode()
        }
    };
    assert_eq!(encoded.frames(), frames, "re-encoding {parsed:?}");
    parsed
}

#[test]
fn majortomo_captures() {
    let all = captures(include_str!("captures/majortomo.jsonl"));
    assert_eq!(all.len(), 5);
    let parsed: Vec<FromPeer> = all.iter().map(|(f, fr)| check_round_trip(f, fr)).collect();
    assert!(matches!(
        &parsed[0],
        FromPeer::Worker { dialect: Dialect::Majortomo, command: WorkerCommand::Ready { service } } if service == "echo"
    ));
    assert!(matches!(
        &parsed[1],
        FromPeer::Worker {
            command: WorkerCommand::Heartbeat,
            ..
        }
    ));
    assert!(matches!(
        &parsed[2],
        FromPeer::Worker { command: WorkerCommand::Reply { kind: ReplyKind::Partial, client, .. }, .. } if client == "client-1"
    ));
    assert!(matches!(
        &parsed[3],
        FromPeer::Worker { command: WorkerCommand::Reply { kind: ReplyKind::Final, body, .. }, .. } if body.len() == 2
    ));
    let FromPeer::Client(request) = &parsed[4] else {
        panic!("client request expected");
    };
    assert_eq!(request.dialect, Dialect::Majortomo);
    assert_eq!(request.service, "echo");
    assert_eq!(
        request.body.frames(),
        [Bytes::from("hello"), Bytes::from("world")]
    );
}

#[test]
fn zguide_mdp02_and_overseer_captures() {
    let all = captures(include_str!("captures/zguide_overseer.jsonl"));
    assert_eq!(all.len(), 14);
    let mut dialects = Vec::new();
    for (from, frames) in &all {
        match check_round_trip(from, frames) {
            FromPeer::Client(r) => dialects.push(r.dialect),
            FromPeer::Worker { dialect, .. } => dialects.push(dialect),
            FromPeer::Broker(_) => panic!("no broker in these captures"),
        }
    }
    use Dialect::*;
    assert_eq!(
        dialects,
        [
            Mdp01, Mdp01, Mdp01, Mdp01, Mdp01, Mdp01, Mdp02, Mdp02, Mdp02, Mdp02, Overseer,
            Overseer, Overseer, Overseer
        ]
    );
}
