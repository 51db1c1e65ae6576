//! ZMTP commands: READY, ERROR, PING, PONG, SUBSCRIBE, CANCEL (RFC 37 "Commands").
//!
//! A command frame's body is `name-len(1) name data`: the RFC prose mentions a NUL
//! separator, but the grammar and libzmq use this length prefix (`\5READY`, `\4PING`).
//! Commands we do not know parse as [`Command::Unknown`]; after the handshake the
//! engine ignores them, as libzmq's `session_base_t::push_msg` does.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::frame::{encode_header, Frame};
use super::metadata::{Metadata, MetadataError};

/// Longest PING context a peer may send and we echo (RFC 37 "ping-context").
pub const MAX_PING_CONTEXT: usize = 16;

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Handshake completion with the sender's properties (NULL, PLAIN, CURVE).
    Ready(Metadata),
    /// A fatal handshake error with a reason for humans.
    Error(Bytes),
    /// Heartbeat request: TTL in tenths of a second and up to 16 bytes of context.
    Ping {
        /// How long the peer may wait for traffic before closing, in deciseconds (0: no limit).
        ttl_deciseconds: u16,
        /// Opaque bytes to echo in PONG.
        context: Bytes,
    },
    /// Heartbeat answer echoing the PING context.
    Pong {
        /// The echoed context.
        context: Bytes,
    },
    /// ZMTP 3.1 subscription to a topic prefix.
    Subscribe(Bytes),
    /// ZMTP 3.1 cancellation of a subscription.
    Cancel(Bytes),
    /// Any other command (including mechanism commands like HELLO, handled elsewhere).
    Unknown {
        /// The command name.
        name: Bytes,
        /// Everything after the name.
        data: Bytes,
    },
}

/// Why a command frame could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The body is empty or shorter than its name length says.
    #[error("command frame too short for its name")]
    TruncatedName,
    /// A known command with a body too short or malformed for it.
    #[error("malformed {name} command")]
    Malformed {
        /// The command's name.
        name: &'static str,
    },
    /// READY's property list is malformed.
    #[error("malformed READY metadata: {0}")]
    Metadata(#[from] MetadataError),
}

impl Command {
    /// Parses a command frame body.
    pub fn parse(mut body: Bytes) -> Result<Command, CommandError> {
        let Some(&name_len) = body.first() else {
            return Err(CommandError::TruncatedName);
        };
        let name_len = usize::from(name_len);
        if body.len() < 1 + name_len {
            return Err(CommandError::TruncatedName);
        }
        body.advance(1);
        let name = body.split_to(name_len);
        let data = body;
        Ok(match &name[..] {
            b"READY" => Command::Ready(Metadata::parse(data)?),
            b"ERROR" => Command::Error(parse_short_string(data, "ERROR")?),
            b"PING" => {
                if data.len() < 2 {
                    return Err(CommandError::Malformed { name: "PING" });
                }
                let ttl = u16::from_be_bytes([data[0], data[1]]);
                // A longer context is cut rather than refused: it costs nothing.
                let end = data.len().min(2 + MAX_PING_CONTEXT);
                Command::Ping {
                    ttl_deciseconds: ttl,
                    context: data.slice(2..end),
                }
            }
            b"PONG" => Command::Pong {
                context: data.slice(..data.len().min(MAX_PING_CONTEXT)),
            },
            b"SUBSCRIBE" => Command::Subscribe(data),
            b"CANCEL" => Command::Cancel(data),
            _ => Command::Unknown { name, data },
        })
    }

    /// The command's name as it travels on the wire.
    pub fn name(&self) -> &[u8] {
        match self {
            Command::Ready(_) => b"READY",
            Command::Error(_) => b"ERROR",
            Command::Ping { .. } => b"PING",
            Command::Pong { .. } => b"PONG",
            Command::Subscribe(_) => b"SUBSCRIBE",
            Command::Cancel(_) => b"CANCEL",
            Command::Unknown { name, .. } => name,
        }
    }

    /// Encodes the command body (`name-len name data`).
    pub fn encode_body(&self, dst: &mut BytesMut) {
        let name = self.name();
        let name = &name[..name.len().min(255)];
        dst.put_u8(name.len() as u8); // ok: cut to 255 above
        dst.put_slice(name);
        match self {
            Command::Ready(metadata) => metadata.encode(dst),
            Command::Error(reason) => {
                let reason = &reason[..reason.len().min(255)];
                dst.put_u8(reason.len() as u8); // ok: cut to 255 above
                dst.put_slice(reason);
            }
            Command::Ping {
                ttl_deciseconds,
                context,
            } => {
                dst.put_u16(*ttl_deciseconds);
                dst.put_slice(&context[..context.len().min(MAX_PING_CONTEXT)]);
            }
            Command::Pong { context } => {
                dst.put_slice(&context[..context.len().min(MAX_PING_CONTEXT)])
            }
            Command::Subscribe(topic) | Command::Cancel(topic) => dst.put_slice(topic),
            Command::Unknown { data, .. } => dst.put_slice(data),
        }
    }

    /// The command as a frame.
    pub fn to_frame(&self) -> Frame {
        let mut body = BytesMut::new();
        self.encode_body(&mut body);
        Frame::command(body.freeze())
    }

    /// Encodes the whole command frame (header and body) into `dst`.
    pub fn encode_frame(&self, dst: &mut BytesMut) {
        let mut body = BytesMut::new();
        self.encode_body(&mut body);
        encode_header(dst, false, true, body.len());
        dst.put_slice(&body);
    }
}

/// ERROR's reason: `len(1) reason`.
fn parse_short_string(mut data: Bytes, name: &'static str) -> Result<Bytes, CommandError> {
    let Some(&len) = data.first() else {
        return Err(CommandError::Malformed { name });
    };
    let len = usize::from(len);
    if data.len() < 1 + len {
        return Err(CommandError::Malformed { name });
    }
    data.advance(1);
    Ok(data.split_to(len))
}

#[cfg(test)]
#[path = "tests/command.rs"]
mod tests;
