//! What the broker tells about itself: the bodies of its `mmi.services`,
//! `mmi.workers` and `mmi.stats` answers (MessagePack maps with these field names),
//! and the figures `mdp-broker --metrics` serves.
//!
//! These three MMI services are this broker's extension to RFC 8; every other
//! `mmi.*` name but `mmi.service` answers `501`. Read them with any MessagePack
//! library, or with these types:
//!
//! ```no_run
//! use mdp::broker::snapshot::ServiceSummary;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = mdp::Client::connect("tcp://127.0.0.1:5555")?;
//! let reply = client.request("mmi.services", zmtp::Message::new()).await?;
//! let services: Vec<ServiceSummary> = rmp_serde::from_slice(&reply[0])?;
//! for s in services {
//!     println!("{}: {} workers, {} queued", s.name, s.workers, s.queued);
//! }
//! # Ok(())
//! # }
//! ```

use serde::{Deserialize, Serialize};

/// A service in `mmi.services`: who serves it and what waits for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSummary {
    /// The service name (bytes that are not UTF-8 are replaced by U+FFFD).
    pub name: String,
    /// Registered workers.
    pub workers: u64,
    /// Workers waiting for a request.
    pub idle: u64,
    /// Workers holding a request.
    pub busy: u64,
    /// Requests waiting for a worker.
    pub queued: u64,
    /// Workers of peered brokers (reached through them; not counted above).
    #[serde(default)]
    pub via_peers: u64,
    /// The peered brokers that serve it, by name.
    #[serde(default)]
    pub peers: Vec<String>,
}

/// A peered broker in `mmi.stats`: what it serves with its own workers, and what
/// it holds of ours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSummary {
    /// Its name (`mdp-broker --name`).
    pub name: String,
    /// Its process's instance, in hex.
    pub instance: String,
    /// Whether we dialed it (an entry of our `--peer` list), or it dialed us.
    pub dialed: bool,
    /// Services it serves.
    pub services: u64,
    /// Their workers, in all.
    pub workers: u64,
    /// Of those, idle as it last said.
    pub idle: u64,
    /// Our requests it holds now.
    pub holding: u64,
}

/// A worker in `mmi.workers` (this broker's own: workers of peered brokers are
/// counted in [`ServiceSummary::via_peers`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerSummary {
    /// Its routing id: as text when it is printable, else `0x` and hex (ROUTER's
    /// own ids look like `0x0080000001`).
    pub identity: String,
    /// The service it serves.
    pub service: String,
    /// The dialect it speaks ("MDP/0.1", "MDP/0.2", "majortomo", "overseer").
    pub dialect: String,
    /// Whether it holds a request.
    pub busy: bool,
    /// Final replies it delivered.
    pub served: u64,
    /// Milliseconds since the broker last heard from it.
    pub last_heard_ms: u64,
}

/// A service in `mmi.stats`: its [`ServiceSummary`] figures, its counters since it
/// was first seen, and the latency of its recent requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStats {
    /// The service name.
    pub name: String,
    /// Registered workers.
    pub workers: u64,
    /// Workers waiting for a request.
    pub idle: u64,
    /// Workers holding a request.
    pub busy: u64,
    /// Requests waiting for a worker.
    pub queued: u64,
    /// Requests answered (final reply delivered).
    pub served: u64,
    /// Requests dropped: their TTL passed, the queue was full, their client left, or
    /// their worker died with `--on-worker-death drop`.
    pub failed: u64,
    /// Requests given to another worker after theirs died.
    pub requeued: u64,
    /// Workers of peered brokers (reached through them).
    #[serde(default)]
    pub via_peers: u64,
    /// Median time from request to final reply over the last one to two minutes, in
    /// milliseconds (`None`: nothing answered in that time).
    pub p50_ms: Option<f64>,
    /// 99th percentile of the same.
    pub p99_ms: Option<f64>,
    /// Latencies measured since the service was first seen.
    pub latency_count: u64,
    /// Their sum, in seconds.
    pub latency_sum_seconds: f64,
}

/// The broker's counters since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Requests received from clients (MMI included).
    pub requests: u64,
    /// Final replies delivered to clients.
    pub replies: u64,
    /// Requests dropped.
    pub dropped: u64,
    /// Requests given to another worker after theirs died.
    pub requeued: u64,
    /// Malformed messages ignored.
    pub malformed: u64,
    /// Workers registered now.
    pub workers: u64,
    /// Requests held now (waiting or in flight).
    pub held: u64,
    /// What they cost, in bytes (frames plus the broker's bookkeeping).
    #[serde(default)]
    pub held_bytes: u64,
    /// Client connections paused now (they hold their quota).
    #[serde(default)]
    pub paused: u64,
    /// Messages the broker's socket could not deliver (the peer did not read, or
    /// had left).
    #[serde(default)]
    pub undelivered: u64,
    /// Requests handed to peered brokers.
    #[serde(default)]
    pub handed_to_peers: u64,
    /// Requests served here for peered brokers.
    #[serde(default)]
    pub served_for_peers: u64,
    /// Requests peered brokers gave back (bounced, or held when they left).
    #[serde(default)]
    pub returned_by_peers: u64,
    /// Links to peered brokers that are up.
    #[serde(default)]
    pub peers_up: u64,
}

/// The body of `mmi.stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Counters for the whole broker.
    pub totals: Totals,
    /// Per service, by name: services with workers now (here or at a peer), and
    /// services that had workers before (up to a bound on how many names are
    /// remembered).
    pub services: Vec<ServiceStats>,
    /// The peered brokers whose links are up, by name.
    #[serde(default)]
    pub peers: Vec<PeerSummary>,
}

/// Rows under a header, each column as wide as its widest cell, two spaces apart;
/// columns of figures (every cell a number, a number of seconds like `1.5s`, or `-`)
/// are right-aligned.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    let mut figures = vec![!rows.is_empty(); header.len()];
    for row in rows {
        for ((w, figure), cell) in widths.iter_mut().zip(&mut figures).zip(row) {
            *w = (*w).max(cell.chars().count());
            *figure &= cell == "-" || cell.trim_end_matches('s').parse::<f64>().is_ok();
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, ((cell, w), figure)) in cells.zip(&widths).zip(&figures).enumerate() {
            let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
            if i > 0 {
                text.push_str("  ");
            }
            if *figure {
                text.push_str(&pad);
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&pad);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// The header and cells a service's row starts with, in every table of services
/// (PEERS: workers of peered brokers).
const SERVICE_HEADER: [&str; 6] = ["SERVICE", "WORKERS", "IDLE", "BUSY", "QUEUED", "PEERS"];

fn service_cells(name: &str, counts: [u64; 5]) -> Vec<String> {
    let mut cells = vec![name.to_string()];
    cells.extend(counts.map(|n| n.to_string()));
    cells
}

fn millis(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |ms| format!("{ms:.2}"))
}

impl ServiceSummary {
    /// A list as a text table: SERVICE WORKERS IDLE BUSY QUEUED PEERS (workers
    /// of peered brokers) VIA (those brokers).
    pub fn table(list: &[ServiceSummary]) -> String {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|s| {
                let counts = [s.workers, s.idle, s.busy, s.queued, s.via_peers];
                let mut cells = service_cells(&s.name, counts);
                cells.push(if s.peers.is_empty() {
                    "-".into()
                } else {
                    s.peers.join(",")
                });
                cells
            })
            .collect();
        let mut header = SERVICE_HEADER.to_vec();
        header.push("VIA");
        table(&header, &rows)
    }
}

impl WorkerSummary {
    /// A list as a text table: WORKER SERVICE DIALECT STATE SERVED HEARD (seconds
    /// since the broker last heard from it).
    pub fn table(list: &[WorkerSummary]) -> String {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|w| {
                vec![
                    w.identity.clone(),
                    w.service.clone(),
                    w.dialect.clone(),
                    if w.busy { "busy" } else { "idle" }.to_string(),
                    w.served.to_string(),
                    format!("{:.1}s", w.last_heard_ms as f64 / 1000.0),
                ]
            })
            .collect();
        let header = ["WORKER", "SERVICE", "DIALECT", "STATE", "SERVED", "HEARD"];
        table(&header, &rows)
    }
}

/// A line of totals, then a table of services with their counters and latency.
///
/// ```
/// use mdp::broker::snapshot::{ServiceStats, Stats, Totals};
///
/// let stats = Stats {
///     totals: Totals { requests: 3, replies: 3, workers: 1, ..Totals::default() },
///     services: vec![ServiceStats {
///         name: "echo".into(), workers: 1, idle: 1, busy: 0, queued: 0, via_peers: 2,
///         served: 3, failed: 0, requeued: 0, p50_ms: Some(0.25), p99_ms: Some(1.5),
///         latency_count: 3, latency_sum_seconds: 0.002,
///     }],
///     peers: vec![],
/// };
/// let text = stats.to_string();
/// assert!(text.starts_with("requests 3  replies 3"));
/// assert!(text.contains("echo"));
/// assert!(text.lines().last().is_some_and(|l| l.ends_with("0.25    1.50")));
/// ```
impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.totals;
        writeln!(
            f,
            "requests {}  replies {}  dropped {}  requeued {}  malformed {}  workers {}  held {}",
            t.requests, t.replies, t.dropped, t.requeued, t.malformed, t.workers, t.held
        )?;
        let rows: Vec<Vec<String>> = self
            .services
            .iter()
            .map(|s| {
                let counts = [s.workers, s.idle, s.busy, s.queued, s.via_peers];
                let mut cells = service_cells(&s.name, counts);
                cells.extend([s.served, s.failed, s.requeued].map(|n| n.to_string()));
                cells.extend([millis(s.p50_ms), millis(s.p99_ms)]);
                cells
            })
            .collect();
        let mut header = SERVICE_HEADER.to_vec();
        header.extend(["SERVED", "FAILED", "REQUEUED", "P50 MS", "P99 MS"]);
        f.write_str(&table(&header, &rows))?;
        if self.peers.is_empty() {
            return Ok(());
        }
        let rows: Vec<Vec<String>> = self
            .peers
            .iter()
            .map(|p| {
                let mut cells = vec![p.name.clone(), if p.dialed { "out" } else { "in" }.into()];
                cells.extend([p.services, p.workers, p.idle, p.holding].map(|n| n.to_string()));
                cells
            })
            .collect();
        let header = ["PEER", "LINK", "SERVICES", "WORKERS", "IDLE", "HOLDING"];
        writeln!(f)?;
        f.write_str(&table(&header, &rows))
    }
}
