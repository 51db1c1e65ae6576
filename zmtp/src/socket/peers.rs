//! The peer table of a socket: every pipe, which connection owns it, and (for ROUTER)
//! which routing id names it.
//!
//! Sockets read it through a [`PeerSnapshot`] that is rebuilt only when the table's
//! generation changes, so the send path takes no lock in the steady state.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::pipe::Pipe;

/// Identifies one peer (one pipe) of a socket.
pub type PeerKey = u64;

#[derive(Debug)]
struct PeerEntry {
    pipe: Arc<Pipe>,
    routing_id: Option<Bytes>,
    /// Closes the current connection of this peer (ROUTER handover).
    connection: Option<CancellationToken>,
}

#[derive(Debug)]
struct Table {
    entries: HashMap<PeerKey, PeerEntry>,
    by_routing_id: HashMap<Bytes, PeerKey>,
    next_key: PeerKey,
    next_generated_id: u32,
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
                entries: HashMap::new(),
                by_routing_id: HashMap::new(),
                next_key: 1,
                // libzmq starts generated routing ids at a random value.
                next_generated_id: rand::random(),
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
                connection: None,
            },
        );
        drop(t);
        self.changed();
        key
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
        connection: CancellationToken,
    ) -> Result<Bytes, DuplicateRoutingId> {
        let mut t = self.lock();
        let id = if identity.is_empty() {
            generate_id(&mut t)
        } else {
            match t.by_routing_id.get(identity).copied() {
                Some(old) if old != key => {
                    if !handover {
                        return Err(DuplicateRoutingId(identity.clone()));
                    }
                    let renamed = generate_id(&mut t);
                    t.by_routing_id.insert(renamed.clone(), old);
                    if let Some(entry) = t.entries.get_mut(&old) {
                        entry.routing_id = Some(renamed);
                        if let Some(conn) = entry.connection.take() {
                            conn.cancel();
                        }
                    }
                    identity.clone()
                }
                _ => identity.clone(),
            }
        };
        let previous = t.entries.get_mut(&key).and_then(|entry| {
            entry.connection = Some(connection);
            entry.routing_id.replace(id.clone())
        });
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
        let id = t.entries.get_mut(&key).and_then(|entry| {
            entry.connection = None;
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
        let id = t.entries.remove(&key).and_then(|entry| {
            entry.pipe.close();
            entry.routing_id
        });
        release(&mut t, key, id.as_ref());
        drop(t);
        self.changed();
        id
    }

    /// Refreshes `snapshot` if the table changed since it was taken.
    pub(crate) fn refresh(&self, snapshot: &mut PeerSnapshot) {
        let generation = self.generation.load(Ordering::Acquire);
        if generation == snapshot.generation {
            return;
        }
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

fn generate_id(t: &mut Table) -> Bytes {
    loop {
        let n = t.next_generated_id;
        t.next_generated_id = n.wrapping_add(1);
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
    pub(crate) by_key: HashMap<PeerKey, Arc<Pipe>>,
    pub(crate) by_routing_id: HashMap<Bytes, Arc<Pipe>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe(peers: &Peers) -> Arc<Pipe> {
        Pipe::new(10, None, peers.writable.clone())
    }

    #[test]
    fn generated_ids_are_5_bytes_with_leading_zero() {
        let peers = Peers::new();
        let k = peers.add(pipe(&peers));
        let id = peers
            .name(k, &Bytes::new(), false, CancellationToken::new())
            .unwrap();
        assert_eq!(id.len(), 5);
        assert_eq!(id[0], 0);
    }

    #[test]
    fn duplicate_identity_refused_or_handed_over() {
        let peers = Peers::new();
        let id = Bytes::from_static(b"client");
        let a = peers.add(pipe(&peers));
        let a_conn = CancellationToken::new();
        peers.name(a, &id, false, a_conn.clone()).unwrap();
        let b = peers.add(pipe(&peers));
        assert!(peers.name(b, &id, false, CancellationToken::new()).is_err());
        assert!(!a_conn.is_cancelled());
        peers.name(b, &id, true, CancellationToken::new()).unwrap();
        assert!(a_conn.is_cancelled(), "old connection closed on handover");
        let mut snap = PeerSnapshot::default();
        peers.refresh(&mut snap);
        assert!(Arc::ptr_eq(&snap.by_routing_id[&id], &snap.by_key[&b]));
        assert_eq!(snap.by_routing_id.len(), 2, "old peer renamed, not dropped");
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
