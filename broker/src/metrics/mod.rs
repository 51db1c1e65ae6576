//! `--metrics ADDR`: the broker's figures in Prometheus' text format over HTTP
//! (`GET /metrics`), the same figures `mmi.stats` answers.
//!
//! The endpoint is open to whoever reaches the address, so no scraper may deny it
//! to the others or cost the broker without bound:
//!
//! - It runs on an OS thread of its own ("mdp-metrics") with its own current-thread
//!   tokio runtime; HTTP (hyper) and rendering happen there, never on the broker
//!   loop's thread.
//! - A scrape is answered from a cached body: the broker loop is asked for its
//!   figures at most once per [`REFRESH_PERIOD`], scrapes meanwhile share one
//!   refresh under way and one rendered body (a shared `Bytes`, never a copy per
//!   scrape). See [`cache`].
//! - The body is at most [`MAX_BODY`] bytes: past it, services are left out (live
//!   ones are kept first, then the shortest names) and a
//!   `# truncated: N services not shown` comment says so. See [`render`].
//! - At most [`MAX_CONNECTIONS`] connections at once, at most
//!   [`MAX_CONNECTIONS_PER_SOURCE`] from one address (IPv6: one /64). A connection
//!   over either cap gets a `503` if the kernel takes it at once, and is closed: the
//!   accept loop never waits for a slot. See [`slots`].
//! - A connection must send its request headers within [`HEADER_TIMEOUT`] (also
//!   between keep-alive requests), take each answer wholly within
//!   [`WRITE_TIMEOUT`], and lives at most [`MAX_CONNECTION_LIFE`] (then it finishes
//!   the answer under way and closes). Its kernel buffers are small (128 KiB to
//!   send), so "taken" means taken by the scraper, not parked in the kernel. See
//!   [`deadline`].
//! - What a client can make it log is counted: the first of a kind is written at
//!   once, the rest at most once per second per kind, naming the busiest
//!   addresses ([`RefusalLog`], the log of the ZMTP endpoints' refusals).
//!
//! Memory, then: the cached body and one being rendered, plus bodies still being
//! written to slow readers. A connection holds one body at a time, for at most
//! [`WRITE_TIMEOUT`], and a new body is made at most once a period, so at most
//! about 12 bodies (48 MiB) are alive in the worst case, usually one; plus hyper's
//! buffers, at most [`MAX_HEADER_BUFFER`] per connection.

mod cache;
mod deadline;
mod render;
mod scrape;
mod slots;

use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use zmtp::defense::{RefusalLog, Source, Topic};

use crate::serve::StatsHandle;
use deadline::WriteDeadline;
pub use scrape::REFRESH_TIMEOUT;
use scrape::{lock, Scrapes};
use slots::{Refused, Slots};

/// Most scrape connections at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Most scrape connections from one address (IPv6: one /64).
pub const MAX_CONNECTIONS_PER_SOURCE: usize = 8;
/// How long a scraper may take to send its request headers, and how long a
/// keep-alive connection may stay idle.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a scraper may take to read a whole answer (4 MiB in 10 s is
/// 400 KiB/s; a usual body is a few KiB).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may live; then it finishes the answer under way and
/// closes (the scraper connects again).
pub const MAX_CONNECTION_LIFE: Duration = Duration::from_secs(60);
/// How long a rendered body serves scrapes before the broker loop is asked again.
pub const REFRESH_PERIOD: Duration = Duration::from_secs(1);
/// The largest body: services past it are left out, and the body says so.
pub const MAX_BODY: usize = 4 << 20;
/// hyper's buffer per connection (request headers must fit in it).
pub const MAX_HEADER_BUFFER: usize = 16 << 10;

/// The kernel's send buffer per connection (Linux doubles it): 128 KiB reaches a
/// scraper 50 ms away at 2.5 MiB/s.
const KERNEL_SEND_BUFFER: u32 = 64 << 10;
/// The kernel's receive buffer per connection (Linux doubles it); a request is
/// well under 1 KiB.
const KERNEL_RECV_BUFFER: u32 = 16 << 10;

/// Client-caused log lines are written at most once per this, per kind (after the
/// first of a kind, said at once).
const LOG_PERIOD: Duration = Duration::from_secs(1);

/// What a connection over a cap is told, if the kernel takes it at once.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
    Retry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Binds `addr` (e.g. `127.0.0.1:9100`, port 0 for any) and returns the address
/// bound; scrapes are then served on a thread of their own for as long as the
/// process runs.
pub async fn start(addr: &str, stats: StatsHandle) -> io::Result<SocketAddr> {
    // A name is looked up once, here, as `TcpListener::bind` would.
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    let (ready_tx, ready) = oneshot::channel();
    std::thread::Builder::new()
        .name("mdp-metrics".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                match listen(&addrs) {
                    Ok((listener, bound)) => {
                        let _ = ready_tx.send(Ok(bound));
                        serve(listener, stats).await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
        })?;
    ready
        .await
        .map_err(|_| io::Error::other("the metrics thread stopped"))?
}

/// A listener on the first of `addrs` that can be bound, whose connections have
/// small kernel buffers: what the kernel holds for a scraper that does not read is
/// bounded too, and an answer must really reach the scraper within
/// [`WRITE_TIMEOUT`], not only the kernel. (Linux gives accepted connections the
/// listener's buffer sizes.)
fn listen(addrs: &[SocketAddr]) -> io::Result<(TcpListener, SocketAddr)> {
    let mut failed = io::Error::new(io::ErrorKind::InvalidInput, "no address to bind");
    for &addr in addrs {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.set_send_buffer_size(KERNEL_SEND_BUFFER)?;
        socket.set_recv_buffer_size(KERNEL_RECV_BUFFER)?;
        let listener = socket.bind(addr).and_then(|()| socket.listen(1024));
        match listener.and_then(|l| Ok((l.local_addr()?, l))) {
            Ok((bound, listener)) => return Ok((listener, bound)),
            Err(e) => failed = e,
        }
    }
    Err(failed)
}

/// What a client can make the endpoint log, as [`RefusalLog`] groups it.
mod topics {
    use zmtp::defense::Topic;

    /// Connections refused or closed, for `why`.
    const fn connections(why: &'static str) -> Topic {
        Topic {
            what: "connections",
            why,
        }
    }

    /// A connection over [`super::MAX_CONNECTIONS`].
    pub const FULL: Topic = connections("the connection cap");
    /// A connection over [`super::MAX_CONNECTIONS_PER_SOURCE`].
    pub const SOURCE_FULL: Topic = connections("the per-address connection cap");
    /// `accept` failed (out of file descriptors, say).
    pub const ACCEPT_FAILED: Topic = connections("accept failed");
    /// No request headers within [`super::HEADER_TIMEOUT`].
    pub const NO_REQUEST: Topic = connections("no request in time");
    /// An answer not taken within [`super::WRITE_TIMEOUT`].
    pub const ANSWER_NOT_TAKEN: Topic = connections("answer not taken in time");
    /// Any other end with an error (reset, not HTTP...).
    pub const FAILED: Topic = connections("ended with an error");
    /// A slot taken over by a newcomer from an address holding fewer.
    pub const EVICTED: Topic = connections("slot taken over");
}

/// Writes a line about `topic`: a warning for the caps and `accept`, info for the
/// timeouts, debug for other errors (ordinary disconnects are debug noise).
fn write_line(topic: Topic, line: &dyn std::fmt::Display) {
    match topic {
        topics::NO_REQUEST | topics::ANSWER_NOT_TAKEN | topics::EVICTED => {
            tracing::info!("metrics: {line}")
        }
        topics::FAILED => tracing::debug!("metrics: {line}"),
        _ => tracing::warn!("metrics: {line}"),
    }
}

/// What the accept loop and the connections share.
struct Shared {
    scrapes: Arc<Scrapes>,
    slots: Mutex<Slots>,
    log: Mutex<RefusalLog>,
}

impl Shared {
    /// Counts an event of `topic` for the log, from `source` if it has one; the
    /// first of a quiet topic is written at once, with its `reason`.
    fn record(&self, topic: Topic, source: Option<Source>, reason: impl FnOnce() -> String) {
        let recorded = lock(&self.log).record(topic, source, zmtp::clock::now(), reason);
        if let Some(line) = recorded.line {
            write_line(topic, &line);
        }
    }

    /// Writes the summaries due (each topic's, at most once per [`LOG_PERIOD`]).
    fn write_log(&self) {
        let (summaries, _) = lock(&self.log).flush(zmtp::clock::now());
        for summary in summaries {
            write_line(summary.topic, &summary);
        }
    }
}

/// Accepts connections for ever; never waits for a slot.
async fn serve(listener: TcpListener, stats: StatsHandle) {
    let shared = Arc::new(Shared {
        scrapes: Arc::new(Scrapes::new(stats, REFRESH_PERIOD, MAX_BODY)),
        slots: Mutex::new(Slots::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_SOURCE)),
        log: Mutex::new(RefusalLog::new(LOG_PERIOD)),
    });
    // A topic's summary is due a period after its last line; checked once a period,
    // so its lines are one to two periods apart.
    let mut log = tokio::time::interval(LOG_PERIOD);
    log.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => admit(&shared, stream, peer),
                Err(e) => {
                    shared.record(topics::ACCEPT_FAILED, None, || e.to_string());
                    // Out of descriptors, say: give the others a moment to close.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = log.tick() => shared.write_log(),
        }
    }
}

/// Serves `stream` on a task of its own if its source may take a slot; else tells
/// it so if that costs no wait, and closes it.
fn admit(shared: &Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let source = Source::of_ip(peer.ip());
    let taken = match lock(&shared.slots).take(source) {
        Ok(taken) => taken,
        Err(refused) => {
            refuse(shared, stream, peer, source, refused);
            return;
        }
    };
    let slot = Slot {
        shared: shared.clone(),
        source,
        id: taken.id,
    };
    tokio::spawn(connection(slot, stream, peer, taken.evicted));
}

/// Tells a connection over a cap so if that costs no wait, and closes it.
fn refuse(shared: &Shared, stream: TcpStream, peer: SocketAddr, source: Source, refused: Refused) {
    {
        let (topic, reason) = match refused {
            Refused::Full => (topics::FULL, format!("all {MAX_CONNECTIONS} slots held")),
            Refused::SourceFull => (
                topics::SOURCE_FULL,
                format!("its address holds {MAX_CONNECTIONS_PER_SOURCE} slots"),
            ),
        };
        shared.record(topic, Some(source), || format!("{peer}: {reason}"));
        let _ = stream.try_write(REFUSED);
    }
}

/// A slot held; given back on drop.
struct Slot {
    shared: Arc<Shared>,
    source: Source,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.shared.slots).give_back(self.source, self.id);
    }
}

/// Serves one connection, from `peer`, within its timeouts and life, or until its
/// slot is taken over (`evicted`).
async fn connection(slot: Slot, stream: TcpStream, peer: SocketAddr, evicted: CancellationToken) {
    let _ = stream.set_nodelay(true);
    let scrapes = slot.shared.scrapes.clone();
    let service = service_fn(move |request| {
        let scrapes = scrapes.clone();
        async move { Ok::<_, Infallible>(scrapes.answer(request).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true)
        .max_buf_size(MAX_HEADER_BUFFER)
        // The body's `Bytes` is queued, not copied into hyper's buffer.
        .writev(true)
        .serve_connection(
            TokioIo::new(WriteDeadline::new(stream, WRITE_TIMEOUT)),
            service,
        );
    tokio::pin!(conn);
    let served = tokio::select! {
        served = conn.as_mut() => served,
        () = evicted.cancelled() => {
            slot.shared.record(topics::EVICTED, Some(slot.source), || {
                format!("{peer}: its slot went to a newcomer from an address holding fewer")
            });
            return;
        }
        () = tokio::time::sleep(MAX_CONNECTION_LIFE) => {
            conn.as_mut().graceful_shutdown();
            // The answer under way may wait for a refresh, then be written.
            match tokio::time::timeout(REFRESH_TIMEOUT + WRITE_TIMEOUT, conn).await {
                Ok(served) => served,
                Err(_) => {
                    slot.shared.record(topics::FAILED, Some(slot.source), || {
                        format!("{peer}: its last answer not written after {MAX_CONNECTION_LIFE:?}")
                    });
                    return;
                }
            }
        }
    };
    if let Err(e) = served {
        let topic = classify(&e);
        slot.shared
            .record(topic, Some(slot.source), || match topic {
                topics::NO_REQUEST => {
                    format!("{peer}: no request headers within {HEADER_TIMEOUT:?}")
                }
                topics::ANSWER_NOT_TAKEN => {
                    format!("{peer}: answer not taken within {WRITE_TIMEOUT:?}")
                }
                _ => format!("{peer}: {e}"),
            });
    }
}

/// Which topic of the log a connection ended with `error` is counted in.
fn classify(error: &hyper::Error) -> Topic {
    let mut cause = std::error::Error::source(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::TimedOut {
                return topics::ANSWER_NOT_TAKEN;
            }
        }
        cause = e.source();
    }
    // hyper's only timer here is the header timeout.
    if error.is_timeout() {
        topics::NO_REQUEST
    } else {
        topics::FAILED
    }
}
