//! Caps on what a bound endpoint accepts, overall and per source address:
//! connections alive at once, and connections still in their handshake (which cost
//! memory and, with CURVE, CPU before the peer has proved anything). A connection
//! over a cap, or from an address blocked after failed logins, is closed as soon as
//! it is accepted. The decisions are [`crate::defense`]'s; this file holds them for
//! the endpoint's tasks, reads the clock and writes the (aggregated) log lines.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use crate::defense::{
    per_address_cap, AddressTable, Refusal, RefusalLog, ReplayCache, Source, Topic,
};
use crate::options::SocketOptions;
use crate::proto::mechanism::curve::KEY_LEN;
use crate::proto::mechanism::guard::{Guard, HandshakeGuard};

/// How often, at most, the log says something about one kind of refusal.
const LOG_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// The caps of one bound endpoint.
#[derive(Debug)]
pub(crate) struct Admission {
    connections: Option<(Arc<Semaphore>, usize)>,
    handshakes: Option<(Arc<Semaphore>, usize)>,
    defenses: Arc<Defenses>,
}

/// The per-address state of one bound endpoint, shared by its listener and its
/// connections' handshakes.
#[derive(Debug)]
pub(crate) struct Defenses {
    addresses: Mutex<AddressTable>,
    replays: Mutex<ReplayCache>,
    log: Mutex<RefusalLog>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is a few map operations: a poisoned lock is usable.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Defenses {
    /// Counts a refusal for the log: the first of its kind is said at once, the
    /// others in a summary a second later (and so on, a line a second at most).
    /// The lines carry the span of the task that caused them (the listener's names
    /// the endpoint).
    pub(crate) fn log(
        self: &Arc<Self>,
        topic: Topic,
        source: Source,
        reason: impl FnOnce() -> String,
    ) {
        let now = Instant::now();
        let recorded = lock(&self.log).record(topic, source, now, reason);
        if let Some(line) = recorded.line {
            tracing::warn!("{line}");
        }
        let Some(mut flush_at) = recorded.flush_at else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // not in a runtime: the counts stay untold
        };
        let defenses = self.clone();
        runtime.spawn(
            async move {
                loop {
                    tokio::time::sleep_until(flush_at.into()).await;
                    let (summaries, next) = lock(&defenses.log).flush(Instant::now().max(flush_at));
                    for summary in summaries {
                        tracing::warn!("{summary}");
                    }
                    match next {
                        Some(at) => flush_at = at,
                        None => return,
                    }
                }
            }
            .in_current_span(),
        );
    }
}

/// What an admitted connection holds: a connection slot for its whole life, a
/// handshake slot until [`Admitted::handshake_done`], both overall and of its
/// address (`ipc://` peers are not counted per address).
#[derive(Debug)]
pub(crate) struct Admitted {
    _connection: Option<OwnedSemaphorePermit>,
    handshake: Option<OwnedSemaphorePermit>,
    defenses: Arc<Defenses>,
    source: Source,
    in_handshake: bool,
}

impl Admitted {
    /// Gives back the handshake slots.
    pub(crate) fn handshake_done(&mut self) {
        self.handshake = None;
        if std::mem::take(&mut self.in_handshake) && self.source != Source::Local {
            lock(&self.defenses.addresses).handshake_done(self.source);
        }
    }

    /// What the handshake of the connection from `peer_address` asks before
    /// public-key work and logins.
    pub(crate) fn guard(&self, peer_address: &str) -> Guard {
        Arc::new(AddressGuard {
            defenses: self.defenses.clone(),
            source: self.source,
            peer_address: peer_address.to_owned(),
        })
    }

    /// Where the connection comes from.
    pub(crate) fn source(&self) -> Source {
        self.source
    }

    /// The endpoint's defences (for its log).
    pub(crate) fn defenses(&self) -> &Arc<Defenses> {
        &self.defenses
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if self.source != Source::Local {
            lock(&self.defenses.addresses).closed(self.source, self.in_handshake, Instant::now());
        }
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
    pub(crate) fn new(options: &SocketOptions) -> Self {
        let defenses = &options.handshake_defenses;
        let policy = defenses.policy(
            per_address_cap(options.max_connections_per_address, options.max_connections),
            per_address_cap(options.max_handshakes_per_address, options.max_handshakes),
        );
        Admission {
            connections: cap(options.max_connections),
            handshakes: cap(options.max_handshakes),
            defenses: Arc::new(Defenses {
                addresses: Mutex::new(AddressTable::new(policy)),
                replays: Mutex::new(ReplayCache::new(
                    defenses.curve_replay_cache,
                    defenses.curve_replay_window,
                )),
                log: Mutex::new(RefusalLog::new(LOG_PERIOD)),
            }),
        }
    }

    /// Slots for a new connection from `peer_address`, or why there are none (the
    /// refusal is counted for the log).
    pub(crate) fn admit(&self, peer_address: &str) -> Result<Admitted, Refusal> {
        let source = Source::of(peer_address);
        let now = Instant::now();
        let result = self.try_admit(source, now);
        if let Err(refusal) = &result {
            self.defenses.log(refusal.topic(), source, || {
                format!("{peer_address}: {refusal}")
            });
        }
        result
    }

    fn try_admit(&self, source: Source, now: Instant) -> Result<Admitted, Refusal> {
        if source != Source::Local {
            lock(&self.defenses.addresses).admit(source, now)?;
        }
        // From here the address's slots are held: dropping `admitted` gives them back.
        let mut admitted = Admitted {
            _connection: None,
            handshake: None,
            defenses: self.defenses.clone(),
            source,
            in_handshake: true,
        };
        admitted._connection = take(&self.connections).map_err(Refusal::Connections)?;
        admitted.handshake = take(&self.handshakes).map_err(Refusal::Handshakes)?;
        Ok(admitted)
    }
}

/// The handshake's questions, answered for one accepted connection.
#[derive(Debug)]
struct AddressGuard {
    defenses: Arc<Defenses>,
    source: Source,
    peer_address: String,
}

impl AddressGuard {
    fn refuse(&self, refusal: Refusal) -> String {
        let peer = &self.peer_address;
        self.defenses.log(refusal.topic(), self.source, || {
            format!("{peer}: {refusal}")
        });
        refusal.to_string()
    }
}

impl HandshakeGuard for AddressGuard {
    fn curve_hello(&self, client_short: &[u8; KEY_LEN]) -> Result<(), String> {
        let now = Instant::now();
        if lock(&self.defenses.replays).contains(client_short, now) {
            return Err(self.refuse(Refusal::ReplayedHello));
        }
        if self.source == Source::Local {
            return Ok(());
        }
        let rate = lock(&self.defenses.addresses).hello(self.source, now);
        rate.map_err(|refusal| self.refuse(refusal))
    }

    fn curve_hello_opened(&self, client_short: &[u8; KEY_LEN]) {
        lock(&self.defenses.replays).insert(*client_short, Instant::now());
    }

    fn login_allowed(&self) -> Result<(), String> {
        if self.source == Source::Local {
            return Ok(());
        }
        let allowed = lock(&self.defenses.addresses).login_allowed(self.source, Instant::now());
        allowed.map_err(|refusal| self.refuse(refusal))
    }

    fn login_failed(&self) {
        if self.source != Source::Local {
            lock(&self.defenses.addresses).login_failed(self.source, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(connections: usize, handshakes: usize) -> SocketOptions {
        SocketOptions::default()
            .max_connections(connections)
            .max_handshakes(handshakes)
    }

    #[test]
    fn caps_hold_and_slots_come_back() {
        let mut opts = options(2, 1);
        opts.max_connections_per_address = Some(10);
        opts.max_handshakes_per_address = Some(10);
        let admission = Admission::new(&opts);
        let mut first = admission.admit("10.0.0.1:1").unwrap();
        let refused = admission.admit("10.0.0.2:1").unwrap_err();
        assert_eq!(refused, Refusal::Handshakes(1));
        first.handshake_done();
        let second = admission.admit("10.0.0.3:1").unwrap();
        let refused = admission.admit("10.0.0.4:1").unwrap_err();
        assert!(
            refused.to_string().contains("2 connections already open"),
            "{refused}"
        );
        drop(second);
        drop(first);
        assert!(admission.admit("10.0.0.5:1").is_ok());
        let unlimited = Admission::new(&SocketOptions::default());
        let held: Vec<_> = (0..1000)
            .map(|_| unlimited.admit("10.0.0.1:1").unwrap())
            .collect();
        assert_eq!(held.len(), 1000);
    }

    #[test]
    fn one_address_cannot_fill_the_endpoint() {
        // Per-address caps default to a tenth of the endpoint's.
        let admission = Admission::new(&options(100, 20));
        let mut attacker: Vec<_> = (0..2)
            .map(|_| admission.admit("127.0.0.2:1").unwrap())
            .collect();
        assert_eq!(
            admission.admit("127.0.0.2:1").unwrap_err(),
            Refusal::AddressHandshakes(2)
        );
        for held in &mut attacker {
            held.handshake_done();
        }
        for _ in 0..8 {
            let mut held = admission.admit("127.0.0.2:1").unwrap();
            held.handshake_done();
            attacker.push(held);
        }
        assert_eq!(
            admission.admit("127.0.0.2:1").unwrap_err(),
            Refusal::AddressConnections(10)
        );
        // Everyone else still gets in; ipc peers are not counted per address.
        let others: Vec<_> = (0..20)
            .map(|n| admission.admit(&format!("127.0.0.{}:1", n + 3)))
            .collect();
        assert!(others.iter().all(Result::is_ok));
        assert!(
            admission.admit("ipc:///tmp/x").is_err(),
            "the endpoint's handshake cap"
        );
        drop(others);
        let local: Vec<_> = (0..20).map(|_| admission.admit("ipc:///tmp/x")).collect();
        assert!(local.iter().all(Result::is_ok));
        // A refused connection holds nothing; a closed one gives its slots back.
        drop(local);
        drop(attacker);
        assert!(admission.admit("127.0.0.2:1").is_ok());
        assert_eq!(lock(&admission.defenses.addresses).len(), 0);
    }

    #[test]
    fn the_guard_refuses_replays_and_blocked_addresses() {
        let admission = Admission::new(&SocketOptions::default());
        let admitted = admission.admit("127.0.0.2:1").unwrap();
        let guard = admitted.guard("127.0.0.2:1");
        let key = [7u8; KEY_LEN];
        assert!(guard.curve_hello(&key).is_ok());
        guard.curve_hello_opened(&key);
        let err = guard.curve_hello(&key).unwrap_err();
        assert!(err.contains("replayed"), "{err}");
        // Another connection replaying it is refused too.
        let other = admission.admit("127.0.0.3:1").unwrap().guard("127.0.0.3:1");
        assert!(other.curve_hello(&key).is_err());
        assert!(other.curve_hello(&[8u8; KEY_LEN]).is_ok());
        // Failed logins block the address, at login and at admission.
        for _ in 0..6 {
            guard.login_failed();
        }
        let err = guard.login_allowed().unwrap_err();
        assert!(err.contains("blocked"), "{err}");
        assert!(matches!(
            admission.admit("127.0.0.2:2"),
            Err(Refusal::LoginBackoff { .. })
        ));
        assert!(other.login_allowed().is_ok());
    }
}
