//! [`Message`]: a multipart ZeroMQ message, a list of [`Bytes`] frames.

use bytes::Bytes;
use std::collections::VecDeque;

/// A multipart message: one or more frames that travel atomically.
///
/// Frames are [`Bytes`], so cloning a message or slicing a frame never copies payload.
/// Building one from strings and byte slices is direct:
///
/// ```
/// use zmtp::Message;
///
/// let mut msg = Message::from(["hello", "world"]);
/// msg.push_front("");                  // an empty delimiter frame
/// assert_eq!(msg.len(), 3);
/// assert_eq!(msg[2], "world");
/// assert_eq!(Message::from("single").len(), 1);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Message {
    frames: VecDeque<Bytes>,
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

    /// Total payload bytes over all frames.
    pub fn byte_len(&self) -> usize {
        self.frames.iter().map(Bytes::len).sum()
    }

    /// Appends a frame.
    pub fn push_back(&mut self, frame: impl Into<Bytes>) {
        self.frames.push_back(frame.into());
    }

    /// Prepends a frame (an envelope: routing id, delimiter).
    pub fn push_front(&mut self, frame: impl Into<Bytes>) {
        self.frames.push_front(frame.into());
    }

    /// Removes and returns the first frame.
    pub fn pop_front(&mut self) -> Option<Bytes> {
        self.frames.pop_front()
    }

    /// Removes and returns the last frame.
    pub fn pop_back(&mut self) -> Option<Bytes> {
        self.frames.pop_back()
    }

    /// The frame at `index`, if any.
    pub fn get(&self, index: usize) -> Option<&Bytes> {
        self.frames.get(index)
    }

    /// The first frame, if any.
    pub fn first(&self) -> Option<&Bytes> {
        self.frames.front()
    }

    /// The last frame, if any.
    pub fn last(&self) -> Option<&Bytes> {
        self.frames.back()
    }

    /// Iterates over the frames.
    pub fn iter(&self) -> std::collections::vec_deque::Iter<'_, Bytes> {
        self.frames.iter()
    }

    /// Splits off the frames from `at` on, leaving `[0, at)` in `self`.
    pub fn split_off(&mut self, at: usize) -> Message {
        Message {
            frames: self.frames.split_off(at.min(self.frames.len())),
        }
    }

    /// Prepends all frames of `envelope` (kept in order).
    pub fn prepend(&mut self, envelope: Message) {
        for frame in envelope.frames.into_iter().rev() {
            self.frames.push_front(frame);
        }
    }

    /// The frames as a `Vec`.
    pub fn into_vec(self) -> Vec<Bytes> {
        self.frames.into()
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
    type IntoIter = std::collections::vec_deque::IntoIter<Bytes>;
    fn into_iter(self) -> Self::IntoIter {
        self.frames.into_iter()
    }
}

impl<'a> IntoIterator for &'a Message {
    type Item = &'a Bytes;
    type IntoIter = std::collections::vec_deque::Iter<'a, Bytes>;
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
                Message { frames: VecDeque::from([Bytes::from(frame)]) }
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

impl From<VecDeque<Bytes>> for Message {
    fn from(frames: VecDeque<Bytes>) -> Message {
        Message { frames }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
