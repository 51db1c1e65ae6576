//! The links this broker dials to its peers (`--peer`): one ROUTER socket that
//! connects to every address the peer endpoints stand for, resolved again every
//! few seconds ([`mdp::discovery`]), with the same security as the front end (as
//! a CURVE client with the broker's own key pair).
//!
//! Its connections are handed to the same [`Broker`] state machine as the front
//! end's, under ids kept apart from the front end's: the connection number of a
//! dialed link has its top bit set ([`PeerLinks::to_core`]), which zmtp's
//! per-socket counters never reach.

use std::time::Duration;

use mdp::broker::Broker;
use mdp::discovery::{Brokers, Change};
use tokio::sync::mpsc;
use zmtp::clock::now;
use zmtp::{Error, Message, PeerId, RouterEvent, Socket, SocketOptions, SocketType};

/// The top bit of a dialed link's connection number, as the state machine sees it.
const DIALED: u64 = 1 << 63;

/// The dialed links and the resolution that feeds them.
pub struct PeerLinks {
    socket: Socket,
    changes: mpsc::Receiver<Change>,
    /// How many addresses the peer list stands for, once it was first resolved.
    addresses: Option<usize>,
}

impl PeerLinks {
    /// Starts resolving `peers` (every few seconds) and connecting to what
    /// they stand for, with `options` (the front end's security, as a client).
    pub fn start(peers: Brokers, options: SocketOptions) -> Result<PeerLinks, Error> {
        peers.validate()?;
        let socket = Socket::with_options(SocketType::Router, options)?;
        let changes = mdp::discovery::watch(peers);
        Ok(PeerLinks {
            socket,
            changes,
            addresses: None,
        })
    }

    /// The id the state machine knows a dialed connection by.
    pub fn to_core(peer: PeerId) -> PeerId {
        PeerId::new(peer.routing_id().clone(), peer.connection() | DIALED)
    }

    /// The dialed connection behind a state machine id, if it is one.
    pub fn from_core(peer: &PeerId) -> Option<PeerId> {
        (peer.connection() & DIALED != 0)
            .then(|| PeerId::new(peer.routing_id().clone(), peer.connection() & !DIALED))
    }

    /// The next thing that happens: a resolution changed what to connect, or a
    /// dialed link arrived, spoke or left. Cancel-safe.
    pub async fn next(&mut self) -> Result<Happened, Error> {
        tokio::select! {
            Some(change) = self.changes.recv() => Ok(Happened::Resolved(change)),
            event = self.socket.recv_event() => event.map(Happened::Link),
        }
    }

    /// Applies what happened to the state machine (and the socket).
    pub fn apply(&mut self, broker: &mut Broker, happened: Happened) {
        match happened {
            Happened::Resolved(change) => {
                self.addresses = Some(change.current.len());
                for endpoint in &change.removed {
                    tracing::info!(%endpoint, "peer address gone");
                    let _ = self.socket.disconnect(endpoint);
                }
                for endpoint in &change.added {
                    tracing::info!(%endpoint, "peering with");
                    if let Err(e) = self.socket.connect(endpoint) {
                        tracing::warn!(%endpoint, error = %e, "cannot connect to a peer");
                    }
                }
            }
            Happened::Link(event) => self.handle(broker, event),
        }
    }

    fn handle(&mut self, broker: &mut Broker, event: RouterEvent) {
        match event {
            RouterEvent::Joined { peer, address } => {
                broker.handle_dialed(&Self::to_core(peer), &address, now());
            }
            RouterEvent::Message { peer, message } => {
                broker.handle_message(&Self::to_core(peer), message.frames(), now());
            }
            RouterEvent::Left { peer } => broker.handle_disconnect(&Self::to_core(peer), now()),
            _ => {}
        }
    }

    /// Whether the broker counts as peered (for `/readyz`): the peer list was
    /// resolved, and a link to another broker is up, or the list stands for no
    /// broker but this one (the first of a cluster, or the only one).
    pub fn ready(&self, broker: &Broker) -> bool {
        match self.addresses {
            None => false,
            Some(addresses) => broker.peers_up() > 0 || addresses <= broker.links_to_itself(),
        }
    }

    /// Handles the link events already queued, up to `max`.
    pub fn drain(&mut self, broker: &mut Broker, max: usize) {
        for _ in 0..max {
            match self.socket.try_recv_event() {
                Ok(event) => self.handle(broker, event),
                Err(_) => break,
            }
        }
    }

    /// Sends to a dialed link (`peer` as [`PeerLinks::from_core`] gave it).
    pub fn send_to(&mut self, peer: &PeerId, msg: Message) -> Result<(), Error> {
        self.socket.send_to(peer, msg)
    }

    /// Stops reading a dialed link.
    pub fn pause(&mut self, peer: &PeerId) {
        self.socket.pause(peer);
    }

    /// Reads a dialed link again.
    pub fn resume(&mut self, peer: &PeerId) {
        self.socket.resume(peer);
    }

    /// Closes the links, letting what is queued (BYE) go within a short linger.
    pub async fn close(self) {
        tokio::time::timeout(Duration::from_secs(2), self.socket.close())
            .await
            .ok();
    }
}

/// What [`PeerLinks::next`] saw.
#[derive(Debug)]
pub enum Happened {
    /// A resolution changed the addresses to connect.
    Resolved(Change),
    /// A dialed link's arrival, message or departure.
    Link(RouterEvent),
}
