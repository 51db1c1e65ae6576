//! REP (RFC 28): a request's envelope (every frame up to and including the first empty
//! one) is stripped and kept, and put back in front of the reply, which goes to the
//! peer the request came from. A request without a delimiter is dropped.

use std::task::{Context, Poll};

use super::{PeerKey, Socket};
use crate::error::Error;
use crate::Message;

#[derive(Debug, Default)]
pub(super) struct RepState {
    /// Where the reply to the request being handled goes, and its envelope.
    replying_to: Option<(PeerKey, Message)>,
}

impl Socket {
    pub(super) fn poll_request(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message, Error>> {
        if self.rep.replying_to.is_some() {
            return Poll::Ready(Err(Error::WrongState(
                "REP must send the reply before receiving another request",
            )));
        }
        loop {
            let inbound = match self.poll_inbound(cx) {
                Poll::Ready(Ok(inbound)) => inbound,
                other => return other.map_ok(|i| i.msg),
            };
            let mut envelope = inbound.msg;
            let Some(delimiter) = envelope.iter().position(|f| f.is_empty()) else {
                tracing::debug!("REP dropped a request without an envelope delimiter");
                continue;
            };
            let body = envelope.split_off(delimiter + 1);
            self.rep.replying_to = Some((inbound.peer, envelope));
            return Poll::Ready(Ok(body));
        }
    }

    pub(super) fn send_reply(&mut self, mut msg: Message) -> Result<(), Error> {
        let Some((peer, envelope)) = self.rep.replying_to.take() else {
            return Err(Error::WrongState(
                "REP must receive a request before sending a reply",
            ));
        };
        msg.prepend(envelope);
        self.core.peers.refresh(&mut self.snapshot);
        // A peer that went away, or whose queue is full, loses the reply (REP drops
        // at the HWM, see hwm.rs; libzmq does the same: REP routes like ROUTER).
        if let Some(pipe) = self.snapshot.by_key.get(&peer) {
            let _ = pipe.try_push(msg);
        }
        Ok(())
    }
}
