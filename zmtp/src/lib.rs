//! A pure-Rust ZeroMQ stack: ZMTP 3.1 (talking down to 3.0 peers) on tokio, wire
//! compatible with libzmq 4.x peers (pyzmq, czmq, zeromq.js, C programs).

pub mod message;
pub mod proto;

pub use message::Message;
pub use proto::SocketType;
