//! [`LentReader`]: an idle connection's read half, lent to its socket so that a
//! `recv` that finds nothing queued reads the kernel itself, in its own task.
//!
//! The mirror of [`direct_write`](crate::direct_write). Without it every message
//! comes to `recv` through the connection's engine task: the engine is woken by the
//! read, decodes, queues and wakes the receiving task. A `#[tokio::main]` body is
//! then woken by another thread, and a current-thread runtime's `block_on` body by
//! a task, which costs tokio one more turn of its driver (an `epoll_wait`) than a
//! body woken by the socket's readiness itself. With both ends pinned to one CPU,
//! REQ/REP over tcp went from 8.1–8.3 to 7.3 µs a round trip on the current-thread
//! runtime and from 13.9–14.4 to 12.8–12.9 µs on the multi-thread one.
//!
//! The engine lends its read half when it has nothing buffered (no partial frame,
//! no partial message), its last reads were small ([`SMALL_READ`],
//! [`LENT_AGAIN_AFTER`]: a stream or large messages are the engine's to batch), the
//! connection is in the clear (NULL, PLAIN), has no
//! deadline (no heartbeats of ours, no TTL from the peer: their clocks need every
//! arrival) and its socket hands messages to the application as they come (not a
//! ROUTER, whose arrivals, departures and pauses are the engine's; not a PUB or XPUB,
//! whose input is subscriptions). A `recv`, after taking what the socket's queue
//! holds, reads into the lent buffer and decodes the whole messages of data frames
//! at its start.
//! Anything else goes back to the engine, bytes and all, in order: a command (PING,
//! SUBSCRIBE, ERROR), a message over the size or frame limits (the engine refuses
//! it as it would have), the end of the stream or an error, and the rest of a
//! message the read brought only part of. The engine decodes those as if it had
//! read them itself. A read of more than [`SMALL_READ`] gives the reader back too:
//! the peer streams, and the engine batches a stream better (on the multi-thread
//! runtime, on its own thread).
//!
//! Nobody may be receiving: the application may be busy, and a peer's PING or its
//! departure must still be noticed. So the engine looks again every
//! [`LENT_CHECK`]: when no `recv` has read since its last look, it takes the reader
//! back and reads once itself before lending it again.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio_util::codec::Decoder;

use crate::direct_write::Lender;
use crate::inbound::Inbound;
use crate::peer_key::PeerKey;
use crate::pipe::Pipe;
use crate::proto::connection::MAX_FRAMES_PER_MESSAGE;
use crate::proto::frame::{FrameCodec, FLAG_COMMAND, FLAG_LONG, FLAG_MORE};
use crate::proto::Message;
use crate::read_plan::READ_CHUNK;
use crate::transport::ReadHalf;

/// How often an engine whose reader is lent checks that somebody reads.
pub(crate) const LENT_CHECK: Duration = Duration::from_millis(50);

/// A connection lends its reader only after a read of at most this many bytes: a
/// peer that sends more at a time streams, or sends large messages, which the
/// engine's own reads batch and size better.
pub(crate) const SMALL_READ: usize = 4 * 1024;

/// Small reads in a row a connection makes before lending again once a lent reader
/// gave it back part of a frame: large messages each went back and forth otherwise
/// (their last piece is a small read), and 64 KiB over ipc fell from 72 k to 19 k
/// msg/s on the multi-thread runtime.
pub(crate) const LENT_AGAIN_AFTER: u32 = 4;

/// Room made in the lent buffer before a read when less is left.
const READ_ROOM: usize = 8 * 1024;

/// The most one read takes: what the engine's own reads take at most, so the
/// messages one read can decode (an empty frame is two bytes, its message a
/// hundred in memory) are bounded as theirs are.
const MAX_READ: usize = READ_CHUNK;

/// A read half its engine does not need for now, with what it read.
#[derive(Debug)]
pub(crate) struct LentReader {
    half: ReadHalf,
    /// Bytes read and not decoded: empty while lent, but for a read's tail on its
    /// way back to the engine.
    input: BytesMut,
    lending: Lending,
}

/// Who lends, and for which peer.
#[derive(Debug)]
pub(crate) struct Lending {
    pub(crate) lender: Lender,
    pub(crate) peer: PeerKey,
    pub(crate) connection: u64,
    pub(crate) max_message_size: u64,
    /// The connection's outgoing pipe: what a socket sends after receiving is most
    /// likely the reply, worth a direct write (as when the engine reads).
    pub(crate) pipe: Arc<Pipe>,
}

impl LentReader {
    pub(crate) fn new(half: ReadHalf, input: BytesMut, lending: Lending) -> LentReader {
        LentReader {
            half,
            input,
            lending,
        }
    }

    pub(crate) fn lender(&self) -> Lender {
        self.lending.lender
    }

    /// The read half, back to its engine, with the bytes it must decode first.
    pub(crate) fn into_parts(self) -> (ReadHalf, BytesMut) {
        (self.half, self.input)
    }

    /// Reads what the kernel has and moves the whole messages at its start into
    /// `into`. `Ready(true)` keeps the reader lent; `Ready(false)` means the rest
    /// (or the end of the stream, or an error, or a stream of messages: a read of
    /// more than [`SMALL_READ`]) is the engine's.
    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        into: &mut VecDeque<Inbound>,
    ) -> Poll<bool> {
        if self.input.capacity() - self.input.len() < READ_ROOM {
            self.input.reserve(READ_ROOM);
        }
        let into_input = &mut (&mut self.input).limit(MAX_READ);
        match tokio_util::io::poll_read_buf(Pin::new(&mut self.half), cx, into_input) {
            Poll::Pending => Poll::Pending,
            // The engine meets the end or the failure on its own next read.
            Poll::Ready(Ok(0) | Err(_)) => Poll::Ready(false),
            Poll::Ready(Ok(n)) => {
                let whole = whole_messages(&self.input, self.lending.max_message_size);
                if whole > 0 {
                    let complete = self.input.split_to(whole);
                    self.deliver(complete, into);
                    self.lending.pipe.grant_credit();
                }
                // A large read is a stream: the engine's, on its own thread, to batch.
                Poll::Ready(self.input.is_empty() && n <= SMALL_READ)
            }
        }
    }

    /// Decodes `complete`, whole messages of data frames within the limits.
    fn deliver(&self, mut complete: BytesMut, into: &mut VecDeque<Inbound>) {
        let mut codec = FrameCodec::new(u64::MAX);
        let mut msg = Message::new();
        while let Ok(Some(frame)) = codec.decode(&mut complete) {
            msg.push_back(frame.body);
            if !frame.more {
                into.push_back(Inbound {
                    connection: self.lending.connection,
                    ..Inbound::new(self.lending.peer, std::mem::take(&mut msg))
                });
            }
        }
        debug_assert!(msg.is_empty() && complete.is_empty(), "whole messages");
    }
}

/// How many bytes at the start of `src` are whole messages of data frames, each
/// within `max_message_size` bytes and [`MAX_FRAMES_PER_MESSAGE`] frames: what a
/// socket may decode without the connection. Stops before a command, a message over
/// a limit, or one not all read yet.
pub(crate) fn whole_messages(src: &[u8], max_message_size: u64) -> usize {
    let mut at = 0;
    let mut whole = 0;
    let mut bytes: u64 = 0;
    let mut frames = 0;
    while let Some(&flags) = src.get(at) {
        if flags & FLAG_COMMAND != 0 {
            break;
        }
        let (header, size) = if flags & FLAG_LONG != 0 {
            let Some(raw) = src.get(at + 1..at + 9) else {
                break;
            };
            let mut raw8 = [0u8; 8];
            raw8.copy_from_slice(raw);
            (9, u64::from_be_bytes(raw8))
        } else {
            let Some(&short) = src.get(at + 1) else {
                break;
            };
            (2, u64::from(short))
        };
        bytes = bytes.saturating_add(size);
        frames += 1;
        if bytes > max_message_size || frames > MAX_FRAMES_PER_MESSAGE {
            break;
        }
        let end = usize::try_from(size)
            .ok()
            .and_then(|size| (at + header).checked_add(size));
        match end {
            Some(end) if end <= src.len() => at = end,
            _ => break,
        }
        if flags & FLAG_MORE == 0 {
            whole = at;
            bytes = 0;
            frames = 0;
        }
    }
    whole
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(more: bool, body: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        crate::proto::frame::encode_header(&mut out, more, false, body.len());
        out.extend_from_slice(body);
        out.to_vec()
    }

    #[test]
    fn whole_messages_of_data_frames_and_nothing_after_them() {
        let mut wire = frame(true, b"a");
        wire.extend(frame(false, b"bc"));
        let first = wire.len();
        wire.extend(frame(false, &[7; 300]));
        let second = wire.len();
        assert_eq!(whole_messages(&wire, 1000), second);
        // The next message begun: only what is whole.
        wire.extend(frame(true, b"d"));
        assert_eq!(whole_messages(&wire, 1000), second);
        // A frame cut short, a header cut short.
        assert_eq!(whole_messages(&wire[..second - 1], 1000), first);
        assert_eq!(whole_messages(&wire[..first + 1], 1000), first);
        assert_eq!(whole_messages(&[], 1000), 0);
    }

    #[test]
    fn stops_before_a_command_or_a_message_over_the_limit() {
        let mut wire = frame(false, b"ok");
        let ok = wire.len();
        let mut ping = BytesMut::new();
        crate::proto::Command::Ping {
            ttl_deciseconds: 0,
            context: bytes::Bytes::new(),
        }
        .encode_frame(&mut ping);
        wire.extend_from_slice(&ping);
        wire.extend(frame(false, b"after"));
        assert_eq!(whole_messages(&wire, 1000), ok);
        // 3 + 3 bytes in one message against a limit of 5.
        let mut big = frame(true, b"abc");
        big.extend(frame(false, b"def"));
        assert_eq!(whole_messages(&big, 5), 0);
        assert_eq!(whole_messages(&big, 6), big.len());
        // A declared size no buffer holds, and one past usize.
        let mut huge = vec![FLAG_LONG];
        huge.extend(u64::MAX.to_be_bytes());
        assert_eq!(whole_messages(&huge, u64::MAX), 0);
    }
}
