//! Majordomo Protocol (MDP 0.1 and 0.2, and the dialects real peers speak) on top of
//! the pure-Rust [`zmtp`] stack.
//!
//! - [`proto`]: typed MDP messages, parsed from and encoded to frames, no I/O;
//! - [`blocking`]: the client for synchronous code;
//! - [`broker`]: the broker as a sans-IO state machine;
//! - [`client`]: an async client with timeouts, retries, streaming and typed calls;
//! - [`discovery`]: several brokers, and names that stand for several;
//! - [`events`]: publish and subscribe through the broker's event bus;
//! - [`worker`]: an async worker serving one service through a broker.

// Every public item is documented; peer-controlled data must never panic the
// process: no unwrap/expect in the library.
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod blocking;
pub mod broker;
pub mod client;
pub mod codec;
pub mod discovery;
pub mod events;
pub mod proto;
pub mod worker;

pub use client::{CallOptions, Client, ClientError, ClientOptions};
pub use codec::Format;
pub use discovery::Brokers;
pub use proto::Dialect;
pub use worker::{Worker, WorkerOptions};
