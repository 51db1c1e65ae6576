//! ROUTER sending: the first frame names the peer (libzmq router.cpp `xsend`).
//!
//! An unknown routing id or a full pipe (at the HWM, or out of `send_hwm_bytes`
//! for this message) drops the message silently, unless
//! `router_mandatory` is set: then an unknown id is [`Error::HostUnreachable`] and a
//! full pipe makes `send` wait for room.

use super::Socket;
use crate::error::Error;
use crate::Message;

impl Socket {
    pub(super) async fn send_routed(&mut self, mut msg: Message) -> Result<(), Error> {
        let Some(id) = msg.pop_front() else {
            return Err(Error::EmptyMessage);
        };
        if msg.is_empty() {
            return Err(Error::EmptyMessage);
        }
        let mandatory = self.options.router_mandatory;
        let writable = self.core.peers.writable.clone();
        loop {
            let notified = writable.notified();
            tokio::pin!(notified);
            if mandatory {
                notified.as_mut().enable();
            }
            self.core.peers.refresh(&mut self.snapshot);
            let Some(pipe) = self.snapshot.by_routing_id.get(&id) else {
                return if mandatory {
                    Err(Error::HostUnreachable(id))
                } else {
                    tracing::trace!("dropping message for unknown routing id");
                    Ok(())
                };
            };
            match pipe.try_push(msg) {
                Ok(()) => return Ok(()),
                Err(_) if !mandatory => return Ok(()), // libzmq: dropped at HWM
                Err(back) => msg = back,
            }
            if self.core.cancel.is_cancelled() {
                return Err(Error::Closed);
            }
            notified.await;
        }
    }
}
