//! What a send does when a peer's queue is full: the one place that decides it,
//! per socket type (libzmq's rules, `zmq_socket(3)` "Action in mute state").
//!
//! A peer's queue is *full* at its high-water mark (`send_hwm` messages), or when
//! the message would take it past `send_hwm_bytes`, or past a budget it shares with
//! other peers (`send_hwm_bytes_total`, `send_hwm_bytes_per_address`); an empty
//! queue always takes one message.
//!
//! | socket | a full peer | where |
//! |---|---|---|
//! | DEALER, PUSH, PAIR, REQ | `send` waits until some peer has room (round-robin over those that do) | `lb.rs` |
//! | ROUTER | the message is dropped; with `router_mandatory`, `send` waits for that peer (and `try_send` is `WouldBlock`) | `router.rs` |
//! | REP | the reply is dropped | `rep.rs` |
//! | PUB, XPUB | that peer misses the message, the others get it; with `xpub_nodrop`, `send` waits until every matching peer has room | `publish.rs` |
//! | XSUB | subscriptions are never dropped: past the byte limit the peer is reconnected with the full set | `pipe.rs` |
//! | SUB, PULL | cannot send | |
//!
//! On the receiving side every type behaves alike: when the socket's receive queue
//! is at `recv_hwm` (or `recv_hwm_bytes`), a connection stops reading after the
//! message it is assembling, and TCP pushes back on the peer (`inbound.rs`, the
//! engine); nothing is dropped. Over inproc the same limits hold (`inproc.rs`).

use crate::options::SocketOptions;
use crate::proto::SocketType;

/// What one attempt to send did.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// Queued, or dropped by the socket type's rule: the send is over.
    Done,
    /// Every peer it could go to is full and the rule says wait: here it is back.
    Full(crate::Message),
}

/// What a send does when a peer's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AtHwm {
    /// Wait until some peer has room: any peer will do (load balancing).
    WaitForAny,
    /// Wait until the peers the message is for have room.
    WaitForTarget,
    /// Drop the message for the full peer; `send` never waits.
    Drop,
    /// The socket type cannot send.
    CannotSend,
}

/// The rule for `socket_type` with `options` (see the table above).
pub(crate) fn at_hwm(socket_type: SocketType, options: &SocketOptions) -> AtHwm {
    match socket_type {
        SocketType::Dealer | SocketType::Push | SocketType::Pair | SocketType::Req => {
            AtHwm::WaitForAny
        }
        SocketType::Router if options.router_mandatory => AtHwm::WaitForTarget,
        SocketType::XPub if options.xpub_nodrop => AtHwm::WaitForTarget,
        SocketType::Router | SocketType::Rep | SocketType::Pub | SocketType::XPub => AtHwm::Drop,
        // XSUB sends subscriptions, which are never dropped (see `Pipe::push_subscription`).
        SocketType::XSub => AtHwm::Drop,
        SocketType::Sub | SocketType::Pull => AtHwm::CannotSend,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table() {
        let plain = SocketOptions::default();
        let strict = SocketOptions::default()
            .router_mandatory(true)
            .xpub_nodrop(true);
        for t in [
            SocketType::Dealer,
            SocketType::Push,
            SocketType::Pair,
            SocketType::Req,
        ] {
            assert_eq!(at_hwm(t, &plain), AtHwm::WaitForAny);
            assert_eq!(at_hwm(t, &strict), AtHwm::WaitForAny);
        }
        for t in [SocketType::Router, SocketType::XPub] {
            assert_eq!(at_hwm(t, &plain), AtHwm::Drop);
            assert_eq!(at_hwm(t, &strict), AtHwm::WaitForTarget);
        }
        for t in [SocketType::Rep, SocketType::Pub, SocketType::XSub] {
            assert_eq!(at_hwm(t, &strict), AtHwm::Drop);
        }
        for t in [SocketType::Sub, SocketType::Pull] {
            assert_eq!(at_hwm(t, &plain), AtHwm::CannotSend);
        }
    }
}
