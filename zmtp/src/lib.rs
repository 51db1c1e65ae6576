//! A pure-Rust ZeroMQ stack: ZMTP 3.1 (talking down to 3.0 peers) on tokio, wire
//! compatible with libzmq 4.x peers (pyzmq, czmq, zeromq.js, C programs).
//!
//! - [`Socket`] is the socket API (DEALER, ROUTER, REQ, REP, PUB, SUB, XPUB, XSUB, PUSH,
//!   PULL, PAIR over `tcp://`, `ipc://` and `inproc://`);
//! - [`Message`] is a multipart message of [`bytes::Bytes`] frames;
//! - [`Monitor`] streams a socket's connection events ([`SocketEvent`]);
//! - [`proxy`](mod@proxy) forwards between two sockets (libzmq `zmq_proxy`, steerable);
//! - [`proto`] is the sans-IO protocol core (greeting, frames, commands, handshake),
//!   usable on its own.

// Every public item is documented; peer-controlled data must never panic the
// process: no unwrap/expect in the library.
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod auth;
pub mod backoff;
mod cancel_watch;
pub mod certificate;
pub mod clock;
pub mod defense;
mod delivery;
mod engine;
pub mod error;
pub mod id_hash;
mod inbound;
mod inline_body;
mod input_gate;
mod log_throttle;
pub use proto::message;
mod direct_read;
mod direct_write;
mod framed_batch;
pub mod monitor;
pub mod options;
mod own_subscriptions;
mod peer_key;
mod pipe;
pub mod proto;
pub mod proxy;
mod read_buffers;
mod read_plan;
mod send_budget;
mod signal;
mod socket;
mod topic_trie;
pub mod transport;
mod util;

pub use backoff::Backoff;
pub use defense::HandshakeDefenses;
pub use error::Error;
pub use id_hash::{IdHashMap, IdHashSet};
pub use message::Message;
pub use monitor::{Monitor, Reason, ReasonKind, SocketEvent};
pub use options::SocketOptions;
pub use proto::mechanism::curve::CurveKeyPair;
pub use proto::SocketType;
pub use proxy::{proxy, proxy_steerable, ProxyControl, ProxyStatistics};
pub use socket::{PeerId, PeerKey, RecvHalf, RouterEvent, SendHalf, Socket, XpubVerbosity};
pub use transport::Endpoint;
pub use util::printable;
