//! Several peered brokers, and the chaos run over them.
//!
//! [`Cluster`] starts `mdp-broker` processes on 127.0.0.1, 127.0.0.2, 127.0.0.3…
//! (all loopback) with one port, each peering with every address (its own
//! included, which it recognises and ignores), and kills (`kill -9`) and restarts
//! any of them. The broker tests use it too.
//!
//! [`run`] is the cluster's chaos: workers of every dialect spread over the
//! brokers, clients on each broker and clients that know all of them, steady load,
//! and a random broker killed and restarted every so often. Every request is
//! counted: it must come back with its own body (through the broker that holds its
//! client requeueing what a dead peer held, or the client's retry when its own
//! broker died). After each kill it records how long the requests that were in
//! flight took to come back: the time from a broker's death to service through
//! the others.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mdp::{Client, ClientOptions, Dialect};

use crate::broker_process::{BrokerProcess, STARTUP};
use crate::junk::Junk;
use crate::load::{echo_loop, Counted, Tally};
use crate::wait::within;

/// Heartbeats short enough that a dead worker, peer or broker is noticed in about
/// a second.
pub const FAST_HEARTBEATS: &[&str] = &["--heartbeat-interval", "200", "--heartbeat-liveness", "5"];

/// Peered brokers on 127.0.0.1.. with one port; killed on drop.
pub struct Cluster {
    binary: PathBuf,
    port: u16,
    /// The peer list every broker gets (`--peer` each).
    peers: Vec<String>,
    extra: Vec<String>,
    env: Vec<(String, String)>,
    brokers: Vec<Option<BrokerProcess>>,
}

impl Cluster {
    /// The loopback address of broker `i`.
    pub fn host(i: usize) -> String {
        format!("127.0.0.{}", i + 1)
    }

    /// `size` brokers, each peering with all (`--peer` per broker's address), with
    /// `extra` arguments.
    pub fn start(binary: &Path, size: usize, extra: &[&str]) -> Result<Cluster, String> {
        Cluster::start_with(binary, size, extra, &[], None)
    }

    /// [`Cluster::start`] with environment variables, and one `--peer` given as
    /// `peer_name` (a `tcp://name:PORT` with `{port}` replaced) instead of the
    /// addresses, for discovery.
    pub fn start_with(
        binary: &Path,
        size: usize,
        extra: &[&str],
        env: &[(&str, &str)],
        peer_name: Option<&str>,
    ) -> Result<Cluster, String> {
        let hosts: Vec<String> = (0..size).map(Cluster::host).collect();
        let host_refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let port = testkit::restartable_port(&host_refs);
        let peers = match peer_name {
            Some(name) => vec![name.replace("{port}", &port.to_string())],
            None => hosts.iter().map(|h| format!("tcp://{h}:{port}")).collect(),
        };
        let mut cluster = Cluster {
            binary: binary.to_owned(),
            port,
            peers,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            brokers: (0..size).map(|_| None).collect(),
        };
        for i in 0..size {
            cluster.brokers[i] = Some(cluster.launch(i)?);
        }
        Ok(cluster)
    }

    /// The port every broker listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Broker `i`'s endpoint.
    pub fn endpoint(&self, i: usize) -> String {
        format!("tcp://{}:{}", Cluster::host(i), self.port)
    }

    /// Every broker's endpoint.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.brokers.len()).map(|i| self.endpoint(i)).collect()
    }

    /// How many brokers (running or not).
    pub fn len(&self) -> usize {
        self.brokers.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.brokers.is_empty()
    }

    /// Broker `i`'s process, if it runs.
    pub fn broker(&self, i: usize) -> Option<&BrokerProcess> {
        self.brokers[i].as_ref()
    }

    /// The command line broker `i` runs with (after the binary).
    pub fn args(&self, i: usize) -> Vec<String> {
        let mut args = vec![
            "-b".to_string(),
            self.endpoint(i),
            "--name".into(),
            format!("b{i}"),
        ];
        for peer in &self.peers {
            args.push("--peer".into());
            args.push(peer.clone());
        }
        args.extend(self.extra.iter().cloned());
        args
    }

    fn launch(&self, i: usize) -> Result<BrokerProcess, String> {
        let mut command = Command::new(&self.binary);
        command.args(self.args(i));
        for (k, v) in &self.env {
            command.env(k, v);
        }
        BrokerProcess::spawn(command, STARTUP)
    }

    /// `kill -9` broker `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut broker) = self.brokers[i].take() {
            broker.kill();
        }
    }

    /// Starts broker `i` again on its address (a bind that fails while the port
    /// is released is tried again for a while).
    pub async fn restart(&mut self, i: usize) -> Result<(), String> {
        self.kill(i);
        let mut failures = 0;
        loop {
            let mut command = Command::new(&self.binary);
            command.args(self.args(i));
            for (k, v) in &self.env {
                command.env(k, v);
            }
            let started =
                tokio::task::spawn_blocking(move || BrokerProcess::spawn(command, STARTUP))
                    .await
                    .map_err(|e| e.to_string())?;
            match started {
                Ok(broker) => {
                    self.brokers[i] = Some(broker);
                    return Ok(());
                }
                Err(_) if failures < 50 => {
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(format!("cannot restart broker {i}: {e}")),
            }
        }
    }

    /// The stderr tails of every running broker, for a failure message.
    pub fn stderr(&self) -> String {
        self.brokers
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                b.as_ref()
                    .map(|b| format!("--- broker {i}\n{}", b.stderr()))
            })
            .collect()
    }
}

/// The cluster chaos run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `mdp-broker` binary.
    pub broker: PathBuf,
    /// A binary that runs `BINARY worker ENDPOINT --dialect D` (mdp-torture).
    pub worker: PathBuf,
    /// Brokers.
    pub brokers: usize,
    /// Worker processes per broker, dialects in turn.
    pub workers_per_broker: usize,
    /// Client tasks per broker (connected to that broker only), each with one
    /// request in flight; as many again know every broker.
    pub clients_per_broker: usize,
    /// How long the load runs.
    pub duration: Duration,
    /// A random broker is killed after a pause drawn from this range, and
    /// restarted a moment later.
    pub kill_every: (Duration, Duration),
}

impl Config {
    /// Seconds, for `cargo test`: one kill.
    pub fn short(broker: PathBuf, worker: PathBuf) -> Config {
        Config {
            broker,
            worker,
            brokers: 3,
            workers_per_broker: 2,
            clients_per_broker: 2,
            duration: Duration::from_secs(10),
            kill_every: (Duration::from_secs(4), Duration::from_secs(5)),
        }
    }

    /// Minutes, for `scripts/torture`: a kill every 10–20 s.
    pub fn long(broker: PathBuf, worker: PathBuf) -> Config {
        Config {
            workers_per_broker: 4,
            clients_per_broker: 4,
            duration: Duration::from_secs(180),
            kill_every: (Duration::from_secs(10), Duration::from_secs(20)),
            ..Config::short(broker, worker)
        }
    }
}

/// What the run counted.
#[derive(Debug, Clone)]
pub struct Report {
    /// What the clients counted.
    pub counted: Counted,
    /// Brokers killed (and restarted).
    pub kills: usize,
    /// Per kill: how long after it the last request that was in flight at the
    /// kill came back, for clients that know every broker.
    pub recoveries: Vec<Duration>,
    /// The same for clients that know one broker (those of the killed broker
    /// wait for its restart).
    pub recoveries_one_broker: Vec<Duration>,
    /// How long the load ran.
    pub elapsed: Duration,
}

impl Report {
    /// Every request answered, with its own body.
    pub fn passed(&self) -> bool {
        self.counted.passed()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (median, worst) = median_and_worst(&self.recoveries);
        let (median_one, worst_one) = median_and_worst(&self.recoveries_one_broker);
        write!(
            f,
            "RESULT cluster {} kills={} \
             recovery_median_ms={median} recovery_worst_ms={worst} \
             one_broker_recovery_median_ms={median_one} one_broker_recovery_worst_ms={worst_one} \
             secs={:.1} req_per_s={:.0}",
            self.counted,
            self.kills,
            self.elapsed.as_secs_f64(),
            self.counted.answered as f64 / self.elapsed.as_secs_f64().max(1e-9),
        )
    }
}

/// The median and the largest of `durations`, in milliseconds.
fn median_and_worst(durations: &[Duration]) -> (u128, u128) {
    let mut ms: Vec<u128> = durations.iter().map(Duration::as_millis).collect();
    ms.sort_unstable();
    let median = ms.get(ms.len() / 2).copied().unwrap_or(0);
    (median, ms.last().copied().unwrap_or(0))
}

/// The kills so far: when, and the longest recovery seen by clients that know
/// every broker and by those that know one.
#[derive(Default)]
struct Kills(Mutex<Vec<(Instant, [Duration; 2])>>);

impl Kills {
    /// A request ran from `start` to `end`: it counts for every kill in between.
    fn finished(&self, start: Instant, end: Instant, knows_all: bool) {
        let mut kills = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for (at, worst) in kills.iter_mut() {
            if start <= *at && *at <= end {
                let slot = &mut worst[usize::from(!knows_all)];
                *slot = (*slot).max(end - *at);
            }
        }
    }
}

/// The dialects the workers speak, in turn.
const DIALECTS: [&str; 4] = ["mdp01", "mdp02", "majortomo", "overseer"];

/// Runs the cluster chaos of `config`; `Err` when it could not be set up.
pub async fn run(config: &Config) -> Result<Report, String> {
    let mut cluster = Cluster::start(&config.broker, config.brokers, FAST_HEARTBEATS)?;
    let mut workers = Vec::new();
    for b in 0..config.brokers {
        for w in 0..config.workers_per_broker {
            let dialect = DIALECTS[(b * config.workers_per_broker + w) % DIALECTS.len()];
            workers.push(WorkerProcess::spawn(
                &config.worker,
                &cluster.endpoint(b),
                dialect,
            )?);
        }
    }
    let tally = Arc::new(Tally::default());
    let kills_seen = Arc::new(Kills::default());
    let running = Arc::new(AtomicBool::new(true));
    let mut clients = Vec::new();
    for b in 0..config.brokers {
        for c in 0..config.clients_per_broker {
            let dialect = [Dialect::Mdp01, Dialect::Mdp02, Dialect::Majortomo][c % 3];
            let options = ClientOptions::default().dialect(dialect);
            let local = Client::connect_with(cluster.endpoint(b), options.clone())
                .map_err(|e| e.to_string())?;
            let all =
                Client::connect_with(cluster.endpoints(), options).map_err(|e| e.to_string())?;
            for (name, client, knows_all) in [
                (format!("b{b}c{c}"), local, false),
                (format!("all{b}c{c}"), all, true),
            ] {
                let kills_seen = kills_seen.clone();
                clients.push(tokio::spawn(echo_loop(
                    name,
                    client,
                    tally.clone(),
                    running.clone(),
                    move |start, end| kills_seen.finished(start, end, knows_all),
                )));
            }
        }
    }
    let started = Instant::now();
    let mut junk = Junk(0x2545_f491_4f6c_dd1d);
    let draw = |junk: &mut Junk| {
        let (low, high) = config.kill_every;
        let span = high.saturating_sub(low).as_millis().max(1) as u64;
        low + Duration::from_millis(junk.below(span) as u64)
    };
    let mut next_kill = started + draw(&mut junk);
    let mut kills = 0;
    while started.elapsed() < config.duration {
        if Instant::now() >= next_kill {
            let victim = junk.below(config.brokers as u64);
            cluster.kill(victim);
            kills_seen
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((Instant::now(), [Duration::ZERO; 2]));
            kills += 1;
            // Down long enough for its clients and peers to notice.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            cluster.restart(victim).await?;
            next_kill = Instant::now() + draw(&mut junk);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.store(false, Ordering::SeqCst);
    for client in clients {
        within("a client to finish its last request", client)
            .await
            .map_err(|e| format!("{e}\n{}", cluster.stderr()))?
            .map_err(|e| e.to_string())?;
    }
    drop(workers);
    let worst: Vec<[Duration; 2]> = kills_seen
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(_, worst)| *worst)
        .collect();
    Ok(Report {
        counted: tally.counted(),
        kills,
        recoveries: worst.iter().map(|w| w[0]).collect(),
        recoveries_one_broker: worst.iter().map(|w| w[1]).collect(),
        elapsed: started.elapsed(),
    })
}

/// An echo worker process of one dialect at one broker; killed on drop.
struct WorkerProcess(Child);

impl WorkerProcess {
    fn spawn(binary: &Path, endpoint: &str, dialect: &str) -> Result<WorkerProcess, String> {
        Command::new(binary)
            .args(["worker", endpoint, "--dialect", dialect])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map(WorkerProcess)
            .map_err(|e| format!("cannot start a worker ({}): {e}", binary.display()))
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
