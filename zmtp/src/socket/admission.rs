//! Caps on what a bound endpoint accepts: connections alive at once, and connections
//! still in their handshake (which cost memory and, with CURVE, CPU before the peer
//! has proved anything). A connection over a cap is closed as soon as it is accepted.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The caps of one bound endpoint.
#[derive(Debug)]
pub(crate) struct Admission {
    connections: Option<(Arc<Semaphore>, usize)>,
    handshakes: Option<(Arc<Semaphore>, usize)>,
}

/// What an admitted connection holds: a connection slot for its whole life, a
/// handshake slot until [`Admitted::handshake_done`].
#[derive(Debug)]
pub(crate) struct Admitted {
    _connection: Option<OwnedSemaphorePermit>,
    handshake: Option<OwnedSemaphorePermit>,
}

impl Admitted {
    /// Gives back the handshake slot.
    pub(crate) fn handshake_done(&mut self) {
        self.handshake = None;
    }
}

fn cap(limit: Option<usize>) -> Option<(Arc<Semaphore>, usize)> {
    limit.map(|n| (Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS))), n))
}

fn take(cap: &Option<(Arc<Semaphore>, usize)>) -> Result<Option<OwnedSemaphorePermit>, usize> {
    match cap {
        None => Ok(None),
        Some((slots, n)) => slots.clone().try_acquire_owned().map(Some).map_err(|_| *n),
    }
}

impl Admission {
    pub(crate) fn new(max_connections: Option<usize>, max_handshakes: Option<usize>) -> Self {
        Admission {
            connections: cap(max_connections),
            handshakes: cap(max_handshakes),
        }
    }

    /// Slots for a new connection, or why there are none.
    pub(crate) fn admit(&self) -> Result<Admitted, String> {
        let connection =
            take(&self.connections).map_err(|n| format!("{n} connections already open"))?;
        let handshake = take(&self.handshakes)
            .map_err(|n| format!("{n} connections already in their handshake"))?;
        Ok(Admitted {
            _connection: connection,
            handshake,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_slots_come_back() {
        let admission = Admission::new(Some(2), Some(1));
        let mut first = admission.admit().unwrap();
        let refused = admission.admit().unwrap_err();
        assert!(refused.contains("in their handshake"), "{refused}");
        first.handshake_done();
        let second = admission.admit().unwrap();
        let refused = admission.admit().unwrap_err();
        assert!(refused.contains("2 connections already open"), "{refused}");
        drop(second);
        drop(first);
        assert!(admission.admit().is_ok());
        let unlimited = Admission::new(None, None);
        let held: Vec<_> = (0..1000).map(|_| unlimited.admit().unwrap()).collect();
        assert_eq!(held.len(), 1000);
    }
}
