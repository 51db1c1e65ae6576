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
}

/// A worker in `mmi.workers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerSummary {
    /// Its routing id, in hex.
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
}

/// The body of `mmi.stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Counters for the whole broker.
    pub totals: Totals,
    /// Per service, by name: services with workers now, and services that had
    /// workers before (up to a bound on how many names are remembered).
    pub services: Vec<ServiceStats>,
}
