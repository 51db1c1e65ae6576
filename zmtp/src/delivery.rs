//! [`Delivery`]: how what one peer sends reaches its socket, whichever transport
//! carried it (the ZMTP engine or an in-process link).

use std::sync::Arc;

use bytes::Bytes;

use crate::inbound::{Inbound, InboundKind, InboundQueue};
use crate::input_gate::InputGate;
use crate::peer_key::PeerKey;
use crate::Message;

/// A socket that takes its peers' subscriptions (PUB, XPUB): what they send goes
/// to its table, not to the application as such. The engine only hands it over.
pub(crate) trait SubscriptionTable: Send + Sync + std::fmt::Debug {
    /// A complete message from `peer` (legacy subscriptions, or XPUB data).
    fn on_message(&self, peer: PeerKey, msg: Message, batch: &mut Vec<Inbound>);
    /// A SUBSCRIBE (`subscribe`) or CANCEL command from `peer`.
    fn on_subscription(
        &self,
        peer: PeerKey,
        subscribe: bool,
        topic: Bytes,
        batch: &mut Vec<Inbound>,
    );
}

/// Where the messages of one peer go.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    /// The socket's inbound queue.
    pub inbound: Arc<InboundQueue>,
    /// Which peer this is, for the socket.
    pub peer: PeerKey,
    /// Which connection of the peer.
    pub connection: u64,
    /// Whether the socket takes the peer's input now.
    pub gate: Arc<InputGate>,
    /// A frame to put in front of every message (ROUTER: the routing id).
    pub prefix: Option<Bytes>,
    /// PUB/XPUB: where the peer's subscriptions go (commands and legacy messages).
    pub subscribers: Option<Arc<dyn SubscriptionTable>>,
}

impl Delivery {
    /// A complete message from the peer: for the application (with the ROUTER
    /// prefix), or for the subscription table of a PUB or XPUB.
    pub(crate) fn message(&self, mut msg: Message, batch: &mut Vec<Inbound>) {
        if let Some(prefix) = &self.prefix {
            msg.push_front(prefix.clone());
        }
        match &self.subscribers {
            Some(subscribers) => subscribers.on_message(self.peer, msg, batch),
            None => batch.push(Inbound {
                connection: self.connection,
                ..Inbound::new(self.peer, msg)
            }),
        }
    }

    /// An arrival (`Joined`) or departure (`Left`) of this connection, for a ROUTER
    /// application: the routing id, in order with the connection's messages. Nothing
    /// for other sockets.
    pub(crate) fn lifecycle(&self, kind: InboundKind) -> Option<Inbound> {
        let routing_id = self.prefix.clone()?;
        Some(Inbound {
            peer: self.peer,
            connection: self.connection,
            msg: Message::from(routing_id),
            kind,
        })
    }

    /// A SUBSCRIBE (`subscribe`) or CANCEL from the peer; ignored by sockets that do
    /// not publish, as libzmq does.
    pub(crate) fn subscription(&self, subscribe: bool, topic: Bytes, batch: &mut Vec<Inbound>) {
        if let Some(subscribers) = &self.subscribers {
            subscribers.on_subscription(self.peer, subscribe, topic, batch);
        }
    }
}
