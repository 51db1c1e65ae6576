//! ZMTP frames and the frame codec (RFC 37 "Framing").
//!
//! A frame is a flags byte, a size (1 byte, or 8 bytes big-endian when LONG is set) and
//! a body. The decoder follows tokio-util's `LengthDelimitedCodec`: it returns
//! `Ok(None)` until a whole frame is buffered, reserves only what the next frame needs,
//! and checks the declared size against the configured maximum *before* reserving.
//! Bodies are [`Bytes`] split off the read buffer, never copied.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::proto::Message;

/// Flag bit: more frames follow in this message.
pub const FLAG_MORE: u8 = 0x01;
/// Flag bit: the size is 8 bytes (big-endian) instead of 1.
pub const FLAG_LONG: u8 = 0x02;
/// Flag bit: the frame is a command, not message data.
pub const FLAG_COMMAND: u8 = 0x04;

/// Never reserve more than this for a frame in one go: a peer that declares a huge
/// frame costs memory only as fast as it actually sends bytes.
const MAX_RESERVE: usize = 1 << 20;

/// One frame as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// MORE: another frame of the same message follows.
    pub more: bool,
    /// COMMAND: the body is a command (READY, PING, …), not message data.
    pub command: bool,
    /// The body.
    pub body: Bytes,
}

impl Frame {
    /// A data frame.
    pub fn data(body: impl Into<Bytes>, more: bool) -> Frame {
        Frame {
            more,
            command: false,
            body: body.into(),
        }
    }

    /// A command frame (its body is `name-len name data`).
    pub fn command(body: impl Into<Bytes>) -> Frame {
        Frame {
            more: false,
            command: true,
            body: body.into(),
        }
    }
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The declared size exceeds the configured maximum (libzmq: EMSGSIZE).
    #[error("frame of {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// Declared size.
        size: u64,
        /// Configured maximum.
        max: u64,
    },
    /// A command frame has the MORE flag: commands are single frames.
    #[error("command frame with the MORE flag set")]
    CommandWithMore,
    /// The transport failed while reading frames.
    #[error("i/o error: {0}")]
    Io(String),
}

impl From<std::io::Error> for FrameError {
    fn from(e: std::io::Error) -> FrameError {
        FrameError::Io(e.to_string())
    }
}

/// When `src` starts with a whole frame header but not the whole body: how many
/// bytes the frame still lacks, at most [`MAX_RESERVE`] (what a reader should make
/// room for). `None` when the header is incomplete or the frame is whole.
pub(crate) fn missing_bytes(src: &[u8]) -> Option<usize> {
    let &flags = src.first()?;
    let (header, size) = if flags & FLAG_LONG != 0 {
        let raw: [u8; 8] = src.get(1..9)?.try_into().ok()?;
        (9, u64::from_be_bytes(raw))
    } else {
        (2, u64::from(*src.get(1)?))
    };
    let needed = usize::try_from(size).ok()?.checked_add(header)?;
    let missing = needed.checked_sub(src.len()).filter(|&m| m > 0)?;
    Some(missing.min(MAX_RESERVE))
}

/// Writes a frame header (flags and size) for a body of `len` bytes.
#[inline]
pub fn encode_header(dst: &mut BytesMut, more: bool, command: bool, len: usize) {
    let mut flags = 0;
    if more {
        flags |= FLAG_MORE;
    }
    if command {
        flags |= FLAG_COMMAND;
    }
    // One copy per header: this runs once per frame, millions of times a second.
    // `extend_from_slice` is inlined where `put_slice` (a trait method of another
    // crate) is a call, and a call to memcpy for two bytes.
    if let Ok(short) = u8::try_from(len) {
        dst.extend_from_slice(&[flags, short]);
    } else {
        let mut header = [flags | FLAG_LONG, 0, 0, 0, 0, 0, 0, 0, 0];
        header[1..].copy_from_slice(&(len as u64).to_be_bytes());
        dst.extend_from_slice(&header);
    }
}

/// Encodes and decodes ZMTP frames; also encodes whole [`Message`]s.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_frame_size: u64,
}

impl FrameCodec {
    /// A codec that refuses frames larger than `max_frame_size` bytes.
    pub fn new(max_frame_size: u64) -> FrameCodec {
        FrameCodec { max_frame_size }
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    // Inlined into the engine's decoding loop: as a call, saving registers and
    // returning the frame through memory cost more than decoding a short header.
    #[inline(always)]
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(&flags) = src.first() else {
            return Ok(None);
        };
        // Reserved bits 7..3 "MUST be zero" (RFC 37) but libzmq ignores them; so do we.
        let (header, size): (usize, u64) = if flags & FLAG_LONG != 0 {
            let Some(raw) = src.get(1..9) else {
                return Ok(None);
            };
            let mut raw8 = [0u8; 8];
            raw8.copy_from_slice(raw);
            (9, u64::from_be_bytes(raw8))
        } else {
            let Some(&short) = src.get(1) else {
                return Ok(None);
            };
            (2, u64::from(short))
        };
        if size > self.max_frame_size {
            return Err(FrameError::TooLarge {
                size,
                max: self.max_frame_size,
            });
        }
        let more = flags & FLAG_MORE != 0;
        let command = flags & FLAG_COMMAND != 0;
        if command && more {
            return Err(FrameError::CommandWithMore);
        }
        // With the limit disabled a peer can declare sizes near u64::MAX: neither the
        // conversion nor the addition may overflow.
        let too_large = FrameError::TooLarge {
            size,
            max: self.max_frame_size,
        };
        let size = usize::try_from(size).map_err(|_| too_large.clone())?;
        let needed = header.checked_add(size).ok_or(too_large)?;
        if src.len() < needed {
            // Room for the rest when that costs no allocation (the buffer is ours
            // alone); otherwise the reader makes it, recycling buffers as it can.
            let _ = src.try_reclaim((needed - src.len()).min(MAX_RESERVE));
            return Ok(None);
        }
        src.advance(header);
        // An empty frame (a delimiter; Majordomo has one to three per message)
        // shares nothing: no count on the read buffer to take and give back.
        let body = if size == 0 {
            Bytes::new()
        } else {
            src.split_to(size).freeze()
        };
        Ok(Some(Frame {
            more,
            command,
            body,
        }))
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        dst.reserve(9 + frame.body.len());
        encode_header(dst, frame.more, frame.command, frame.body.len());
        dst.extend_from_slice(&frame.body);
        Ok(())
    }
}

impl Encoder<Message> for FrameCodec {
    type Error = std::io::Error;

    fn encode(&mut self, msg: Message, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        encode_message(&msg, dst);
        Ok(())
    }
}

/// Encodes every frame of `msg`, MORE set on all but the last.
pub fn encode_message(msg: &Message, dst: &mut BytesMut) {
    dst.reserve(msg.byte_len() + 9 * msg.len());
    let last = msg.len().saturating_sub(1);
    for (i, frame) in msg.iter().enumerate() {
        encode_header(dst, i < last, false, frame.len());
        dst.extend_from_slice(frame);
    }
}

#[cfg(test)]
#[path = "tests/frame.rs"]
mod tests;
