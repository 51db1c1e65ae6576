//! Turns what a socket queued for a peer into bytes for the wire: messages as
//! frames, subscription changes as commands or legacy messages, heartbeats as
//! commands; with CURVE, every one of those frames boxed in a MESSAGE.

use bytes::{BufMut, BytesMut};

use crate::pipe::Outbound;
use crate::proto::frame::encode_header;
use crate::proto::mechanism::curve::CurveSealer;
use crate::proto::{Command, HandshakeError};
use crate::wire_queue::WireQueue;
use crate::Message;

/// The writer's encoder for one connection.
#[derive(Debug)]
pub(crate) struct OutboundEncoder {
    /// The peer speaks ZMTP 3.0: subscriptions go as `0x01|0x00 + topic` messages.
    legacy_subscriptions: bool,
    /// CURVE's sending half, when the connection is encrypted.
    sealer: Option<CurveSealer>,
    /// Scratch space for a command body before it is boxed.
    scratch: BytesMut,
}

impl OutboundEncoder {
    pub(crate) fn new(legacy_subscriptions: bool, sealer: Option<CurveSealer>) -> Self {
        OutboundEncoder {
            legacy_subscriptions,
            sealer,
            scratch: BytesMut::new(),
        }
    }

    /// Encodes what a socket queued: a message as frames; a subscription change as
    /// a SUBSCRIBE/CANCEL command (ZMTP 3.1) or, for a 3.0 peer, as the legacy
    /// one-frame message `0x01|0x00 + topic` (RFC 37 and reference §16).
    pub(crate) fn outbound(&mut self, item: &Outbound, buf: &mut WireQueue) -> Sealed {
        let (subscribe, topic) = match item {
            Outbound::Message(msg) => return self.message(msg, buf),
            Outbound::Subscribe(topic) => (true, topic),
            Outbound::Cancel(topic) => (false, topic),
        };
        if self.legacy_subscriptions {
            let mut body = BytesMut::with_capacity(1 + topic.len());
            body.put_u8(u8::from(subscribe));
            body.put_slice(topic);
            self.message(&Message::from(body.freeze()), buf)
        } else if subscribe {
            self.command(&Command::Subscribe(topic.clone()), buf)
        } else {
            self.command(&Command::Cancel(topic.clone()), buf)
        }
    }

    /// Encodes every frame of `msg`, MORE set on all but the last; in clear, large
    /// bodies are queued without a copy.
    pub(crate) fn message(&mut self, msg: &Message, buf: &mut WireQueue) -> Sealed {
        let Some(sealer) = &mut self.sealer else {
            buf.push_message(msg);
            return Ok(());
        };
        let last = msg.len().saturating_sub(1);
        for (i, frame) in msg.iter().enumerate() {
            sealer.seal_frame(i < last, false, frame, buf.tail())?;
        }
        Ok(())
    }

    /// Encodes a command (PING, PONG, SUBSCRIBE, CANCEL).
    pub(crate) fn command(&mut self, command: &Command, buf: &mut WireQueue) -> Sealed {
        self.scratch.clear();
        command.encode_body(&mut self.scratch);
        let buf = buf.tail();
        match &mut self.sealer {
            Some(sealer) => sealer.seal_frame(false, true, &self.scratch, buf),
            None => {
                encode_header(buf, false, true, self.scratch.len());
                buf.put_slice(&self.scratch);
                Ok(())
            }
        }
    }
}

/// Boxing fails only when CURVE's nonce counter is exhausted (2^64 frames); the
/// connection must then close.
pub(crate) type Sealed = Result<(), HandshakeError>;

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tokio_util::codec::Decoder;

    use super::*;
    use crate::proto::FrameCodec;

    fn decode_all(mut queue: WireQueue) -> Vec<(bool, Bytes)> {
        // Subscriptions are small: everything is in the copy buffer.
        let mut buf = queue.tail().clone();
        let mut codec = FrameCodec::new(1 << 20);
        let mut frames = Vec::new();
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            frames.push((frame.command, frame.body));
        }
        frames
    }

    #[test]
    fn subscriptions_are_commands_for_3_1_and_messages_for_3_0() {
        let topic = Bytes::from_static(b"weather");
        let items = [
            Outbound::Subscribe(topic.clone()),
            Outbound::Cancel(topic.clone()),
        ];
        let mut modern = WireQueue::new();
        let mut legacy = WireQueue::new();
        let mut modern_encoder = OutboundEncoder::new(false, None);
        let mut legacy_encoder = OutboundEncoder::new(true, None);
        for item in &items {
            modern_encoder.outbound(item, &mut modern).unwrap();
            legacy_encoder.outbound(item, &mut legacy).unwrap();
        }
        let modern = decode_all(modern);
        assert_eq!(modern.len(), 2);
        assert!(modern.iter().all(|(command, _)| *command));
        assert_eq!(
            Command::parse(modern[0].1.clone()).unwrap(),
            Command::Subscribe(topic.clone())
        );
        assert_eq!(
            Command::parse(modern[1].1.clone()).unwrap(),
            Command::Cancel(topic.clone())
        );
        assert_eq!(
            decode_all(legacy),
            [
                (false, Bytes::from_static(b"\x01weather")),
                (false, Bytes::from_static(b"\x00weather")),
            ]
        );
    }
}
