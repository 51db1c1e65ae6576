//! Opens N idle ZMTP connections (DEALER, NULL mechanism) to a broker, and reports
//! how much resident memory the broker took per connection: its VmRSS before the
//! first connection and once all N have finished their handshake and sat idle.
//!
//! ```text
//! cargo run --release -p mdp-broker -- -b tcp://127.0.0.1:5555 &
//! cargo run --release -p zmtp-examples --example idle_clients -- \
//!     tcp://127.0.0.1:5555 --clients 10000 --broker-pid $!
//! ```
//!
//! Each connection is a bare TCP stream driven through zmtp's sans-IO handshake,
//! so this process stays small whatever N is; it needs N file descriptors
//! (`ulimit -n`), and so does the broker.

use std::time::Duration;

use bytes::BytesMut;
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zmtp::proto::handshake::{Handshake, HandshakeConfig};
use zmtp::SocketType;

/// Measures a broker's memory per idle connected client.
#[derive(Debug, Parser)]
struct Args {
    /// The broker's endpoint (tcp://HOST:PORT).
    broker: String,
    /// Connections to open.
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    /// The broker's process id, whose VmRSS is read before and after.
    #[arg(long)]
    broker_pid: u32,
    /// Handshakes in progress at once.
    #[arg(long, default_value_t = 256)]
    parallel: usize,
    /// Seconds to wait, all connected, before reading the broker's memory.
    #[arg(long, default_value_t = 2.0)]
    settle: f64,
    /// A name for the RESULT line.
    #[arg(long, default_value = "broker")]
    label: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let address = args
        .broker
        .strip_prefix("tcp://")
        .ok_or("the endpoint must be tcp://HOST:PORT")?
        .to_string();
    let before = rss_kib(args.broker_pid).ok_or("cannot read the broker's /proc status")?;

    let mut streams = Vec::with_capacity(args.clients);
    let mut pending = tokio::task::JoinSet::new();
    let mut started = 0;
    while streams.len() < args.clients {
        while started < args.clients && pending.len() < args.parallel {
            pending.spawn(connect(address.clone()));
            started += 1;
        }
        match pending.join_next().await {
            Some(Ok(Ok(stream))) => streams.push(stream),
            Some(Ok(Err(e))) => {
                return Err(format!(
                    "connection {} failed: {e} (is `ulimit -n` above {} here and in the broker?)",
                    streams.len() + 1,
                    args.clients
                )
                .into())
            }
            Some(Err(e)) => return Err(e.into()),
            None => break,
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let after = rss_kib(args.broker_pid).ok_or("the broker is gone")?;
    let per_client = after.saturating_sub(before) as f64 / args.clients as f64;
    println!(
        "RESULT label={} clients={} rss_before_kib={before} rss_after_kib={after} per_client_kib={per_client:.1}",
        args.label, args.clients
    );
    drop(streams);
    Ok(())
}

/// One connection through the ZMTP handshake, as a DEALER with the NULL mechanism.
async fn connect(address: String) -> Result<TcpStream, Box<dyn std::error::Error + Send + Sync>> {
    let mut stream = TcpStream::connect(&address).await?;
    let mut handshake = Handshake::new(HandshakeConfig::new(SocketType::Dealer));
    let mut input = BytesMut::with_capacity(512);
    let exchange = async {
        loop {
            let done = handshake.handle_input(&mut input)?;
            while let Some(out) = handshake.take_output() {
                stream.write_all(&out).await?;
            }
            if done.is_some() {
                return Ok::<_, Box<dyn std::error::Error + Send + Sync>>(());
            }
            if stream.read_buf(&mut input).await? == 0 {
                return Err("the broker closed the connection".into());
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .map_err(|_| "handshake timed out")??;
    Ok(stream)
}

/// Resident set size of `pid` in KiB (VmRSS).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
