//! Steady load through a real broker while things die: clients in this process
//! send numbered requests one after another, echo workers run as child processes,
//! a random worker is killed (`kill -9`) and replaced every so often, and the broker
//! itself is killed and restarted on the same port once, half-way. Every request is
//! counted: it must come back, with its own body, through the broker's requeue or
//! the client's retry. The same runner without kills is the soak
//! ([`Config::soak`]), which also samples the broker's RSS.

use std::fmt;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mdp::Client;

use crate::broker_process::{memory_kib, BrokerProcess};
use crate::junk::Junk;
use crate::load::{echo_loop, Counted, Tally};
use crate::sparkline::sparkline;
use crate::wait::within;

/// Heartbeats short enough that a dead worker or broker is noticed in about a second.
const BROKER_ARGS: &[&str] = &["--heartbeat-interval", "200", "--heartbeat-liveness", "5"];

/// The load and what goes wrong during it.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `mdp-broker` binary.
    pub broker: PathBuf,
    /// A binary that runs `BINARY worker ENDPOINT` as an echo worker (mdp-torture).
    pub worker: PathBuf,
    /// Client tasks, each with one request in flight.
    pub clients: usize,
    /// Worker processes, kept at this number.
    pub workers: usize,
    /// How long the load runs.
    pub duration: Duration,
    /// Kill a random worker this often (none: no kills).
    pub kill_every: Option<Duration>,
    /// Kill and restart the broker once, half-way.
    pub restart_broker: bool,
    /// Sample the broker's RSS this often.
    pub sample_every: Duration,
}

impl Config {
    /// Seconds, for `cargo test`.
    pub fn short(broker: PathBuf, worker: PathBuf) -> Config {
        Config {
            broker,
            worker,
            clients: 4,
            workers: 3,
            duration: Duration::from_secs(8),
            kill_every: Some(Duration::from_millis(1000)),
            restart_broker: true,
            sample_every: Duration::from_secs(1),
        }
    }

    /// Minutes, for `scripts/torture`.
    pub fn long(broker: PathBuf, worker: PathBuf) -> Config {
        Config {
            clients: 16,
            workers: 8,
            duration: Duration::from_secs(180),
            kill_every: Some(Duration::from_secs(2)),
            sample_every: Duration::from_secs(10),
            ..Config::short(broker, worker)
        }
    }

    /// The soak: steady load, nothing killed, RSS sampled; `minutes` long.
    pub fn soak(broker: PathBuf, worker: PathBuf, minutes: u64) -> Config {
        Config {
            clients: 16,
            workers: 8,
            duration: Duration::from_secs(minutes * 60),
            kill_every: None,
            restart_broker: false,
            sample_every: Duration::from_secs(10),
            ..Config::short(broker, worker)
        }
    }
}

/// What a run counted.
#[derive(Debug, Clone)]
pub struct Report {
    /// `chaos`, or `soak` when nothing was killed or restarted by design.
    pub suite: &'static str,
    /// What the clients counted.
    pub counted: Counted,
    /// Workers killed.
    pub kills: usize,
    /// Broker restarts.
    pub restarts: usize,
    /// The slowest request, first send to reply, retries included.
    pub worst: Duration,
    /// How long the load ran.
    pub elapsed: Duration,
    /// The broker's RSS in KiB at each sample (restarts start a new process).
    pub rss_kib: Vec<u64>,
}

impl Report {
    /// Every request answered, with its own body.
    pub fn passed(&self) -> bool {
        self.counted.passed()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max_rss = self.rss_kib.iter().copied().max().unwrap_or(0);
        let last_rss = self.rss_kib.last().copied().unwrap_or(0);
        writeln!(
            f,
            "RSS (KiB, one sample every interval): {}  last {last_rss}, max {max_rss}",
            sparkline(&self.rss_kib)
        )?;
        write!(
            f,
            "RESULT {} {} kills={} restarts={} \
             worst_ms={} secs={:.1} req_per_s={:.0} rss_last_kib={last_rss} rss_max_kib={max_rss}",
            self.suite,
            self.counted,
            self.kills,
            self.restarts,
            self.worst.as_millis(),
            self.elapsed.as_secs_f64(),
            self.counted.answered as f64 / self.elapsed.as_secs_f64().max(1e-9),
        )
    }
}

/// Runs the load of `config`; `Err` only when the run itself could not be set up
/// (the broker would not start, a worker would not spawn). Lost requests are in
/// the report.
pub async fn run(config: &Config) -> Result<Report, String> {
    let endpoint = format!("tcp://127.0.0.1:{}", free_port()?);
    let mut broker = BrokerProcess::launch(&config.broker, &endpoint, BROKER_ARGS)?;
    let mut workers = Workers::start(config, &endpoint)?;
    let tally = Arc::new(Tally::default());
    let worst_us = Arc::new(AtomicU64::new(0));
    let running = Arc::new(AtomicBool::new(true));
    let mut clients = Vec::new();
    for c in 0..config.clients {
        let client = Client::connect(&endpoint).map_err(|e| e.to_string())?;
        let worst_us = worst_us.clone();
        clients.push(tokio::spawn(echo_loop(
            format!("client {c}"),
            client,
            tally.clone(),
            running.clone(),
            move |start, end| {
                let took = u64::try_from((end - start).as_micros()).unwrap_or(u64::MAX);
                worst_us.fetch_max(took, Ordering::SeqCst);
            },
        )));
    }

    let started = Instant::now();
    let mut junk = Junk(0x5851_f42d_4c95_7f2d);
    let mut kills = 0;
    let mut restarts = 0;
    let mut rss = Vec::new();
    let mut next_kill = config.kill_every.map(|every| started + every);
    let mut next_sample = started;
    let restart_at = config.restart_broker.then(|| started + config.duration / 2);
    let mut restarted = false;
    let tick = Duration::from_millis(50);
    while started.elapsed() < config.duration {
        let now = Instant::now();
        if now >= next_sample {
            rss.push(memory_kib(broker.pid(), "VmRSS").unwrap_or(0));
            next_sample += config.sample_every;
        }
        if let (Some(at), Some(every)) = (next_kill, config.kill_every) {
            if now >= at {
                workers.kill_one(&mut junk)?;
                kills += 1;
                next_kill = Some(at + every);
            }
        }
        if let Some(at) = restart_at {
            if !restarted && now >= at {
                broker.kill();
                broker = restart(config, &endpoint).await?;
                restarts += 1;
                restarted = true;
            }
        }
        if !broker.is_running() {
            return Err(format!("the broker died\n{}", broker.stderr()));
        }
        tokio::time::sleep(tick).await;
    }
    running.store(false, Ordering::SeqCst);
    for client in clients {
        within("a client to finish its last request", client)
            .await?
            .map_err(|e| e.to_string())?;
    }
    let elapsed = started.elapsed();
    rss.push(memory_kib(broker.pid(), "VmRSS").unwrap_or(0));
    let soak = config.kill_every.is_none() && !config.restart_broker;
    Ok(Report {
        suite: if soak { "soak" } else { "chaos" },
        counted: tally.counted(),
        kills,
        restarts,
        worst: Duration::from_micros(worst_us.load(Ordering::SeqCst)),
        elapsed,
        rss_kib: rss,
    })
}

/// The worker processes, killed on drop.
struct Workers {
    binary: PathBuf,
    endpoint: String,
    children: Vec<Child>,
}

impl Workers {
    fn start(config: &Config, endpoint: &str) -> Result<Workers, String> {
        let mut workers = Workers {
            binary: config.worker.clone(),
            endpoint: endpoint.to_owned(),
            children: Vec::new(),
        };
        for _ in 0..config.workers {
            let child = workers.spawn()?;
            workers.children.push(child);
        }
        Ok(workers)
    }

    fn spawn(&self) -> Result<Child, String> {
        Command::new(&self.binary)
            .args(["worker", &self.endpoint])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start a worker ({}): {e}", self.binary.display()))
    }

    /// `kill -9` one worker at random and start another in its place.
    fn kill_one(&mut self, junk: &mut Junk) -> Result<(), String> {
        if self.children.is_empty() {
            return Ok(());
        }
        let victim = junk.below(self.children.len() as u64);
        let fresh = self.spawn()?;
        let mut old = std::mem::replace(&mut self.children[victim], fresh);
        let _ = old.kill();
        let _ = old.wait();
        Ok(())
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A TCP port free right now (the broker binds it, and binds it again on restart).
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// The broker again on `endpoint`, whose port a killed broker just released; a bind
/// that still fails is tried again for a while.
async fn restart(config: &Config, endpoint: &str) -> Result<BrokerProcess, String> {
    let mut failures = 0;
    loop {
        let binary = config.broker.clone();
        let bind = endpoint.to_owned();
        let started =
            tokio::task::spawn_blocking(move || BrokerProcess::launch(&binary, &bind, BROKER_ARGS))
                .await
                .map_err(|e| e.to_string())?;
        match started {
            Ok(broker) => return Ok(broker),
            Err(_) if failures < 50 => {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(format!("cannot restart the broker on {endpoint}: {e}")),
        }
    }
}
