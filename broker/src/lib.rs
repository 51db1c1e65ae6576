//! `mdp-broker` and `mdp` as a library: both command lines, callable from another
//! program with its own arguments (the Python package runs them in-process, so
//! `pip install` gives both). The binaries are these two functions.
//!
//! ```no_run
//! // What `mdp-broker -b tcp://127.0.0.1:5555` does, until Ctrl-C or SIGTERM:
//! let code = mdp_broker::broker_main(["mdp-broker", "-b", "tcp://127.0.0.1:5555"]);
//! ```

mod broker_cli;
mod demo;
mod health;
mod logging;
mod mdp_cli;
mod metrics;
mod peering;
mod pubsub;
mod security;
mod serve;
mod signal;

pub use broker_cli::main_with as broker_main;
pub use mdp_cli::main_with as mdp_main;
