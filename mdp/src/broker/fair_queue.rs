//! [`FairQueue`]: the requests waiting for one service, taken by client connection
//! in turn.
//!
//! Each client's requests keep their order, and clients take turns: a client that
//! queued a hundred thousand requests gets one worker in turn with a client that
//! queued one, so a flood from one connection slows the others down by one request
//! per turn instead of holding them behind all of its own (as one FIFO would).
//!
//! Requests leave in three ways: taken in turn ([`FairQueue::pop`]), dropped one by
//! one (TTL; [`FairQueue::remove`], which finds the oldest of a client at the front
//! in the usual case), or with their client ([`FairQueue::remove_client`]). The turn
//! ring keeps an entry for a client whose requests left without their turn coming
//! round; those entries are skipped when their turn comes and swept out once they
//! outnumber the clients waiting, so no operation costs more than the client's own
//! requests, amortised.

use std::collections::VecDeque;

use zmtp::{IdHashMap, PeerId};

/// A request's number in the broker.
pub(crate) type RequestId = u64;

#[derive(Debug, Default)]
struct ClientQueue {
    requests: VecDeque<RequestId>,
    /// Whether the client has an entry in the turn ring.
    in_turn: bool,
}

/// The waiting requests of one service; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct FairQueue {
    turns: VecDeque<PeerId>,
    clients: IdHashMap<PeerId, ClientQueue>,
    len: usize,
    /// Entries of `turns` whose client has nothing waiting.
    stale: usize,
}

impl FairQueue {
    /// Requests waiting.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues `id` of `client` after its other requests.
    pub(crate) fn push_back(&mut self, client: &PeerId, id: RequestId) {
        self.push(client, id, false);
    }

    /// Puts `id` of `client` first in line: its client's next, and the client's turn
    /// next (a request given back by a worker that died).
    pub(crate) fn push_front(&mut self, client: &PeerId, id: RequestId) {
        self.push(client, id, true);
    }

    fn push(&mut self, client: &PeerId, id: RequestId, front: bool) {
        let queue = self.clients.entry(client.clone()).or_default();
        if front {
            queue.requests.push_front(id);
        } else {
            queue.requests.push_back(id);
        }
        self.len += 1;
        if queue.in_turn {
            if queue.requests.len() == 1 {
                // Its entry was stale; now it is live again.
                self.stale = self.stale.saturating_sub(1);
            }
            if front {
                // Its turn may be far back: move it to the front.
                self.turns.retain(|c| c != client);
                self.turns.push_front(client.clone());
            }
        } else {
            queue.in_turn = true;
            if front {
                self.turns.push_front(client.clone());
            } else {
                self.turns.push_back(client.clone());
            }
        }
    }

    /// The next request in turn, with its client.
    pub(crate) fn pop(&mut self) -> Option<(PeerId, RequestId)> {
        while let Some(client) = self.turns.pop_front() {
            let Some(queue) = self.clients.get_mut(&client) else {
                self.stale = self.stale.saturating_sub(1);
                continue;
            };
            let Some(id) = queue.requests.pop_front() else {
                self.clients.remove(&client);
                self.stale = self.stale.saturating_sub(1);
                continue;
            };
            self.len -= 1;
            if queue.requests.is_empty() {
                self.clients.remove(&client);
            } else {
                self.turns.push_back(client.clone());
            }
            return Some((client, id));
        }
        None
    }

    /// Removes `id` of `client`; false if it was not waiting here.
    pub(crate) fn remove(&mut self, client: &PeerId, id: RequestId) -> bool {
        let Some(queue) = self.clients.get_mut(client) else {
            return false;
        };
        let Some(at) = queue.requests.iter().position(|r| *r == id) else {
            return false;
        };
        queue.requests.remove(at);
        self.len -= 1;
        if queue.requests.is_empty() {
            self.stale += 1;
            self.sweep();
        }
        true
    }

    /// Removes every request of `client`; returns them. Its turn entry stays, stale,
    /// under its (now empty) queue, so a client that queues again (a peered broker
    /// whose requests were bounced) finds it instead of getting a second turn.
    pub(crate) fn remove_client(&mut self, client: &PeerId) -> VecDeque<RequestId> {
        let Some(queue) = self.clients.get_mut(client) else {
            return VecDeque::new();
        };
        let requests = std::mem::take(&mut queue.requests);
        self.len -= requests.len();
        if !queue.in_turn {
            self.clients.remove(client);
        } else if !requests.is_empty() {
            self.stale += 1;
            self.sweep();
        }
        requests
    }

    /// Drops stale turn entries once they outnumber the live ones.
    fn sweep(&mut self) {
        if self.stale <= self.turns.len() / 2 {
            return;
        }
        let clients = &mut self.clients;
        clients.retain(|_, q| !q.requests.is_empty());
        self.turns.retain(|c| clients.contains_key(c));
        self.stale = 0;
    }

    /// Every waiting request, in no particular order (for invariants and shutdown).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&PeerId, RequestId)> {
        self.clients
            .iter()
            .flat_map(|(c, q)| q.requests.iter().map(move |id| (c, *id)))
    }

    /// Checks the bookkeeping: the count, one turn entry per client with requests,
    /// stale entries counted and at most half the ring after any removal.
    pub(crate) fn check(&self) -> Result<(), String> {
        let waiting: usize = self.clients.values().map(|q| q.requests.len()).sum();
        if waiting != self.len {
            return Err(format!("{} requests counted, {waiting} queued", self.len));
        }
        let mut entries: std::collections::BTreeMap<&PeerId, usize> =
            std::collections::BTreeMap::new();
        for c in &self.turns {
            *entries.entry(c).or_default() += 1;
        }
        let mut live = 0;
        for (client, q) in &self.clients {
            let n = entries.get(client).copied().unwrap_or(0);
            if q.in_turn != (n > 0) || n > 1 {
                return Err(format!("{client:?} has {n} turns (in_turn {})", q.in_turn));
            }
            if !q.requests.is_empty() {
                live += 1;
                if !q.in_turn {
                    return Err(format!("{client:?} waits without a turn"));
                }
            }
        }
        if self.turns.len() != live + self.stale {
            return Err(format!(
                "{} turns for {live} clients waiting and {} stale",
                self.turns.len(),
                self.stale
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u64) -> PeerId {
        PeerId::new(format!("client-{n}"), n)
    }

    #[test]
    fn clients_take_turns_and_keep_their_order() {
        let mut q = FairQueue::default();
        for id in 0..100 {
            q.push_back(&peer(1), id);
        }
        q.push_back(&peer(2), 1000);
        q.check().unwrap(); // ok: test code
        assert_eq!(q.pop(), Some((peer(1), 0)));
        assert_eq!(
            q.pop(),
            Some((peer(2), 1000)),
            "the one request goes second"
        );
        for id in 1..100 {
            assert_eq!(q.pop(), Some((peer(1), id)));
        }
        assert_eq!(q.pop(), None);
        assert!(q.is_empty());
        q.check().unwrap(); // ok: test code
    }

    #[test]
    fn a_requeued_request_goes_first() {
        let mut q = FairQueue::default();
        q.push_back(&peer(1), 1);
        q.push_back(&peer(2), 2);
        q.push_back(&peer(3), 3);
        q.push_front(&peer(3), 30);
        q.check().unwrap(); // ok: test code
        assert_eq!(q.pop(), Some((peer(3), 30)));
        assert_eq!(q.pop(), Some((peer(1), 1)));
        assert_eq!(q.pop(), Some((peer(2), 2)));
        assert_eq!(q.pop(), Some((peer(3), 3)));
    }

    #[test]
    fn removals_leave_stale_turns_that_are_skipped_and_swept() {
        let mut q = FairQueue::default();
        for n in 0..10 {
            q.push_back(&peer(n), n);
        }
        for n in 0..9 {
            if n % 2 == 0 {
                assert!(q.remove(&peer(n), n));
            } else {
                assert_eq!(q.remove_client(&peer(n)), [n]);
            }
            q.check().unwrap(); // ok: test code
        }
        assert!(!q.remove(&peer(0), 0), "already gone");
        assert!(q.turns.len() <= 2, "swept: {} turns", q.turns.len());
        q.push_back(&peer(4), 44);
        q.check().unwrap(); // ok: test code
        let mut rest: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        rest.sort();
        assert_eq!(rest, [(peer(4), 44), (peer(9), 9)]);
        q.check().unwrap(); // ok: test code
    }

    #[test]
    fn a_client_removed_whole_that_queues_again_has_one_turn() {
        let mut q = FairQueue::default();
        q.push_back(&peer(1), 1);
        q.push_back(&peer(2), 2);
        assert_eq!(q.remove_client(&peer(1)), [1]);
        q.check().unwrap(); // ok: test code
        q.push_back(&peer(1), 3);
        q.check().unwrap(); // ok: test code
        assert_eq!(q.pop(), Some((peer(1), 3)));
        assert_eq!(q.pop(), Some((peer(2), 2)));
        assert_eq!(q.pop(), None);
        q.check().unwrap(); // ok: test code
    }

    #[test]
    fn a_client_whose_requests_left_and_came_back_has_one_turn() {
        let mut q = FairQueue::default();
        q.push_back(&peer(1), 1);
        q.push_back(&peer(2), 2);
        q.push_back(&peer(3), 3);
        q.remove(&peer(1), 1);
        q.push_back(&peer(1), 10);
        q.check().unwrap(); // ok: test code
        q.push_back(&peer(1), 11);
        assert_eq!(q.pop(), Some((peer(1), 10)));
        assert_eq!(q.pop(), Some((peer(2), 2)));
        assert_eq!(q.pop(), Some((peer(3), 3)));
        assert_eq!(q.pop(), Some((peer(1), 11)));
        q.check().unwrap(); // ok: test code
    }
}
