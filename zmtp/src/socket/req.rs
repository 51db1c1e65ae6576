//! REQ (RFC 28): requests are load-balanced with an empty delimiter frame in front;
//! only a reply from the peer the request went to, starting with the delimiter, is
//! accepted (others are dropped, as libzmq req.cpp does); send and recv alternate.

use std::task::{Context, Poll};

use super::hwm::Attempt;
use super::{PeerKey, Socket};
use crate::error::Error;
use crate::Message;

#[derive(Debug, Default)]
pub(super) struct ReqState {
    /// The peer whose reply we are waiting for.
    awaiting: Option<PeerKey>,
}

impl Socket {
    /// One attempt to send a request: load-balanced, behind the empty delimiter.
    pub(super) fn try_send_request(&mut self, mut msg: Message) -> Result<Attempt, Error> {
        if self.req.awaiting.is_some() {
            return Err(Error::WrongState(
                "REQ must receive the reply before sending another request",
            ));
        }
        msg.push_front(bytes::Bytes::new());
        match self.try_load_balance(msg) {
            Ok(peer) => {
                self.req.awaiting = Some(peer);
                Ok(Attempt::Done)
            }
            Err(mut msg) => {
                msg.pop_front();
                Ok(Attempt::Full(msg))
            }
        }
    }

    pub(super) fn poll_reply(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message, Error>> {
        let Some(expected) = self.req.awaiting else {
            return Poll::Ready(Err(Error::WrongState(
                "REQ must send a request before receiving",
            )));
        };
        loop {
            let inbound = match self.poll_inbound(cx) {
                Poll::Ready(Ok(inbound)) => inbound,
                other => return other.map_ok(|i| i.msg),
            };
            let mut msg = inbound.msg;
            if inbound.peer != expected || !msg.first().is_some_and(|f| f.is_empty()) {
                tracing::debug!("REQ dropped a reply that is not for the pending request");
                continue;
            }
            msg.pop_front();
            self.req.awaiting = None;
            return Poll::Ready(Ok(msg));
        }
    }
}
