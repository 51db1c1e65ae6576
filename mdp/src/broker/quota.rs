//! What the broker holds for whom, and when a client must be slowed down.
//!
//! Every request the broker holds (waiting for a worker, or in flight) is charged to
//! the connection that sent it, to that connection's source address and to the
//! broker's total, in requests and in bytes ([`Usage`]). The `Ledger` keeps those
//! sums and decides, at each charge and release:
//!
//! - **pause**: a connection that sends while its own usage, its address's or the
//!   total is at its quota is paused ([`Flow::Pause`]): the broker stops reading it,
//!   TCP pushes back, and the client's sends wait at its own high-water mark. The
//!   broker goes on serving and answering what it holds, so the usage falls and the
//!   connection is resumed ([`Flow::Resume`]) once all three are below three
//!   quarters of their quotas. A client that sends before it reads is slowed, not
//!   dropped.
//! - **refuse**: what a paused connection had already sent before the pause took
//!   effect is still taken, up to twice the connection's and the address's quotas
//!   and up to the total's maximum; beyond those hard bounds a request is refused
//!   (dropped and counted). Total usage never exceeds the maximum.
//! - **unserved**: requests for a service that has no worker, and never had one the
//!   broker remembers, may use only a share of the broker (`unserved_total`, and
//!   `unserved_per_address` per address), so requests nobody can serve never take
//!   the room of those somebody can. Over that share they are refused, not paused
//!   (no worker will drain them). A service whose worker is restarting is not
//!   unserved.
//!
//! One connection and one address can never fill the total: each has a quota below
//! it. What a request costs is its frames' bytes plus a fixed overhead per request
//! and per frame (the broker's bookkeeping), so a flood of empty frames is not free.

use std::collections::{BTreeMap, HashMap};

use zmtp::{IdHashMap, IdHashSet, PeerId};

/// Where a connection comes from, for per-address quotas: zmtp's per-address
/// buckets (an IPv4 address, an IPv6 /64, or the local machine for `ipc://` and
/// `inproc://`), so the broker's quotas and the socket's connection caps count the
/// same hosts.
pub use zmtp::defense::source::Source;

/// Requests and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Requests.
    pub requests: usize,
    /// Bytes (frames plus overheads).
    pub bytes: usize,
}

impl Usage {
    /// One request of `bytes`.
    pub fn one(bytes: usize) -> Usage {
        Usage { requests: 1, bytes }
    }

    fn add(&mut self, other: Usage) {
        self.requests = self.requests.saturating_add(other.requests);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }

    fn sub(&mut self, other: Usage) {
        self.requests = self.requests.saturating_sub(other.requests);
        self.bytes = self.bytes.saturating_sub(other.bytes);
    }

    fn plus(self, other: Usage) -> Usage {
        let mut sum = self;
        sum.add(other);
        sum
    }

    /// At or over `limit` in either dimension.
    fn reaches(self, limit: Usage) -> bool {
        self.requests >= limit.requests || self.bytes >= limit.bytes
    }

    /// Over `limit` in either dimension.
    fn exceeds(self, limit: Usage) -> bool {
        self.requests > limit.requests || self.bytes > limit.bytes
    }

    fn scaled(self, numerator: usize, denominator: usize) -> Usage {
        let scale = |n: usize| n.saturating_mul(numerator) / denominator.max(1);
        Usage {
            requests: scale(self.requests),
            bytes: scale(self.bytes),
        }
    }
}

/// The broker's quotas; see the module documentation for what each one does. Start
/// from [`Quotas::default`] and change what you need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quotas {
    /// Most the broker holds in all, never exceeded; senders are paused from three
    /// quarters of it.
    pub total: Usage,
    /// One connection is paused at this; what it sent meanwhile is taken up to twice
    /// this.
    pub per_connection: Usage,
    /// One source address (all its connections) is paused at this; taken up to
    /// twice this.
    pub per_address: Usage,
    /// Most held for services that had no worker when the request came.
    pub unserved_total: Usage,
    /// The same, per source address.
    pub unserved_per_address: Usage,
}

impl Quotas {
    /// Most the broker holds in all.
    pub fn total(mut self, total: Usage) -> Quotas {
        self.total = total;
        self
    }

    /// What one connection may hold before it is paused.
    pub fn per_connection(mut self, per_connection: Usage) -> Quotas {
        self.per_connection = per_connection;
        self
    }

    /// What one source address may hold before it is paused.
    pub fn per_address(mut self, per_address: Usage) -> Quotas {
        self.per_address = per_address;
        self
    }

    /// Most held for services that had no worker when the request came.
    pub fn unserved_total(mut self, unserved_total: Usage) -> Quotas {
        self.unserved_total = unserved_total;
        self
    }

    /// The same, per source address.
    pub fn unserved_per_address(mut self, unserved_per_address: Usage) -> Quotas {
        self.unserved_per_address = unserved_per_address;
        self
    }
}

impl Default for Quotas {
    /// 1 000 000 requests and 512 MiB in all; 100 000 requests and 32 MiB per
    /// connection; 200 000 and 64 MiB per address; 100 000 and 64 MiB for
    /// services without workers, 20 000 and 16 MiB of those per address.
    fn default() -> Quotas {
        Quotas {
            total: Usage {
                requests: 1_000_000,
                bytes: 512 << 20,
            },
            per_connection: Usage {
                requests: 100_000,
                bytes: 32 << 20,
            },
            per_address: Usage {
                requests: 200_000,
                bytes: 64 << 20,
            },
            unserved_total: Usage {
                requests: 100_000,
                bytes: 64 << 20,
            },
            unserved_per_address: Usage {
                requests: 20_000,
                bytes: 16 << 20,
            },
        }
    }
}

/// A change to a connection's input, for the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// Stop reading this connection.
    Pause(PeerId),
    /// Read it again.
    Resume(PeerId),
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its connection holds twice its quota.
    Connection,
    /// Its address holds twice its quota.
    Address,
    /// The broker holds its maximum.
    Total,
    /// The share for services without workers is used up (its address's or all).
    Unserved,
}

impl Refusal {
    /// Why, in words, for logs.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Connection => "its connection holds twice its quota",
            Refusal::Address => "its address holds twice its quota",
            Refusal::Total => "the broker holds its maximum",
            Refusal::Unserved => "the share for services without workers is used up",
        }
    }
}

#[derive(Debug)]
struct Connection {
    /// Its address's record (which knows the address).
    address: AddressId,
    usage: Usage,
    paused: bool,
}

/// An address's record's number: ours, handed out in turn, so its map hashes it
/// in a multiply. The map keyed by the address itself (a key a peer picks, within
/// its means) keeps SipHash and is looked up only as connections come and go, not
/// several times for every request.
type AddressId = u64;

#[derive(Debug)]
struct Address {
    source: Source,
    usage: Usage,
    unserved: Usage,
    connections: usize,
    /// Its paused connections.
    paused: IdHashSet<PeerId>,
}

impl Address {
    fn new(source: Source) -> Address {
        Address {
            source,
            usage: Usage::default(),
            unserved: Usage::default(),
            connections: 0,
            paused: IdHashSet::default(),
        }
    }
}

/// Usage per connection, per address and in all, and the pause decisions.
#[derive(Debug)]
pub(crate) struct Ledger {
    quotas: Quotas,
    connections: IdHashMap<PeerId, Connection>,
    /// Each address with connections, and its record's number.
    address_ids: HashMap<Source, AddressId>,
    addresses: IdHashMap<AddressId, Address>,
    next_address: AddressId,
    total: Usage,
    unserved: Usage,
    /// Every paused connection.
    paused: IdHashSet<PeerId>,
    flow: Vec<Flow>,
}

impl Ledger {
    pub(crate) fn new(quotas: Quotas) -> Ledger {
        Ledger {
            quotas,
            connections: IdHashMap::default(),
            address_ids: HashMap::new(),
            addresses: IdHashMap::default(),
            next_address: 0,
            total: Usage::default(),
            unserved: Usage::default(),
            paused: IdHashSet::default(),
            flow: Vec::new(),
        }
    }

    /// Pause and resume orders since the last call.
    pub(crate) fn drain_flow(&mut self) -> std::vec::Drain<'_, Flow> {
        self.flow.drain(..)
    }

    /// `peer` connected from `source`; its address's record. A peer already known
    /// keeps its record.
    pub(crate) fn connect(&mut self, peer: &PeerId, source: Source) -> AddressId {
        if let Some(c) = self.connections.get(peer) {
            return c.address;
        }
        let (next, addresses) = (&mut self.next_address, &mut self.addresses);
        let address = *self.address_ids.entry(source).or_insert_with(|| {
            *next += 1;
            *next
        });
        addresses
            .entry(address)
            .or_insert_with(|| Address::new(source))
            .connections += 1;
        self.connections.insert(
            peer.clone(),
            Connection {
                address,
                usage: Usage::default(),
                paused: false,
            },
        );
        address
    }

    /// `peer` is leaving: it is no longer paused, and will not be resumed (its
    /// requests are released next, then [`Ledger::disconnect`]).
    pub(crate) fn leaving(&mut self, peer: &PeerId) {
        let Some(c) = self.connections.get_mut(peer) else {
            return;
        };
        c.paused = false;
        self.paused.remove(peer);
        if let Some(a) = self.addresses.get_mut(&c.address) {
            a.paused.remove(peer);
        }
    }

    /// `peer` is gone: what it held is released (the caller drops or orphans its
    /// requests) and it is forgotten.
    pub(crate) fn disconnect(&mut self, peer: &PeerId) {
        let Some(c) = self.connections.remove(peer) else {
            return;
        };
        self.paused.remove(peer);
        let address_gone = match self.addresses.get_mut(&c.address) {
            Some(a) => {
                a.usage.sub(c.usage);
                a.connections = a.connections.saturating_sub(1);
                a.paused.remove(peer);
                a.connections == 0
            }
            None => false,
        };
        let total_was_high = self.total.reaches(self.total_resume_mark());
        self.total.sub(c.usage);
        if address_gone {
            if let Some(a) = self.addresses.remove(&c.address) {
                self.address_ids.remove(&a.source);
            }
        }
        self.resume_after_release(c.address, total_was_high);
    }

    /// Charges a new request of `cost` to `peer`, or refuses it. `unserved`: its
    /// service has no worker. May pause `peer`.
    pub(crate) fn admit(
        &mut self,
        peer: &PeerId,
        cost: Usage,
        unserved: bool,
    ) -> Result<(), Refusal> {
        // Made (as a local peer) if it never connected: the state machine may be
        // fed messages without arrivals.
        let address = self.connect(peer, Source::Local);
        let q = self.quotas;
        let pause_mark = self.total_pause_mark();
        // One lookup of each record for the whole admission (this runs for every
        // request).
        let (Some(c), Some(a)) = (
            self.connections.get_mut(peer),
            self.addresses.get_mut(&address),
        ) else {
            return Err(Refusal::Connection); // ok: made just above
        };
        if unserved
            && (a.unserved.plus(cost).exceeds(q.unserved_per_address)
                || self.unserved.plus(cost).exceeds(q.unserved_total))
        {
            return Err(Refusal::Unserved);
        }
        if c.usage.plus(cost).exceeds(q.per_connection.scaled(2, 1)) {
            return Err(Refusal::Connection);
        }
        if a.usage.plus(cost).exceeds(q.per_address.scaled(2, 1)) {
            return Err(Refusal::Address);
        }
        if self.total.plus(cost).exceeds(q.total) {
            if self.total.reaches(pause_mark) {
                self.pause(peer);
            }
            return Err(Refusal::Total);
        }
        c.usage.add(cost);
        a.usage.add(cost);
        self.total.add(cost);
        if unserved {
            a.unserved.add(cost);
            self.unserved.add(cost);
        }
        let over = c.usage.reaches(q.per_connection) || a.usage.reaches(q.per_address);
        if over || self.total.reaches(pause_mark) {
            self.pause(peer);
        }
        Ok(())
    }

    /// Adds `extra` to what `peer` holds (a reply gathered for it), unless that
    /// would take it past a hard bound.
    pub(crate) fn grow(&mut self, peer: &PeerId, extra: usize) -> Result<(), Refusal> {
        let extra = Usage {
            requests: 0,
            bytes: extra,
        };
        let q = self.quotas;
        let Some(c) = self.connections.get(peer) else {
            return Err(Refusal::Connection);
        };
        if c.usage.plus(extra).exceeds(q.per_connection.scaled(2, 1)) {
            return Err(Refusal::Connection);
        }
        if self
            .addresses
            .get(&c.address)
            .is_some_and(|a| a.usage.plus(extra).exceeds(q.per_address.scaled(2, 1)))
        {
            return Err(Refusal::Address);
        }
        if self.total.plus(extra).exceeds(q.total) {
            return Err(Refusal::Total);
        }
        self.charge(peer, extra);
        Ok(())
    }

    fn charge(&mut self, peer: &PeerId, cost: Usage) {
        let Some(c) = self.connections.get_mut(peer) else {
            return;
        };
        c.usage.add(cost);
        if let Some(a) = self.addresses.get_mut(&c.address) {
            a.usage.add(cost);
        }
        self.total.add(cost);
    }

    /// A request of `peer` that counted as unserved was given to a worker, or left:
    /// it no longer uses that share.
    pub(crate) fn served(&mut self, peer: &PeerId, cost: Usage) {
        if let Some(c) = self.connections.get(peer) {
            if let Some(a) = self.addresses.get_mut(&c.address) {
                a.unserved.sub(cost);
            }
        }
        self.unserved.sub(cost);
    }

    /// A request of `peer` costing `cost` is finished (answered or dropped). May
    /// resume connections.
    pub(crate) fn release(&mut self, peer: &PeerId, cost: Usage) {
        let Some(c) = self.connections.get_mut(peer) else {
            return;
        };
        c.usage.sub(cost);
        let address = c.address;
        let total_was_high = self.total.reaches(self.total_resume_mark());
        if let Some(a) = self.addresses.get_mut(&address) {
            a.usage.sub(cost);
        }
        self.total.sub(cost);
        if self.paused.is_empty() {
            // Nobody to resume (the usual case): no more lookups.
            return;
        }
        self.resume_if_able(peer);
        self.resume_after_release(address, total_was_high);
    }

    /// Something of `address` was released: when that took the total below its
    /// resume mark, every paused connection may go on; otherwise those of `address`.
    fn resume_after_release(&mut self, address: AddressId, total_was_high: bool) {
        if total_was_high && !self.total.reaches(self.total_resume_mark()) {
            let paused: Vec<PeerId> = self.paused.iter().cloned().collect();
            for p in paused {
                self.resume_if_able(&p);
            }
        } else {
            self.resume_waiting(address);
        }
    }

    /// Resumes the paused connections of `address` that may go on, when the address
    /// is below its resume mark.
    fn resume_waiting(&mut self, address: AddressId) {
        let q = self.quotas;
        let Some(a) = self.addresses.get(&address) else {
            return;
        };
        if a.paused.is_empty() || a.usage.reaches(q.per_address.scaled(3, 4)) {
            return;
        }
        let paused: Vec<PeerId> = a.paused.iter().cloned().collect();
        for p in paused {
            self.resume_if_able(&p);
        }
    }

    fn pause(&mut self, peer: &PeerId) {
        let Some(c) = self.connections.get_mut(peer) else {
            return;
        };
        if c.paused {
            return;
        }
        c.paused = true;
        if let Some(a) = self.addresses.get_mut(&c.address) {
            a.paused.insert(peer.clone());
        }
        self.paused.insert(peer.clone());
        self.flow.push(Flow::Pause(peer.clone()));
    }

    /// Resumes `peer` if it is paused and it, its address and the total are all
    /// below their resume marks.
    fn resume_if_able(&mut self, peer: &PeerId) {
        let q = self.quotas;
        let total_high = self.total.reaches(self.total_resume_mark());
        let Some(c) = self.connections.get_mut(peer) else {
            return;
        };
        if !c.paused || total_high || c.usage.reaches(q.per_connection.scaled(3, 4)) {
            return;
        }
        let Some(a) = self.addresses.get_mut(&c.address) else {
            return;
        };
        if a.usage.reaches(q.per_address.scaled(3, 4)) {
            return;
        }
        c.paused = false;
        a.paused.remove(peer);
        self.paused.remove(peer);
        self.flow.push(Flow::Resume(peer.clone()));
    }

    /// Senders are paused from here (three quarters of the maximum)...
    fn total_pause_mark(&self) -> Usage {
        self.quotas.total.scaled(3, 4)
    }

    /// ...and resumed below this (half of it).
    fn total_resume_mark(&self) -> Usage {
        self.quotas.total.scaled(1, 2)
    }

    /// What `peer` holds now (zero if unknown).
    pub(crate) fn usage(&self, peer: &PeerId) -> Usage {
        self.connections
            .get(peer)
            .map_or_else(Usage::default, |c| c.usage)
    }

    /// What the broker holds in all.
    pub(crate) fn total(&self) -> Usage {
        self.total
    }

    /// Paused connections.
    pub(crate) fn paused_count(&self) -> usize {
        self.paused.len()
    }

    /// Whether `peer` is connected (or admitted without an arrival) and not gone.
    pub(crate) fn knows(&self, peer: &PeerId) -> bool {
        self.connections.contains_key(peer)
    }

    /// Whether `peer` is paused.
    pub(crate) fn is_paused(&self, peer: &PeerId) -> bool {
        self.connections.get(peer).is_some_and(|c| c.paused)
    }

    /// Checks the sums against `expected` (what each connection's requests cost, as
    /// the broker counts them) and the bounds.
    pub(crate) fn check(&self, expected: &BTreeMap<PeerId, (Usage, Usage)>) -> Result<(), String> {
        let mut total = Usage::default();
        let mut unserved = Usage::default();
        let mut per_address: BTreeMap<AddressId, (Usage, Usage, usize)> = BTreeMap::new();
        for (peer, c) in &self.connections {
            let (held, unserved_held) = expected.get(peer).copied().unwrap_or_default();
            if c.usage != held {
                return Err(format!("{peer:?} is charged {:?}, holds {held:?}", c.usage));
            }
            total.add(held);
            unserved.add(unserved_held);
            let a = per_address.entry(c.address).or_default();
            a.0.add(held);
            a.1.add(unserved_held);
            a.2 += 1;
            if c.paused != self.paused.contains(peer) {
                return Err(format!("{peer:?} paused {} but not in the set", c.paused));
            }
            if c.usage.exceeds(self.quotas.per_connection.scaled(2, 1)) {
                return Err(format!(
                    "{peer:?} holds {:?}, over twice its quota",
                    c.usage
                ));
            }
        }
        if let Some(peer) = expected.keys().find(|p| {
            !self.connections.contains_key(*p)
                && expected.get(*p).is_some_and(|u| u.0 != Usage::default())
        }) {
            return Err(format!("{peer:?} holds requests but is not connected"));
        }
        if total != self.total || unserved != self.unserved {
            return Err(format!(
                "totals {:?}/{:?} counted, {total:?}/{unserved:?} held",
                self.total, self.unserved
            ));
        }
        if self.total.exceeds(self.quotas.total)
            || self.unserved.exceeds(self.quotas.unserved_total)
        {
            return Err(format!(
                "{:?} held, over the maximum {:?}",
                self.total, self.quotas.total
            ));
        }
        for (id, a) in &self.addresses {
            let source = &a.source;
            if self.address_ids.get(source) != Some(id) {
                return Err(format!("{source}'s record is not under its address"));
            }
            let Some((usage, unserved, connections)) = per_address.get(id) else {
                return Err(format!("{source} is kept with no connection"));
            };
            if a.usage != *usage || a.unserved != *unserved || a.connections != *connections {
                return Err(format!("{source}'s sums are off"));
            }
            if a.paused.iter().any(|p| !self.paused.contains(p)) {
                return Err(format!("{source} lists a connection paused that is not"));
            }
            if a.usage.exceeds(self.quotas.per_address.scaled(2, 1))
                || a.unserved.exceeds(self.quotas.unserved_per_address)
            {
                return Err(format!("{source} holds {:?}, over its bounds", a.usage));
            }
        }
        if per_address.len() != self.addresses.len()
            || self.address_ids.len() != self.addresses.len()
        {
            return Err("an address with connections has no record".into());
        }
        Ok(())
    }
}
