//! [`Core`]: what a socket shares with its background tasks (listeners, connecting
//! endpoints, connections).

use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::pair::PairSlot;
use super::peers::Peers;
use super::Subscribers;
use crate::inbound::InboundQueue;
use crate::monitor::EventSink;
use crate::own_subscriptions::Subscriptions;
use crate::proto::SocketType;

/// What the socket's background tasks share with it.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) socket_type: SocketType,
    pub(crate) peers: Peers,
    pub(crate) inbound: Arc<InboundQueue>,
    pub(crate) cancel: CancellationToken,
    pub(crate) tasks: TaskTracker,
    pub(crate) events: EventSink,
    /// PAIR: which connection is the one peer.
    pub(crate) pair: PairSlot,
    /// SUB/XSUB: our subscriptions (counted), resent to every new connection.
    pub(crate) subscriptions: Mutex<Subscriptions>,
    /// PUB/XPUB: what each peer subscribed to.
    pub(crate) subscribers: Option<Arc<Subscribers>>,
}

impl Core {
    pub(crate) fn subscriptions(&self) -> MutexGuard<'_, Subscriptions> {
        // Subscriptions updates are single map operations: a poisoned lock is usable.
        self.subscriptions.lock().unwrap_or_else(|e| e.into_inner())
    }
}
