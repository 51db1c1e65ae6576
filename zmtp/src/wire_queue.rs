//! The bytes a connection has encoded but not yet written: headers and small
//! frames copied into one buffer, large frame bodies kept as the sender's own
//! [`Bytes`] and handed to the kernel by `writev`, so a 64 KiB message is never
//! copied in user space (libzmq does the same for messages larger than its 8 KiB
//! batch).

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::proto::frame::encode_header;
use crate::Message;

/// Frames at least this large are queued by reference instead of copied.
pub(crate) const ZERO_COPY_MIN: usize = 8 * 1024;

/// At most this many slices per `writev` (Linux allows 1024).
const MAX_SLICES: usize = 64;

/// Encoded bytes waiting for the socket, in order.
#[derive(Debug, Default)]
pub(crate) struct WireQueue {
    /// Sealed runs of copied bytes and shared large bodies, oldest first.
    chunks: VecDeque<Bytes>,
    /// Bytes in `chunks`.
    chunked: usize,
    /// Where headers and small frames are copied; always after every chunk.
    tail: BytesMut,
}

impl WireQueue {
    /// An empty queue; it holds no memory until something is encoded.
    pub(crate) fn new() -> WireQueue {
        WireQueue::default()
    }

    /// Bytes queued.
    pub(crate) fn len(&self) -> usize {
        self.chunked + self.tail.len()
    }

    /// Nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
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
            self.chunks.push_back(copied);
        }
        self.chunked += body.len();
        self.chunks.push_back(body);
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
                self.tail.put_slice(frame);
            }
        }
    }

    /// Fills `out` with the queued bytes in order; returns how many slices it used.
    pub(crate) fn slices<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
        let parts = self
            .chunks
            .iter()
            .map(|chunk| &chunk[..])
            .chain(std::iter::once(&self.tail[..]))
            .filter(|part| !part.is_empty());
        let mut used = 0;
        for (slot, part) in out.iter_mut().zip(parts) {
            *slot = IoSlice::new(part);
            used += 1;
        }
        used
    }

    /// Drops the first `n` queued bytes: they were written.
    pub(crate) fn advance(&mut self, n: usize) {
        debug_assert!(n <= self.len(), "advanced past the queued bytes");
        let mut n = n.min(self.len());
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                self.tail.advance(n);
                break;
            };
            let step = n.min(front.len());
            front.advance(step);
            self.chunked -= step;
            n -= step;
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
    }

    /// Writes everything queued, with `writev` where there is more than one slice.
    pub(crate) async fn write_to<W: AsyncWrite + Unpin>(&mut self, out: &mut W) -> io::Result<()> {
        while !self.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let used = self.slices(&mut slices);
            let written = if used == 1 {
                out.write(&slices[0]).await?
            } else {
                out.write_vectored(&slices[..used]).await?
            };
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.advance(written);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::codec::Decoder;

    use super::*;
    use crate::proto::FrameCodec;

    /// The queued bytes, gathered as successive `writev`s would send them.
    fn gathered(queue: &WireQueue) -> BytesMut {
        let mut copy = WireQueue {
            chunks: queue.chunks.clone(),
            chunked: queue.chunked,
            tail: queue.tail.clone(),
        };
        let mut all = BytesMut::new();
        while !copy.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let used = copy.slices(&mut slices);
            let before = all.len();
            for slice in &slices[..used] {
                all.put_slice(slice);
            }
            copy.advance(all.len() - before);
        }
        all
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
        assert!(queue.chunks[1].as_ptr() == big.iter().nth(2).unwrap().as_ptr());

        let mut wire = gathered(&queue);
        assert_eq!(wire.len(), queue.len());
        let mut codec = FrameCodec::new(1 << 20);
        let mut bodies = Vec::new();
        while let Some(frame) = codec.decode(&mut wire).unwrap() {
            bodies.push((frame.body.len(), frame.more));
        }
        let expected: Vec<_> = [16, 0, 3, ZERO_COPY_MIN, 5, 70_000, 16]
            .into_iter()
            .zip([false, true, true, true, true, false, false])
            .collect();
        assert_eq!(bodies, expected);
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
        }
        assert!(
            written == all,
            "the written bytes differ from the queued ones"
        );
        assert_eq!(queue.len(), 0);
        // The queue is reusable after being drained.
        queue.push_message(&message(&[4]));
        assert_eq!(&gathered(&queue)[..], b"\x00\x04\x00\x00\x00\x00");
    }

    #[tokio::test]
    async fn write_to_delivers_everything_through_a_small_pipe() {
        let msg = message(&[1, 3 * ZERO_COPY_MIN, 2, ZERO_COPY_MIN]);
        let mut queue = WireQueue::new();
        for _ in 0..20 {
            queue.push_message(&msg);
        }
        let expected = gathered(&queue);
        // A 1 KiB duplex forces many partial writes.
        let (mut near, mut far) = tokio::io::duplex(1024);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut far, &mut got)
                .await
                .unwrap();
            got
        });
        queue.write_to(&mut near).await.unwrap();
        drop(near);
        let got = reader.await.unwrap();
        assert!(
            got[..] == expected[..],
            "{} bytes arrived, {} expected",
            got.len(),
            expected.len()
        );
        assert!(queue.is_empty());
    }
}
