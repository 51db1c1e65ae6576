//! PUB and XPUB sending (RFC 29, libzmq xpub.cpp `xsend`): a message goes to every
//! peer with a subscription that prefixes its first frame, and never waits. A peer
//! whose queue is at the high-water mark (or would pass `send_hwm_bytes` with this
//! message) misses the message; the others get it.
//!
//! With `xpub_nodrop`, an XPUB waits instead until every matching peer has room
//! (ZMQ_XPUB_NODROP), so nothing is lost and a slow subscriber slows the publisher.

use super::hwm::{self, AtHwm, Attempt};
use super::Socket;
use crate::Message;

impl Socket {
    /// One attempt to publish: every matching peer with room gets the message; with
    /// `xpub_nodrop` (hwm.rs), nobody does until all of them have room.
    pub(super) fn try_send_published(&mut self, msg: Message) -> Attempt {
        let wait = hwm::at_hwm(self.core.socket_type, &self.options) == AtHwm::WaitForTarget;
        match self.publish_matching(msg, wait) {
            Ok(()) => Attempt::Done,
            Err(back) => Attempt::Full(back),
        }
    }

    /// Queues `msg` for every matching peer (a peer whose queue is full misses it).
    /// With `all_or_none`, queues nothing and hands the message back when some
    /// matching peer has no room.
    #[allow(clippy::result_large_err)] // hands the message back, see Pipe::try_push
    fn publish_matching(&mut self, msg: Message, all_or_none: bool) -> Result<(), Message> {
        let Some(subscribers) = self.core.subscribers.as_ref() else {
            return Ok(());
        };
        let first = msg.first().map_or(&[][..], |frame| &frame[..]);
        self.matched.clear();
        subscribers.matching(first, &mut self.matched);
        if self.matched.is_empty() {
            return Ok(());
        }
        self.core.peers.refresh(&mut self.snapshot);
        let snapshot = &self.snapshot;
        let pipes = || {
            self.matched
                .iter()
                .filter_map(|key| snapshot.by_key.get(key))
        };
        if all_or_none && !pipes().all(|pipe| pipe.would_take(&msg)) {
            return Err(msg);
        }
        let mut pipes = pipes().peekable();
        while let Some(pipe) = pipes.next() {
            if pipes.peek().is_some() {
                let _ = pipe.try_push(msg.clone());
            } else {
                let _ = pipe.try_push(msg);
                break;
            }
        }
        Ok(())
    }
}
