//! Load-balancing over pipes (libzmq `lb_t`): round-robin over the pipes with room,
//! waiting when none has room or there is no pipe at all. DEALER, REQ, PUSH and PAIR
//! send this way (`AtHwm::WaitForAny` in hwm.rs).

use super::{PeerKey, Socket};
use crate::Message;

impl Socket {
    /// Queues `msg` on the next pipe with room; returns the peer it went to, or the
    /// message when every pipe is full (or there is none).
    #[allow(clippy::result_large_err)] // hands the message back, see Pipe::try_push
    pub(super) fn try_load_balance(&mut self, mut msg: Message) -> Result<PeerKey, Message> {
        self.core.peers.refresh(&mut self.snapshot);
        let n = self.snapshot.ordered.len();
        // No division per message: `lb_next` stays below `n` unless pipes went.
        let start = if self.lb_next < n { self.lb_next } else { 0 };
        for i in 0..n {
            let index = if start + i < n {
                start + i
            } else {
                start + i - n
            };
            let (key, pipe) = &self.snapshot.ordered[index];
            match pipe.try_push(msg) {
                Ok(()) => {
                    self.lb_next = if index + 1 < n { index + 1 } else { 0 };
                    return Ok(*key);
                }
                Err(back) => msg = back,
            }
        }
        Err(msg)
    }
}
