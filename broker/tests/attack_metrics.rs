//! The metrics endpoint (`--metrics`) under attack, through the real `mdp-broker`:
//! a history poisoned with long service names, scrapers that send `GET /metrics`
//! and never read, and a slowloris, all from 127.0.0.2. Meanwhile every scrape from
//! 127.0.0.1 gets a whole answer, an MDP client keeps being served, the broker's
//! memory stays bounded, and a scraper that reads too slowly is cut off.
//!
//! `measure_metrics_under_attack` (ignored) prints the figures of the README and
//! the commit messages, for any broker binary:
//!
//! ```sh
//! ATTACK_BROKER=target/release/mdp-broker MEASURE_POISON=1024 \
//!   cargo test -p mdp-broker --test attack_metrics -- --ignored --nocapture
//! ```

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bounded, wait_for_service, BrokerProcess, StartBroker, BROKER, WAIT};
use mdp::broker::snapshot::Stats;
use mdp::{Client, Worker};
use mdp_torture::broker_process::memory_kib;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use zmtp::Message;

/// Where the legitimate scrapes come from.
const LEGIT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
/// Where the attack comes from.
const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// Where the slow reader comes from.
const SLOW_READER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
/// The most the endpoint may send in one answer (`metrics::MAX_BODY`).
const MAX_BODY: usize = 4 << 20;

/// The metrics address the broker printed.
fn metrics_addr(broker: &BrokerProcess) -> SocketAddr {
    let url = broker
        .line_after("metrics on ")
        .expect("the metrics address");
    url.strip_prefix("http://")
        .and_then(|u| u.strip_suffix("/metrics"))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("metrics line {url:?}"))
}

/// The broker's options for a history of long names: `--max-service-name` lets
/// the 1 to 4 KiB names of [`long_name`] in (the default cap is 255 bytes).
const BROKER_ARGS: [&str; 4] = ["--metrics", "127.0.0.1:0", "--max-service-name", "4096"];

/// The service name of poisoning worker `i`: 1 to 4 KiB.
fn long_name(i: usize) -> String {
    let len = 1024 + (i * 797) % 3072;
    let mut name = format!("poison-{i:04}-");
    while name.len() < len {
        name.push('x');
    }
    name
}

async fn stats(client: &Client) -> Stats {
    let reply = bounded("mmi.stats", client.request("mmi.stats", Message::new()))
        .await
        .expect("an mmi.stats answer");
    rmp_serde::from_slice(&reply[0]).expect("an mmi.stats body")
}

/// Registers `n` workers with 1-4 KiB service names, waits until the broker has
/// them all, then lets them leave: the broker remembers the names.
async fn poison_history(endpoint: &str, client: &Client, n: usize) {
    let workers: Vec<_> = (0..n)
        .map(|i| {
            tokio::spawn(
                Worker::new(endpoint.to_owned(), long_name(i))
                    .run(|body: Message| async move { Ok(body) }),
            )
        })
        .collect();
    let poisoned = |stats: &Stats, live: bool| {
        stats
            .services
            .iter()
            .filter(|s| s.name.starts_with("poison-") && (s.workers > 0) == live)
            .count()
    };
    bounded("the poisoning workers to register", async {
        while poisoned(&stats(client).await, true) < n {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    for worker in &workers {
        worker.abort();
    }
    bounded("the poisoning workers to leave", async {
        while poisoned(&stats(client).await, false) < n {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// A TCP connection to `to` from `source` (any loopback address), with a receive
/// buffer of `recv_buffer` bytes if given.
async fn connect_from(
    source: Ipv4Addr,
    to: SocketAddr,
    recv_buffer: Option<u32>,
) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    socket.bind(SocketAddr::new(source.into(), 0))?;
    socket.connect(to).await
}

fn request(to: SocketAddr) -> String {
    format!("GET /metrics HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n\r\n")
}

/// An answer's status code, `Content-Length` and the body bytes after the head.
fn parse_response(response: &[u8]) -> Result<(u16, usize, &[u8]), String> {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no header end in {} bytes", response.len()))?;
    let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| format!("no content-length in {head:?}"))?;
    Ok((status, length, &response[end + 4..]))
}

/// One whole scrape from `source` within `limit`: the body of a 200 answer whose
/// length is its `Content-Length`, or what went wrong.
async fn scrape_from(source: Ipv4Addr, to: SocketAddr, limit: Duration) -> Result<String, String> {
    let scrape = async {
        let mut stream = connect_from(source, to, None)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .write_all(request(to).as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let (status, length, body) = parse_response(&response)?;
        if status != 200 || body.len() != length {
            return Err(format!(
                "status {status}, {} of {length} bytes: {}",
                body.len(),
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
        }
        String::from_utf8(body.to_vec()).map_err(|e| format!("body: {e}"))
    };
    tokio::time::timeout(limit, scrape)
        .await
        .map_err(|_| format!("no whole answer within {limit:?}"))?
}

/// `count` connections from `source` that send a whole `GET /metrics` and never
/// read, with a small receive buffer so the broker cannot push the answer into the
/// kernel either. They stay open until the returned streams are dropped.
async fn never_reading(source: Ipv4Addr, to: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut streams = Vec::new();
    for _ in 0..count {
        let Ok(mut stream) = connect_from(source, to, Some(4096)).await else {
            continue;
        };
        if stream.write_all(request(to).as_bytes()).await.is_ok() {
            streams.push(stream);
        }
    }
    streams
}

/// `count` slowloris connections from `source`: half a request line, then nothing;
/// each one that the broker closes is opened again after a short pause. `opened`
/// counts the connections made. They run until the set is dropped.
fn slowloris(
    source: Ipv4Addr,
    to: SocketAddr,
    count: usize,
    opened: Arc<AtomicU64>,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for _ in 0..count {
        let opened = opened.clone();
        set.spawn(async move {
            loop {
                if let Ok(mut stream) = connect_from(source, to, None).await {
                    opened.fetch_add(1, Ordering::Relaxed);
                    if stream.write_all(b"GET /metr").await.is_ok() {
                        // Held until the broker closes it (a 503 is read and ignored).
                        let mut buf = [0u8; 256];
                        while let Ok(1..) = stream.read(&mut buf).await {}
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }
    set
}

/// The most the broker's RSS reached while it was sampled (KiB), sampled every
/// 20 ms by a thread of its own until the sampler is dropped.
struct RssSampler {
    peak: Arc<AtomicU64>,
    running: Arc<std::sync::atomic::AtomicBool>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let peak = Arc::new(AtomicU64::new(0));
        let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (p, r) = (peak.clone(), running.clone());
        std::thread::spawn(move || {
            while r.load(Ordering::Relaxed) {
                if let Some(kib) = memory_kib(pid, "VmRSS") {
                    p.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RssSampler { peak, running }
    }

    fn peak_kib(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
    }
}

/// The families every scrape must hold, and the echo service's sample.
fn assert_scrape(body: &str) {
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("the Prometheus text parses");
    for family in [
        "mdp_broker_uptime_seconds",
        "mdp_broker_requests_total",
        "mdp_broker_workers",
        "mdp_broker_requests_held",
    ] {
        assert!(
            scrape.samples.iter().any(|s| s.metric == family),
            "no {family}"
        );
    }
    // The live service is shown though the history would pass the cap.
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "mdp_service_served_total"
                && s.labels.get("service") == Some("echo")),
        "no echo service in the scrape"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_and_requests_are_served_while_metrics_is_attacked() {
    let broker = BrokerProcess::start_with(&BROKER_ARGS);
    let addr = metrics_addr(&broker);
    let worker = tokio::spawn(
        Worker::new(broker.endpoint.clone(), "echo").run(|body: Message| async move { Ok(body) }),
    );
    let client = Client::connect(&broker.endpoint).unwrap();
    wait_for_service(&client, "echo").await;
    poison_history(&broker.endpoint, &client, 200).await;
    let before_kib = memory_kib(broker.pid(), "VmRSS").expect("the broker's RSS");
    let rss = RssSampler::start(broker.pid());
    let started = Instant::now();

    // The attack: 64 scrapers that never read, 100 slowloris connections.
    let held = never_reading(ATTACKER, addr, 64).await;
    let opened = Arc::new(AtomicU64::new(0));
    let slow = slowloris(ATTACKER, addr, 100, opened.clone());
    common::wait_until("100 slowloris connections open", || {
        opened.load(Ordering::Relaxed) >= 100
    })
    .await;

    // Meanwhile: every scrape from elsewhere is a whole answer, and echo is served.
    for i in 0..20 {
        let body = scrape_from(LEGIT, addr, WAIT)
            .await
            .unwrap_or_else(|e| panic!("scrape {i} under attack: {e}"));
        assert!(body.len() <= MAX_BODY, "{} bytes", body.len());
        assert_scrape(&body);
        assert!(
            body.lines()
                .any(|l| l.starts_with("# truncated: ") && l.contains("services not shown")),
            "200 names of 1-4 KiB pass the cap, and the body says so"
        );
        let reply = bounded(
            "an echo under attack",
            client.request("echo", format!("{i}")),
        )
        .await;
        assert_eq!(reply.unwrap(), Message::from(format!("{i}")));
    }

    // A scraper that reads 20 KiB/s (a 4 MiB answer would take 200 s) is cut off:
    // the broker closes the connection before the whole body is written.
    let mut stream = connect_from(SLOW_READER, addr, Some(4096)).await.unwrap();
    stream.write_all(request(addr).as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut chunk = [0u8; 1024];
    let cut_off = bounded("the broker to cut off a slow reader", async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return response,
                Ok(n) => response.extend_from_slice(&chunk[..n]),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let (status, length, body) = parse_response(&cut_off).expect("the head arrived");
    assert_eq!(status, 200);
    assert!(
        body.len() < length,
        "the slow reader got all {length} bytes"
    );

    // Memory: the cached body (at most 4 MiB) and the one being rendered beside
    // it, the snapshot of the remembered names (200 of at most 4 KiB: 0.8 MiB),
    // 64 connections' buffers (16 KiB each: 1 MiB), and the allocator's slack.
    // Without the caps, the 64 never-reading scrapers held a copy each (320 MiB).
    let peak_kib = rss.peak_kib();
    let bound_kib = before_kib + 32 * 1024;
    assert!(
        peak_kib <= bound_kib,
        "RSS {peak_kib} KiB under attack; {before_kib} KiB before, bound {bound_kib} KiB"
    );

    // The attack is logged, a line per kind and second at most: the refusals at
    // the caps (two kinds) make at most two lines a second. (The connections
    // closed for their timeouts are lines of other kinds.)
    let seconds = started.elapsed().as_secs() + 2;
    let stderr = broker.stderr();
    let refusals = stderr
        .lines()
        .filter(|l| l.contains("metrics: refused") && l.contains("connection cap"))
        .count() as u64;
    assert!(refusals >= 1, "no refusal logged:\n{stderr}");
    assert!(
        refusals <= 2 * seconds,
        "{refusals} refusal lines in {seconds} s:\n{stderr}"
    );
    drop((held, slow));
    worker.abort();
}

/// The CPU time (utime + stime, in clock ticks) in `/proc/PID/stat` or
/// `/proc/PID/task/TID/stat`.
fn cpu_ticks(stat: &str) -> u64 {
    let text = std::fs::read_to_string(stat).unwrap_or_default();
    let fields: Vec<u64> = text
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    // After the command: state (field 3) ... utime (14), stime (15).
    fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0)
}

/// Milliseconds per tick (`getconf CLK_TCK`, 100 on Linux).
fn ms_per_tick() -> f64 {
    let hz = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    1000.0 / hz
}

/// Nanoseconds on a CPU of thread `tid` of `pid` (`schedstat`: finer than ticks),
/// or of all its threads.
fn cpu_ns(pid: u32, tid: Option<u32>) -> u64 {
    let read = |path: std::path::PathBuf| {
        std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let tasks = PathBuf::from(format!("/proc/{pid}/task"));
    match tid {
        Some(tid) => read(tasks.join(tid.to_string())),
        None => std::fs::read_dir(&tasks)
            .map(|dir| dir.flatten().map(|e| read(e.path())).sum())
            .unwrap_or(0),
    }
}

/// How many of `n` scrapes from [`LEGIT`] got a whole answer within 10 s each
/// (Prometheus' default scrape timeout), and how long the median and the slowest
/// of those took.
async fn successes(addr: SocketAddr, n: usize) -> String {
    let mut took = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        if scrape_from(LEGIT, addr, Duration::from_secs(10))
            .await
            .is_ok()
        {
            took.push(start.elapsed());
        }
    }
    took.sort();
    let median = took.get(took.len() / 2).copied().unwrap_or_default();
    let slowest = took.last().copied().unwrap_or_default();
    format!(
        "{}/{n} legitimate scrapes whole within 10 s (median {median:.2?}, slowest {slowest:.2?})",
        took.len()
    )
}

/// The figures of the README, for the binary `ATTACK_BROKER` (default: the
/// one cargo built) with `MEASURE_POISON` names (default 200) in its history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test: prints figures"]
async fn measure_metrics_under_attack() {
    let binary =
        std::env::var_os("ATTACK_BROKER").map_or_else(|| PathBuf::from(BROKER), PathBuf::from);
    let names: usize = std::env::var("MEASURE_POISON")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let broker = BrokerProcess::launch(&binary, "tcp://127.0.0.1:0", &BROKER_ARGS)
        .expect("the broker under test");
    let addr = metrics_addr(&broker);
    let pid = broker.pid();
    let worker = tokio::spawn(
        Worker::new(broker.endpoint.clone(), "echo").run(|body: Message| async move { Ok(body) }),
    );
    let client = Client::connect(&broker.endpoint).unwrap();
    wait_for_service(&client, "echo").await;
    poison_history(&broker.endpoint, &client, names).await;
    let tick = ms_per_tick();
    let rss = |field| memory_kib(pid, field).unwrap_or(0) / 1024;
    println!("binary {}, {names} names in the history", binary.display());
    let body = scrape_from(LEGIT, addr, WAIT)
        .await
        .expect("a first scrape");
    println!("body: {} bytes; RSS {} MiB", body.len(), rss("VmRSS"));

    // CPU per scrape, back to back, then one per 1.1 s (every one a refresh). The
    // broker loop runs on the main thread (--threads 1).
    let process = format!("/proc/{pid}/stat");
    for (label, n, pause) in [
        ("back to back", 200, Duration::ZERO),
        ("every 1.1 s", 20, Duration::from_millis(1100)),
    ] {
        let ticks = cpu_ticks(&process);
        let (all, main) = (cpu_ns(pid, None), cpu_ns(pid, Some(pid)));
        for _ in 0..n {
            scrape_from(LEGIT, addr, WAIT).await.expect("a scrape");
            tokio::time::sleep(pause).await;
        }
        let per_scrape = |ns: u64| ns as f64 / 1e6 / n as f64;
        println!(
            "CPU per scrape, {label} ({n}): process {:.2} ms (utime+stime), {:.2} ms \
             (schedstat); broker thread {:.2} ms (schedstat)",
            (cpu_ticks(&process) - ticks) as f64 * tick / n as f64,
            per_scrape(cpu_ns(pid, None) - all),
            per_scrape(cpu_ns(pid, Some(pid)) - main),
        );
    }

    // RSS under 64 never-reading scrapers: from one address, then from eight.
    for sources in [1u8, 8] {
        let sampler = RssSampler::start(pid);
        let mut held = Vec::new();
        for i in 0..sources {
            let source = Ipv4Addr::new(127, 0, 0, 2 + i);
            held.extend(never_reading(source, addr, 64 / usize::from(sources)).await);
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        let during = successes(addr, 5).await;
        // Still not reading, 17 s after they asked.
        tokio::time::sleep(Duration::from_secs(12)).await;
        let later = successes(addr, 5).await;
        println!(
            "64 never-reading scrapers from {sources} address(es): peak RSS {} MiB; \
             after 5 s: {during}; after 17 s: {later}",
            sampler.peak_kib() / 1024
        );
        drop(held);
        // Let the broker notice they are gone.
        tokio::time::sleep(Duration::from_secs(12)).await;
    }

    // Legitimate scrapes under 100 slowloris connections.
    let opened = Arc::new(AtomicU64::new(0));
    let slow = slowloris(ATTACKER, addr, 100, opened.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ok = successes(addr, 20).await;
    println!(
        "100 slowloris connections ({} opened): {ok}",
        opened.load(Ordering::Relaxed)
    );
    drop(slow);
    println!(
        "peak RSS over the run (VmHWM) {} MiB; broker stderr {} bytes",
        rss("VmHWM"),
        broker.stderr().len()
    );
    worker.abort();
}
