//! MDPB01, what peered brokers say to each other (see `docs/peering.md`).
//!
//! One link is one ZMTP connection between two brokers, dialed by one of them (a
//! ROUTER that connects) and accepted by the other's ordinary front end. Both sides
//! send every command, so a link works whichever side dialed it. Every message is
//! `"MDPB01", command, …` (no empty frame: both ends are ROUTERs):
//!
//! | command | frames after the code | meaning |
//! |---|---|---|
//! | HELLO `0x01` | instance (8 bytes, big-endian), name | I am a broker; the dialer says it first, the other answers |
//! | SERVICES `0x02` | (service, workers u32 BE + idle u32 BE) pairs | what I serve with my own workers now (only the services that changed since my last SERVICES; all of them after HELLO) |
//! | REQUEST `0x03` | tag (8 bytes), service, body… | serve this for me; never passed on to a third broker |
//! | PARTIAL `0x04` | tag, body… | a partial reply of the request `tag` |
//! | FINAL `0x05` | tag, body… | its last reply |
//! | BOUNCE `0x06` | tag | I will not serve it (no worker here now, or I hold too much): keep it |
//! | HEARTBEAT `0x07` | | still here (sent every heartbeat interval when nothing else was) |
//! | BYE `0x08` | | forget this link (sent to a link that speaks before HELLO, and when stopping) |
//!
//! A broker advertises only its own workers, never what it reaches through another
//! broker, and a request that came from a peer is served locally or bounced: one hop
//! at most, so no loop and no ping-pong.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use zmtp::Message;

use super::error::ParseError;
use super::message::ReplyKind;

/// The header of every message between brokers.
pub const MDPB01: &[u8] = b"MDPB01";

const HELLO: u8 = 0x01;
const SERVICES: u8 = 0x02;
const REQUEST: u8 = 0x03;
const PARTIAL: u8 = 0x04;
const FINAL: u8 = 0x05;
const BOUNCE: u8 = 0x06;
const HEARTBEAT: u8 = 0x07;
const BYE: u8 = 0x08;

/// What a broker can serve with its own workers, as it tells its peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    /// The service.
    pub service: Bytes,
    /// Its registered workers (0: it no longer serves it).
    pub workers: u32,
    /// Of those, the idle ones.
    pub idle: u32,
}

/// One message between peered brokers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerCommand {
    /// I am a broker: `instance` is random per process (a broker that meets its
    /// own instance is talking to itself), `name` is for logs.
    Hello {
        /// Random per broker process.
        instance: u64,
        /// The broker's name, for logs and MMI.
        name: Bytes,
    },
    /// What changed in what I serve with my own workers.
    Services(Vec<Capacity>),
    /// Serve this for me.
    Request {
        /// Mine: your replies carry it back.
        tag: u64,
        /// The service.
        service: Bytes,
        /// The body, as the client sent it.
        body: Message,
    },
    /// A reply of request `tag`.
    Reply {
        /// The request's tag.
        tag: u64,
        /// Partial or final.
        kind: ReplyKind,
        /// The body, as the worker sent it.
        body: Message,
    },
    /// I will not serve request `tag`: keep it.
    Bounce {
        /// The request's tag.
        tag: u64,
    },
    /// Still here.
    Heartbeat,
    /// Forget this link.
    Bye,
}

fn bad(index: usize, reason: &'static str) -> ParseError {
    ParseError::Peering { index, reason }
}

fn u64_at(frames: &[Bytes], index: usize, what: &'static str) -> Result<u64, ParseError> {
    match frames.get(index) {
        Some(f) if f.len() == 8 => Ok((&f[..]).get_u64()),
        Some(_) => Err(bad(index, what)),
        None => Err(bad(index, "missing frame")),
    }
}

fn body_from(frames: &[Bytes], start: usize) -> Message {
    frames.iter().skip(start).cloned().collect()
}

impl PeerCommand {
    /// Parses a message whose first frame is [`MDPB01`].
    pub fn parse(frames: &[Bytes]) -> Result<PeerCommand, ParseError> {
        if frames.first().map(|f| &f[..]) != Some(MDPB01) {
            return Err(bad(0, "not MDPB01"));
        }
        let code = match frames.get(1) {
            Some(code) if code.len() == 1 => code[0],
            Some(_) => return Err(bad(1, "a command is one byte")),
            None => return Err(bad(1, "missing command")),
        };
        let command = match code {
            HELLO => PeerCommand::Hello {
                instance: u64_at(frames, 2, "an instance is 8 bytes")?,
                name: frames.get(3).cloned().ok_or(bad(3, "missing name"))?,
            },
            SERVICES => {
                let pairs = &frames[2..];
                if pairs.len() % 2 != 0 {
                    return Err(bad(frames.len() - 1, "services come in pairs"));
                }
                let mut list = Vec::with_capacity(pairs.len() / 2);
                for (i, pair) in pairs.chunks_exact(2).enumerate() {
                    let mut counts = &pair[1][..];
                    if counts.len() != 8 {
                        return Err(bad(3 + 2 * i, "counts are 8 bytes"));
                    }
                    list.push(Capacity {
                        service: pair[0].clone(),
                        workers: counts.get_u32(),
                        idle: counts.get_u32(),
                    });
                }
                PeerCommand::Services(list)
            }
            REQUEST => {
                let tag = u64_at(frames, 2, "a tag is 8 bytes")?;
                let service = frames.get(3).cloned().ok_or(bad(3, "missing service"))?;
                PeerCommand::Request {
                    tag,
                    service,
                    body: body_from(frames, 4),
                }
            }
            PARTIAL | FINAL => PeerCommand::Reply {
                tag: u64_at(frames, 2, "a tag is 8 bytes")?,
                kind: if code == FINAL {
                    ReplyKind::Final
                } else {
                    ReplyKind::Partial
                },
                body: body_from(frames, 3),
            },
            BOUNCE => PeerCommand::Bounce {
                tag: u64_at(frames, 2, "a tag is 8 bytes")?,
            },
            HEARTBEAT => PeerCommand::Heartbeat,
            BYE => PeerCommand::Bye,
            _ => return Err(bad(1, "unknown command")),
        };
        Ok(command)
    }

    /// The frames on the wire (after the routing id).
    pub fn encode(&self) -> Message {
        let mut msg = Message::new();
        msg.push_back(MDPB01);
        let code = |c: u8| Bytes::copy_from_slice(&[c]);
        let u64_frame = |v: u64| Bytes::copy_from_slice(&v.to_be_bytes());
        match self {
            PeerCommand::Hello { instance, name } => {
                msg.push_back(code(HELLO));
                msg.push_back(u64_frame(*instance));
                msg.push_back(name.clone());
            }
            PeerCommand::Services(list) => {
                msg.push_back(code(SERVICES));
                for c in list {
                    msg.push_back(c.service.clone());
                    let mut counts = BytesMut::with_capacity(8);
                    counts.put_u32(c.workers);
                    counts.put_u32(c.idle);
                    msg.push_back(counts.freeze());
                }
            }
            PeerCommand::Request { tag, service, body } => {
                msg.push_back(code(REQUEST));
                msg.push_back(u64_frame(*tag));
                msg.push_back(service.clone());
                msg.extend(body.iter().cloned());
            }
            PeerCommand::Reply { tag, kind, body } => {
                msg.push_back(code(match kind {
                    ReplyKind::Partial => PARTIAL,
                    ReplyKind::Final => FINAL,
                }));
                msg.push_back(u64_frame(*tag));
                msg.extend(body.iter().cloned());
            }
            PeerCommand::Bounce { tag } => {
                msg.push_back(code(BOUNCE));
                msg.push_back(u64_frame(*tag));
            }
            PeerCommand::Heartbeat => msg.push_back(code(HEARTBEAT)),
            PeerCommand::Bye => msg.push_back(code(BYE)),
        }
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(command: PeerCommand) {
        let msg = command.encode();
        assert_eq!(PeerCommand::parse(msg.frames()), Ok(command));
    }

    #[test]
    fn every_command_round_trips() {
        round_trip(PeerCommand::Hello {
            instance: 0x0102_0304_0506_0708,
            name: Bytes::from_static(b"broker-0"),
        });
        round_trip(PeerCommand::Services(vec![
            Capacity {
                service: Bytes::from_static(b"echo"),
                workers: 3,
                idle: 1,
            },
            Capacity {
                service: Bytes::from_static(b"gone"),
                workers: 0,
                idle: 0,
            },
        ]));
        round_trip(PeerCommand::Services(Vec::new()));
        round_trip(PeerCommand::Request {
            tag: 7,
            service: Bytes::from_static(b"echo"),
            body: Message::from(vec![Bytes::from_static(b"a"), Bytes::new()]),
        });
        round_trip(PeerCommand::Reply {
            tag: u64::MAX,
            kind: ReplyKind::Partial,
            body: Message::new(),
        });
        round_trip(PeerCommand::Reply {
            tag: 0,
            kind: ReplyKind::Final,
            body: Message::from(vec![Bytes::from_static(b"x")]),
        });
        round_trip(PeerCommand::Bounce { tag: 9 });
        round_trip(PeerCommand::Heartbeat);
        round_trip(PeerCommand::Bye);
    }

    #[test]
    fn the_wire_is_as_documented() {
        let msg = PeerCommand::Request {
            tag: 1,
            service: Bytes::from_static(b"echo"),
            body: Message::from(vec![Bytes::from_static(b"hi")]),
        }
        .encode();
        let frames: Vec<&[u8]> = msg.iter().map(|f| &f[..]).collect();
        assert_eq!(
            frames,
            vec![
                &b"MDPB01"[..],
                &[3],
                &[0, 0, 0, 0, 0, 0, 0, 1],
                b"echo",
                b"hi"
            ]
        );
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let f =
            |v: &[&[u8]]| -> Vec<Bytes> { v.iter().map(|b| Bytes::copy_from_slice(b)).collect() };
        for frames in [
            f(&[]),
            f(&[b"MDPB01"]),
            f(&[b"MDPB01", b""]),
            f(&[b"MDPB01", b"\x01\x01"]),
            f(&[b"MDPB01", b"\x09"]),
            f(&[b"MDPB01", b"\x01"]),
            f(&[b"MDPB01", b"\x01", b"short"]),
            f(&[b"MDPB01", b"\x02", b"echo"]),
            f(&[b"MDPB01", b"\x02", b"echo", b"1234567"]),
            f(&[b"MDPB01", b"\x03", b"12345678"]),
            f(&[b"MDPB01", b"\x04"]),
            f(&[b"MDPB01", b"\x06", b"123456789"]),
            f(&[b"MDPC01", b"\x07"]),
        ] {
            assert!(PeerCommand::parse(&frames).is_err(), "{frames:?}");
        }
    }
}
