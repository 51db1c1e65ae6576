//! Typed MDP messages with their parse and encode functions.

use bytes::Bytes;
use zmtp::{printable, Message};

use super::dialect::{Dialect, MDPC01, MDPC02, MDPW01, MDPW02, OVERSEER_CLIENT, OVERSEER_WORKER};
use super::error::ParseError;
use super::peering::{PeerCommand, MDPB01};

/// Whether a reply ends its request (MDP 0.1 has only final replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyKind {
    /// More replies follow (MDP 0.2 PARTIAL).
    Partial,
    /// The last reply (MDP 0.1 REPLY, MDP 0.2 FINAL).
    Final,
}

/// A client's request, as the broker receives it and the client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// How the client frames its messages.
    pub dialect: Dialect,
    /// An MDP 0.2 client behind a REQ socket puts an empty frame first; replies must
    /// carry one too. Always true for the other dialects' clients.
    pub enveloped: bool,
    /// The service asked for.
    pub service: Bytes,
    /// The request body (any number of frames).
    pub body: Message,
}

/// A reply as the broker sends it and the client receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The service that answered; majortomo does not send it.
    pub service: Option<Bytes>,
    /// Partial or final.
    pub kind: ReplyKind,
    /// The reply body.
    pub body: Message,
}

/// What a worker sends to the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerCommand {
    /// The worker offers a service.
    Ready {
        /// The service name.
        service: Bytes,
    },
    /// A reply (0.1 REPLY, 0.2 PARTIAL or FINAL) for a client.
    Reply {
        /// The client's address as the broker gave it in REQUEST.
        client: Bytes,
        /// Partial or final.
        kind: ReplyKind,
        /// The reply body.
        body: Message,
    },
    /// Still alive.
    Heartbeat,
    /// Leaving.
    Disconnect,
}

/// What the broker sends to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToWorker {
    /// A request to serve.
    Request {
        /// The client's address, to put in the reply.
        client: Bytes,
        /// The request body.
        body: Message,
    },
    /// Still alive.
    Heartbeat,
    /// Go away (and, for well-behaved workers, register again).
    Disconnect,
}

/// Anything a broker can receive, classified by its frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromPeer {
    /// A client request.
    Client(Request),
    /// A worker command.
    Worker {
        /// How the worker frames its messages.
        dialect: Dialect,
        /// The command.
        command: WorkerCommand,
    },
    /// A peered broker (MDPB01, see [`PeerCommand`]).
    Broker(PeerCommand),
}

fn need(frames: &[Bytes], what: &'static str, need: usize) -> Result<(), ParseError> {
    if frames.len() < need {
        return Err(ParseError::TooShort {
            what,
            need,
            got: frames.len(),
        });
    }
    Ok(())
}

fn body(frames: &[Bytes]) -> Message {
    frames.iter().cloned().collect()
}

fn unknown_command(index: usize, dialect: Dialect, found: &[u8]) -> ParseError {
    ParseError::UnknownCommand {
        index,
        dialect,
        found: printable(found),
    }
}

/// Checks the leading empty frame (when `enveloped`) and the header that follows;
/// returns the index of the frame after the header. Used where the receiver already
/// knows the dialect (clients and workers), so a different header is "wrong", not
/// "unknown".
fn expect_header(
    frames: &[Bytes],
    enveloped: bool,
    header: &[u8],
    what: &'static str,
) -> Result<usize, ParseError> {
    let i = usize::from(enveloped);
    need(frames, what, i + 1)?;
    if enveloped && !frames[0].is_empty() {
        return Err(ParseError::NotEmpty { index: 0 });
    }
    if &frames[i][..] != header {
        return Err(ParseError::WrongHeader {
            index: i,
            found: printable(&frames[i]),
        });
    }
    Ok(i + 1)
}

/// The start of every worker-side message: `[E,] header`.
fn worker_header(dialect: Dialect) -> Message {
    let mut msg = Message::new();
    if dialect.leading_empty() {
        msg.push_back(Bytes::new());
    }
    msg.push_back(dialect.worker_header());
    msg
}

/// Appends `client, E, body…`, the addressed part of REQUEST and replies.
fn push_addressed(msg: &mut Message, client: &Bytes, body: &Message) {
    msg.push_back(client.clone());
    msg.push_back(Bytes::new());
    msg.extend(body.iter().cloned());
}

/// Splits `client, E, body…` (frames from `start`).
fn client_and_body(
    frames: &[Bytes],
    start: usize,
    what: &'static str,
) -> Result<(Bytes, Message), ParseError> {
    need(frames, what, start + 2)?;
    if !frames[start + 1].is_empty() {
        return Err(ParseError::NotEmpty { index: start + 1 });
    }
    Ok((frames[start].clone(), body(&frames[start + 2..])))
}

impl FromPeer {
    /// Classifies a message the broker received (frames after the routing id).
    pub fn parse(frames: &[Bytes]) -> Result<FromPeer, ParseError> {
        need(frames, "an MDP message", 1)?;
        if frames[0].is_empty() {
            need(frames, "an MDP message", 2)?;
            return match &frames[1][..] {
                MDPC01 => Request::parse_after_header(Dialect::Mdp01, true, frames, 2)
                    .map(FromPeer::Client),
                OVERSEER_CLIENT => Request::parse_after_header(Dialect::Overseer, true, frames, 2)
                    .map(FromPeer::Client),
                MDPC02 => {
                    // majortomo sends REQUEST as 0x02; an RFC 18 client behind REQ
                    // sends 0x01 after the empty frame REQ added.
                    need(frames, "an MDP/0.2 request", 4)?;
                    let dialect = match &frames[2][..] {
                        b"\x02" => Dialect::Majortomo,
                        b"\x01" => Dialect::Mdp02,
                        other => return Err(unknown_command(2, Dialect::Majortomo, other)),
                    };
                    Request::parse_after_header(dialect, true, frames, 3).map(FromPeer::Client)
                }
                MDPW01 => WorkerCommand::parse_at(Dialect::Mdp01, frames, 2),
                MDPW02 => WorkerCommand::parse_at(Dialect::Majortomo, frames, 2),
                OVERSEER_WORKER => WorkerCommand::parse_at(Dialect::Overseer, frames, 2),
                other => Err(ParseError::UnknownHeader {
                    index: 1,
                    found: printable(other),
                }),
            };
        }
        match &frames[0][..] {
            MDPC02 => {
                need(frames, "an MDP/0.2 request", 3)?;
                if &frames[1][..] != b"\x01" {
                    return Err(unknown_command(1, Dialect::Mdp02, &frames[1]));
                }
                Request::parse_after_header(Dialect::Mdp02, false, frames, 2).map(FromPeer::Client)
            }
            MDPW02 => WorkerCommand::parse_at(Dialect::Mdp02, frames, 1),
            MDPB01 => PeerCommand::parse(frames).map(FromPeer::Broker),
            other => Err(ParseError::UnknownHeader {
                index: 0,
                found: printable(other),
            }),
        }
    }
}

impl WorkerCommand {
    /// Parses the worker command whose code is at `index` (header just before it).
    fn parse_at(dialect: Dialect, frames: &[Bytes], index: usize) -> Result<FromPeer, ParseError> {
        need(frames, "a worker command", index + 1)?;
        let codes = dialect.worker_codes();
        let code = &frames[index][..];
        let command = if code == codes.ready {
            need(frames, "READY", index + 2)?;
            WorkerCommand::Ready {
                service: frames[index + 1].clone(),
            }
        } else if code == codes.reply_or_partial || Some(code) == codes.final_ {
            let kind = if codes.final_.is_some() && code == codes.reply_or_partial {
                ReplyKind::Partial
            } else {
                ReplyKind::Final
            };
            let (client, body) = client_and_body(frames, index + 1, "a worker reply")?;
            WorkerCommand::Reply { client, kind, body }
        } else if code == codes.heartbeat {
            WorkerCommand::Heartbeat
        } else if code == codes.disconnect {
            WorkerCommand::Disconnect
        } else {
            return Err(unknown_command(index, dialect, code));
        };
        Ok(FromPeer::Worker { dialect, command })
    }

    /// The frames a worker sends (for its DEALER socket).
    pub fn encode(&self, dialect: Dialect) -> Message {
        let codes = dialect.worker_codes();
        let mut msg = worker_header(dialect);
        match self {
            WorkerCommand::Ready { service } => {
                msg.push_back(codes.ready);
                msg.push_back(service.clone());
            }
            WorkerCommand::Reply { client, kind, body } => {
                let code = match (kind, codes.final_) {
                    (ReplyKind::Final, Some(final_)) => final_,
                    _ => codes.reply_or_partial,
                };
                msg.push_back(code);
                push_addressed(&mut msg, client, body);
            }
            WorkerCommand::Heartbeat => msg.push_back(codes.heartbeat),
            WorkerCommand::Disconnect => msg.push_back(codes.disconnect),
        }
        msg
    }
}

impl Request {
    fn parse_after_header(
        dialect: Dialect,
        enveloped: bool,
        frames: &[Bytes],
        service_index: usize,
    ) -> Result<Request, ParseError> {
        need(frames, "a client request", service_index + 1)?;
        Ok(Request {
            dialect,
            enveloped,
            service: frames[service_index].clone(),
            body: body(&frames[service_index + 1..]),
        })
    }

    /// The frames a client sends (for a DEALER socket: the empty frame is included
    /// where the dialect has one).
    pub fn encode(&self) -> Message {
        let mut msg = Message::new();
        if self.enveloped {
            msg.push_back(Bytes::new());
        }
        msg.push_back(self.dialect.client_header());
        match self.dialect {
            Dialect::Mdp02 => msg.push_back(&b"\x01"[..]),
            Dialect::Majortomo => msg.push_back(&b"\x02"[..]),
            Dialect::Mdp01 | Dialect::Overseer => {}
        }
        msg.push_back(self.service.clone());
        msg.extend(self.body.iter().cloned());
        msg
    }
}

impl Reply {
    /// The frames the broker sends to a client of `dialect` (after the routing id).
    pub fn encode(&self, dialect: Dialect, enveloped: bool) -> Message {
        reply_message(
            dialect,
            enveloped,
            self.kind,
            self.service.clone(),
            self.body.iter().cloned(),
        )
    }

    /// As [`Reply::encode`], moving the body's frames into the message instead of
    /// sharing them (no reference count taken and given back per frame).
    pub fn into_message(self, dialect: Dialect, enveloped: bool) -> Message {
        reply_message(dialect, enveloped, self.kind, self.service, self.body)
    }

    /// Parses what a client of `dialect` receives on a DEALER socket.
    pub fn parse(dialect: Dialect, enveloped: bool, frames: &[Bytes]) -> Result<Reply, ParseError> {
        let mut i = expect_header(frames, enveloped, dialect.client_header(), "a reply")?;
        let (kind, service) = match dialect {
            Dialect::Mdp01 => {
                need(frames, "an MDP/0.1 reply", i + 1)?;
                (ReplyKind::Final, Some(frames[i].clone()))
            }
            Dialect::Mdp02 => {
                need(frames, "an MDP/0.2 reply", i + 2)?;
                let kind = match &frames[i][..] {
                    b"\x02" => ReplyKind::Partial,
                    b"\x03" => ReplyKind::Final,
                    other => return Err(unknown_command(i, dialect, other)),
                };
                i += 1;
                (kind, Some(frames[i].clone()))
            }
            Dialect::Majortomo => {
                need(frames, "a majortomo reply", i + 1)?;
                let kind = match &frames[i][..] {
                    b"\x03" => ReplyKind::Partial,
                    b"\x04" => ReplyKind::Final,
                    other => return Err(unknown_command(i, dialect, other)),
                };
                (kind, None)
            }
            Dialect::Overseer => {
                need(frames, "an Overseer reply", i + 2)?;
                if !frames[i + 1].is_empty() {
                    return Err(ParseError::NotEmpty { index: i + 1 });
                }
                i += 1;
                (ReplyKind::Final, Some(frames[i - 1].clone()))
            }
        };
        Ok(Reply {
            service,
            kind,
            body: body(&frames[i + 1..]),
        })
    }
}

/// A reply's frames for a client of `dialect`: the header, then `body`.
fn reply_message(
    dialect: Dialect,
    enveloped: bool,
    kind: ReplyKind,
    service: Option<Bytes>,
    body: impl IntoIterator<Item = Bytes>,
) -> Message {
    let mut msg = Message::new();
    if enveloped {
        msg.push_back(Bytes::new());
    }
    msg.push_back(dialect.client_header());
    let service = service.unwrap_or_default();
    match dialect {
        Dialect::Mdp01 => msg.push_back(service),
        Dialect::Mdp02 => {
            msg.push_back(match kind {
                ReplyKind::Partial => &b"\x02"[..],
                ReplyKind::Final => &b"\x03"[..],
            });
            msg.push_back(service);
        }
        // majortomo clients take every frame after the code as body: no service.
        Dialect::Majortomo => msg.push_back(match kind {
            ReplyKind::Partial => &b"\x03"[..],
            ReplyKind::Final => &b"\x04"[..],
        }),
        // Overseer's broker leaves the worker's delimiter in front of the body.
        Dialect::Overseer => {
            msg.push_back(service);
            msg.push_back(Bytes::new());
        }
    }
    msg.extend(body);
    msg
}

impl ToWorker {
    /// The frames the broker sends to a worker of `dialect` (after the routing id).
    pub fn encode(&self, dialect: Dialect) -> Message {
        let codes = dialect.worker_codes();
        let mut msg = worker_header(dialect);
        match self {
            ToWorker::Request { client, body } => return ToWorker::request(dialect, client, body),
            ToWorker::Heartbeat => msg.push_back(codes.heartbeat),
            ToWorker::Disconnect => msg.push_back(codes.disconnect),
        }
        msg
    }

    /// A REQUEST for a worker of `dialect` from borrowed parts: what
    /// `ToWorker::Request { client, body }.encode(dialect)` gives, without cloning
    /// the body into a `ToWorker` first.
    pub fn request(dialect: Dialect, client: &Bytes, body: &Message) -> Message {
        let mut msg = worker_header(dialect);
        msg.push_back(dialect.worker_codes().request);
        push_addressed(&mut msg, client, body);
        msg
    }

    /// Parses what a worker of `dialect` receives on its DEALER socket.
    pub fn parse(dialect: Dialect, frames: &[Bytes]) -> Result<ToWorker, ParseError> {
        let i = expect_header(
            frames,
            dialect.leading_empty(),
            dialect.worker_header(),
            "a broker command",
        )?;
        need(frames, "a broker command", i + 1)?;
        let codes = dialect.worker_codes();
        let code = &frames[i][..];
        if code == codes.request {
            let (client, body) = client_and_body(frames, i + 1, "REQUEST")?;
            Ok(ToWorker::Request { client, body })
        } else if code == codes.heartbeat {
            Ok(ToWorker::Heartbeat)
        } else if code == codes.disconnect {
            Ok(ToWorker::Disconnect)
        } else {
            Err(unknown_command(i, dialect, code))
        }
    }
}
