//! What a server's handshake asks of its endpoint before its costly or sensitive
//! steps: may it open this CURVE HELLO (public-key work), may it check this peer's
//! credentials. The socket answers from its per-address state (rates, replays,
//! failed logins; see [`crate::defense`]); the state machine stays free of clocks.
//!
//! A refusal here is temporary by nature: the peer gets ERROR with the ZAP status
//! 300 (temporary failure, RFC 27), which libzmq reports as
//! `ZMQ_EVENT_HANDSHAKE_FAILED_AUTH` with status 300, and the connection closes.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::curve::KEY_LEN;
use crate::proto::command::Command;
use crate::proto::handshake::HandshakeError;

/// The endpoint's side of a server handshake; see the module documentation.
pub(crate) trait HandshakeGuard: Send + Sync + std::fmt::Debug {
    /// A well-formed CURVE HELLO with the client short-term key `client_short` came:
    /// `Ok` to open it (public-key work), `Err(reason)` to refuse it (a replay, or
    /// over the address's HELLO rate).
    fn curve_hello(&self, client_short: &[u8; KEY_LEN]) -> Result<(), String>;
    /// The HELLO with `client_short` opened (so a replay of it can be told).
    fn curve_hello_opened(&self, client_short: &[u8; KEY_LEN]);
    /// `Ok` to check the peer's credentials now, `Err(reason)` if its address is
    /// blocked after failed logins.
    fn login_allowed(&self) -> Result<(), String>;
    /// The peer's credentials were refused.
    fn login_failed(&self);
}

/// A guard shared by the handshake and the socket.
pub(crate) type Guard = Arc<dyn HandshakeGuard>;

/// The ZAP status code of a temporary refusal (RFC 27: 300, temporary failure).
const TEMPORARY_STATUS: &[u8] = b"300";

/// Refuses the peer for now: writes ERROR 300 and returns
/// [`HandshakeError::Refused`] with the reason (for our logs and monitor).
pub(crate) fn refuse_for_now(reason: String, out: &mut BytesMut) -> HandshakeError {
    Command::Error(Bytes::from_static(TEMPORARY_STATUS)).encode_frame(out);
    HandshakeError::Refused(reason)
}

/// Asks `guard`, if there is one, whether credentials may be checked now.
pub(crate) fn check_login(guard: Option<&Guard>, out: &mut BytesMut) -> Result<(), HandshakeError> {
    match guard.map(|g| g.login_allowed()) {
        Some(Err(reason)) => Err(refuse_for_now(reason, out)),
        _ => Ok(()),
    }
}

/// A guard for tests: refuses what it is told to, and records what it was asked.
#[cfg(test)]
pub(crate) mod test_guard {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    use super::{HandshakeGuard, KEY_LEN};

    #[derive(Debug, Default)]
    pub(crate) struct TestGuard {
        /// Refuse every HELLO with this reason.
        pub(crate) refuse_hellos: Option<String>,
        /// Refuse every login with this reason (the address is blocked).
        pub(crate) blocked: Mutex<Option<String>>,
        pub(crate) hellos: Mutex<Vec<[u8; KEY_LEN]>>,
        pub(crate) opened: Mutex<Vec<[u8; KEY_LEN]>>,
        pub(crate) failures: AtomicU32,
    }

    impl TestGuard {
        pub(crate) fn failures(&self) -> u32 {
            self.failures.load(Ordering::SeqCst)
        }

        pub(crate) fn block(&self, reason: &str) {
            *self.blocked.lock().unwrap() = Some(reason.to_owned()); // ok: cfg(test) guard
        }
    }

    impl HandshakeGuard for TestGuard {
        fn curve_hello(&self, client_short: &[u8; KEY_LEN]) -> Result<(), String> {
            self.hellos.lock().unwrap().push(*client_short); // ok: cfg(test) guard
            self.refuse_hellos.clone().map_or(Ok(()), Err)
        }

        fn curve_hello_opened(&self, client_short: &[u8; KEY_LEN]) {
            self.opened.lock().unwrap().push(*client_short); // ok: cfg(test) guard
        }

        fn login_allowed(&self) -> Result<(), String> {
            self.blocked.lock().unwrap().clone().map_or(Ok(()), Err) // ok: cfg(test) guard
        }

        fn login_failed(&self) {
            self.failures.fetch_add(1, Ordering::SeqCst);
        }
    }
}
