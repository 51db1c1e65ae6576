//! The sans-IO protocol core: bytes in, typed greetings, frames and commands out, and
//! back. Nothing here touches a socket, a clock or a task, so every edge case is a
//! unit test and a fuzz target.

pub mod command;
pub mod frame;
pub mod greeting;
pub mod handshake;
pub mod mechanism;
pub mod metadata;
pub mod socket_type;
pub mod z85;

pub use command::{Command, CommandError};
pub use frame::{Frame, FrameCodec, FrameError};
pub use greeting::{Greeting, GreetingError, MechanismName, Version};
pub use handshake::{Handshake, HandshakeConfig, HandshakeError, PeerInfo};
pub use mechanism::MechanismConfig;
pub use metadata::{Metadata, MetadataError};
pub use socket_type::SocketType;
