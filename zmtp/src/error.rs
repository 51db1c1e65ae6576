//! The socket-level error type.

use bytes::Bytes;

use crate::proto::SocketType;
use crate::transport::{Endpoint, EndpointError};

/// What went wrong with a socket operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The endpoint string could not be parsed.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// Binding failed (address in use, permission, no such interface).
    #[error("cannot bind {endpoint}: {source}")]
    Bind {
        /// The endpoint asked for.
        endpoint: Endpoint,
        /// The OS error.
        source: std::io::Error,
    },
    /// The socket type does not allow this operation (for example `send` on SUB).
    #[error("a {socket_type} socket cannot {operation}")]
    Unsupported {
        /// Our socket type.
        socket_type: SocketType,
        /// What was attempted.
        operation: &'static str,
    },
    /// REQ/REP: the call breaks the strict send/recv alternation (libzmq EFSM).
    #[error("{0}")]
    WrongState(&'static str),
    /// A message with no frames cannot be sent.
    #[error("cannot send a message with no frames")]
    EmptyMessage,
    /// ROUTER with `router_mandatory`: no connected peer has this routing id.
    #[error("no peer with routing id {}", crate::util::printable(.0))]
    HostUnreachable(Bytes),
    /// `try_send`/`try_recv` could not proceed without waiting.
    #[error("the operation would block")]
    WouldBlock,
    /// An invalid option value.
    #[error("invalid option: {0}")]
    InvalidOption(&'static str),
    /// The socket has been closed.
    #[error("the socket is closed")]
    Closed,
    /// [`Socket::disconnect`](crate::Socket::disconnect): this socket is not
    /// connected to that endpoint.
    #[error("not connected to {0}")]
    NotConnected(crate::Endpoint),
    /// The async runtime could not be started (blocking wrappers).
    #[error("cannot start the async runtime: {0}")]
    Runtime(String),
}
