//! [`ReadBuffers`]: a busy connection's read buffers, used again once the messages
//! cut from them are gone, instead of a fresh allocation for every buffer.
//!
//! Messages are cut from the read buffer without a copy, so the buffer's memory
//! lives until the last of them is dropped, and a busy connection needs a new
//! buffer every READ_CHUNK or so. When the receiving code runs on another thread
//! than the connection (tokio's multi-thread runtime, above all a `#[tokio::main]`
//! body, which runs beside the workers), the allocator hands each freed 64 KiB
//! buffer back to the kernel and faults its pages in again for the next: four page
//! faults per 64 KiB message were measured, where the allocator settings that keep
//! the memory brought PUSH→PULL 64 KiB from 31 k to 52 k msg/s. Keeping the last
//! few buffers and taking one again once nothing points into it any more
//! ([`BytesMut::try_reclaim`]) keeps that memory warm, with no `unsafe` and no
//! allocator of our own.
//!
//! A stream of large messages gives up a buffer per message (each frame gets a
//! buffer that ends where it ends: see `read_plan`), and the receiving code holds
//! each until it drops the message: as many buffers as messages read ahead of it.
//! The spares must cover those, or the allocator sees a burst of buffers freed
//! together, hands the memory back and faults it in again: with three spares a
//! PUSH->PULL stream of 64 KiB messages took 27 000 to 31 000 page faults per 40 000
//! messages, with sixteen (and the connection reading at most `read_plan`'s turn
//! ahead) about 320.
//!
//! The spares are bounded per connection, in number ([`MAX_SPARES`]) and in bytes
//! ([`MAX_SPARE_BYTES_PER_CONNECTION`]), and given up as soon as the connection is
//! no longer busy (see `read_plan`). A connection that stops while busy (a peer
//! that floods, then goes quiet) would keep its spares; so all the spares of the
//! process together are bounded too ([`MAX_SPARE_BYTES_IN_ALL`]): past it a buffer
//! is simply not kept, and ten thousand such peers cost no more than one budget.
//! Filling it takes sixty-four connections that flood and then stay quiet; what
//! the others meet then is a fresh allocation for their next buffer, as before
//! spares existed: slower, nothing refused or lost.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;

/// Most spare buffers a connection keeps.
const MAX_SPARES: usize = 16;

/// Spares larger than this are not kept (one huge frame is not the steady state).
const MAX_SPARE_BYTES: usize = 256 * 1024;

/// Most bytes of spares one connection keeps: sixteen 64 KiB buffers.
const MAX_SPARE_BYTES_PER_CONNECTION: usize = 1024 * 1024;

/// Bytes of spares all connections of the process may keep together.
const MAX_SPARE_BYTES_IN_ALL: usize = 64 << 20;

/// Bytes of spares kept now, over all connections.
static SPARE_BYTES_IN_ALL: AtomicUsize = AtomicUsize::new(0);

/// Counts `bytes` against the process's budget; `false` (nothing counted) when
/// they do not fit.
fn reserve_spare_bytes(bytes: usize) -> bool {
    SPARE_BYTES_IN_ALL
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |kept| {
            kept.checked_add(bytes)
                .filter(|&total| total <= MAX_SPARE_BYTES_IN_ALL)
        })
        .is_ok()
}

fn unreserve_spare_bytes(bytes: usize) {
    SPARE_BYTES_IN_ALL.fetch_sub(bytes, Ordering::Relaxed);
}

/// The read buffers one connection may use again.
#[derive(Debug, Default)]
pub(crate) struct ReadBuffers {
    /// Buffers given up for a fresh one, each empty and perhaps still pointed into
    /// by messages, with the bytes counted for it in the process's budget; oldest
    /// first.
    spares: VecDeque<(BytesMut, usize)>,
    /// The bytes counted for all of `spares`.
    spare_bytes: usize,
}

impl ReadBuffers {
    pub(crate) fn new() -> ReadBuffers {
        ReadBuffers::default()
    }

    /// Makes room in `input` for `additional` more bytes, keeping what it holds:
    /// in place when nothing else points into its memory, else in a spare that no
    /// message points into any more, else in a fresh buffer (the old one becomes a
    /// spare).
    pub(crate) fn make_room(&mut self, input: &mut BytesMut, additional: usize) {
        if input.try_reclaim(additional) {
            return;
        }
        let needed = input.len() + additional;
        let reusable = self
            .spares
            .iter_mut()
            .position(|(spare, _)| spare.try_reclaim(needed));
        let mut next = match reusable.and_then(|i| self.spares.remove(i)) {
            Some((spare, counted)) => {
                self.unkeep(counted);
                spare
            }
            None => BytesMut::with_capacity(needed),
        };
        next.extend_from_slice(input);
        let mut old = std::mem::replace(input, next);
        old.clear();
        // Its whole allocation, once unique again: `capacity` counts only the part
        // after the view; what the spare may hold is bounded by the needs that made
        // it, which were below the limit when it was kept.
        if needed <= MAX_SPARE_BYTES {
            while self.spares.len() == MAX_SPARES
                || self.spare_bytes + needed > MAX_SPARE_BYTES_PER_CONNECTION
            {
                let Some((_, counted)) = self.spares.pop_front() else {
                    break;
                };
                self.unkeep(counted);
            }
            if reserve_spare_bytes(needed) {
                self.spares.push_back((old, needed));
                self.spare_bytes += needed;
            }
        }
    }

    /// A spare counted `counted` bytes is no longer kept.
    fn unkeep(&mut self, counted: usize) {
        self.spare_bytes -= counted;
        unreserve_spare_bytes(counted);
    }

    /// The connection is not busy: its spares go back to the allocator.
    pub(crate) fn release(&mut self) {
        if !self.spares.is_empty() {
            for (_, counted) in std::mem::take(&mut self.spares) {
                unreserve_spare_bytes(counted);
            }
            self.spare_bytes = 0;
        }
    }

    #[cfg(test)]
    fn spares(&self) -> usize {
        self.spares.len()
    }
}

impl Drop for ReadBuffers {
    fn drop(&mut self) {
        self.release();
    }
}

/// Copies of large byte runs (a CURVE message's plaintext, decrypted in place in
/// its copy), each in a buffer of its own, made in the spares of earlier copies
/// once nothing points into them. As with reads: a fresh 64 KiB buffer a message
/// had the allocator hand memory back and fault it in again (PUSH->PULL CURVE
/// 64 KiB: 10.8 k msg/s, 13.1 k with the allocator told to keep its memory).
#[derive(Debug, Default)]
pub(crate) struct CopyBuffers {
    /// Where the next copy goes.
    current: BytesMut,
    buffers: ReadBuffers,
}

/// Shorter runs are copied into fresh buffers (the allocator keeps small ones),
/// and give the spares up.
const MIN_POOLED_COPY: usize = 4 * 1024;

impl CopyBuffers {
    /// A copy of `bytes`, in a buffer no other copy shares.
    pub(crate) fn copy_of(&mut self, bytes: &[u8]) -> BytesMut {
        if bytes.len() < MIN_POOLED_COPY {
            self.buffers.release();
            self.current = BytesMut::new();
            return BytesMut::from(bytes);
        }
        // Exactly its size: the next copy cannot share its buffer, so each buffer
        // is free again as soon as its one copy is gone.
        if self.current.capacity() < bytes.len() {
            self.buffers.make_room(&mut self.current, bytes.len());
        }
        self.current.extend_from_slice(bytes);
        self.current.split()
    }
}

/// A copy starts with no spares (under the fuzzer, which clones codecs).
impl Clone for CopyBuffers {
    fn clone(&self) -> CopyBuffers {
        CopyBuffers::default()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Buf;

    use super::*;

    #[test]
    fn a_buffer_comes_back_once_its_messages_are_gone() {
        let mut buffers = ReadBuffers::new();
        let mut input = BytesMut::with_capacity(64);
        input.extend_from_slice(&[1; 60]);
        let first_ptr = input.as_ptr();
        let message = input.split_to(50).freeze();
        // Shared with a live message: a fresh buffer, the old one kept aside, the
        // unread rest carried over.
        buffers.make_room(&mut input, 100);
        assert_eq!(&input[..], &[1; 10]);
        assert!(input.capacity() >= 110);
        assert_eq!(buffers.spares(), 1);
        drop(message);
        // The current buffer filled and still pointed into: the first allocation,
        // free again, is used instead of a fresh one.
        let room = input.capacity() - input.len();
        input.extend_from_slice(&vec![4; room]);
        let held = input.split().freeze();
        buffers.make_room(&mut input, 40);
        assert_eq!(
            input.as_ptr(),
            first_ptr,
            "the first allocation, used again"
        );
        assert_eq!(buffers.spares(), 1, "the one just left became the spare");
        drop(held);
    }

    #[test]
    fn copies_reuse_the_buffers_of_copies_that_are_gone() {
        let mut copies = CopyBuffers::default();
        let large = vec![7u8; 64 * 1024];
        let first = copies.copy_of(&large);
        let first_ptr = first.as_ptr();
        let second = copies.copy_of(&large);
        assert_ne!(second.as_ptr(), first_ptr, "the first is still held");
        assert_eq!(&first[..], &large[..]);
        drop(first);
        let third = copies.copy_of(&large);
        assert_eq!(third.as_ptr(), first_ptr, "the first buffer, free again");
        assert_eq!(&third[..], &large[..]);
        // A short copy gives the spares up.
        assert_eq!(&copies.copy_of(b"short")[..], b"short");
        assert_eq!(copies.buffers.spares(), 0);
        drop((second, third));
    }

    #[test]
    fn the_process_budget_refuses_what_does_not_fit() {
        assert!(!reserve_spare_bytes(MAX_SPARE_BYTES_IN_ALL + 1));
        assert!(reserve_spare_bytes(1));
        unreserve_spare_bytes(1);
    }

    #[test]
    fn a_unique_buffer_makes_room_in_place_and_spares_are_bounded() {
        let mut buffers = ReadBuffers::new();
        let mut input = BytesMut::with_capacity(1024);
        input.extend_from_slice(&[2; 1000]);
        let ptr = input.as_ptr();
        input.advance(990);
        buffers.make_room(&mut input, 900);
        assert_eq!(input.as_ptr(), ptr, "compacted in place");
        assert_eq!(buffers.spares(), 0);

        let mut held = Vec::new();
        for _ in 0..MAX_SPARES + 4 {
            input.extend_from_slice(&[3; 100]);
            held.push(input.split().freeze());
            buffers.make_room(&mut input, 2000);
        }
        assert_eq!(buffers.spares(), MAX_SPARES);
        buffers.release();
        assert_eq!(buffers.spares(), 0);
        // Too large to keep.
        held.push(input.split().freeze());
        buffers.make_room(&mut input, MAX_SPARE_BYTES + 1);
        held.push(input.split().freeze());
        buffers.make_room(&mut input, MAX_SPARE_BYTES + 1);
        assert_eq!(buffers.spares(), 0);
    }

    #[test]
    fn the_spares_of_one_connection_are_bounded_in_bytes() {
        let mut buffers = ReadBuffers::new();
        let mut input = BytesMut::new();
        let mut held = Vec::new();
        let each = MAX_SPARE_BYTES_PER_CONNECTION / 4;
        for _ in 0..MAX_SPARES {
            buffers.make_room(&mut input, each);
            input.extend_from_slice(&[5; 10]);
            held.push(input.split().freeze());
        }
        assert_eq!(buffers.spares(), 4);
        assert_eq!(buffers.spare_bytes, 4 * each);
        buffers.release();
        assert_eq!(buffers.spare_bytes, 0);
    }
}
