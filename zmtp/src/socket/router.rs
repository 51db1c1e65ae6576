//! ROUTER: sending by routing id (libzmq router.cpp `xsend`), and the connection-level
//! API a server like a broker needs: every peer's arrival and departure in order with
//! its messages, replies addressed to one connection, and pausing one peer's input.
//!
//! An unknown routing id or a full pipe (at the HWM, or out of `send_hwm_bytes`
//! for this message) drops the message silently, unless
//! `router_mandatory` is set: then an unknown id is [`Error::HostUnreachable`] and a
//! full pipe makes `send` wait for room.

use std::task::{Context, Poll};

use bytes::Bytes;

use super::hwm::{self, AtHwm, Attempt};
use super::Socket;
use crate::error::Error;
use crate::inbound::{Inbound, InboundKind};
use crate::proto::SocketType;
use crate::Message;

/// One connection of a ROUTER's peer: the routing id it goes by and the number of
/// the connection, which no later connection of the socket ever gets. A peer that
/// reconnects, or a new peer that takes a routing id someone else had, is a new
/// `PeerId`: what is sent to the old one never reaches it.
#[derive(Debug, Clone, PartialOrd, Ord)]
pub struct PeerId {
    routing_id: Bytes,
    connection: u64,
}

/// Hashes the connection number only: no two connections of a socket share one, so
/// it tells peers apart by itself, and a server keying its maps by `PeerId` does not
/// hash a routing id (up to 255 bytes, chosen by the peer) at every lookup.
impl std::hash::Hash for PeerId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.connection.hash(state);
    }
}

/// Equal when both parts are, the connection number compared first. Clones of one
/// id (what a server's maps mostly hold and look up) share the routing id's bytes,
/// which are then not compared one by one.
impl PartialEq for PeerId {
    fn eq(&self, other: &PeerId) -> bool {
        let (a, b) = (&self.routing_id, &other.routing_id);
        self.connection == other.connection
            && ((a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b)
    }
}

impl Eq for PeerId {}

impl PeerId {
    /// A peer id from its parts (for tests and state machines that are fed events).
    pub fn new(routing_id: impl Into<Bytes>, connection: u64) -> PeerId {
        PeerId {
            routing_id: routing_id.into(),
            connection,
        }
    }

    /// The routing id: what the peer announced, or what the ROUTER made up (`0x00`
    /// and four random bytes).
    pub fn routing_id(&self) -> &Bytes {
        &self.routing_id
    }

    /// The connection's number: unique for the socket's life.
    pub fn connection(&self) -> u64 {
        self.connection
    }
}

/// What a ROUTER receives with [`Socket::recv_event`]: messages and the arrival and
/// departure of connections, each connection's in the order they happened (its
/// arrival first, then its messages, then its departure).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouterEvent {
    /// A connection passed its handshake. `address` is the remote address
    /// (`127.0.0.1:40312`, `[::1]:40312`, `ipc:///path`, `inproc://name`).
    Joined {
        /// Who.
        peer: PeerId,
        /// From where.
        address: String,
    },
    /// A message (without the routing id frame).
    Message {
        /// From whom.
        peer: PeerId,
        /// The frames.
        message: Message,
    },
    /// The connection ended: nothing more comes from it, and nothing more sent to it
    /// with [`Socket::send_to`] goes anywhere.
    Left {
        /// Who.
        peer: PeerId,
    },
}

impl Socket {
    /// One attempt to route a message by its first frame (hwm.rs says what a full
    /// peer means).
    pub(super) fn try_send_routed(&mut self, mut msg: Message) -> Result<Attempt, Error> {
        let Some(id) = msg.pop_front() else {
            return Err(Error::EmptyMessage);
        };
        if msg.is_empty() {
            return Err(Error::EmptyMessage);
        }
        self.core.peers.refresh(&mut self.snapshot);
        let Some(pipe) = self.snapshot.by_routing_id.get(&id) else {
            return if self.options.router_mandatory {
                Err(Error::HostUnreachable(id))
            } else {
                tracing::trace!("dropping message for unknown routing id");
                Ok(Attempt::Done)
            };
        };
        match pipe.try_push(msg) {
            Ok(()) => Ok(Attempt::Done),
            Err(mut back) => match hwm::at_hwm(SocketType::Router, &self.options) {
                AtHwm::WaitForTarget => {
                    back.push_front(id);
                    Ok(Attempt::Full(back))
                }
                _ => Ok(Attempt::Done), // dropped at the HWM
            },
        }
    }

    /// ROUTER: the next message, arrival or departure. A ROUTER read with
    /// [`Socket::recv`] sees the messages only (with the routing id in front).
    ///
    /// Cancel-safe, as `recv`.
    ///
    /// ```
    /// use zmtp::{RouterEvent, Socket, SocketType};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), zmtp::Error> {
    /// let mut server = Socket::new(SocketType::Router);
    /// let endpoint = server.bind("tcp://127.0.0.1:0").await?;
    /// let mut client = Socket::new(SocketType::Dealer);
    /// client.connect(&endpoint.to_string())?;
    /// client.send("hello").await?;
    ///
    /// let RouterEvent::Joined { peer, .. } = server.recv_event().await? else { panic!() };
    /// let RouterEvent::Message { peer: from, message } = server.recv_event().await? else { panic!() };
    /// assert_eq!(from, peer);
    /// server.send_to(&peer, message)?; // to this connection, whoever has its routing id later
    /// assert_eq!(client.recv().await?, zmtp::Message::from("hello"));
    /// drop(client);
    /// assert_eq!(server.recv_event().await?, RouterEvent::Left { peer });
    /// # Ok(())
    /// # }
    /// ```
    pub async fn recv_event(&mut self) -> Result<RouterEvent, Error> {
        std::future::poll_fn(|cx| self.poll_recv_event(cx)).await
    }

    /// [`Socket::recv_event`] if something is already queued, without waiting
    /// ([`Error::WouldBlock`] otherwise).
    pub fn try_recv_event(&mut self) -> Result<RouterEvent, Error> {
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        match self.poll_recv_event(&mut cx) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(Error::WouldBlock),
        }
    }

    /// The poll form of [`Socket::recv_event`].
    pub fn poll_recv_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<RouterEvent, Error>> {
        self.router_only("receive connection events")?;
        loop {
            let inbound = std::task::ready!(self.poll_inbound(cx))?;
            if let Some(event) = router_event(inbound) {
                return Poll::Ready(Ok(event));
            }
        }
    }

    /// ROUTER: queues `msg` for the connection `peer`, never waiting. Dropped (as a
    /// ROUTER drops at its high-water mark) when the connection's queue is full:
    /// [`Error::WouldBlock`]; dropped when that connection is gone, even if another
    /// has its routing id now: [`Error::HostUnreachable`].
    pub fn send_to(&mut self, peer: &PeerId, msg: impl Into<Message>) -> Result<(), Error> {
        self.router_only("send to a connection")?;
        let msg = msg.into();
        if msg.is_empty() {
            return Err(Error::EmptyMessage);
        }
        let Some(pipe) = self.core.peers.connection_pipe(peer.connection) else {
            return Err(Error::HostUnreachable(peer.routing_id.clone()));
        };
        pipe.try_push(msg).map_err(|_| {
            if pipe.is_closed() {
                Error::HostUnreachable(peer.routing_id.clone())
            } else {
                Error::WouldBlock
            }
        })
    }

    /// ROUTER: stops reading `peer`'s input after the message it is in the middle
    /// of (what was already read is still received). The connection stays up and
    /// what is sent to it still goes out; TCP pushes back on the peer, whose sends
    /// wait at its own high-water mark, so nothing is lost. Returns false when the
    /// connection is gone.
    pub fn pause(&self, peer: &PeerId) -> bool {
        self.core
            .peers
            .connection_gate(peer.connection)
            .map(|gate| gate.pause())
            .is_some()
    }

    /// ROUTER: reads `peer`'s input again after [`Socket::pause`]. Returns false when
    /// the connection is gone.
    pub fn resume(&self, peer: &PeerId) -> bool {
        self.core
            .peers
            .connection_gate(peer.connection)
            .map(|gate| gate.resume())
            .is_some()
    }

    fn router_only(&self, operation: &'static str) -> Result<(), Error> {
        if self.core.socket_type == SocketType::Router {
            Ok(())
        } else {
            Err(Error::Unsupported {
                socket_type: self.core.socket_type,
                operation,
            })
        }
    }
}

/// The event an inbound entry of a ROUTER is (None for a message without its routing
/// id frame, which a ROUTER never queues).
fn router_event(inbound: Inbound) -> Option<RouterEvent> {
    let Inbound {
        connection,
        mut msg,
        kind,
        ..
    } = inbound;
    let peer = PeerId {
        routing_id: msg.pop_front()?,
        connection,
    };
    Some(match kind {
        InboundKind::Message => RouterEvent::Message { peer, message: msg },
        InboundKind::Joined(address) => RouterEvent::Joined {
            peer,
            address: address.into(),
        },
        InboundKind::Left => RouterEvent::Left { peer },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ids_are_equal_when_both_parts_are() {
        let id = PeerId::new(&b"worker"[..], 1);
        assert_eq!(id, id.clone());
        assert_eq!(
            id,
            PeerId::new(&b"worker"[..], 1),
            "other bytes, same value"
        );
        assert_ne!(id, PeerId::new(&b"worker"[..], 2));
        assert_ne!(id, PeerId::new(&b"worker-2"[..], 1));
        // The same first byte in memory, a shorter id.
        let long = Bytes::from_static(b"worker");
        let short = long.slice(..3);
        assert_ne!(PeerId::new(long, 1), PeerId::new(short, 1));
    }
}
