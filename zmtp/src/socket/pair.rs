//! PAIR: an exclusive pair (RFC 31). Sending and receiving are DEALER's
//! (load-balancing over the one pipe, fair-queueing from it); what is PAIR's own is
//! that only one peer may be attached at a time.
//!
//! libzmq pair.cpp `xattach_pipe` keeps the first pipe and terminates any later one,
//! which closes that connection. We do the same right after the handshake: a
//! connection that finds the slot taken never gets a pipe (so nothing is ever sent to
//! or received from it) and is closed. A connecting endpoint keeps the slot across
//! reconnects, as its libzmq pipe outlives the TCP connection; an accepted connection
//! frees it when it ends.
//!
//! Unlike libzmq, which terminates a second `connect`'s pipe at once, a PAIR that
//! connects to two endpoints finds out at the second handshake: that endpoint is then
//! dropped for good (no reconnect), with whatever was already queued on it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::PeerKey;

/// Who holds the PAIR slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PairOwner {
    /// A connecting endpoint (its peer key), for as long as it exists.
    Endpoint(PeerKey),
    /// One accepted connection (a serial number), for as long as it lasts.
    Accepted(u64),
}

/// The one peer a PAIR socket talks to.
#[derive(Debug, Default)]
pub(crate) struct PairSlot {
    owner: Mutex<Option<PairOwner>>,
    next_accepted: AtomicU64,
}

impl PairSlot {
    fn lock(&self) -> MutexGuard<'_, Option<PairOwner>> {
        // A single Option assignment cannot be left half-done.
        self.owner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The owner an accepted connection would claim the slot as.
    pub(crate) fn accepted(&self) -> PairOwner {
        PairOwner::Accepted(self.next_accepted.fetch_add(1, Ordering::Relaxed))
    }

    /// Takes the slot for `owner`; false when someone else holds it.
    pub(crate) fn claim(&self, owner: PairOwner) -> bool {
        let mut slot = self.lock();
        match *slot {
            Some(current) => current == owner,
            None => {
                *slot = Some(owner);
                true
            }
        }
    }

    /// Frees the slot if `owner` holds it.
    pub(crate) fn release(&self, owner: PairOwner) {
        let mut slot = self.lock();
        if *slot == Some(owner) {
            *slot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_owner_at_a_time() {
        let slot = PairSlot::default();
        let (a, b) = (slot.accepted(), slot.accepted());
        assert_ne!(a, b);
        assert!(slot.claim(a));
        assert!(!slot.claim(b));
        assert!(!slot.claim(PairOwner::Endpoint(1)));
        slot.release(b); // not the owner: no effect
        assert!(!slot.claim(b));
        slot.release(a);
        assert!(slot.claim(PairOwner::Endpoint(1)));
        assert!(
            slot.claim(PairOwner::Endpoint(1)),
            "reconnect keeps the slot"
        );
        assert!(!slot.claim(a));
    }
}
