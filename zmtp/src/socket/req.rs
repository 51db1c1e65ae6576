//! REQ (RFC 28): requests are load-balanced with an empty delimiter frame in front;
//! only a reply from the peer the request went to, starting with the delimiter, is
//! accepted (others are dropped, as libzmq req.cpp does); send and recv alternate.

use std::task::{Context, Poll};

use super::{PeerKey, Socket};
use crate::error::Error;
use crate::Message;

#[derive(Debug, Default)]
pub(super) struct ReqState {
    /// The peer whose reply we are waiting for.
    awaiting: Option<PeerKey>,
}

impl Socket {
    pub(super) async fn send_request(&mut self, mut msg: Message) -> Result<(), Error> {
        if self.req.awaiting.is_some() {
            return Err(Error::WrongState(
                "REQ must receive the reply before sending another request",
            ));
        }
        msg.push_front(bytes::Bytes::new());
        let peer = self.send_load_balanced(msg).await?;
        self.req.awaiting = Some(peer);
        Ok(())
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
