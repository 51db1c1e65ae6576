//! The broker's side of peering: links to other brokers come up with HELLO, tell
//! each other what they serve, hand requests over and back, and go (see
//! [`peers`](super::peers) for where a request goes, and `docs/peering.md`).
//!
//! What a peer holds of ours stays ours: its request keeps its place in
//! `requests`, in flight on the link, so a link that drops, says BYE or goes
//! silent gives every request it held back to the queue here, and a BOUNCE gives
//! one back. A request from a peer is charged to that link as a client's would be;
//! it is served here or bounced, never passed on.

use std::time::Instant;

use bytes::Bytes;
use zmtp::{printable, Message, PeerId};

use super::peers::{Link, LinkState, MAX_ACCEPTED_PEERS, SERVICES_PER_MESSAGE};
use super::{Broker, Outcome, Outgoing, RequestId};
use crate::proto::{Capacity, Dialect, PeerCommand, ReplyKind, Request};

impl Broker {
    /// A connection to a broker of our peer list passed its handshake: say HELLO.
    /// (Accepted links need nothing: the other side says HELLO first.)
    pub fn handle_dialed(&mut self, link: &PeerId, address: &str, now: Instant) {
        self.handle_connect(link, address, now);
        let expiry = self.expiry(now);
        self.peers.links.insert(
            link.clone(),
            Link::new(
                LinkState::Greeting,
                true,
                expiry,
                now + self.config.heartbeat_interval,
            ),
        );
        self.note_due(expiry.min(now + self.config.heartbeat_interval));
        self.send_hello(link);
    }

    /// Whether `peer` is a link to another broker that said HELLO.
    pub fn is_peer_up(&self, peer: &PeerId) -> bool {
        self.peers.links.get(peer).is_some_and(Link::is_up)
    }

    /// Links to other brokers that said HELLO.
    pub fn peers_up(&self) -> usize {
        self.peers.up().count()
    }

    /// Links this broker dialed that turned out to lead to itself (entries of its
    /// peer list that are its own address).
    pub fn links_to_itself(&self) -> usize {
        self.peers
            .links
            .values()
            .filter(|l| l.dialed && l.state == LinkState::Itself)
            .count()
    }

    fn send_hello(&mut self, link: &PeerId) {
        let hello = PeerCommand::Hello {
            instance: self.config.instance,
            name: Bytes::from(self.config.name.clone()),
        };
        self.send(link, Outgoing::peer("HELLO", b""), hello.encode());
    }

    pub(super) fn on_peer(&mut self, link: &PeerId, command: PeerCommand, now: Instant) {
        let expiry = self.expiry(now);
        if let PeerCommand::Hello { instance, name } = command {
            self.on_hello(link, instance, name, now);
            return;
        }
        let up = match self.peers.links.get_mut(link) {
            Some(l) if l.is_up() => {
                l.expiry = expiry;
                true
            }
            Some(l) if l.state == LinkState::Itself => return,
            _ => false,
        };
        if !up {
            // Speaking before HELLO (or to a broker that restarted): BYE makes the
            // other side start over.
            if !matches!(command, PeerCommand::Bye) {
                self.send(link, Outgoing::peer("BYE", b""), PeerCommand::Bye.encode());
            }
            return;
        }
        match command {
            PeerCommand::Hello { .. } | PeerCommand::Heartbeat => {}
            PeerCommand::Services(list) => {
                let serving = self.peers.offered(link, list, self.config.max_service_name);
                for service in serving {
                    // Remembered as served, so its figures count what peers serve.
                    let (services, peers) = (&self.services, &self.peers);
                    self.history.register(&service, now, |name| {
                        services.get(name).is_some_and(|s| s.workers > 0) || peers.serves(name)
                    });
                    self.dispatch(&service);
                }
            }
            PeerCommand::Request { tag, service, body } => {
                let request = Request {
                    dialect: Dialect::Mdp02,
                    enveloped: false,
                    service,
                    body,
                };
                self.admit(link, request, Some(tag), now);
            }
            PeerCommand::Reply { tag, kind, body } => {
                self.on_peer_reply(link, tag, kind, body, now)
            }
            PeerCommand::Bounce { tag } => {
                if let Some(service) = self.peers.returned(link, tag, true) {
                    self.take_back(tag, &service, now);
                    self.dispatch(&service);
                }
            }
            PeerCommand::Bye => self.restart_link(link, now),
        }
    }

    fn on_hello(&mut self, link: &PeerId, instance: u64, name: Bytes, now: Instant) {
        let expiry = self.expiry(now);
        let next_heartbeat = now + self.config.heartbeat_interval;
        if self.workers.contains_key(link) {
            // A worker does not become a broker.
            return;
        }
        let dialed = match self.peers.links.get(link) {
            Some(l) if l.is_up() => {
                // Said twice: nothing changes.
                return;
            }
            Some(l) => l.dialed,
            None => false,
        };
        if instance == self.config.instance {
            tracing::info!("a peer link leads to this broker itself: ignoring it");
            if !dialed {
                self.send_hello(link);
            }
            if let Some(l) = self.peers.links.get_mut(link) {
                l.state = LinkState::Itself;
            } else {
                self.peers.links.insert(
                    link.clone(),
                    Link::new(LinkState::Itself, dialed, expiry, next_heartbeat),
                );
            }
            return;
        }
        if !dialed && self.peers.accepted_up() >= MAX_ACCEPTED_PEERS {
            self.notice(
                "refusing a peer: too many brokers dialed in",
                link,
                b"",
                now,
            );
            self.send(link, Outgoing::peer("BYE", b""), PeerCommand::Bye.encode());
            return;
        }
        tracing::info!(peer = %printable(&name), instance = format_args!("{instance:016x}"),
            dialed, "peered with a broker");
        self.peers.links.insert(
            link.clone(),
            Link::new(
                LinkState::Up { instance, name },
                dialed,
                expiry,
                next_heartbeat,
            ),
        );
        self.note_due(expiry.min(next_heartbeat));
        self.generation += 1;
        if !dialed {
            self.send_hello(link);
        }
        // What the other links were not told yet goes out first, so that what
        // this one gets is the same as theirs from here on.
        self.advertise();
        let everything: Vec<Capacity> = self
            .services
            .iter()
            .filter(|(_, s)| s.workers > 0)
            .map(|(name, s)| Capacity {
                service: name.clone(),
                workers: clamp(s.workers),
                idle: clamp(s.idle.len()),
            })
            .collect();
        self.peers.resync(&everything);
        self.send_services(link, everything);
    }

    fn send_services(&mut self, link: &PeerId, list: Vec<Capacity>) {
        if list.is_empty() {
            return;
        }
        for chunk in list.chunks(SERVICES_PER_MESSAGE) {
            let msg = PeerCommand::Services(chunk.to_vec()).encode();
            self.send(link, Outgoing::peer("SERVICES", b""), msg);
        }
    }

    /// Tells every link that is up what changed in our own services.
    pub(super) fn advertise(&mut self) {
        let services = &self.services;
        let changes = self.peers.changes(|name| {
            services
                .get(name)
                .map_or((0, 0), |s| (clamp(s.workers), clamp(s.idle.len())))
        });
        if changes.is_empty() {
            return;
        }
        let links: Vec<PeerId> = self.peers.up().cloned().collect();
        for link in links {
            self.send_services(&link, changes.clone());
        }
    }

    fn on_peer_reply(
        &mut self,
        link: &PeerId,
        tag: u64,
        kind: ReplyKind,
        body: Message,
        now: Instant,
    ) {
        let holds = self
            .peers
            .links
            .get(link)
            .is_some_and(|l| l.holding.contains_key(&tag));
        if !holds {
            self.notice(
                "dropping a reply from a peered broker that holds no such request",
                link,
                b"",
                now,
            );
            return;
        }
        let charged = self.requests.get(&tag).is_some_and(|r| r.charged);
        if charged {
            self.forward_reply(tag, kind, body, now);
        }
        if kind == ReplyKind::Final {
            self.peers.returned(link, tag, false);
            let outcome = if charged {
                Outcome::Served
            } else {
                Outcome::Failed
            };
            if let Some(service) = self.finish(tag, outcome, now) {
                self.dispatch(&service);
            }
        }
    }

    /// Tells the broker that sent request `tag` that it is not served here.
    pub(super) fn bounce(&mut self, link: &PeerId, tag: u64) {
        let msg = PeerCommand::Bounce { tag }.encode();
        self.send(link, Outgoing::peer("BOUNCE", b""), msg);
    }

    /// The last local worker of `service` left: the peers' requests waiting for it
    /// go back to them.
    pub(super) fn bounce_waiting(&mut self, service: &Bytes, now: Instant) {
        let links: Vec<PeerId> = self.peers.links.keys().cloned().collect();
        for link in links {
            let gone = match self.services.get_mut(service) {
                Some(s) => s.queue.remove_client(&link),
                None => return,
            };
            self.waiting -= gone.len();
            for id in gone {
                if let Some(tag) = self.requests.get(&id).and_then(|r| r.from_peer) {
                    self.bounce(&link, tag);
                }
                self.finish(id, Outcome::Bounced, now);
            }
        }
    }

    /// Our request `id`, which a peer held, is ours again: back to the front of its
    /// queue with the deadline it had (a request that keeps coming back cannot
    /// live forever), or forgotten when its client left.
    fn take_back(&mut self, id: RequestId, service: &Bytes, now: Instant) {
        self.stats.returned_by_peers += 1;
        let Some(r) = self.requests.get_mut(&id) else {
            return;
        };
        if !r.charged {
            self.finish(id, Outcome::Failed, now);
            return;
        }
        r.worker = None;
        r.gathered = Message::new();
        let gathered = super::Usage {
            requests: 0,
            bytes: std::mem::take(&mut r.gathered_cost),
        };
        r.cost.bytes -= gathered.bytes;
        let (client, deadline) = (r.client.clone(), r.deadline);
        self.ledger.release(&client, gathered);
        self.services
            .entry(service.clone())
            .or_default()
            .queue
            .push_front(&client, id);
        self.waiting += 1;
        self.wait_until(id, deadline);
    }

    /// The requests of `name` still waiting after the local workers took theirs go
    /// to peers that can take them (a peer's own requests stay here).
    pub(super) fn hand_to_peers(&mut self, name: &Bytes) {
        if self.peers.links.is_empty() {
            return;
        }
        loop {
            let Some(service) = self.services.get_mut(name) else {
                return;
            };
            let Some(link) = self.peers.choose(name, service.workers) else {
                return;
            };
            let Some((client, id)) = service.queue.pop() else {
                return;
            };
            let Some(r) = self.requests.get_mut(&id) else {
                self.waiting -= 1;
                continue;
            };
            if r.from_peer.is_some() {
                service.queue.push_front(&client, id);
                return;
            }
            self.waiting -= 1;
            r.worker = Some(link.clone());
            let msg = PeerCommand::Request {
                tag: id,
                service: name.clone(),
                body: r.body.clone(),
            }
            .encode();
            if std::mem::take(&mut r.unserved) {
                let cost = r.cost;
                self.ledger.served(&client, cost);
            }
            self.peers.handed(&link, id, name);
            self.stats.handed_to_peers += 1;
            self.send(&link, Outgoing::peer("REQUEST", name), msg);
        }
    }

    /// A link is gone or silent: what it held of ours comes back, its own requests
    /// are dropped, what it offered is forgotten. The entry stays (the caller
    /// removes it or starts it over).
    pub(super) fn drop_link(&mut self, link: &PeerId, now: Instant) {
        let Some(l) = self.peers.links.get_mut(link) else {
            return;
        };
        if l.is_up() {
            tracing::info!(
                held = l.holding.len(),
                "a peered broker left: its requests come back here"
            );
        }
        let holding: Vec<(RequestId, Bytes)> = l.holding.drain().collect();
        l.offers.clear();
        l.offer_bytes = 0;
        self.generation += 1;
        let mut services = Vec::new();
        for (id, service) in holding {
            self.take_back(id, &service, now);
            services.push(service);
        }
        self.drop_requests_of(link, now);
        for service in services {
            self.dispatch(&service);
        }
    }

    /// Starts a link over: what it held comes back; a link we dialed says HELLO
    /// again, one that dialed us waits for its HELLO.
    pub(super) fn restart_link(&mut self, link: &PeerId, now: Instant) {
        self.drop_link(link, now);
        let dialed = self.peers.links.get(link).is_some_and(|l| l.dialed);
        if dialed {
            if let Some(l) = self.peers.links.get_mut(link) {
                l.state = LinkState::Greeting;
                l.expiry = now + self.config.heartbeat_interval * self.config.liveness;
            }
            self.send_hello(link);
        } else {
            self.peers.links.remove(link);
        }
    }

    /// Heartbeats to the links, and links silent past their expiry started over.
    pub(super) fn tick_links(&mut self, now: Instant) {
        let mut silent = Vec::new();
        for (id, l) in self.peers.links.iter_mut() {
            if l.state == LinkState::Itself {
                l.expiry = now + self.config.heartbeat_interval * self.config.liveness;
                l.next_heartbeat = l.expiry;
                continue;
            }
            if l.expiry <= now {
                silent.push(id.clone());
                continue;
            }
            if l.next_heartbeat <= now {
                l.next_heartbeat = now + self.config.heartbeat_interval;
                self.outgoing
                    .push((id.clone(), PeerCommand::Heartbeat.encode()));
            }
        }
        for link in silent {
            tracing::info!(peer = %printable(link.routing_id()), "a peered broker went silent");
            self.restart_link(&link, now);
        }
    }
}

/// A count as the wire carries it.
fn clamp(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
