//! Load generator for any Majordomo broker: K echo workers and C clients with W
//! requests in flight each, through the broker at ENDPOINT; prints throughput and
//! latency. The same load drives our broker and others (majortomo), so their figures
//! compare.
//!
//! ```text
//! cargo run --release -p mdp-broker -- -b tcp://127.0.0.1:5555 &
//! cargo run --release -p zmtp-examples --example mdp_load -- tcp://127.0.0.1:5555
//! ```
//!
//! Clients are raw DEALER sockets (no per-request bookkeeping beyond a timestamp in
//! the body), so the generator is cheap next to any broker. Workers are our
//! `mdp::Worker`, one connection per worker. With `--broker-pid` the broker's CPU
//! time (user and system, per request answered, from `/proc/PID/stat`, so it holds
//! on a shared machine) and peak RSS over the measured window are reported too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use clap::{Parser, ValueEnum};
use mdp::proto::{Reply, Request};
use mdp::{Dialect, Worker, WorkerOptions};
use zmtp::{Socket, SocketType};

/// Drives a Majordomo broker with echo workers and pipelined clients.
#[derive(Debug, Parser)]
struct Args {
    /// The broker's endpoint.
    broker: String,
    /// Client connections.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Echo workers (0: bring your own).
    #[arg(long, default_value_t = 16)]
    workers: usize,
    /// Requests in flight per client.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// Request body size in bytes (at least 8: the send time travels in it).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Seconds of load before measuring (workers register, caches warm).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Dialect of clients and workers.
    #[arg(long, value_enum, default_value_t = DialectArg::Majortomo)]
    dialect: DialectArg,
    /// Service name.
    #[arg(long, default_value = "echo")]
    service: String,
    /// The broker the workers register with (default: the clients' broker). With
    /// two peered brokers, every request crosses one peer link.
    #[arg(long, value_name = "ENDPOINT")]
    workers_at: Option<String>,
    /// Report this process's CPU time and peak RSS (the broker's).
    #[arg(long)]
    broker_pid: Option<u32>,
    /// A name for the RESULT line.
    #[arg(long, default_value = "broker")]
    label: String,
    /// Offer at most this many requests per second in all, spread evenly over the
    /// clients (default: as fast as replies come back). For latency at a set load.
    #[arg(long)]
    rate: Option<f64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DialectArg {
    Mdp01,
    Mdp02,
    Majortomo,
}

impl From<DialectArg> for Dialect {
    fn from(d: DialectArg) -> Dialect {
        match d {
            DialectArg::Mdp01 => Dialect::Mdp01,
            DialectArg::Mdp02 => Dialect::Mdp02,
            DialectArg::Majortomo => Dialect::Majortomo,
        }
    }
}

/// What one client measured.
#[derive(Debug, Default)]
struct ClientTally {
    latencies_us: Vec<u32>,
    errors: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let dialect = Dialect::from(args.dialect);
    let size = args.size.max(8);
    let epoch = Instant::now();

    let workers_at = args
        .workers_at
        .clone()
        .unwrap_or_else(|| args.broker.clone());
    for _ in 0..args.workers {
        let worker = Worker::new(workers_at.clone(), args.service.clone())
            .options(WorkerOptions::default().dialect(dialect));
        tokio::spawn(worker.run(|request| async move { Ok(request) }));
    }

    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..args.clients {
        let mut socket = Socket::new(SocketType::Dealer);
        socket.connect(&args.broker)?;
        let request = Request {
            dialect,
            enveloped: dialect.leading_empty(),
            service: Bytes::from(args.service.clone()),
            body: zmtp::Message::new(),
        };
        let (measuring, stop) = (measuring.clone(), stop.clone());
        let in_flight = args.in_flight.max(1);
        let interval = args
            .rate
            .filter(|r| *r > 0.0)
            .map(|r| Duration::from_secs_f64(args.clients as f64 / r));
        clients.push(tokio::spawn(async move {
            client(
                socket, request, size, in_flight, interval, epoch, measuring, stop,
            )
            .await
        }));
    }

    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    let before = args.broker_pid.and_then(cpu_seconds);
    measuring.store(true, Ordering::Release);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    measuring.store(false, Ordering::Release);
    let secs = started.elapsed().as_secs_f64();
    let after = args.broker_pid.and_then(cpu_seconds);
    let rss = args.broker_pid.and_then(peak_rss_kib);
    stop.store(true, Ordering::Release);

    let mut latencies = Vec::new();
    let mut errors = 0;
    for c in clients {
        let tally = c.await?;
        latencies.extend(tally.latencies_us);
        errors += tally.errors;
    }
    latencies.sort_unstable();
    let pct = |p: f64| -> u32 {
        if latencies.is_empty() {
            return 0;
        }
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[i]
    };
    let count = latencies.len();
    let cpu = match (before, after) {
        (Some(b), Some(a)) => {
            let (user, system) = (a.user - b.user, a.system - b.system);
            // Per request answered in the window: what the broker spent on each.
            let per = |s: f64| 1e6 * s / (count.max(1) as f64);
            format!(
                " broker_cpu_pct={:.0} broker_user_us_per_req={:.2} broker_sys_us_per_req={:.2}",
                100.0 * (user + system) / secs,
                per(user),
                per(system),
            )
        }
        _ => String::new(),
    };
    let rss = rss.map_or(String::new(), |kib| {
        format!(" broker_peak_rss_mib={:.1}", kib as f64 / 1024.0)
    });
    println!(
        "RESULT label={} clients={} workers={} in_flight={} size={} rate={} requests={count} errors={errors} secs={secs:.2} req_per_s={:.0} p50_us={} p99_us={} max_us={}{cpu}{rss}",
        args.label,
        args.clients,
        args.workers,
        args.in_flight,
        size,
        args.rate.map_or("max".to_string(), |r| format!("{r:.0}")),
        count as f64 / secs,
        pct(0.50),
        pct(0.99),
        latencies.last().copied().unwrap_or(0),
    );
    std::process::exit(0);
}

/// Keeps `in_flight` requests outstanding on one DEALER until `stop`, sending at most
/// one every `interval` when it is set; each reply carries back the send time
/// written in its body.
#[allow(clippy::too_many_arguments)]
async fn client(
    mut socket: Socket,
    request: Request,
    size: usize,
    in_flight: usize,
    interval: Option<Duration>,
    epoch: Instant,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> ClientTally {
    let mut tally = ClientTally::default();
    let stamped = || {
        let mut body = BytesMut::with_capacity(size);
        body.put_u64(epoch.elapsed().as_nanos() as u64);
        body.resize(size, b'x');
        let mut msg = request.clone();
        msg.body = zmtp::Message::from(body.freeze());
        msg.encode()
    };
    let mut next_send = tokio::time::Instant::now();
    for _ in 0..in_flight {
        if let Some(interval) = interval {
            next_send += interval;
            tokio::time::sleep_until(next_send).await;
        }
        if socket.send(stamped()).await.is_err() {
            tally.errors += 1;
        }
    }
    while !stop.load(Ordering::Acquire) {
        let Ok(Ok(msg)) = tokio::time::timeout(Duration::from_millis(200), socket.recv()).await
        else {
            continue;
        };
        let sent = Reply::parse(request.dialect, request.enveloped, msg.frames())
            .ok()
            .and_then(|reply| reply.body.first().cloned())
            .filter(|b| b.len() >= 8)
            .map(|b| u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]));
        match sent {
            Some(sent) if measuring.load(Ordering::Acquire) => {
                let now = epoch.elapsed().as_nanos() as u64;
                let us = now.saturating_sub(sent) / 1000;
                tally.latencies_us.push(us.min(u32::MAX as u64) as u32);
            }
            Some(_) => {}
            None => tally.errors += 1,
        }
        if let Some(interval) = interval {
            next_send += interval;
            tokio::time::sleep_until(next_send).await;
        }
        if socket.send(stamped()).await.is_err() {
            tally.errors += 1;
        }
    }
    tally
}

/// CPU time a process has used, in seconds.
#[derive(Debug, Clone, Copy)]
struct CpuTime {
    user: f64,
    system: f64,
}

/// utime and stime of `pid` (Linux /proc, in clock ticks of 1/100 s).
fn cpu_seconds(pid: u32) -> Option<CpuTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(CpuTime {
        user: utime / 100.0,
        system: stime / 100.0,
    })
}

/// Peak resident set size of `pid` in KiB (VmHWM).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
