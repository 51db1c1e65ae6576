//! The sans-IO protocol core: bytes in, typed greetings, frames and commands out, and
//! back. Nothing here touches a socket, a clock or a task, so every edge case is a
//! unit test and a fuzz target. [`Handshake`] runs a connection up to READY,
//! [`Connection`] from there on.
//!
//! It depends on nothing else in the crate: the [`Message`] it assembles and the
//! [`Authenticator`] a server's handshake asks are defined here (and re-exported at
//! the crate root and in [`crate::auth`]).

pub mod authenticator;
pub mod command;
pub mod connection;
pub mod frame;
pub mod greeting;
pub mod handshake;
pub mod liveness;
pub mod mechanism;
pub mod message;
pub mod metadata;
pub mod socket_type;
pub mod wire_queue;
pub mod z85;

pub use authenticator::{AuthRequest, Authenticator, Credentials};
pub use command::{Command, CommandError};
pub use connection::{Connection, ConnectionConfig, Event, Fault, MAX_FRAMES_PER_MESSAGE};
pub use frame::{Frame, FrameCodec, FrameError};
pub use greeting::{Greeting, GreetingError, MechanismName, Version};
pub use handshake::{Handshake, HandshakeConfig, HandshakeError, PeerInfo};
pub use liveness::{HeartbeatConfig, Liveness};
pub use mechanism::MechanismConfig;
pub use message::Message;
pub use metadata::{Metadata, MetadataError};
pub use socket_type::SocketType;
pub use wire_queue::WireQueue;
