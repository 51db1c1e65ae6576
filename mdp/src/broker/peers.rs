//! The broker's peers: the links to other brokers, what each says it serves, and
//! which link a request for a service should go to (see `docs/peering.md` and
//! [`crate::proto::PeerCommand`]).
//!
//! The rules:
//! - local workers first: a request goes to a peer only when no local worker is
//!   idle;
//! - while the service has local workers (all busy), a request goes to a peer only
//!   if that peer said it has idle workers, counting what was sent to it since it
//!   said so; without local workers, each peer gets up to twice its workers'
//!   number of requests at a time (so its workers never wait for the next one while
//!   the rest wait here, where a dead peer cannot take them along);
//! - a peer that bounced a request of a service gets no more of it until it tells
//!   its counts again, so a request never ping-pongs;
//! - a request that came from a peer is never passed on (one hop at most).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use bytes::Bytes;
use zmtp::{IdHashMap, PeerId};

use super::fair_queue::RequestId;
use super::snapshot::PeerSummary;
use crate::proto::Capacity;

/// Most services remembered per peer; more in its SERVICES are ignored.
pub const MAX_PEER_SERVICES: usize = 10_000;

/// Most bytes of service names (plus 64 bytes each) remembered per
/// peer: what one link can make this broker hold.
pub const MAX_PEER_OFFER_BYTES: usize = 1 << 20;

/// What one remembered service of a peer costs beyond its name.
pub const OFFER_OVERHEAD: usize = 64;

/// Most links that dialed us and said HELLO at once (links we dial are bounded
/// by our own peer list); more get BYE. With [`MAX_PEER_OFFER_BYTES`], what
/// claimed brokers can make this one hold is at most 64 MiB.
pub const MAX_ACCEPTED_PEERS: usize = 64;

/// Most workers a peer is believed to have for one service: what it claims past
/// this does not widen its window (a peer claiming millions would draw every
/// request held here).
pub const MAX_OFFERED_WORKERS: u32 = 4096;

/// Most entries in one SERVICES message (bigger updates are split).
pub(super) const SERVICES_PER_MESSAGE: usize = 1_000;

/// Where a link stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LinkState {
    /// We dialed it and sent HELLO; no answer yet.
    Greeting,
    /// A broker that said HELLO.
    Up {
        /// Its process's random instance.
        instance: u64,
        /// Its name, for logs and MMI.
        name: Bytes,
    },
    /// Ourselves (our own address among the peers): ignored.
    Itself,
}

/// What a peer said it serves, and what we sent it since.
#[derive(Debug, Clone, Default)]
pub(super) struct Offer {
    pub(super) workers: u32,
    pub(super) idle: u32,
    /// Requests sent since it last told its counts.
    pub(super) sent_since: u32,
    /// Requests of ours it holds now.
    pub(super) holding: u32,
    /// It bounced one since it last told its counts: send no more.
    pub(super) bounced: bool,
}

impl Offer {
    /// Idle workers it has for us, as far as we know.
    fn idle_left(&self) -> u32 {
        self.idle.saturating_sub(self.sent_since)
    }
}

/// One link to another broker.
#[derive(Debug)]
pub(super) struct Link {
    pub(super) state: LinkState,
    /// We connected to it (an entry of our peer list); else it connected to us.
    pub(super) dialed: bool,
    /// Silent past this: gone.
    pub(super) expiry: Instant,
    pub(super) next_heartbeat: Instant,
    /// What it serves with its own workers.
    pub(super) offers: HashMap<Bytes, Offer>,
    /// Our requests it holds, with their service.
    pub(super) holding: IdHashMap<RequestId, Bytes>,
    /// What its offers cost (names plus [`OFFER_OVERHEAD`] each).
    pub(super) offer_bytes: usize,
}

impl Link {
    /// A link with nothing offered and nothing held.
    pub(super) fn new(
        state: LinkState,
        dialed: bool,
        expiry: Instant,
        next_heartbeat: Instant,
    ) -> Link {
        Link {
            state,
            dialed,
            expiry,
            next_heartbeat,
            offers: HashMap::new(),
            holding: IdHashMap::default(),
            offer_bytes: 0,
        }
    }

    pub(super) fn is_up(&self) -> bool {
        matches!(self.state, LinkState::Up { .. })
    }
}

/// The links, and what we last told them about our own services.
#[derive(Debug, Default)]
pub(super) struct Peers {
    pub(super) links: IdHashMap<PeerId, Link>,
    /// Each of our services' (workers, idle) as we last told our peers; services
    /// without workers are not kept.
    told: BTreeMap<Bytes, (u32, u32)>,
    /// Services whose counts may have changed since we last told them.
    changed: HashSet<Bytes>,
}

impl Peers {
    /// Whether `peer` is a link (in any state).
    pub(super) fn is_link(&self, peer: &PeerId) -> bool {
        self.links.contains_key(peer)
    }

    /// Links that dialed us and said HELLO.
    pub(super) fn accepted_up(&self) -> usize {
        self.links
            .values()
            .filter(|l| l.is_up() && !l.dialed)
            .count()
    }

    /// The links that are up.
    pub(super) fn up(&self) -> impl Iterator<Item = &PeerId> {
        self.links
            .iter()
            .filter(|(_, l)| l.is_up())
            .map(|(id, _)| id)
    }

    /// Notes that `service`'s local counts may have changed.
    pub(super) fn touch(&mut self, service: &Bytes) {
        if !self.links.is_empty() {
            self.changed.insert(service.clone());
        }
    }

    /// What changed since we last told, given each service's local (workers, idle);
    /// remembers it as told.
    pub(super) fn changes(&mut self, counts: impl Fn(&Bytes) -> (u32, u32)) -> Vec<Capacity> {
        let mut list = Vec::new();
        for service in self.changed.drain() {
            let now = counts(&service);
            let before = self.told.get(&service).copied().unwrap_or((0, 0));
            if now == before {
                continue;
            }
            if now.0 == 0 {
                self.told.remove(&service);
            } else {
                self.told.insert(service.clone(), now);
            }
            list.push(Capacity {
                service,
                workers: now.0,
                idle: now.1,
            });
        }
        list
    }

    /// Everything we serve now, as just told to a new link: what is told from
    /// here on are changes to it. (While there were no links, changes were not
    /// tracked.)
    pub(super) fn resync(&mut self, everything: &[Capacity]) {
        self.told = everything
            .iter()
            .map(|c| (c.service.clone(), (c.workers, c.idle)))
            .collect();
    }

    /// A peer told its counts. Returns the services that it now serves (where
    /// waiting requests may go). Names longer than `max_name` and services past
    /// [`MAX_PEER_SERVICES`] are ignored.
    pub(super) fn offered(
        &mut self,
        link: &PeerId,
        list: Vec<Capacity>,
        max_name: usize,
    ) -> Vec<Bytes> {
        let Some(l) = self.links.get_mut(link) else {
            return Vec::new();
        };
        let mut serving = Vec::new();
        for c in list {
            if c.service.len() > max_name {
                continue;
            }
            if c.workers == 0 {
                if let Some(offer) = l.offers.get_mut(&c.service) {
                    // Keep the entry while it holds requests of ours (their
                    // count matters when they come back).
                    offer.workers = 0;
                    offer.idle = 0;
                    if offer.holding == 0 {
                        l.offers.remove(&c.service);
                        l.offer_bytes -= c.service.len() + OFFER_OVERHEAD;
                    }
                }
                continue;
            }
            if !l.offers.contains_key(&c.service) {
                let cost = c.service.len() + OFFER_OVERHEAD;
                if l.offers.len() >= MAX_PEER_SERVICES
                    || l.offer_bytes + cost > MAX_PEER_OFFER_BYTES
                {
                    continue;
                }
                l.offer_bytes += cost;
            }
            let offer = l.offers.entry(c.service.clone()).or_default();
            offer.workers = c.workers.min(MAX_OFFERED_WORKERS);
            offer.idle = c.idle.min(offer.workers);
            offer.sent_since = 0;
            offer.bounced = false;
            serving.push(c.service);
        }
        serving
    }

    /// The link a request of `service` should go to now, if any (see the module
    /// rules); `local_workers`: the service's registered local workers.
    pub(super) fn choose(&self, service: &Bytes, local_workers: usize) -> Option<PeerId> {
        let mut best: Option<(&PeerId, &Offer)> = None;
        for (id, link) in &self.links {
            if !link.is_up() {
                continue;
            }
            let Some(offer) = link.offers.get(service) else {
                continue;
            };
            if offer.bounced || offer.workers == 0 {
                continue;
            }
            let eligible = offer.idle_left() > 0
                || (local_workers == 0 && offer.holding < offer.workers.saturating_mul(2));
            if !eligible {
                continue;
            }
            best = match best {
                None => Some((id, offer)),
                Some((_, b)) if better(offer, b) => Some((id, offer)),
                keep => keep,
            };
        }
        best.map(|(id, _)| id.clone())
    }

    /// Request `id` of `service` went to `link`.
    pub(super) fn handed(&mut self, link: &PeerId, id: RequestId, service: &Bytes) {
        if let Some(l) = self.links.get_mut(link) {
            l.holding.insert(id, service.clone());
            if let Some(offer) = l.offers.get_mut(service) {
                offer.sent_since += 1;
                offer.holding += 1;
            }
        }
    }

    /// Request `id` came back from `link` (answered, or bounced when `bounced`).
    /// Returns its service, or `None` when the link does not hold it.
    pub(super) fn returned(
        &mut self,
        link: &PeerId,
        id: RequestId,
        bounced: bool,
    ) -> Option<Bytes> {
        let l = self.links.get_mut(link)?;
        let service = l.holding.remove(&id)?;
        if let Some(offer) = l.offers.get_mut(&service) {
            offer.holding = offer.holding.saturating_sub(1);
            if bounced {
                offer.bounced = true;
            }
            if offer.workers == 0 && offer.holding == 0 {
                l.offers.remove(&service);
                l.offer_bytes -= service.len() + OFFER_OVERHEAD;
            }
        }
        Some(service)
    }

    /// Workers of peers that are up, per service (a broker linked twice, once
    /// each way, counted once).
    pub(super) fn workers_by_service(&self) -> HashMap<&Bytes, u64> {
        let mut per_broker: HashMap<(u64, &Bytes), u64> = HashMap::new();
        for link in self.links.values() {
            let LinkState::Up { instance, .. } = link.state else {
                continue;
            };
            for (service, offer) in &link.offers {
                let seen = per_broker.entry((instance, service)).or_default();
                *seen = (*seen).max(u64::from(offer.workers));
            }
        }
        let mut workers: HashMap<&Bytes, u64> = HashMap::new();
        for ((_, service), n) in per_broker {
            *workers.entry(service).or_default() += n;
        }
        workers
    }

    /// The names of the peers that are up and serve `service`, sorted, each once.
    pub(super) fn serving(&self, service: &[u8]) -> Vec<String> {
        let mut names: Vec<String> = self
            .links
            .values()
            .filter(|l| l.offers.get(service).is_some_and(|o| o.workers > 0))
            .filter_map(|l| match &l.state {
                LinkState::Up { name, .. } => Some(zmtp::printable(name).to_string()),
                _ => None,
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The links that are up, for `mmi.stats`, by name.
    pub(super) fn summaries(&self) -> Vec<PeerSummary> {
        let mut list: Vec<PeerSummary> = self
            .links
            .values()
            .filter_map(|l| {
                let LinkState::Up { instance, name } = &l.state else {
                    return None;
                };
                let offered = l.offers.values().filter(|o| o.workers > 0);
                Some(PeerSummary {
                    name: zmtp::printable(name).to_string(),
                    instance: format!("{instance:016x}"),
                    dialed: l.dialed,
                    services: offered.clone().count() as u64,
                    workers: offered.clone().map(|o| u64::from(o.workers)).sum(),
                    idle: offered.map(|o| u64::from(o.idle)).sum(),
                    holding: l.holding.len() as u64,
                })
            })
            .collect();
        list.sort_by(|a, b| (&a.name, a.dialed).cmp(&(&b.name, b.dialed)));
        list
    }

    /// Whether some peer that is up serves `service`.
    pub(super) fn serves(&self, service: &[u8]) -> bool {
        self.links
            .values()
            .any(|l| l.is_up() && l.offers.get(service).is_some_and(|o| o.workers > 0))
    }

    /// The earliest heartbeat or expiry of any link.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.links
            .values()
            .map(|l| l.next_heartbeat.min(l.expiry))
            .min()
    }
}

/// Whether offer `a` is a better place for a request than `b`: more idle workers
/// left, then fewer requests held per worker.
fn better(a: &Offer, b: &Offer) -> bool {
    let (ia, ib) = (a.idle_left(), b.idle_left());
    if ia != ib {
        return ia > ib;
    }
    // a.holding / a.workers < b.holding / b.workers, without division.
    u64::from(a.holding) * u64::from(b.workers) < u64::from(b.holding) * u64::from(a.workers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(n: u64) -> PeerId {
        PeerId::new(vec![n as u8], n)
    }

    fn peers_with(links: &[u64], now: Instant) -> Peers {
        let mut peers = Peers::default();
        for &n in links {
            peers.links.insert(
                link(n),
                Link::new(
                    LinkState::Up {
                        instance: n,
                        name: Bytes::new(),
                    },
                    true,
                    now,
                    now,
                ),
            );
        }
        peers
    }

    fn cap(service: &'static [u8], workers: u32, idle: u32) -> Capacity {
        Capacity {
            service: Bytes::from_static(service),
            workers,
            idle,
        }
    }

    const ECHO: Bytes = Bytes::from_static(b"echo");

    #[test]
    fn busy_local_workers_use_a_peer_only_for_its_idle_workers() {
        let mut peers = peers_with(&[1], Instant::now());
        peers.offered(&link(1), vec![cap(b"echo", 4, 2)], 255);
        assert_eq!(peers.choose(&ECHO, 3), Some(link(1)));
        peers.handed(&link(1), 10, &ECHO);
        assert_eq!(peers.choose(&ECHO, 3), Some(link(1)));
        peers.handed(&link(1), 11, &ECHO);
        assert_eq!(peers.choose(&ECHO, 3), None, "both idle workers are taken");
        // Its next counts start the tally again.
        peers.offered(&link(1), vec![cap(b"echo", 4, 1)], 255);
        assert_eq!(peers.choose(&ECHO, 3), Some(link(1)));
    }

    #[test]
    fn without_local_workers_a_peer_holds_twice_its_workers() {
        let mut peers = peers_with(&[1], Instant::now());
        peers.offered(&link(1), vec![cap(b"echo", 2, 0)], 255);
        for id in 0..4 {
            assert_eq!(peers.choose(&ECHO, 0), Some(link(1)), "request {id}");
            peers.handed(&link(1), id, &ECHO);
        }
        assert_eq!(peers.choose(&ECHO, 0), None);
        assert_eq!(peers.returned(&link(1), 0, false), Some(ECHO));
        assert_eq!(peers.choose(&ECHO, 0), Some(link(1)));
    }

    #[test]
    fn the_peer_with_more_idle_workers_then_less_load_is_chosen() {
        let mut peers = peers_with(&[1, 2], Instant::now());
        peers.offered(&link(1), vec![cap(b"echo", 4, 1)], 255);
        peers.offered(&link(2), vec![cap(b"echo", 4, 3)], 255);
        assert_eq!(peers.choose(&ECHO, 0), Some(link(2)));
        peers.offered(&link(2), vec![cap(b"echo", 1, 0)], 255);
        peers.offered(&link(1), vec![cap(b"echo", 4, 0)], 255);
        peers.handed(&link(1), 1, &ECHO);
        // 1 held of 4 beats 0 held of 1? No: 1/4 > 0/1.
        assert_eq!(peers.choose(&ECHO, 0), Some(link(2)));
        peers.handed(&link(2), 2, &ECHO);
        // 1/4 < 1/1.
        assert_eq!(peers.choose(&ECHO, 0), Some(link(1)));
    }

    #[test]
    fn a_peer_that_bounced_gets_no_more_until_it_tells_again() {
        let mut peers = peers_with(&[1], Instant::now());
        peers.offered(&link(1), vec![cap(b"echo", 1, 1)], 255);
        peers.handed(&link(1), 7, &ECHO);
        assert_eq!(peers.returned(&link(1), 7, true), Some(ECHO));
        assert_eq!(peers.choose(&ECHO, 0), None);
        assert_eq!(peers.returned(&link(1), 7, true), None, "only once");
        peers.offered(&link(1), vec![cap(b"echo", 1, 1)], 255);
        assert_eq!(peers.choose(&ECHO, 0), Some(link(1)));
    }

    #[test]
    fn links_that_are_not_up_and_services_without_workers_are_never_chosen() {
        let mut peers = peers_with(&[1], Instant::now());
        peers.offered(&link(1), vec![cap(b"echo", 1, 1)], 255);
        peers.offered(&link(1), vec![cap(b"echo", 0, 0)], 255);
        assert_eq!(peers.choose(&ECHO, 0), None);
        assert!(!peers.serves(b"echo"));
        peers.offered(&link(1), vec![cap(b"echo", 1, 1)], 255);
        assert!(peers.serves(b"echo"));
        peers.links.get_mut(&link(1)).unwrap().state = LinkState::Itself; // ok: test code
        assert_eq!(peers.choose(&ECHO, 0), None);
        assert!(!peers.serves(b"echo"));
    }

    #[test]
    fn a_peer_claiming_millions_of_workers_gets_a_bounded_window() {
        let mut peers = peers_with(&[1], Instant::now());
        peers.offered(&link(1), vec![cap(b"echo", u32::MAX, u32::MAX)], 255);
        let offer = &peers.links[&link(1)].offers[&ECHO];
        assert_eq!(
            (offer.workers, offer.idle),
            (MAX_OFFERED_WORKERS, MAX_OFFERED_WORKERS)
        );
    }

    #[test]
    fn offers_are_bounded() {
        let mut peers = peers_with(&[1], Instant::now());
        let list: Vec<Capacity> = (0..MAX_PEER_SERVICES + 10)
            .map(|i| Capacity {
                service: Bytes::from(format!("s{i}")),
                workers: 1,
                idle: 1,
            })
            .collect();
        peers.offered(&link(1), list, 255);
        peers.offered(&link(1), vec![cap(&[b'x'; 300], 1, 1)], 255);
        let offers = &peers.links[&link(1)].offers;
        assert_eq!(offers.len(), MAX_PEER_SERVICES);
        assert!(!offers.contains_key(&[b'x'; 300][..]));
        // In bytes too: long names fill a link's budget before its count.
        let mut peers = peers_with(&[2], Instant::now());
        let long: Vec<Capacity> = (0..MAX_PEER_SERVICES)
            .map(|i| Capacity {
                service: Bytes::from(format!("{i:0>250}")),
                workers: 1,
                idle: 1,
            })
            .collect();
        peers.offered(&link(2), long, 255);
        let l = &peers.links[&link(2)];
        assert!(l.offer_bytes <= MAX_PEER_OFFER_BYTES);
        assert_eq!(
            l.offers.len(),
            MAX_PEER_OFFER_BYTES / (250 + OFFER_OVERHEAD)
        );
        // Withdrawn offers give their bytes back.
        let gone: Vec<Capacity> = (0..MAX_PEER_SERVICES)
            .map(|i| Capacity {
                service: Bytes::from(format!("{i:0>250}")),
                workers: 0,
                idle: 0,
            })
            .collect();
        peers.offered(&link(2), gone, 255);
        assert_eq!(peers.links[&link(2)].offer_bytes, 0);
    }

    #[test]
    fn a_broker_linked_both_ways_counts_its_workers_once() {
        let mut peers = peers_with(&[1, 2], Instant::now());
        // Links 1 and 2 lead to the same broker; a third broker on link 3.
        let state = &mut peers.links.get_mut(&link(2)).unwrap().state; // ok: test code
        *state = LinkState::Up {
            instance: 1,
            name: Bytes::new(),
        };
        let mut third = peers_with(&[3], Instant::now());
        peers.links.extend(third.links.drain());
        peers.offered(&link(1), vec![cap(b"echo", 2, 0)], 255);
        peers.offered(&link(2), vec![cap(b"echo", 2, 0)], 255);
        peers.offered(&link(3), vec![cap(b"echo", 3, 0)], 255);
        assert_eq!(peers.workers_by_service()[&ECHO], 5);
    }

    #[test]
    fn only_changes_are_told() {
        let mut peers = peers_with(&[1], Instant::now());
        let mut counts: HashMap<Bytes, (u32, u32)> = HashMap::new();
        counts.insert(ECHO, (2, 1));
        peers.touch(&ECHO);
        let told = peers.changes(|s| counts.get(s).copied().unwrap_or((0, 0)));
        assert_eq!(told, vec![cap(b"echo", 2, 1)]);
        peers.touch(&ECHO);
        assert!(peers
            .changes(|s| counts.get(s).copied().unwrap_or((0, 0)))
            .is_empty());
        counts.clear();
        peers.touch(&ECHO);
        let told = peers.changes(|s| counts.get(s).copied().unwrap_or((0, 0)));
        assert_eq!(told, vec![cap(b"echo", 0, 0)]);
        // After a resync, changes are against what it said.
        peers.resync(&[cap(b"echo", 1, 1)]);
        peers.touch(&ECHO);
        let told = peers.changes(|s| counts.get(s).copied().unwrap_or((0, 0)));
        assert_eq!(told, vec![cap(b"echo", 0, 0)]);
    }
}
