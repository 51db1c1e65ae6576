//! Attacks on a Majordomo broker, run against the real `mdp-broker` binary, that
//! count what it loses.
//!
//! - [`torture`]: malformed greetings and frames (whole or a byte at a time),
//!   declared lengths of 2^63, truncated commands and metadata, wrong socket types,
//!   invalid MDP of every kind, a slowloris, and a client that never reads its
//!   replies, all at once, then the hostile and bursty peers of [`hostile`] (floods
//!   for unserved services, huge names, name churn, PARTIALs of empty frames, stolen
//!   routing ids, an asynchronous burst), while a well-behaved client on the side
//!   must keep being served and the broker's RSS must stay under a bound.
//! - [`chaos`]: steady load while workers are killed (`kill -9`) and the broker is
//!   restarted once; every request must come back with its own body. Without the
//!   kills it is the soak.
//!
//! - [`cluster`]: three peered brokers, workers of every dialect spread over them,
//!   clients on each and clients that know all, while a random broker is killed
//!   and restarted: nothing may be lost.
//!
//! The `mdp-torture` binary runs them (`torture`, `chaos`, `soak`, `cluster`); its tests run
//! the short modes, `scripts/torture` the long ones.

pub mod attacks;
pub mod broker_process;
pub mod chaos;
pub mod cluster;
pub mod hostile;
pub mod junk;
pub mod load;
pub mod malformed_mdp;
pub mod raw_zmtp;
pub mod sparkline;
pub mod torture;
pub mod wait;

pub use broker_process::BrokerProcess;
