//! Test support for this workspace's interop tests.
//!
//! - [`python()`]: a Python with pyzmq (and msgpack, majortomo, six) in a virtual
//!   environment under `target/interop-venv`, created on first use. Creation failures
//!   panic: interop tests never skip silently.
//! - [`node()`]: Node.js with the `zeromq` package of `examples/node`, installed
//!   under `target/interop-node` on first use (failures panic too).
//! - [`PyPeer`]: a Python child process driven by stdin/stdout lines, with bounded
//!   waits and killed on drop.
//! - [`free_tcp_port`], [`ipc_endpoint`]: fresh endpoints.
//! - [`frames`]: a line-friendly hex encoding of multipart messages.
//! - [`interop`]: transports, sides and endpoints of the pyzmq interop tests, and
//!   [`interop::ZmqPeer`], a driver for the pyzmq peer `zmtp/tests/py/zmq_peer.py`.
//! - [`corpus`]: fuzz corpora replayed as plain tests.
//! - [`Relay`]: a TCP relay that tampers with one frame on its way to the server.

pub mod corpus;
mod endpoints;
pub mod frames;
pub mod interop;
mod node;
mod peer;
mod relay;
mod setup;
mod venv;

pub use endpoints::{
    free_tcp_port, ipc_endpoint, ipc_path, restartable_endpoint, restartable_port, tcp_endpoint,
};
pub use node::{node, node_examples};
pub use peer::{PyPeer, LINE_TIMEOUT};
pub use relay::{Relay, Tamper};
pub use venv::{pip_install, python, workspace_root, PYTHON_PACKAGES};
