//! [`Broker::check_invariants`]: what must hold between any two inputs.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use zmtp::{printable, PeerId};

use super::quota::Usage;
use super::{gathered_cost, Broker, MAX_GATHERED_FRAMES, MAX_SERVICE_HISTORY, REQUEST_OVERHEAD};
use crate::proto::is_mmi;

/// A service name, rendered only when an error is written.
struct Name<'a>(&'a [u8]);

impl std::fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&printable(self.0))
    }
}

impl Broker {
    /// Checks the internal invariants, for tests and fuzzing (linear in the broker's
    /// size: not for the hot path):
    /// - every in-flight request belongs to a live worker of its service that holds
    ///   it, and every busy worker's request is in flight on it;
    /// - every waiting request is in its service's queue exactly once, under its
    ///   client, with a deadline entry; the queues' bookkeeping is right;
    /// - a service's idle list holds exactly its registered idle workers, once each,
    ///   and is empty while requests of the service wait;
    /// - each service's worker count is right, no worker serves `mmi.*` or a name
    ///   longer than the maximum, and a service's entry exists exactly while it has
    ///   workers or waiting requests;
    /// - each request costs what its frames and gathered reply say; what the ledger
    ///   charges each connection, address and the total is the sum of its
    ///   requests' costs, within the maximum; a request is charged exactly while its
    ///   client's connection is there;
    /// - replies are gathered only for clients without partial replies, within the
    ///   maximum message size and frame count;
    /// - the broker remembers at most [`MAX_SERVICE_HISTORY`] services' history;
    /// - nothing is due before the time `next_tick` works from.
    ///
    /// `max_queue` limits what is admitted, not what waits: a request given back by a
    /// worker that died goes back to the front of its queue even when that queue is
    /// full.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.history.len() > MAX_SERVICE_HISTORY {
            return Err(format!("{} services remembered", self.history.len()));
        }
        if self.notices.kinds() > super::notices::MAX_KINDS {
            return Err("too many kinds of notices counted".into());
        }
        self.check_requests()?;
        self.check_services()?;
        self.check_due()?;
        let mut expected: BTreeMap<PeerId, (Usage, Usage)> = BTreeMap::new();
        for r in self.requests.values().filter(|r| r.charged) {
            let e = expected.entry(r.client.clone()).or_default();
            add(&mut e.0, r.cost);
            if r.unserved {
                add(&mut e.1, r.cost);
            }
        }
        self.ledger.check(&expected)
    }

    fn check_requests(&self) -> Result<(), String> {
        let names: BTreeSet<&Bytes> = self.services.keys().collect();
        for (id, r) in &self.requests {
            let on_link = r.worker.as_ref().and_then(|w| self.peers.links.get(w));
            if let Some(link) = on_link {
                if link.holding.get(id) != Some(&r.service) {
                    return Err(format!(
                        "request {id} is in flight on a link that does not hold it"
                    ));
                }
                if r.from_peer.is_some() {
                    return Err(format!("request {id} came from a peer and was passed on"));
                }
            } else if !names.contains(&r.service) {
                return Err(format!(
                    "request {id} is for {}, which has no service entry",
                    Name(&r.service)
                ));
            }
            if r.from_peer.is_some() && r.charged && !self.peers.is_link(&r.client) {
                return Err(format!("request {id} is charged to a peer that is gone"));
            }
            if let Some(w) = r.worker.as_ref().filter(|_| on_link.is_none()) {
                match self.workers.get(w) {
                    Some(state) if state.busy == Some(*id) && state.service == r.service => {}
                    _ => {
                        return Err(format!(
                            "request {id} is in flight on a worker that does not hold it"
                        ))
                    }
                }
                if r.unserved {
                    return Err(format!("request {id} is in flight and counted unserved"));
                }
            }
            if gathered_cost(&r.gathered) != r.gathered_cost
                || r.gathered_cost > self.config.max_message_size
                || r.gathered.len() > MAX_GATHERED_FRAMES
            {
                return Err(format!(
                    "request {id} gathered {} frames costing {}, counted {} (limit {})",
                    r.gathered.len(),
                    gathered_cost(&r.gathered),
                    r.gathered_cost,
                    self.config.max_message_size
                ));
            }
            if !r.gathered.is_empty() && (r.worker.is_none() || r.dialect.streams()) {
                return Err(format!(
                    "request {id} gathers a reply while waiting or for a streaming client"
                ));
            }
            let base = REQUEST_OVERHEAD
                + r.service.len()
                + r.body
                    .iter()
                    .map(|f| f.len() + super::FRAME_OVERHEAD)
                    .sum::<usize>();
            if r.cost.requests != 1 || r.cost.bytes != base + r.gathered_cost {
                return Err(format!("request {id} costs {:?}, counted {base}", r.cost));
            }
            let held = self.held_by.get(&r.client).is_some_and(|h| h.contains(id));
            if held != r.charged {
                return Err(format!(
                    "request {id}: charged {} but held by its client {held}",
                    r.charged
                ));
            }
        }
        for (link_id, link) in &self.peers.links {
            let mut per_service: BTreeMap<&Bytes, u32> = BTreeMap::new();
            for (id, service) in &link.holding {
                if self.requests.get(id).and_then(|r| r.worker.as_ref()) != Some(link_id) {
                    return Err(format!(
                        "{link_id:?} holds request {id}, not in flight on it"
                    ));
                }
                *per_service.entry(service).or_default() += 1;
            }
            let offer_bytes: usize = link
                .offers
                .keys()
                .map(|s| s.len() + super::peers::OFFER_OVERHEAD)
                .sum();
            if offer_bytes != link.offer_bytes || offer_bytes > super::peers::MAX_PEER_OFFER_BYTES {
                return Err(format!(
                    "{link_id:?} offers cost {offer_bytes}, counted {}",
                    link.offer_bytes
                ));
            }
            for (service, offer) in &link.offers {
                let holding = per_service.get(service).copied().unwrap_or(0);
                if offer.holding != holding {
                    return Err(format!(
                        "{link_id:?} counts {} requests of {} held, holds {holding}",
                        offer.holding,
                        Name(service)
                    ));
                }
            }
        }
        for (client, ids) in &self.held_by {
            if ids.is_empty() && !self.ledger.knows(client) {
                return Err(format!("{client:?} is kept holding nothing after leaving"));
            }
            if ids.is_empty() && ids.capacity() > super::KEPT_HELD_CAPACITY {
                return Err(format!("{client:?} keeps a large empty set"));
            }
            if ids
                .iter()
                .any(|id| self.requests.get(id).map(|r| &r.client) != Some(client))
            {
                return Err(format!("{client:?} holds a request that is not its own"));
            }
        }
        Ok(())
    }

    fn check_services(&self) -> Result<(), String> {
        // Per service: registered workers, idle ones among them.
        let mut registered: BTreeMap<&Bytes, (usize, usize)> = BTreeMap::new();
        for (id, w) in &self.workers {
            if is_mmi(&w.service) || w.service.len() > self.config.max_service_name {
                return Err(format!("worker {id:?} serves {}", Name(&w.service)));
            }
            let counts = registered.entry(&w.service).or_default();
            counts.0 += 1;
            if let Some(r) = w.busy {
                if self.requests.get(&r).and_then(|r| r.worker.as_ref()) != Some(id) {
                    return Err(format!(
                        "worker {id:?} holds a request that is not in flight on it"
                    ));
                }
            } else {
                counts.1 += 1;
            }
        }
        let mut waiting_total = 0;
        for (name, s) in &self.services {
            let service = Name(name);
            let (workers, idle_workers) = registered.get(name).copied().unwrap_or_default();
            if s.workers != workers {
                return Err(format!(
                    "{service} counts {} workers, {workers} registered",
                    s.workers
                ));
            }
            if s.is_unused() {
                return Err(format!("{service} is kept with no workers and no requests"));
            }
            s.queue.check().map_err(|e| format!("{service}: {e}"))?;
            let mut waiting = BTreeSet::new();
            for (client, id) in s.queue.iter() {
                let Some(r) = self.requests.get(&id).filter(|r| r.worker.is_none()) else {
                    return Err(format!(
                        "{service} queues request {id}, which is not waiting"
                    ));
                };
                if r.service != *name || r.client != *client {
                    return Err(format!("{service} queues request {id} under another name"));
                }
                if !waiting.insert(id) {
                    return Err(format!("{service} queues request {id} twice"));
                }
            }
            waiting_total += waiting.len();
            let mut idle = BTreeSet::new();
            for w in &s.idle {
                match self.workers.get(w) {
                    Some(state) if state.busy.is_none() && state.service == *name => {}
                    _ => {
                        return Err(format!(
                            "{service} lists {w:?} as idle, which is not an idle worker of it"
                        ))
                    }
                }
                if !idle.insert(w) {
                    return Err(format!("{service} lists {w:?} as idle twice"));
                }
            }
            if idle.len() != idle_workers {
                return Err(format!(
                    "{service} lists {} idle workers of {idle_workers}",
                    idle.len()
                ));
            }
            if !s.queue.is_empty() && idle_workers > 0 {
                return Err(format!(
                    "{service} has requests waiting beside {idle_workers} idle workers"
                ));
            }
        }
        if let Some(name) = registered.keys().find(|n| !self.services.contains_key(**n)) {
            return Err(format!("{} has workers and no service entry", Name(name)));
        }
        let unassigned = self
            .requests
            .values()
            .filter(|r| r.worker.is_none())
            .count();
        if waiting_total != unassigned || self.waiting != unassigned {
            return Err(format!(
                "{waiting_total} requests queued, {} counted waiting, {unassigned} unassigned",
                self.waiting
            ));
        }
        Ok(())
    }

    fn check_due(&self) -> Result<(), String> {
        // A scan per waiting request: the fuzzer checks this after every step, on a
        // handful of entries, where building a set each time cost more.
        for (id, r) in self.requests.iter().filter(|(_, r)| r.worker.is_none()) {
            if !self.deadlines.iter().any(|e| e.0 == (r.deadline, *id)) {
                return Err(format!("waiting request {id} has no deadline entry"));
            }
        }
        let heartbeats = self
            .workers
            .values()
            .map(|w| w.next_heartbeat.min(w.expiry));
        let deadlines = self
            .requests
            .values()
            .filter(|r| r.worker.is_none())
            .map(|r| r.deadline);
        if let Some(first) = heartbeats.chain(deadlines).min() {
            if !self.due.is_some_and(|due| due <= first) {
                return Err(format!(
                    "something is due at {first:?}, before the next tick's {:?}",
                    self.due
                ));
            }
        }
        Ok(())
    }
}

fn add(sum: &mut Usage, cost: Usage) {
    sum.requests += cost.requests;
    sum.bytes += cost.bytes;
}
