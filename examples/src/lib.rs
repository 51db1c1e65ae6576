//! Runnable examples live beside this crate's manifest: `cargo run -p zmtp-examples
//! --example hello`. This library holds the little setup the worker examples share.

/// The broker a worker example serves through: the first command-line argument, or
/// `tcp://127.0.0.1:5555` (where `mdp-broker` listens by default). Also starts logging
/// to standard error and says what the worker is doing.
pub fn worker_setup(what: &str) -> String {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let broker = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tcp://127.0.0.1:5555".into());
    eprintln!("{what} serving through {broker}");
    broker
}
