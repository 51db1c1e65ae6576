//! Defences of a bound endpoint against peers that would hold its slots or burn its
//! CPU before they have proved anything: per-address caps on connections and
//! handshakes, a CURVE HELLO rate and replay check before any public-key work, a
//! growing back-off for addresses whose logins fail, and log lines about all of it
//! aggregated to one a second per reason.
//!
//! Everything here is sans-IO (time is passed in); the socket's listener and the
//! handshake call it. [`HandshakeDefenses`] is the part of the
//! [`SocketOptions`](crate::SocketOptions) that sets it up.

pub mod address_table;
pub mod login_backoff;
pub mod refusal_log;
pub mod replay_cache;
pub mod source;
pub mod token_bucket;

use std::fmt;
use std::time::Duration;

pub use address_table::{AddressPolicy, AddressTable};
pub use login_backoff::{Backoff, LoginFailures};
pub use refusal_log::{Recorded, RefusalLog, Summary, Topic};
pub use replay_cache::ReplayCache;
pub use source::Source;
pub use token_bucket::{Rate, TokenBucket};

/// How a bound endpoint meters handshakes per source address (see
/// [`Source`]: an IPv4 address, an IPv6 /64; `ipc://` peers are not metered).
/// The defaults are far above what one well-behaved host does, and on for every
/// socket: they only act on servers (PLAIN and CURVE) and on bound endpoints.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HandshakeDefenses {
    /// CURVE: HELLOs one address may have opened per second, sustained (default
    /// 100). Each costs the server two X25519 operations; one over the rate gets
    /// ERROR 300 (temporary failure) before any public-key work.
    pub curve_hellos_per_second: f64,
    /// CURVE: HELLOs one address may send at once above the rate (default 200).
    pub curve_hello_burst: u32,
    /// CURVE: client short-term keys remembered, so that a replayed HELLO is refused
    /// before any public-key work (default 16 384, about 1.6 MiB at most; 0: off).
    pub curve_replay_cache: usize,
    /// CURVE: how long a client short-term key is remembered (default 10 minutes).
    pub curve_replay_window: Duration,
    /// PLAIN and CURVE: failed logins an address may have before it is blocked
    /// (default 5).
    pub login_failures_allowed: u32,
    /// The first block after too many failed logins (default 1 s); each further
    /// failure blocks twice as long, up to [`HandshakeDefenses::login_backoff_max`].
    /// A blocked address's connections are closed as they are accepted, and its
    /// logins refused (ERROR 300) without being checked.
    pub login_backoff: Duration,
    /// The longest block; an address quiet for this long is forgotten (default
    /// 60 s).
    pub login_backoff_max: Duration,
    /// Addresses remembered once they have no connection open (HELLO buckets not yet
    /// refilled, failed logins not yet forgotten), at most (default 10 000, about
    /// 100 bytes each).
    pub max_idle_addresses: usize,
}

impl Default for HandshakeDefenses {
    fn default() -> HandshakeDefenses {
        HandshakeDefenses {
            curve_hellos_per_second: 100.0,
            curve_hello_burst: 200,
            curve_replay_cache: 16_384,
            curve_replay_window: Duration::from_secs(600),
            login_failures_allowed: 5,
            login_backoff: Duration::from_secs(1),
            login_backoff_max: Duration::from_secs(60),
            max_idle_addresses: 10_000,
        }
    }
}

impl HandshakeDefenses {
    /// The per-address policy for an endpoint with these caps per address.
    pub fn policy(
        &self,
        max_connections: Option<usize>,
        max_handshakes: Option<usize>,
    ) -> AddressPolicy {
        AddressPolicy {
            max_connections,
            max_handshakes,
            hello_rate: Rate {
                per_second: self.curve_hellos_per_second.max(0.0),
                burst: f64::from(self.curve_hello_burst.max(1)),
            },
            login_backoff: Backoff {
                failures_allowed: self.login_failures_allowed,
                first: self.login_backoff,
                max: self.login_backoff_max.max(self.login_backoff),
            },
            max_idle_addresses: self.max_idle_addresses,
        }
    }
}

/// The per-address cap in force: the one given, or else a tenth of the endpoint's
/// cap (at least 1), so that one address never fills the endpoint; none when the
/// endpoint has no cap either.
pub fn per_address_cap(given: Option<usize>, endpoint_cap: Option<usize>) -> Option<usize> {
    given.or_else(|| endpoint_cap.map(|n| (n / 10).max(1)))
}

/// Why a connection or a handshake step was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Refusal {
    /// The endpoint has this many connections open (its cap).
    Connections(usize),
    /// The endpoint has this many connections in their handshake (its cap).
    Handshakes(usize),
    /// The peer's address has this many connections open (its cap).
    AddressConnections(usize),
    /// The peer's address has this many connections in their handshake (its cap).
    AddressHandshakes(usize),
    /// The peer's address is blocked after failed logins.
    LoginBackoff {
        /// For how much longer.
        left: Duration,
        /// Failed logins it has to its name.
        failures: u32,
    },
    /// The peer's address sent CURVE HELLOs faster than this many a second.
    HelloRate(f64),
    /// The CURVE HELLO carries a client short-term key seen before: a replay.
    ReplayedHello,
}

impl Refusal {
    /// How the log groups it.
    pub fn topic(&self) -> Topic {
        let (what, why) = match self {
            Refusal::Connections(_) => ("connections", "the endpoint's connection cap"),
            Refusal::Handshakes(_) => ("connections", "the endpoint's handshake cap"),
            Refusal::AddressConnections(_) => ("connections", "the per-address connection cap"),
            Refusal::AddressHandshakes(_) => ("connections", "the per-address handshake cap"),
            Refusal::LoginBackoff { .. } => {
                ("connections and logins", "blocked after failed logins")
            }
            Refusal::HelloRate(_) => ("CURVE HELLOs", "over the per-address HELLO rate"),
            Refusal::ReplayedHello => ("CURVE HELLOs", "replayed"),
        };
        Topic { what, why }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Connections(n) => write!(f, "{n} connections already open"),
            Refusal::Handshakes(n) => write!(f, "{n} connections already in their handshake"),
            Refusal::AddressConnections(n) => {
                write!(f, "{n} connections from this address already open")
            }
            Refusal::AddressHandshakes(n) => {
                write!(
                    f,
                    "{n} connections from this address already in their handshake"
                )
            }
            Refusal::LoginBackoff { left, failures } => write!(
                f,
                "the address is blocked for {:.1} s more after {failures} failed logins",
                left.as_secs_f64()
            ),
            Refusal::HelloRate(rate) => {
                write!(
                    f,
                    "more than {rate} CURVE HELLOs a second from this address"
                )
            }
            Refusal::ReplayedHello => {
                f.write_str("replayed CURVE HELLO: its client short-term key was used before")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_address_caps_default_to_a_tenth_of_the_endpoints() {
        assert_eq!(per_address_cap(None, Some(20_000)), Some(2_000));
        assert_eq!(per_address_cap(None, Some(1_000)), Some(100));
        assert_eq!(per_address_cap(None, Some(5)), Some(1));
        assert_eq!(per_address_cap(Some(7), Some(1_000)), Some(7));
        assert_eq!(per_address_cap(None, None), None);
    }
}
