//! The Majordomo protocol as data: typed messages, parsed from and encoded to frames,
//! for every dialect real peers speak. No I/O.
//!
//! The broker classifies each inbound message with [`FromPeer::parse`] (after the
//! ROUTER routing id) and answers each peer in the dialect it spoke; clients and
//! workers use the `encode`/`parse` pair of their side.

mod dialect;
mod error;
mod message;
mod peering;

pub use dialect::{Dialect, MDPC01, MDPC02, MDPW01, MDPW02, OVERSEER_CLIENT, OVERSEER_WORKER};
pub use error::ParseError;
pub use message::{FromPeer, Reply, ReplyKind, Request, ToWorker, WorkerCommand};
pub use peering::{Capacity, PeerCommand, MDPB01};

/// The prefix of the Majordomo Management Interface's service names (RFC 8).
pub const MMI_PREFIX: &[u8] = b"mmi.";

/// Whether `service` belongs to the Majordomo Management Interface (`mmi.*`).
pub fn is_mmi(service: &[u8]) -> bool {
    service.starts_with(MMI_PREFIX)
}

#[cfg(test)]
mod tests;
