//! [`WireQueue`]: the bytes a connection has encoded but not yet written. Headers
//! and small frames are copied into one buffer, large frame bodies kept as the
//! sender's own [`Bytes`] and handed to the kernel by `writev`, so a 4 KiB or 64 KiB
//! message is never copied in user space (libzmq does the same for messages larger
//! than its 8 KiB batch).

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::proto::frame::encode_header;
use crate::proto::Message;

/// Frames at least this large are queued by reference instead of copied (libzmq
/// copies up to its 8 KiB batch; with enough slices a gathered write of 4 KiB
/// bodies by reference beat copying them here: PUSH->PULL 4 KiB 1.08-1.10 M msg/s
/// against 0.89-1.02 M, same sitting).
pub(crate) const ZERO_COPY_MIN: usize = 2 * 1024;

/// At most this many slices per `writev` (Linux allows 1024): a mebibyte of 2 KiB
/// bodies and their headers. It bounds one write's gather on the stack, not what is
/// queued: the connection encodes at most a mebibyte ahead of the socket (256 KiB
/// of it copied), and what it cannot gather now goes in the next write.
pub const MAX_SLICES: usize = 512;

/// The slices of a short queue: one message of a few frames, and its headers.
const FEW_SLICES: usize = 8;

/// Encoded bytes waiting for the socket, in order: what a
/// [`Connection`](super::Connection) produces. Write [`slices`](Self::slices), then
/// [`advance`](Self::advance) by what the write took.
#[derive(Debug, Default, Clone)]
pub struct WireQueue {
    /// Sealed runs of copied bytes and shared large bodies (marked `true`), oldest
    /// first.
    chunks: VecDeque<(Bytes, bool)>,
    /// Bytes in `chunks`.
    chunked: usize,
    /// Bytes of shared bodies in `chunks`.
    shared: usize,
    /// Where headers and small frames are copied; always after every chunk.
    tail: BytesMut,
}

impl WireQueue {
    /// An empty queue; it holds no memory until something is encoded.
    pub fn new() -> WireQueue {
        WireQueue::default()
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.chunked + self.tail.len()
    }

    /// Bytes queued that were copied (headers and small frames): what the queue's
    /// own buffer holds, where [`len`](Self::len) counts the shared bodies too.
    pub fn copied(&self) -> usize {
        self.len() - self.shared
    }

    /// Nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The copy buffer, to append bytes after everything queued.
    pub(crate) fn tail(&mut self) -> &mut BytesMut {
        &mut self.tail
    }

    /// Queues `body` after everything queued, without copying it.
    pub(crate) fn push_shared(&mut self, body: Bytes) {
        if body.is_empty() {
            return;
        }
        if !self.tail.is_empty() {
            let copied = self.tail.split().freeze();
            self.chunked += copied.len();
            self.chunks.push_back((copied, false));
        }
        self.chunked += body.len();
        self.shared += body.len();
        self.chunks.push_back((body, true));
    }

    /// Encodes every frame of `msg`, MORE on all but the last; bodies of at least
    /// [`ZERO_COPY_MIN`] bytes are shared, not copied.
    pub(crate) fn push_message(&mut self, msg: &Message) {
        let last = msg.len().saturating_sub(1);
        for (i, frame) in msg.iter().enumerate() {
            encode_header(&mut self.tail, i < last, false, frame.len());
            if frame.len() >= ZERO_COPY_MIN {
                self.push_shared(frame.clone());
            } else {
                self.tail.extend_from_slice(frame);
            }
        }
    }

    /// Encodes a one-frame message from its body, copied.
    pub(crate) fn push_one_frame(&mut self, body: &[u8]) {
        encode_header(&mut self.tail, false, false, body.len());
        self.tail.extend_from_slice(body);
    }

    /// Fills `out` with the queued bytes in order; returns how many slices it used.
    pub fn slices<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
        let parts = self
            .chunks
            .iter()
            .map(|(chunk, _)| &chunk[..])
            .chain(std::iter::once(&self.tail[..]))
            .filter(|part| !part.is_empty());
        let mut used = 0;
        for (slot, part) in out.iter_mut().zip(parts) {
            *slot = IoSlice::new(part);
            used += 1;
        }
        used
    }

    /// Calls `write` with [`slices`](Self::slices) of the queued bytes, gathered on
    /// the stack in an array no larger than what is queued needs: a few slices for
    /// a short queue (one message's frames), [`MAX_SLICES`] only for a long one.
    /// Setting up the full array costs 8 KiB of stores, once per write.
    pub fn with_slices<R>(&self, write: impl FnOnce(&[IoSlice<'_>]) -> R) -> R {
        // Every chunk, and the tail.
        if self.chunks.len() < FEW_SLICES {
            let mut slices = [IoSlice::new(&[]); FEW_SLICES];
            let used = self.slices(&mut slices);
            write(&slices[..used])
        } else {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let used = self.slices(&mut slices);
            write(&slices[..used])
        }
    }

    /// Takes everything queued as one contiguous buffer, as successive gathered
    /// writes would send it (large bodies are copied): for transports without
    /// `writev`, and for tests.
    pub fn take_all(&mut self) -> BytesMut {
        let mut all = BytesMut::with_capacity(self.len());
        while !self.is_empty() {
            let before = all.len();
            self.with_slices(|slices| {
                for slice in slices {
                    all.put_slice(slice);
                }
            });
            self.advance(all.len() - before);
        }
        all
    }

    /// Drops the first `n` queued bytes: they were written.
    pub fn advance(&mut self, n: usize) {
        debug_assert!(n <= self.len(), "advanced past the queued bytes");
        let mut n = n.min(self.len());
        while n > 0 {
            let Some((front, shared)) = self.chunks.front_mut() else {
                self.tail.advance(n);
                break;
            };
            let step = n.min(front.len());
            front.advance(step);
            self.chunked -= step;
            if *shared {
                self.shared -= step;
            }
            n -= step;
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::codec::Decoder;

    use super::*;
    use crate::proto::FrameCodec;

    /// The queued bytes, gathered as successive `writev`s would send them.
    fn gathered(queue: &WireQueue) -> BytesMut {
        queue.clone().take_all()
    }

    fn message(sizes: &[usize]) -> Message {
        let mut msg = Message::new();
        for (i, &size) in sizes.iter().enumerate() {
            msg.push_back(Bytes::from(vec![i as u8; size]));
        }
        msg
    }

    #[test]
    fn large_bodies_are_shared_and_the_bytes_decode_in_order() {
        let big = message(&[0, 3, ZERO_COPY_MIN, 5, 70_000]);
        let small = message(&[16]);
        let mut queue = WireQueue::new();
        queue.push_message(&small);
        queue.push_message(&big);
        queue.push_message(&small);
        // small+headers | big body | header+5 B+header | big body | header+small
        assert_eq!(queue.chunks.len(), 4);
        assert!(queue.chunks[1].0.as_ptr() == big.iter().nth(2).unwrap().as_ptr()); // ok: test code
        assert_eq!(queue.copied(), queue.len() - ZERO_COPY_MIN - 70_000);

        let mut wire = gathered(&queue);
        assert_eq!(wire.len(), queue.len());
        let mut codec = FrameCodec::new(1 << 20);
        let mut bodies = Vec::new();
        loop {
            let decoded = codec.decode(&mut wire).unwrap(); // ok: test code
            let Some(frame) = decoded else { break };
            bodies.push((frame.body.len(), frame.more));
        }
        let expected: Vec<_> = [16, 0, 3, ZERO_COPY_MIN, 5, 70_000, 16]
            .into_iter()
            .zip([false, true, true, true, true, false, false])
            .collect();
        assert_eq!(bodies, expected);
    }

    #[test]
    fn with_slices_gives_every_slice_on_either_side_of_few() {
        // Each message of one large frame adds a header to the tail and a shared
        // chunk: the queues cross FEW_SLICES one chunk at a time.
        let big = message(&[ZERO_COPY_MIN]);
        let mut queue = WireQueue::new();
        for _ in 0..2 * FEW_SLICES {
            queue.push_message(&big);
            let mut all = [IoSlice::new(&[]); MAX_SLICES];
            let used = queue.slices(&mut all);
            let same = queue.with_slices(|slices| {
                slices.len() == used && slices.iter().zip(&all[..used]).all(|(a, b)| a[..] == b[..])
            });
            assert!(same, "{} chunks", queue.chunks.len());
        }
    }

    #[test]
    fn partial_writes_advance_through_chunks_and_tail() {
        let msg = message(&[10, ZERO_COPY_MIN, 10]);
        let mut queue = WireQueue::new();
        queue.push_message(&msg);
        let all = gathered(&queue);
        let mut written = BytesMut::new();
        // Odd steps cross every boundary: inside a chunk, across chunks, into the tail.
        for step in [1, 7, 5000, 4000, 3, 200].into_iter().cycle() {
            if queue.is_empty() {
                break;
            }
            let rest = gathered(&queue);
            let n = step.min(rest.len());
            written.put_slice(&rest[..n]);
            queue.advance(n);
            assert!(queue.copied() <= queue.len(), "shared bytes counted twice");
        }
        assert!(
            written == all,
            "the written bytes differ from the queued ones"
        );
        assert_eq!(queue.len(), 0);
        assert_eq!(queue.copied(), 0);
        // The queue is reusable after being drained.
        queue.push_message(&message(&[4]));
        assert_eq!(&gathered(&queue)[..], b"\x00\x04\x00\x00\x00\x00");
    }
}
