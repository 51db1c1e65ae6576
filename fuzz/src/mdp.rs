//! The body of the `mdp` fuzz target: every parser of `mdp::proto` on one message.
//!
//! zmtp's tests compile `lib.rs` without `mdp`, so this file is kept out of them:
//! `lib.rs` declares it only outside `cfg(test)` (for the fuzz crate), and
//! `mdp/tests/fuzz_corpus.rs` includes it by path to replay `corpus/mdp/`. It may
//! only use `mdp` and `bytes`.
//!
//! # Input encoding
//!
//! An input is one message of at most [`MAX_FRAMES`] frames. Byte 0 modulo 12 is the
//! frame count `n` (an empty input has no frames); each of the first `n - 1` frames
//! is a length byte then that many bytes (cut short, or empty, where the input ends);
//! the last frame is every byte left. [`input`] builds the input for given frames.
//!
//! # Invariants
//!
//! Besides never panicking: a parse error names a frame that exists (or, for
//! `TooShort`, the real frame count); whatever `FromPeer::parse`, `ToWorker::parse`
//! or `Reply::parse` accepts re-encodes (in its dialect) to a prefix of the input
//! (the whole input, for replies) that parses back equal; and re-encoded in any
//! other dialect it parses back equal too, up to what that dialect cannot carry
//! (no PARTIAL in MDP/0.1 and Overseer, no reply service in majortomo).

use ::mdp::proto::{
    Dialect, FromPeer, ParseError, Reply, ReplyKind, Request, ToWorker, WorkerCommand,
};
use bytes::Bytes;

/// The most frames an input can encode.
pub const MAX_FRAMES: usize = 11;

/// Splits an input into frames (see the module's documentation).
pub fn frames(data: &[u8]) -> Vec<Bytes> {
    let Some((&first, mut rest)) = data.split_first() else {
        return Vec::new();
    };
    let count = usize::from(first) % (MAX_FRAMES + 1);
    let mut frames = Vec::with_capacity(count);
    for _ in 1..count {
        let (len, tail) = match rest.split_first() {
            Some((&len, tail)) => (usize::from(len), tail),
            None => (0, rest),
        };
        let (frame, tail) = tail.split_at(len.min(tail.len()));
        frames.push(Bytes::copy_from_slice(frame));
        rest = tail;
    }
    if count > 0 {
        frames.push(Bytes::copy_from_slice(rest));
    }
    frames
}

/// The input that [`frames`] splits into `frames`: at most [`MAX_FRAMES`] frames, all
/// but the last at most 255 bytes long.
pub fn input(frames: &[Bytes]) -> Vec<u8> {
    assert!(frames.len() <= MAX_FRAMES, "too many frames");
    let mut data = vec![u8::try_from(frames.len()).expect("at most 11 frames")];
    if let Some((last, init)) = frames.split_last() {
        for frame in init {
            data.push(u8::try_from(frame.len()).expect("a frame of at most 255 bytes"));
            data.extend_from_slice(frame);
        }
        data.extend_from_slice(last);
    }
    data
}

/// Runs every parser of `mdp::proto` on the message `data` encodes and checks the
/// invariants listed in the module's documentation.
pub fn mdp(data: &[u8]) {
    let frames = frames(data);
    from_peer(&frames);
    for dialect in Dialect::ALL {
        to_worker(dialect, &frames);
        for enveloped in [false, true] {
            reply(dialect, enveloped, &frames);
        }
    }
}

/// How clients of each dialect frame requests: only MDP/0.2 clients may leave out
/// the leading empty frame (on a DEALER socket).
const CLIENT_FRAMINGS: [(Dialect, bool); 5] = [
    (Dialect::Mdp01, true),
    (Dialect::Mdp02, false),
    (Dialect::Mdp02, true),
    (Dialect::Majortomo, true),
    (Dialect::Overseer, true),
];

fn check_error(error: &ParseError, frames: &[Bytes]) {
    match error {
        ParseError::TooShort { need, got, .. } => {
            assert_eq!(*got, frames.len(), "{error}");
            assert!(need > got, "{error}");
        }
        ParseError::NotEmpty { index }
        | ParseError::UnknownHeader { index, .. }
        | ParseError::WrongHeader { index, .. }
        | ParseError::UnknownCommand { index, .. }
        | ParseError::Peering { index, .. } => {
            assert!(*index < frames.len(), "{error}: no such frame");
        }
    }
}

/// The kind a reply of `kind` arrives as in `dialect`.
fn kind_in(dialect: Dialect, kind: ReplyKind) -> ReplyKind {
    if dialect.streams() {
        kind
    } else {
        ReplyKind::Final
    }
}

/// `command` as a broker parses it after a worker of `dialect` encoded it.
fn command_in(dialect: Dialect, command: &WorkerCommand) -> WorkerCommand {
    match command {
        WorkerCommand::Reply { client, kind, body } => WorkerCommand::Reply {
            client: client.clone(),
            kind: kind_in(dialect, *kind),
            body: body.clone(),
        },
        other => other.clone(),
    }
}

fn from_peer(frames: &[Bytes]) {
    let parsed = match FromPeer::parse(frames) {
        Ok(parsed) => parsed,
        Err(error) => return check_error(&error, frames),
    };
    let encoded = match &parsed {
        FromPeer::Client(request) => request.encode(),
        FromPeer::Worker { dialect, command } => command.encode(*dialect),
        FromPeer::Broker(command) => command.encode(),
    };
    assert_eq!(
        FromPeer::parse(encoded.frames()).as_ref(),
        Ok(&parsed),
        "round trip"
    );
    assert!(
        frames.starts_with(encoded.frames()),
        "{parsed:?} re-encodes to {encoded:?}, not a prefix of the input"
    );
    match &parsed {
        FromPeer::Client(request) => {
            for (dialect, enveloped) in CLIENT_FRAMINGS {
                let moved = Request {
                    dialect,
                    enveloped,
                    ..request.clone()
                };
                let encoded = moved.encode();
                assert_eq!(
                    FromPeer::parse(encoded.frames()),
                    Ok(FromPeer::Client(moved)),
                    "request sent as {dialect} (enveloped: {enveloped})"
                );
            }
        }
        FromPeer::Worker { command, .. } => {
            for dialect in Dialect::ALL {
                let expected = FromPeer::Worker {
                    dialect,
                    command: command_in(dialect, command),
                };
                assert_eq!(
                    FromPeer::parse(command.encode(dialect).frames()),
                    Ok(expected),
                    "worker command sent as {dialect}"
                );
            }
        }
        FromPeer::Broker(_) => {}
    }
}

fn to_worker(dialect: Dialect, frames: &[Bytes]) {
    let parsed = match ToWorker::parse(dialect, frames) {
        Ok(parsed) => parsed,
        Err(error) => return check_error(&error, frames),
    };
    let encoded = parsed.encode(dialect);
    assert_eq!(
        ToWorker::parse(dialect, encoded.frames()).as_ref(),
        Ok(&parsed),
        "{dialect} round trip"
    );
    assert!(
        frames.starts_with(encoded.frames()),
        "{parsed:?} re-encodes to {encoded:?} in {dialect}, not a prefix of the input"
    );
    for other in Dialect::ALL {
        assert_eq!(
            ToWorker::parse(other, parsed.encode(other).frames()).as_ref(),
            Ok(&parsed),
            "{dialect} broker command sent as {other}"
        );
    }
}

fn reply(dialect: Dialect, enveloped: bool, frames: &[Bytes]) {
    let parsed = match Reply::parse(dialect, enveloped, frames) {
        Ok(parsed) => parsed,
        Err(error) => return check_error(&error, frames),
    };
    let encoded = parsed.encode(dialect, enveloped);
    assert_eq!(
        Reply::parse(dialect, enveloped, encoded.frames()).as_ref(),
        Ok(&parsed),
        "{dialect} round trip (enveloped: {enveloped})"
    );
    assert_eq!(
        encoded.frames(),
        frames,
        "{parsed:?} re-encodes differently in {dialect} (enveloped: {enveloped})"
    );
    for other in Dialect::ALL {
        let expected = Reply {
            service: match other {
                Dialect::Majortomo => None,
                _ => Some(parsed.service.clone().unwrap_or_default()),
            },
            kind: kind_in(other, parsed.kind),
            body: parsed.body.clone(),
        };
        for wrap in [false, true] {
            assert_eq!(
                Reply::parse(other, wrap, parsed.encode(other, wrap).frames()).as_ref(),
                Ok(&expected),
                "{dialect} reply sent as {other} (enveloped: {wrap})"
            );
        }
    }
}
