//! Load-balancing over pipes (libzmq `lb_t`): round-robin over the pipes with room,
//! waiting when none has room or there is no pipe at all. DEALER, REQ, PUSH and PAIR
//! send this way (`AtHwm::WaitForAny` in hwm.rs).

use super::{PeerKey, Socket};
use crate::error::Error;
use crate::Message;

impl Socket {
    /// Queues `msg` on the next pipe with room; returns the peer it went to.
    pub(super) async fn send_load_balanced(&mut self, msg: Message) -> Result<PeerKey, Error> {
        let mut msg = match self.try_load_balance(msg) {
            Ok(key) => return Ok(key),
            Err(msg) => msg,
        };
        let writable = self.core.peers.writable.clone();
        loop {
            // Register for the wake-up before the second look, so a pipe that drains
            // in between cannot be missed.
            let notified = writable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            msg = match self.try_load_balance(msg) {
                Ok(key) => return Ok(key),
                Err(msg) => msg,
            };
            if self.core.cancel.is_cancelled() {
                return Err(Error::Closed);
            }
            notified.await;
        }
    }

    #[allow(clippy::result_large_err)] // hands the message back, see Pipe::try_push
    fn try_load_balance(&mut self, mut msg: Message) -> Result<PeerKey, Message> {
        self.core.peers.refresh(&mut self.snapshot);
        let n = self.snapshot.ordered.len();
        for i in 0..n {
            let index = (self.lb_next + i) % n;
            let (key, pipe) = &self.snapshot.ordered[index];
            match pipe.try_push(msg) {
                Ok(()) => {
                    self.lb_next = index + 1;
                    return Ok(*key);
                }
                Err(back) => msg = back,
            }
        }
        Err(msg)
    }
}
