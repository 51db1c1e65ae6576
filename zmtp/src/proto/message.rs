//! [`Message`]: a multipart ZeroMQ message, a list of [`Bytes`] frames.

use bytes::Bytes;
use smallvec::SmallVec;

/// Frames kept inline before the list spills to the heap. Two covers the hot paths
/// (one body; a ROUTER's routing id and body) without an allocation, and keeps a
/// message at 72 bytes, small enough that moving it through the queues is a few
/// register copies rather than a `memcpy` call: with four inline frames (136 bytes)
/// a 16-byte PUSH→PULL message cost 1026 + 671 instructions (send + receive,
/// callgrind), with two 807 + 509.
const INLINE_FRAMES: usize = 2;

/// Room a message gets once it spills: the envelopes that spill (a Majordomo
/// request through a ROUTER is five to seven frames) then take one allocation,
/// where doubling from two took an allocation and two reallocations (a fifth of
/// the broker's allocator instructions per request, callgrind).
const SPILLED_FRAMES: usize = 8;

/// A multipart message: one or more frames that travel atomically.
///
/// Frames are [`Bytes`], so cloning a message or slicing a frame never copies payload.
/// Building one from strings and byte slices is direct, and [`Message::frames`] gives a
/// slice to match envelopes against:
///
/// ```
/// use zmtp::Message;
///
/// let mut msg = Message::from(["hello", "world"]);
/// msg.push_front("");                  // an empty delimiter frame
/// assert_eq!(msg.len(), 3);
/// assert_eq!(msg[2], "world");
/// match msg.frames() {
///     [delimiter, first, ..] if delimiter.is_empty() => assert_eq!(first, "hello"),
///     _ => unreachable!(), // ok: a doc example over a message it just built
/// }
/// assert_eq!(Message::from("single").len(), 1);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Message {
    frames: SmallVec<[Bytes; INLINE_FRAMES]>,
}

impl Message {
    /// An empty message (no frames); push frames before sending it.
    pub fn new() -> Message {
        Message::default()
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when the message has no frames.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// What the message costs in a queue, besides the queue's own slot: its bodies
    /// and one [`Bytes`] handle per frame, so many empty frames are not free. The
    /// byte limits of the send and receive queues count this.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.len() * std::mem::size_of::<Bytes>() + self.byte_len()
    }

    /// Total payload bytes over all frames.
    pub fn byte_len(&self) -> usize {
        self.frames.iter().map(Bytes::len).sum()
    }

    /// The frames as a slice.
    pub fn frames(&self) -> &[Bytes] {
        &self.frames
    }

    /// Appends a frame.
    #[inline(always)]
    pub fn push_back(&mut self, frame: impl Into<Bytes>) {
        self.make_room();
        self.frames.push(frame.into());
    }

    /// Before a frame goes in: when the inline frames are full, spill straight to
    /// room for [`SPILLED_FRAMES`], not to twice the inline count and then again.
    #[inline(always)]
    fn make_room(&mut self) {
        if self.frames.len() == INLINE_FRAMES {
            self.spill();
        }
    }

    // Out of line: every frame pushed checks for room; a message spills once at most.
    #[cold]
    #[inline(never)]
    fn spill(&mut self) {
        self.frames.reserve(SPILLED_FRAMES - INLINE_FRAMES);
    }

    /// Prepends a frame (an envelope: routing id, delimiter).
    pub fn push_front(&mut self, frame: impl Into<Bytes>) {
        self.make_room();
        self.frames.insert(0, frame.into());
    }

    /// Removes and returns the first frame.
    pub fn pop_front(&mut self) -> Option<Bytes> {
        if self.frames.is_empty() {
            None
        } else {
            Some(self.frames.remove(0))
        }
    }

    /// Removes and returns the last frame.
    pub fn pop_back(&mut self) -> Option<Bytes> {
        self.frames.pop()
    }

    /// The frame at `index`, if any.
    pub fn get(&self, index: usize) -> Option<&Bytes> {
        self.frames.get(index)
    }

    /// The first frame, if any.
    pub fn first(&self) -> Option<&Bytes> {
        self.frames.first()
    }

    /// The last frame, if any.
    pub fn last(&self) -> Option<&Bytes> {
        self.frames.last()
    }

    /// Iterates over the frames.
    pub fn iter(&self) -> std::slice::Iter<'_, Bytes> {
        self.frames.iter()
    }

    /// Splits off the frames from `at` on, leaving `[0, at)` in `self`.
    pub fn split_off(&mut self, at: usize) -> Message {
        let at = at.min(self.frames.len());
        Message {
            frames: self.frames.drain(at..).collect(),
        }
    }

    /// Prepends all frames of `envelope` (kept in order).
    pub fn prepend(&mut self, envelope: Message) {
        self.frames.insert_many(0, envelope.frames);
    }

    /// The frames as a `Vec`.
    pub fn into_vec(self) -> Vec<Bytes> {
        self.frames.into_vec()
    }
}

impl std::ops::Index<usize> for Message {
    type Output = Bytes;
    fn index(&self, index: usize) -> &Bytes {
        &self.frames[index]
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.frames.iter()).finish()
    }
}

impl IntoIterator for Message {
    type Item = Bytes;
    type IntoIter = smallvec::IntoIter<[Bytes; INLINE_FRAMES]>;
    fn into_iter(self) -> Self::IntoIter {
        self.frames.into_iter()
    }
}

impl<'a> IntoIterator for &'a Message {
    type Item = &'a Bytes;
    type IntoIter = std::slice::Iter<'a, Bytes>;
    fn into_iter(self) -> Self::IntoIter {
        self.frames.iter()
    }
}

impl<F: Into<Bytes>> FromIterator<F> for Message {
    fn from_iter<I: IntoIterator<Item = F>>(iter: I) -> Message {
        Message {
            frames: iter.into_iter().map(Into::into).collect(),
        }
    }
}

impl<F: Into<Bytes>> Extend<F> for Message {
    fn extend<I: IntoIterator<Item = F>>(&mut self, iter: I) {
        self.frames.extend(iter.into_iter().map(Into::into));
    }
}

macro_rules! single_frame {
    ($($t:ty),*) => {$(
        impl From<$t> for Message {
            fn from(frame: $t) -> Message {
                let mut frames = SmallVec::new();
                frames.push(Bytes::from(frame));
                Message { frames }
            }
        }
    )*};
}
single_frame!(Bytes, Vec<u8>, String, &'static str, &'static [u8]);

impl<F: Into<Bytes>, const N: usize> From<[F; N]> for Message {
    fn from(frames: [F; N]) -> Message {
        frames.into_iter().collect()
    }
}

macro_rules! frame_list {
    ($($t:ty),*) => {$(
        impl From<Vec<$t>> for Message {
            fn from(frames: Vec<$t>) -> Message {
                frames.into_iter().collect()
            }
        }
    )*};
}
frame_list!(Bytes, Vec<u8>, String, &'static str, &'static [u8]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_keep_their_order_across_the_spill() {
        let mut m = Message::new();
        for i in 0..SPILLED_FRAMES + 3 {
            if i % 2 == 0 {
                m.push_back(format!("b{i}"));
            } else {
                m.push_front(format!("f{i}"));
            }
        }
        let mut fronts: Vec<String> = (0..SPILLED_FRAMES + 3)
            .filter(|i| i % 2 == 1)
            .map(|i| format!("f{i}"))
            .collect();
        fronts.reverse();
        let backs = (0..SPILLED_FRAMES + 3)
            .filter(|i| i % 2 == 0)
            .map(|i| format!("b{i}"));
        let expected: Vec<String> = fronts.into_iter().chain(backs).collect();
        let got: Vec<&[u8]> = m.iter().map(|f| &f[..]).collect();
        let want: Vec<&[u8]> = expected.iter().map(String::as_bytes).collect();
        assert_eq!(got, want);
        assert!(m.frames.capacity() >= SPILLED_FRAMES);
    }

    #[test]
    fn envelope_operations() {
        let mut m = Message::from(["a", "b", "c"]);
        let body = m.split_off(1);
        assert_eq!(m, Message::from(["a"]));
        assert_eq!(body.len(), 2);
        let mut body = body;
        body.prepend(Message::from(["x", ""]));
        assert_eq!(body, Message::from(["x", "", "b", "c"]));
        assert_eq!(body.byte_len(), 3);
        assert_eq!(body.pop_front().as_deref(), Some(&b"x"[..]));
        assert_eq!(body.split_off(10), Message::new());
    }

    #[test]
    fn stays_small_enough_to_move_without_memcpy() {
        // x86-64 inlines copies of up to 128 bytes; a message travels with its peer key.
        assert!(std::mem::size_of::<Message>() + 8 <= 128);
    }

    #[test]
    fn spills_past_the_inline_frames() {
        let m: Message = (0..10).map(|i| i.to_string()).collect();
        assert_eq!(m.len(), 10);
        assert_eq!(m[9], "9");
        assert_eq!(m.clone().into_vec().len(), 10);
    }
}
