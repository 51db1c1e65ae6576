//! `mdp-broker`'s command line: a Majordomo broker for every MDP dialect in use
//! (MDP 0.1 and 0.2, majortomo, Overseer), on one socket.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::{logging, metrics, peering, pubsub, security, serve, signal};
use mdp::broker::{Broker, BrokerConfig, Quotas, Usage, WorkerDeath};
use zmtp::{Socket, SocketOptions, SocketType};

/// A Majordomo broker: MDP 0.1 and 0.2 clients and workers, majortomo and the Overseer
/// msgpack dialect, all on one socket; each peer is answered in its own dialect.
#[derive(Debug, Parser)]
#[command(
    name = "mdp-broker",
    version,
    after_help = "Examples:\n  mdp-broker\n  mdp-broker -b tcp://*:5555 -b ipc:///tmp/broker.sock -v\n  \
                  zmtp-keygen broker && zmtp-keygen alice && mkdir -p allowed && cp alice.key allowed/\n  \
                  mdp-broker -b tcp://*:5555 --curve-secret-key broker.key_secret --allow-keys allowed\n  \
                  mdp-broker --metrics 127.0.0.1:9100 --pubsub tcp://*:5556 tcp://*:5557\n  \
                  mdp-broker demo",
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Endpoint to bind (repeatable). Default: tcp://127.0.0.1:5555, or
    /// tcp://$BROKER_HOST:$BROKER_PORT when those are set (as the Overseer broker).
    #[arg(short, long = "bind", value_name = "ENDPOINT")]
    bind: Vec<String>,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Heartbeat interval in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2500)]
    heartbeat_interval: u64,
    /// Missed heartbeats before a worker is declared dead.
    #[arg(long, value_name = "N", default_value_t = 3)]
    heartbeat_liveness: u32,
    /// How long a request may wait for a worker, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    request_ttl: u64,
    /// Most requests waiting in one service's queue; more are dropped.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    max_queue: usize,
    #[command(flatten)]
    quotas: QuotaArgs,
    /// Messages queued for one connection that does not read them (replies, for a
    /// client): past this many, or past --client-backlog-bytes, further ones are
    /// dropped and counted (`undelivered` in mmi.stats), as a ZeroMQ ROUTER does.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    client_backlog: usize,
    /// The same in bytes (frames plus 32 bytes each).
    #[arg(long, value_name = "SIZE", default_value = "32M", value_parser = parse_size)]
    client_backlog_bytes: u64,
    /// What waits for all connections of one endpoint together, in bytes: past it,
    /// a connection that already has messages waiting gets no more (they are dropped
    /// and counted), while one that reads still gets its own.
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_size)]
    max_backlog_bytes: u64,
    /// The same for all connections of one source address, so that one host's
    /// connections cannot use up --max-backlog-bytes for everybody.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_size)]
    address_backlog_bytes: u64,
    /// Messages read from all connections and not yet handled by the broker, in
    /// bytes; past it, connections are not read until the broker catches up.
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = parse_size)]
    max_inbound_bytes: u64,
    /// Longest service name (bytes): a longer READY gets DISCONNECT, a longer
    /// request is dropped.
    #[arg(long, value_name = "BYTES", default_value_t = 255)]
    max_service_name: usize,
    /// Largest MMI answer (mmi.services, mmi.workers, mmi.stats): longer lists are
    /// cut short (bytes, or with a K, M or G suffix).
    #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = parse_size)]
    max_mmi_reply: u64,
    /// Largest message a peer may send (bytes, or with a K, M or G suffix); a frame
    /// declaring more closes that connection before anything is allocated.
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = parse_size)]
    max_message_size: u64,
    /// What happens to the request of a worker that dies while holding it.
    #[arg(long, value_enum, default_value_t = Death::Requeue)]
    on_worker_death: Death,
    /// More logging (-v: debug, -vv: trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Log to this file (its directory is created) instead of stderr, e.g.
    /// ./logs/broker.log as the Overseer broker.
    #[arg(long, value_name = "PATH")]
    log_file: Option<PathBuf>,
    /// Rotate the log file at this size (bytes, or with a K, M or G suffix).
    #[arg(long, value_name = "SIZE", default_value = "10M", value_parser = parse_size)]
    log_max_size: u64,
    /// Rotated log files kept (PATH.1 is the newest).
    #[arg(long, value_name = "N", default_value_t = 5)]
    log_keep: usize,
    /// Threads running the broker. The broker's state machine is one task, so one
    /// thread (the default) serves fastest: every connection's I/O runs beside it
    /// with no wake-up crossing threads. More threads move connection I/O (TCP
    /// writes, CURVE boxes) off that thread, for machines with cores to spare.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    /// Serve the broker's figures (the same as `mmi.stats`) in Prometheus' text
    /// format at http://ADDR/metrics, e.g. 127.0.0.1:9100 (port 0: any free port; the
    /// address is printed as "metrics on http://...").
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Log a one-line summary (workers, requests, replies, drops...) at info level
    /// every this many seconds; 0: never.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    summary_interval: u64,
    /// Run an event bus beside the broker: publishers connect to IN, subscribers to
    /// OUT, and events reach the subscribers whose topic prefix they match (an
    /// XSUB/XPUB forwarder; the broker's security applies to both). The endpoints
    /// bound are printed as "events in on ..." and "events out on ...".
    #[arg(long, num_args = 2, value_names = ["IN", "OUT"])]
    pubsub: Vec<String>,
    #[command(flatten)]
    bus: pubsub::BusArgs,
    #[command(flatten)]
    security: security::SecurityArgs,
}

/// Several brokers serving as one.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Cluster")]
struct ClusterArgs {
    /// Another broker to peer with (repeatable): a request for a service this
    /// broker has no idle worker for goes to a peer that has one, and its reply
    /// comes back. `tcp://name:port` means every address the name resolves to,
    /// resolved again every 5 s (a Kubernetes headless Service); this broker's own
    /// address among them is recognised and ignored, so every broker can be given
    /// the same list.
    #[arg(long = "peer", value_name = "ENDPOINT")]
    peers: Vec<String>,
    /// This broker's name, told to its peers (logs, mmi.workers, /metrics).
    /// Default: $HOSTNAME, else mdp-broker.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// CURVE: the peers' public key (a public certificate or a Z85 key file).
    /// Default: this broker's own (brokers of a cluster sharing one key pair).
    /// Peers connect with this broker's key pair, which its own --allow-keys
    /// always lets in.
    #[arg(long, value_name = "FILE", requires = "curve_secret_key")]
    peer_public_key: Option<PathBuf>,
}

/// What the broker holds for its clients; see `mdp::broker::quota`.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Quotas (requests held: waiting or in flight)")]
struct QuotaArgs {
    /// Most requests the broker holds in all; senders are paused from three
    /// quarters of it.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    max_requests: usize,
    /// Most bytes of requests the broker holds in all (frames plus bookkeeping).
    #[arg(long, value_name = "SIZE", default_value = "512M", value_parser = parse_size)]
    max_request_bytes: u64,
    /// One connection is paused (not read) while it holds this many requests; what
    /// it sent before the pause is taken up to twice this.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    client_quota: usize,
    /// The same in bytes.
    #[arg(long, value_name = "SIZE", default_value = "32M", value_parser = parse_size)]
    client_quota_bytes: u64,
    /// One source address (all its connections) is paused at this many requests.
    #[arg(long, value_name = "N", default_value_t = 200_000)]
    address_quota: usize,
    /// The same in bytes.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_size)]
    address_quota_bytes: u64,
    /// Most requests held for services that have no worker; more are dropped.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    max_unserved: usize,
    /// The same in bytes.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_size)]
    max_unserved_bytes: u64,
    /// Most requests one address may have held for services without workers.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    address_unserved: usize,
    /// The same in bytes.
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = parse_size)]
    address_unserved_bytes: u64,
}

impl QuotaArgs {
    fn quotas(&self) -> Quotas {
        let usage = |requests: usize, bytes: u64| Usage {
            requests: requests.max(1),
            bytes: usize::try_from(bytes).unwrap_or(usize::MAX),
        };
        Quotas::default()
            .total(usage(self.max_requests, self.max_request_bytes))
            .per_connection(usage(self.client_quota, self.client_quota_bytes))
            .per_address(usage(self.address_quota, self.address_quota_bytes))
            .unserved_total(usage(self.max_unserved, self.max_unserved_bytes))
            .unserved_per_address(usage(self.address_unserved, self.address_unserved_bytes))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The two-minute tour: a broker, its event bus, workers and clients in this
    /// process; requests, events and heartbeats flow, live stats print every second,
    /// then everything shuts down cleanly.
    Demo {
        /// How long the tour runs.
        #[arg(long, value_name = "SECS", default_value_t = 6)]
        seconds: u64,
    },
}

/// `4096`, `512K`, `10M`, `1G` (binary multiples).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_uppercase()),
        _ => (text, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => return Err(format!("unknown size unit {unit:?} (use K, M or G)")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("not a size: {text:?}"))?;
    n.checked_mul(1 << shift)
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("size out of range: {text:?}"))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Death {
    /// Give the request to another worker of the service.
    Requeue,
    /// Drop it (the client's retry brings it back).
    Drop,
}

fn endpoints(args: &Args) -> Vec<String> {
    if !args.bind.is_empty() {
        return args.bind.clone();
    }
    let host = std::env::var("BROKER_HOST").ok();
    let port = std::env::var("BROKER_PORT").ok();
    if host.is_some() || port.is_some() {
        let host = host.unwrap_or_else(|| "127.0.0.1".into());
        let port = port.unwrap_or_else(|| "5555".into());
        return vec![format!("tcp://{host}:{port}")];
    }
    vec!["tcp://127.0.0.1:5555".into()]
}

fn broker_name(cluster: &ClusterArgs) -> String {
    cluster
        .name
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "mdp-broker".into())
}

/// Runs `mdp-broker` with the command line `args` (the program name first), as
/// the binary does; returns its exit code.
pub fn main_with<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Args = match crate::parse_args(args) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let log = logging::LogSettings {
        verbose: args.verbose,
        file: args.log_file.clone(),
        max_size: args.log_max_size,
        keep: args.log_keep,
    };
    // Flushes the log file when main returns.
    let _log_guard = match logging::init(&log) {
        Ok(guard) => guard,
        Err(e) => {
            let path = log.file.unwrap_or_default();
            eprintln!("mdp-broker: cannot open log file {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };

    let mut builder = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(usize::from(args.threads));
        builder
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mdp-broker: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args.command {
        Some(Command::Demo { seconds }) => runtime.block_on(crate::demo::run(seconds)),
        None => runtime.block_on(as_task(run(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mdp-broker: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `broker` as a spawned task rather than as the runtime's `block_on`
/// future. On the current-thread runtime a woken `block_on` future is polled only
/// after one more non-blocking turn of the I/O driver (tokio's `park_yield`): an
/// extra `epoll_wait` each time a connection's task hands the broker a message,
/// where a task is polled straight from the run queue (1 x 1: 3.9 `epoll_wait`
/// calls per request before, 1.9 after).
async fn as_task(
    broker: impl std::future::Future<Output = Result<(), String>> + Send + 'static,
) -> Result<(), String> {
    match tokio::spawn(broker).await {
        Ok(result) => result,
        Err(e) => Err(format!("the broker task failed: {e}")),
    }
}

async fn run(args: Args) -> Result<(), String> {
    let config = BrokerConfig::default()
        .heartbeat_interval(Duration::from_millis(args.heartbeat_interval.max(1)))
        .liveness(args.heartbeat_liveness.max(1))
        .request_ttl(Duration::from_millis(args.request_ttl))
        .max_queue(args.max_queue)
        .quotas(args.quotas.quotas())
        .max_message_size(usize::try_from(args.max_message_size).unwrap_or(usize::MAX))
        .max_service_name(args.max_service_name)
        .max_mmi_reply(usize::try_from(args.max_mmi_reply).unwrap_or(usize::MAX))
        .on_worker_death(match args.on_worker_death {
            Death::Requeue => WorkerDeath::Requeue,
            Death::Drop => WorkerDeath::Drop,
        })
        .name(broker_name(&args.cluster));
    let options = SocketOptions::default()
        .max_message_size(config.max_message_size as u64)
        .linger(Duration::from_secs(1));
    let (options, security) = args.security.apply(options)?;
    tracing::info!(%security, "mdp-broker security");
    // The socket that dials peers: the front end's settings, the client side of
    // its mechanism.
    let peer_options = match args.cluster.peers.is_empty() {
        true => None,
        false => Some(
            args.security
                .peer_options(options.clone(), args.cluster.peer_public_key.as_deref())?,
        ),
    };
    let bytes = |size: u64| usize::try_from(size).unwrap_or(usize::MAX);
    let router = options
        .clone()
        .send_hwm(args.client_backlog.max(1))
        .send_hwm_bytes(bytes(args.client_backlog_bytes))
        .send_hwm_bytes_total(bytes(args.max_backlog_bytes))
        .send_hwm_bytes_per_address(bytes(args.address_backlog_bytes))
        .recv_hwm_bytes(bytes(args.max_inbound_bytes));
    let mut socket = Socket::with_options(SocketType::Router, router).map_err(|e| e.to_string())?;
    for endpoint in endpoints(&args) {
        let bound = socket.bind(&endpoint).await.map_err(|e| e.to_string())?;
        tracing::info!(endpoint = %bound, "mdp-broker listening");
        // Scripts and tests read the real endpoint (port 0) from here.
        println!("listening on {bound}");
    }
    if let [publishers, subscribers] = &args.pubsub[..] {
        let limits = args.bus.limits();
        let (publishers, subscribers) =
            pubsub::start(publishers, subscribers, options, &limits).await?;
        tracing::info!(%publishers, %subscribers, "event bus");
        println!("events in on {publishers}");
        println!("events out on {subscribers}");
    }
    let mut extras = serve::Extras {
        summary_every: (args.summary_interval > 0)
            .then(|| Duration::from_secs(args.summary_interval)),
        ..serve::Extras::default()
    };
    if let Some(peer_options) = peer_options {
        let peers = mdp::Brokers::from(args.cluster.peers.clone());
        extras.peers = Some(
            peering::PeerLinks::start(peers, peer_options).map_err(|e| format!("--peer: {e}"))?,
        );
    }
    if let Some(addr) = &args.metrics {
        let (handle, questions) = serve::StatsHandle::new(config.heartbeat_interval);
        extras.health = Some(handle.health());
        let bound = metrics::start(addr, handle)
            .await
            .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
        tracing::info!(%bound, "metrics on http://{bound}/metrics");
        println!("metrics on http://{bound}/metrics");
        extras.stats = Some(questions);
    }
    // The signals are watched on their own task: the broker loop then waits on one
    // cheap channel instead of polling two signal streams every turn.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        signal::shutdown_signal().await;
        let _ = stop.send(());
    });
    serve::serve(
        socket,
        Broker::new(config),
        async move {
            let _ = stopped.await;
        },
        extras,
    )
    .await
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_with_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("10m"), Ok(10 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("10X").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999G").is_err());
    }
}
