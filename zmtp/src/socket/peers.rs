//! The peer table of a socket: every pipe, which connection owns it, and (for ROUTER)
//! which routing id names it.
//!
//! Every connection gets a number that is never used again (a reconnecting endpoint
//! gets a new one each time), so a ROUTER user can address one connection rather
//! than whoever holds a routing id now, and pause that connection's input.
//!
//! Sockets read it through a [`PeerSnapshot`] that is rebuilt only when the table's
//! generation changes, so the send path takes no lock in the steady state.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::id_hash::IdHashMap;
use crate::input_gate::InputGate;
use crate::pipe::Pipe;

pub use crate::peer_key::PeerKey;

/// The current connection of a peer.
#[derive(Debug)]
struct Link {
    id: u64,
    /// Closes the connection (ROUTER handover).
    close: CancellationToken,
    /// Pauses and resumes its input.
    gate: Arc<InputGate>,
}

#[derive(Debug)]
struct PeerEntry {
    pipe: Arc<Pipe>,
    routing_id: Option<Bytes>,
    link: Option<Link>,
}

#[derive(Debug)]
struct Table {
    entries: IdHashMap<PeerKey, PeerEntry>,
    by_routing_id: HashMap<Bytes, PeerKey>,
    by_connection: IdHashMap<u64, PeerKey>,
    next_key: PeerKey,
    next_connection: u64,
}

/// Why a peer could not join the table.
#[derive(Debug)]
pub(crate) struct DuplicateRoutingId(pub Bytes);

/// Shared between the socket and its background tasks.
#[derive(Debug)]
pub(crate) struct Peers {
    table: Mutex<Table>,
    generation: AtomicU64,
    /// Signalled when a pipe gains room or the set of pipes changes.
    pub(crate) writable: Arc<Notify>,
}

impl Peers {
    pub(crate) fn new() -> Peers {
        Peers {
            table: Mutex::new(Table {
                entries: IdHashMap::default(),
                by_routing_id: HashMap::new(),
                by_connection: IdHashMap::default(),
                next_key: 1,
                next_connection: 1,
            }),
            generation: AtomicU64::new(1),
            writable: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Every update below leaves the table consistent before anything can panic.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::Release);
        self.writable.notify_waiters();
    }

    /// Adds a pipe with no connection yet (a connecting endpoint).
    pub(crate) fn add(&self, pipe: Arc<Pipe>) -> PeerKey {
        let mut t = self.lock();
        let key = t.next_key;
        t.next_key += 1;
        t.entries.insert(
            key,
            PeerEntry {
                pipe,
                routing_id: None,
                link: None,
            },
        );
        drop(t);
        self.changed();
        key
    }

    /// Records that `key` is connected: a new connection number, closed by `close`,
    /// its input paused and resumed through `gate`.
    pub(crate) fn link(&self, key: PeerKey, close: CancellationToken, gate: Arc<InputGate>) -> u64 {
        let mut t = self.lock();
        let table = &mut *t;
        let id = table.next_connection;
        table.next_connection += 1;
        if let Some(entry) = table.entries.get_mut(&key) {
            if let Some(old) = entry.link.replace(Link { id, close, gate }) {
                table.by_connection.remove(&old.id);
            }
            table.by_connection.insert(id, key);
        }
        drop(t);
        self.changed();
        id
    }

    /// Names the peer `key` after a handshake. A non-empty `identity` is used as is;
    /// otherwise a 5-byte id `0x00 + u32` is made up (libzmq router.cpp identify_peer).
    /// When the identity is taken, `handover` moves it to the new peer and closes the
    /// old connection; otherwise the new peer is refused.
    pub(crate) fn name(
        &self,
        key: PeerKey,
        identity: &Bytes,
        handover: bool,
    ) -> Result<Bytes, DuplicateRoutingId> {
        let mut t = self.lock();
        let id = if identity.is_empty() {
            generate_id(&t)
        } else {
            match t.by_routing_id.get(identity).copied() {
                Some(old) if old != key => {
                    if !handover {
                        return Err(DuplicateRoutingId(identity.clone()));
                    }
                    let renamed = generate_id(&t);
                    t.by_routing_id.insert(renamed.clone(), old);
                    if let Some(entry) = t.entries.get_mut(&old) {
                        entry.routing_id = Some(renamed);
                        if let Some(link) = &entry.link {
                            link.close.cancel();
                        }
                    }
                    identity.clone()
                }
                _ => identity.clone(),
            }
        };
        let previous = t
            .entries
            .get_mut(&key)
            .and_then(|entry| entry.routing_id.replace(id.clone()));
        if let Some(previous) = previous.filter(|p| *p != id) {
            t.by_routing_id.remove(&previous);
        }
        t.by_routing_id.insert(id.clone(), key);
        drop(t);
        self.changed();
        Ok(id)
    }

    /// The connection of `key` ended; its pipe stays (a connecting endpoint keeps
    /// queueing until it reconnects) but its routing id is released and returned.
    pub(crate) fn disconnected(&self, key: PeerKey) -> Option<Bytes> {
        let mut t = self.lock();
        let table = &mut *t;
        let id = table.entries.get_mut(&key).and_then(|entry| {
            if let Some(link) = entry.link.take() {
                table.by_connection.remove(&link.id);
            }
            entry.routing_id.take()
        });
        release(&mut t, key, id.as_ref());
        drop(t);
        self.changed();
        id
    }

    /// Removes `key` for good and closes its pipe; returns the routing id it had.
    pub(crate) fn remove(&self, key: PeerKey) -> Option<Bytes> {
        let mut t = self.lock();
        let table = &mut *t;
        let id = table.entries.remove(&key).and_then(|entry| {
            entry.pipe.close();
            if let Some(link) = &entry.link {
                table.by_connection.remove(&link.id);
            }
            entry.routing_id
        });
        release(&mut t, key, id.as_ref());
        drop(t);
        self.changed();
        id
    }

    /// Refreshes `snapshot` if the table changed since it was taken.
    #[inline]
    pub(crate) fn refresh(&self, snapshot: &mut PeerSnapshot) {
        let generation = self.generation.load(Ordering::Acquire);
        if generation != snapshot.generation {
            self.rebuild(snapshot, generation);
        }
    }

    /// [`refresh`](Self::refresh) when the peers changed.
    #[cold]
    #[inline(never)]
    fn rebuild(&self, snapshot: &mut PeerSnapshot, generation: u64) {
        let t = self.lock();
        let mut keys: Vec<PeerKey> = t.entries.keys().copied().collect();
        keys.sort_unstable();
        snapshot.ordered = keys
            .iter()
            .filter_map(|k| t.entries.get(k).map(|e| (*k, e.pipe.clone())))
            .collect();
        snapshot.by_key = snapshot.ordered.iter().cloned().collect();
        snapshot.by_routing_id = t
            .by_routing_id
            .iter()
            .filter_map(|(id, k)| t.entries.get(k).map(|e| (id.clone(), e.pipe.clone())))
            .collect();
        snapshot.generation = generation;
    }

    /// The pipe of connection `id`, while that connection lasts.
    pub(crate) fn connection_pipe(&self, id: u64) -> Option<Arc<Pipe>> {
        let t = self.lock();
        let key = t.by_connection.get(&id)?;
        t.entries.get(key).map(|e| e.pipe.clone())
    }

    /// The input gate of connection `id`, while that connection lasts.
    pub(crate) fn connection_gate(&self, id: u64) -> Option<Arc<InputGate>> {
        let t = self.lock();
        let key = t.by_connection.get(&id)?;
        t.entries.get(key)?.link.as_ref().map(|l| l.gate.clone())
    }

    /// Messages queued over all pipes.
    pub(crate) fn queued(&self) -> usize {
        self.lock().entries.values().map(|e| e.pipe.len()).sum()
    }

    /// Number of peers (pipes), connected or not.
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

/// Frees `id` in the routing table if `key` still owns it.
fn release(t: &mut Table, key: PeerKey, id: Option<&Bytes>) {
    if let Some(id) = id {
        if t.by_routing_id.get(id) == Some(&key) {
            t.by_routing_id.remove(id);
        }
    }
}

/// A routing id for a peer that announced none: libzmq's form (`0x00` and four
/// bytes), but random rather than libzmq's counter, so nobody can predict the id the
/// next peer will get (and connect with it as its announced identity first).
fn generate_id(t: &Table) -> Bytes {
    loop {
        let n: u32 = rand::random();
        let mut id = BytesMut::with_capacity(5);
        id.put_u8(0);
        id.put_u32(n);
        let id = id.freeze();
        if !t.by_routing_id.contains_key(&id) {
            return id;
        }
    }
}

/// A lock-free view of the peer table, owned by the socket.
#[derive(Debug, Default)]
pub(crate) struct PeerSnapshot {
    generation: u64,
    /// Pipes in a stable order, for load-balancing.
    pub(crate) ordered: Vec<(PeerKey, Arc<Pipe>)>,
    pub(crate) by_key: IdHashMap<PeerKey, Arc<Pipe>>,
    pub(crate) by_routing_id: HashMap<Bytes, Arc<Pipe>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe(peers: &Peers) -> Arc<Pipe> {
        Pipe::new(10, None, peers.writable.clone())
    }

    /// Adds a peer and links it to a new connection; returns the key, the
    /// connection number and its close token.
    fn connected(peers: &Peers) -> (PeerKey, u64, CancellationToken) {
        let key = peers.add(pipe(peers));
        let close = CancellationToken::new();
        let id = peers.link(key, close.clone(), Arc::default());
        (key, id, close)
    }

    #[test]
    fn generated_ids_are_5_bytes_with_leading_zero_and_unpredictable() {
        let peers = Peers::new();
        let ids: Vec<Bytes> = (0..4)
            .map(|_| {
                let (k, _, _) = connected(&peers);
                peers.name(k, &Bytes::new(), false).unwrap()
            })
            .collect();
        for id in &ids {
            assert_eq!(id.len(), 5);
            assert_eq!(id[0], 0);
        }
        let counter = |id: &Bytes| u32::from_be_bytes([id[1], id[2], id[3], id[4]]);
        let sequential = ids
            .windows(2)
            .all(|w| counter(&w[1]) == counter(&w[0]).wrapping_add(1));
        assert!(!sequential, "generated ids follow a counter: {ids:?}");
    }

    #[test]
    fn duplicate_identity_refused_or_handed_over() {
        let peers = Peers::new();
        let id = Bytes::from_static(b"client");
        let (a, _, a_conn) = connected(&peers);
        peers.name(a, &id, false).unwrap();
        let (b, _, _) = connected(&peers);
        assert!(peers.name(b, &id, false).is_err());
        assert!(!a_conn.is_cancelled());
        peers.name(b, &id, true).unwrap();
        assert!(a_conn.is_cancelled(), "old connection closed on handover");
        let mut snap = PeerSnapshot::default();
        peers.refresh(&mut snap);
        assert!(Arc::ptr_eq(&snap.by_routing_id[&id], &snap.by_key[&b]));
        assert_eq!(snap.by_routing_id.len(), 2, "old peer renamed, not dropped");
    }

    #[test]
    fn a_connection_number_is_never_reused() {
        let peers = Peers::new();
        let (key, first, _) = connected(&peers);
        assert!(peers.connection_pipe(first).is_some());
        assert!(peers.connection_gate(first).is_some());
        peers.disconnected(key);
        assert!(
            peers.connection_pipe(first).is_none(),
            "its connection ended"
        );
        let second = peers.link(key, CancellationToken::new(), Arc::default());
        assert_ne!(first, second, "a reconnect is a new connection");
        assert!(peers.connection_pipe(first).is_none());
        assert!(peers.connection_pipe(second).is_some());
        peers.remove(key);
        assert!(peers.connection_pipe(second).is_none());
        assert!(peers.connection_gate(second).is_none());
    }

    #[test]
    fn snapshot_follows_changes() {
        let peers = Peers::new();
        let mut snap = PeerSnapshot::default();
        let a = peers.add(pipe(&peers));
        peers.refresh(&mut snap);
        assert_eq!(snap.ordered.len(), 1);
        peers.remove(a);
        peers.refresh(&mut snap);
        assert!(snap.ordered.is_empty());
        assert_eq!(peers.len(), 0);
    }
}
