//! The attacks, each against a broker's endpoint: invalid MDP from a DEALER, byte
//! streams that are not ZMTP (whole, or a byte at a time), a slowloris that opens
//! many connections and never finishes a greeting, and a client that sends requests
//! and never reads the replies.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use zmtp::{Message, Socket, SocketOptions, SocketType};

use crate::junk::Junk;
use crate::malformed_mdp::malformed_mdp;
use crate::raw_zmtp::{bad_streams, greeting};
use crate::wait::{wait_until, within};

/// Floods the broker from one DEALER with `rounds` rounds of [`malformed_mdp`],
/// reading what the broker answers (DISCONNECTs) between rounds. Returns how many
/// messages it sent.
pub async fn flood_mdp(endpoint: &str, rounds: usize) -> Result<usize, String> {
    let options = SocketOptions::default().linger(Duration::ZERO);
    let mut socket = Socket::with_options(SocketType::Dealer, options).map_err(text)?;
    socket.connect(endpoint).map_err(text)?;
    let mut junk = Junk(0x9e37_79b9_7f4a_7c15);
    let big = Bytes::from(vec![0x5a; 4 << 20]);
    let mut sent = 0;
    for round in 0..rounds {
        for msg in malformed_mdp(round, &mut junk, &big) {
            within("the broker to take an invalid message", socket.send(msg))
                .await?
                .map_err(text)?;
            sent += 1;
        }
        while socket.try_recv().is_ok() {}
    }
    Ok(sent)
}

/// Sends `bytes` on a fresh TCP connection (all at once, or one byte per write) and
/// waits until the broker closes it.
pub async fn send_and_expect_close(
    addr: String,
    what: &'static str,
    bytes: Vec<u8>,
    bytewise: bool,
) -> Result<(), String> {
    let mut stream = TcpStream::connect(&addr).await.map_err(text)?;
    let _ = stream.set_nodelay(true);
    // The broker may close before reading everything: a failed write is fine.
    if bytewise {
        for byte in &bytes {
            if stream.write_all(std::slice::from_ref(byte)).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
    } else {
        let _ = stream.write_all(&bytes).await;
    }
    let mut sink = [0u8; 4096];
    let closed = async {
        // Its greeting (and READY) may come first; then end of file or a reset.
        while let Ok(1..) = stream.read(&mut sink).await {}
    };
    within(
        &format!("the broker to close a connection that sent {what}"),
        closed,
    )
    .await
}

/// `rounds` rounds of every [`bad_streams`] case, each round's connections at once;
/// the first `bytewise_rounds` rounds send a byte per write. Returns the number of
/// connections.
pub async fn flood_tcp(
    endpoint: &str,
    rounds: usize,
    bytewise_rounds: usize,
) -> Result<usize, String> {
    let addr = tcp_address(endpoint)?;
    let mut junk = Junk(0x2545_f491_4f6c_dd1d);
    let mut connections = 0;
    for round in 0..rounds {
        let mut batch = JoinSet::new();
        for (what, bytes) in bad_streams(&mut junk) {
            batch.spawn(send_and_expect_close(
                addr.clone(),
                what,
                bytes,
                round < bytewise_rounds,
            ));
            connections += 1;
        }
        while let Some(done) = batch.join_next().await {
            done.map_err(text)??;
        }
    }
    Ok(connections)
}

/// Opens `connections` TCP connections that each send the first 10 bytes of a
/// greeting and then nothing; returns them, open. The broker must keep serving
/// others meanwhile, and close them when its handshake timeout passes.
pub async fn slowloris(endpoint: &str, connections: usize) -> Result<Vec<TcpStream>, String> {
    let addr = tcp_address(endpoint)?;
    let mut open = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut stream = TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("slowloris connection {}: {e}", open.len()))?;
        // Once the broker has given up on a connection, writing to it may fail.
        let _ = stream.write_all(&greeting(3, b"NULL")[..10]).await;
        open.push(stream);
    }
    Ok(open)
}

/// A client that sends `requests` requests with 16 KiB bodies to the `sink` service
/// and never reads a reply (its receive queue holds one message, so its connection
/// stops reading at once). Returns once the sink worker has served them all
/// (`sink_served` counts them), with the socket still open and unread.
pub async fn flood_unread(
    endpoint: &str,
    requests: usize,
    sink_served: &AtomicUsize,
) -> Result<Socket, String> {
    let options = SocketOptions::default().recv_hwm(1).linger(Duration::ZERO);
    let mut socket = Socket::with_options(SocketType::Dealer, options).map_err(text)?;
    socket.connect(endpoint).map_err(text)?;
    let body = Bytes::from(vec![0x42; 16 << 10]);
    let start = sink_served.load(Ordering::SeqCst);
    for _ in 0..requests {
        let request: Message = [
            Bytes::new(),
            Bytes::from_static(b"MDPC01"),
            Bytes::from_static(b"sink"),
            body.clone(),
        ]
        .into_iter()
        .collect();
        within("the broker to take a request", socket.send(request))
            .await?
            .map_err(text)?;
    }
    wait_until("the sink worker to serve every unread request", || {
        sink_served.load(Ordering::SeqCst) >= start + requests
    })
    .await?;
    Ok(socket)
}

/// `tcp://HOST:PORT` → `HOST:PORT`.
fn tcp_address(endpoint: &str) -> Result<String, String> {
    endpoint
        .strip_prefix("tcp://")
        .map(str::to_owned)
        .ok_or_else(|| format!("raw attacks need a tcp:// endpoint, not {endpoint}"))
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}
