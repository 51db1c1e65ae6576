//! Who may connect: the [`Authenticator`] a server's handshake asks, and the
//! [`AuthRequest`] it asks about (what ZAP, RFC 27, gives libzmq users). The
//! allow-lists built from files are in [`crate::auth`].

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

/// What a peer presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// NULL: nothing but the address.
    Null,
    /// PLAIN: a user name and a password (in clear on the wire).
    Plain {
        /// The user name.
        username: Bytes,
        /// The password.
        password: Bytes,
    },
    /// CURVE: the client's long-term public key, proven by the handshake.
    Curve {
        /// The client's public key.
        public_key: [u8; 32],
    },
}

/// One peer asking to be let in.
#[derive(Debug, Clone, Copy)]
pub struct AuthRequest<'a> {
    /// `"NULL"`, `"PLAIN"` or `"CURVE"`.
    pub mechanism: &'a str,
    /// The peer's address (`127.0.0.1:40312`, `ipc:///path`, `inproc://name`).
    pub peer_address: &'a str,
    /// The routing id the peer announced (empty if none).
    pub routing_id: &'a [u8],
    /// What it presented.
    pub credentials: &'a Credentials,
}

type Decide = dyn Fn(&AuthRequest<'_>) -> Result<(), String> + Send + Sync;

/// Decides which peers may connect. Cheap to clone (shared).
#[derive(Clone)]
pub struct Authenticator(Arc<Decide>);

impl Authenticator {
    /// An authenticator from a function: `Ok(())` lets the peer in, `Err(reason)`
    /// refuses it (the reason is sent to the peer in ERROR, cut to 255 bytes).
    pub fn new(
        decide: impl Fn(&AuthRequest<'_>) -> Result<(), String> + Send + Sync + 'static,
    ) -> Authenticator {
        Authenticator(Arc::new(decide))
    }

    /// Asks about `request`.
    pub fn authenticate(&self, request: &AuthRequest<'_>) -> Result<(), String> {
        (self.0)(request)
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Authenticator")
    }
}

impl PartialEq for Authenticator {
    /// The same authenticator (clones of one), not merely one that decides alike.
    fn eq(&self, other: &Authenticator) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Authenticator {}
