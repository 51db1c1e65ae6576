//! [`InlineBody`]: the body of a small one-frame message, copied into the queue
//! entry itself when the message crosses from the sending thread to its
//! connection's.
//!
//! A message's body is a [`Bytes`](bytes::Bytes): a reference-counted buffer. Queued
//! as it is, the message is dropped by the connection's task once encoded, on
//! its own thread: the buffer's count is decremented there (while the sender
//! increments it for its next clone: the count's cache line goes back and forth
//! between the two cores), and a buffer the sender allocated is freed there
//! (glibc hands it to the other thread's arena, and the sender's next allocation
//! misses its cache). libzmq copies bodies of up to 33 bytes into the message
//! itself for the same reason. Copying a small body into the queue entry lets the
//! sender drop the message on its own thread, where the count and the allocator
//! stay warm.
//!
//! PUSH->PULL 16 B on the multi-thread runtime, a `#[tokio::main]` body sending a
//! fresh body per message (`zmtp-bench send --fresh-bodies`, three runs each,
//! alternating): 3.6-4.0 M -> 6.1-6.7 M msg/s, the sender's CPU 1.06-1.21 s ->
//! 0.50-0.59 s per 3 M messages. Clones of one body (zmtp-bench's default, and
//! what the anchors' programs send) stayed within the runs' spread (6.0-7.0 M).
//!
//! On a connection whose frames go in the clear, such messages are framed by the
//! sender instead ([`framed_batch`](crate::framed_batch)); inline bodies are for
//! CURVE connections, which seal each frame themselves.
//!
//! Only when the sender is on another thread than the connection last ran on
//! ([`this_thread`]): on one thread (the current-thread runtime, the broker) the
//! copy would only cost. And only a body the message owns alone (a fresh one): a
//! clone of a shared body (or a static one) leaves the connection only a count to
//! decrement, and copying those cost the clone-of-one-body benchmark: DEALER→ROUTER
//! 16 B on the multi-thread runtime 5.3-5.6 M -> 3.9-5.4 M msg/s.

use std::cell::Cell;

use crate::Message;

/// Bodies up to this size travel inline: a queue entry stays the size of a
/// [`Message`]'s (`inline_bodies_keep_a_queue_entry_its_size`).
pub(crate) const INLINE_BODY: usize = 71;

/// A small body, copied. Aligned as a [`Message`] is, so that a queue entry of
/// either kind is moved in the same aligned words: byte-aligned, it sat one byte
/// after the entry's tag, and moving entries with unaligned 16-byte stores and loads
/// cost the current-thread PUSH->PULL 16 B path a sixth of its rate, though it
/// never made one (the loads could not be served from the stores in flight).
#[derive(Debug, Clone, PartialEq, Eq)]
#[repr(align(8))]
pub(crate) struct InlineBody {
    len: u8,
    data: [u8; INLINE_BODY],
}

impl InlineBody {
    /// A copy of `msg`'s body, when `msg` is one frame of at most [`INLINE_BODY`]
    /// bytes that nothing else shares.
    #[inline]
    pub(crate) fn copy_of(msg: &Message) -> Option<InlineBody> {
        match msg.frames() {
            [body] if body.len() <= INLINE_BODY && body.is_unique() => {
                let mut data = [0u8; INLINE_BODY];
                data[..body.len()].copy_from_slice(body);
                Some(InlineBody {
                    // At most INLINE_BODY (71): fits.
                    len: body.len() as u8,
                    data,
                })
            }
            _ => None,
        }
    }

    /// The body.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }
}

thread_local! {
    /// Its address tells threads apart.
    static MARK: Cell<u8> = const { Cell::new(0) };
}

/// A number no other live thread has (the address of a thread-local), never 0.
#[inline]
pub(crate) fn this_thread() -> usize {
    MARK.with(|mark| mark as *const Cell<u8> as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipe::Outbound;

    fn owned(body: &[u8]) -> Message {
        Message::from(body.to_vec())
    }

    #[test]
    fn a_small_one_frame_message_is_copied_whole() {
        let small = InlineBody::copy_of(&owned(b"hello")).unwrap();
        assert_eq!(small.bytes(), b"hello");
        let largest = vec![7u8; INLINE_BODY];
        assert_eq!(
            InlineBody::copy_of(&owned(&largest)).unwrap().bytes(),
            &largest[..]
        );
    }

    #[test]
    fn larger_or_multipart_messages_are_not() {
        assert!(InlineBody::copy_of(&owned(&[0u8; INLINE_BODY + 1])).is_none());
        let two = Message::from([b"".to_vec(), b"hi".to_vec()]);
        assert!(InlineBody::copy_of(&two).is_none());
        assert!(InlineBody::copy_of(&Message::new()).is_none());
    }

    #[test]
    fn shared_or_static_bodies_are_not() {
        let shared = owned(b"hello");
        let clone = shared.clone();
        assert!(InlineBody::copy_of(&shared).is_none());
        drop(clone);
        assert!(InlineBody::copy_of(&shared).is_some());
        assert!(InlineBody::copy_of(&Message::from("static")).is_none());
        // An empty body holds no allocation: nothing to free, nothing to copy.
        assert!(InlineBody::copy_of(&owned(b"")).is_none());
    }

    #[test]
    fn inline_bodies_keep_a_queue_entry_its_size() {
        assert!(std::mem::size_of::<InlineBody>() <= std::mem::size_of::<Message>());
        assert_eq!(
            std::mem::size_of::<Outbound>(),
            std::mem::size_of::<Message>() + 8
        );
    }

    #[test]
    fn threads_are_told_apart() {
        let here = this_thread();
        assert_ne!(here, 0);
        assert_eq!(here, this_thread());
        let there = std::thread::spawn(this_thread).join().unwrap();
        assert_ne!(here, there);
    }
}
