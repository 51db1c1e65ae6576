//! [`FramedBatch`]: small one-frame messages sent from another thread than their
//! connection's, framed for the wire by the sender and queued many to one entry.
//!
//! A socket used from a thread that is not its connection's (a `#[tokio::main]`
//! body, which tokio's multi-thread runtime runs on the main thread, never on a
//! worker) hands each message over to the connection's thread. Queued one entry per
//! message, that costs the sender a queue entry's cache lines per message (80 bytes,
//! written on one core and read on the other), and the connection's task one encode
//! per message; the connection keeps up easily, so it drains the queue every few
//! dozen messages and writes each few dozen in a syscall of their own (PUSH->PULL
//! 16 B from the main thread: 122 000 writes of 735 bytes for 5 M messages).
//!
//! Framed by the sender instead, a 16-byte message is 18 bytes appended to the
//! queue's last entry, and the connection writes the entry as it is. Only on a
//! connection whose frames go in the clear (NULL, PLAIN): a CURVE connection seals
//! each frame with its own nonce (there, small bodies still travel
//! [inline](crate::inline_body)). A message framed here counts against the pipe's
//! marks as the message it was: one message, [`message_cost`](crate::pipe) bytes.
//!
//! PUSH->PULL tcp 16 B, multi-thread runtime at both ends, clones of one body,
//! alternating binaries: 4.5-5.6 M -> 6.1-7.8 M msg/s, the sender's user CPU about
//! halved. Framing whole messages of up to 2 KiB on the wire (several frames, long
//! ones; the connection copies such frames anyway) was measured too and not kept:
//! the 256-byte rows fell (PUSH->PULL 3.8-4.5 M -> 3.0-4.5 M) and the sender's
//! system time rose.

use bytes::{Bytes, BytesMut};

use tokio_util::codec::Decoder;

use crate::proto::frame::{encode_header, FrameCodec};
use crate::Message;

/// Bodies up to this size are framed by the sender: ZMTP's short frame (a one-byte
/// size).
pub(crate) const FRAMED_BODY: usize = u8::MAX as usize;

/// The most frames one batch holds, in bytes: a few of the connection's writes'
/// worth of small messages, allocated by the sender and freed once written.
const BATCH_CAPACITY: usize = 8 * 1024;

/// Room a batch starts with; it doubles as it fills (up to [`BATCH_CAPACITY`]). A
/// batch holding one message (small messages between larger ones, each starting a
/// batch of its own) then takes no more memory than the message counts for against
/// the pipe's byte limit, and a full one at most twice its frames.
const FIRST_CAPACITY: usize = 64;

/// Frames of small messages, in the order they were sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FramedBatch {
    frames: BytesMut,
    /// How many messages `frames` holds.
    messages: usize,
    /// What they cost against the pipe's byte limit, together.
    cost: usize,
}

impl FramedBatch {
    /// `msg`'s body, when `msg` is one frame of at most [`FRAMED_BODY`] bytes.
    #[inline]
    pub(crate) fn body_of(msg: &Message) -> Option<&Bytes> {
        match msg.frames() {
            [body] if body.len() <= FRAMED_BODY => Some(body),
            _ => None,
        }
    }

    /// A batch holding `body` (at most [`FRAMED_BODY`] bytes), which costs `cost`.
    pub(crate) fn first(body: &[u8], cost: usize) -> FramedBatch {
        let mut batch = FramedBatch {
            frames: BytesMut::with_capacity(FIRST_CAPACITY.max(2 + body.len())),
            messages: 0,
            cost: 0,
        };
        batch.push(body, cost);
        batch
    }

    /// Whether `body` fits in the batch's [`BATCH_CAPACITY`].
    #[inline]
    pub(crate) fn has_room_for(&self, body: &[u8]) -> bool {
        self.frames.len() + 2 + body.len() <= BATCH_CAPACITY
    }

    /// Appends `body` (at most [`FRAMED_BODY`] bytes) as a one-frame message.
    #[inline]
    pub(crate) fn push(&mut self, body: &[u8], cost: usize) {
        debug_assert!(body.len() <= FRAMED_BODY);
        encode_header(&mut self.frames, false, false, body.len());
        self.frames.extend_from_slice(body);
        self.messages += 1;
        self.cost += cost;
    }

    /// How many messages the batch holds.
    pub(crate) fn messages(&self) -> usize {
        self.messages
    }

    /// What the messages cost against the pipe's limits, together.
    pub(crate) fn cost(&self) -> usize {
        self.cost
    }

    /// The frames, ready for the wire.
    pub(crate) fn into_frames(self) -> Bytes {
        self.frames.freeze()
    }

    /// The messages again (for an inproc peer, which takes messages, not bytes;
    /// batches are made for connections only, so this is a fallback).
    pub(crate) fn into_messages(self) -> impl Iterator<Item = Message> {
        let mut frames = self.frames;
        // The wire's own decoder; every frame is a whole one-frame message that
        // `push` wrote, so none is too large or cut short.
        let mut codec = FrameCodec::new(FRAMED_BODY as u64);
        std::iter::from_fn(move || match codec.decode(&mut frames) {
            Ok(Some(frame)) => Some(Message::from(frame.body)),
            Ok(None) | Err(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_one_frame_messages_are_framed_as_the_wire_wants_them() {
        let mut batch = FramedBatch::first(b"hello", 100);
        assert!(batch.has_room_for(b"world"));
        batch.push(b"", 90);
        batch.push(&[7u8; FRAMED_BODY], 400);
        assert_eq!(batch.messages(), 3);
        assert_eq!(batch.cost(), 590);
        let mut wire = BytesMut::new();
        encode_header(&mut wire, false, false, 5);
        wire.extend_from_slice(b"hello");
        encode_header(&mut wire, false, false, 0);
        encode_header(&mut wire, false, false, FRAMED_BODY);
        wire.extend_from_slice(&[7u8; FRAMED_BODY]);
        assert_eq!(batch.clone().into_frames(), wire.freeze());
        let messages: Vec<Message> = batch.into_messages().collect();
        assert_eq!(
            messages,
            [
                Message::from("hello"),
                Message::from(""),
                Message::from(vec![7u8; FRAMED_BODY])
            ]
        );
    }

    #[test]
    fn only_one_short_frame_is_framed() {
        assert!(FramedBatch::body_of(&Message::from(vec![0u8; FRAMED_BODY])).is_some());
        assert!(FramedBatch::body_of(&Message::from(vec![0u8; FRAMED_BODY + 1])).is_none());
        assert!(FramedBatch::body_of(&Message::from(["a", "b"])).is_none());
        assert!(FramedBatch::body_of(&Message::new()).is_none());
    }

    #[test]
    fn a_full_batch_says_so() {
        let body = [1u8; 100];
        let mut batch = FramedBatch::first(&body, 1);
        while batch.has_room_for(&body) {
            batch.push(&body, 1);
        }
        assert_eq!(batch.messages(), BATCH_CAPACITY / 102);
        assert!(batch.frames.capacity() <= 2 * BATCH_CAPACITY);
        assert!(batch.into_frames().len() <= BATCH_CAPACITY);
    }

    #[test]
    fn a_batch_of_one_small_message_stays_small() {
        let batch = FramedBatch::first(b"hello", 1);
        assert!(batch.frames.capacity() <= 2 * FIRST_CAPACITY);
    }
}
