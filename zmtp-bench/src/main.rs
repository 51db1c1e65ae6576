//! `zmtp-bench`: the stream benchmark program of the zmtp workspace.
//!
//! The `recv`/`send` and `rep`/`req` pairs take the same arguments as libzmq's perf
//! tools (`local_thr`/`remote_thr`, `local_lat`/`remote_lat`), so one harness can drive
//! any implementation and compare the `RESULT` lines:
//!
//! ```text
//! zmtp-bench recv ENDPOINT pushpull|dealerrouter SIZE COUNT   # binds, prints READY <endpoint>, then RESULT
//! zmtp-bench send ENDPOINT pushpull|dealerrouter SIZE COUNT   # connects, sends COUNT messages
//! zmtp-bench rep  ENDPOINT TOTAL                              # binds, prints READY, echoes TOTAL messages
//! zmtp-bench req  ENDPOINT SIZE COUNT WARMUP                  # connects, prints RESULT
//! zmtp-bench inproc pushpull|dealerrouter SIZE COUNT          # both ends in this process
//! zmtp-bench fanout ENDPOINT SUBS SIZE COUNT                  # 1 PUB, SUBS SUBs in this process
//! zmtp-bench matrix [--quick]                                 # a table of the above
//! ```
//!
//! `--curve` (any mode but `inproc`) runs CURVE with the fixed keys of
//! [`curve_keys`] (libzmq's test keys): the binding side (recv, rep, fanout's PUB) is
//! the CURVE server, the connecting side (send, req, the SUBs) the client. Any
//! implementation given those keys can take either side.
//!
//! Throughput results:
//! `RESULT impl=zmtp mechanism=null|curve pattern=.. size=.. count=.. secs=.. msgs_per_s=.. MB_per_s=..`;
//! latency results:
//! `RESULT impl=zmtp mechanism=null|curve size=.. count=.. mean_us=.. p50_us=.. p99_us=.. p999_us=.. max_us=.. rt_per_s=..`.
//! MB is 10^6 bytes of message body.

mod curve_keys;
mod matrix;
mod modes;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use modes::Security;

/// Errors of the benchmark modes.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Parser)]
#[command(name = "zmtp-bench", version, about = "Stream benchmarks for zmtp")]
struct Cli {
    /// Run on tokio's current-thread runtime instead of the multi-thread one.
    #[arg(long, global = true)]
    current_thread: bool,
    /// High-water mark of every socket, in messages (default: 1000 as libzmq for
    /// send/recv/inproc/req/rep, 100000 for fanout). 0 (unlimited) is refused.
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    hwm: Option<u64>,
    /// Exit when stdin reaches end of file: `matrix` gives its children a pipe, so
    /// they end with it even if it is killed before it can kill them.
    #[arg(long, global = true, hide = true)]
    exit_with_stdin: bool,
    /// Give up (exit status 1) after this many seconds.
    #[arg(long, global = true, default_value_t = 300)]
    timeout: u64,
    /// Use CURVE with fixed, public test keys (libzmq's): the binding side is the
    /// server, the connecting side the client. Not for inproc.
    #[arg(long, global = true)]
    curve: bool,
    #[command(subcommand)]
    command: Command,
}

/// The socket pair a throughput run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pattern {
    /// PUSH sends, PULL receives.
    Pushpull,
    /// DEALER sends, ROUTER receives `[id, body]`.
    Dealerrouter,
}

impl Pattern {
    /// The name used in `RESULT` lines and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Pushpull => "pushpull",
            Pattern::Dealerrouter => "dealerrouter",
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Bind ENDPOINT, print `READY <endpoint>`, receive COUNT messages, print RESULT.
    Recv {
        /// tcp://127.0.0.1:0, ipc:///path or inproc://name.
        endpoint: String,
        /// pushpull or dealerrouter.
        pattern: Pattern,
        /// Message body size in bytes.
        size: usize,
        /// Number of messages.
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
    },
    /// Connect to ENDPOINT and send COUNT messages of SIZE bytes.
    Send {
        /// The endpoint `recv` printed.
        endpoint: String,
        /// pushpull or dealerrouter.
        pattern: Pattern,
        /// Message body size in bytes.
        size: usize,
        /// Number of messages.
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
        /// Once everything is sent, keep the connection open until stdin reaches
        /// end of file: a driver closes it when the receiver has reported, so the
        /// receiver never sees its peer leave mid-stream.
        #[arg(long)]
        hold: bool,
        /// A fresh body per message (`Bytes::copy_from_slice`), as a program that
        /// builds each message sends; by default clones of one body.
        #[arg(long)]
        fresh_bodies: bool,
    },
    /// Bind a REP socket, print `READY <endpoint>`, echo TOTAL messages.
    Rep {
        /// tcp://127.0.0.1:0, ipc:///path or inproc://name.
        endpoint: String,
        /// Messages to echo: the peer's COUNT + WARMUP.
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        total: u64,
    },
    /// Connect a REQ socket, do WARMUP then COUNT timed round trips, print RESULT.
    Req {
        /// The endpoint `rep` printed.
        endpoint: String,
        /// Message size in bytes.
        size: usize,
        /// Timed round trips.
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
        /// Untimed round trips first.
        warmup: u64,
    },
    /// Both ends in this process over inproc://, print RESULT (pattern=inproc-..).
    Inproc {
        /// pushpull or dealerrouter.
        pattern: Pattern,
        /// Message body size in bytes.
        size: usize,
        /// Number of messages.
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
    },
    /// One PUB bound at ENDPOINT, SUBS SUB sockets (one tokio task each) in this
    /// process; print RESULT with deliveries and loss.
    Fanout {
        /// tcp://127.0.0.1:0, ipc:///path or inproc://name.
        endpoint: String,
        /// Number of subscribers.
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        subs: u64,
        /// Message size in bytes (at least 1: the first byte tags the message).
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        size: u64,
        /// Messages published (end markers not counted).
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
    },
    /// Run a table of benchmarks as child processes of this program (`--hwm`,
    /// `--timeout`, `--current-thread` and `--curve` are passed on to them;
    /// `--curve` leaves the inproc rows out).
    Matrix {
        /// About 0.2 s per row instead of about 1 s.
        #[arg(long)]
        quick: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Matrix { quick } = cli.command {
        let options = matrix::Options {
            quick,
            current_thread: cli.current_thread,
            timeout: cli.timeout,
            hwm: cli.hwm,
            curve: cli.curve,
        };
        return match matrix::run(&options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("zmtp-bench matrix: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if cli.exit_with_stdin {
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            eprintln!("zmtp-bench: the parent is gone, exiting");
            std::process::exit(3);
        });
    }
    let runtime = if cli.current_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("zmtp-bench: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let hwm = cli.hwm.map(|h| usize::try_from(h).unwrap_or(usize::MAX));
    let limit = Duration::from_secs(cli.timeout);
    let security = if cli.curve {
        Security::Curve
    } else {
        Security::Null
    };
    let result = runtime.block_on(async move {
        match tokio::time::timeout(limit, dispatch(cli.command, hwm, security)).await {
            Ok(result) => result,
            Err(_) => Err(format!("timed out after {} s", limit.as_secs()).into()),
        }
    });
    // Socket tasks may still be lingering; do not wait for them.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zmtp-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(
    command: Command,
    hwm: Option<usize>,
    security: Security,
) -> Result<(), BoxError> {
    let default_hwm = hwm.unwrap_or(1000);
    match command {
        Command::Recv {
            endpoint,
            pattern,
            size,
            count,
        } => modes::recv(&endpoint, pattern, size, count, default_hwm, security).await,
        Command::Send {
            endpoint,
            pattern,
            size,
            count,
            hold,
            fresh_bodies,
        } => {
            let bodies = if fresh_bodies {
                modes::Bodies::Fresh
            } else {
                modes::Bodies::Shared
            };
            let what = (pattern, size, count);
            modes::send(&endpoint, what, default_hwm, security, hold, bodies).await
        }
        Command::Rep { endpoint, total } => {
            modes::rep(&endpoint, total, default_hwm, security).await
        }
        Command::Req {
            endpoint,
            size,
            count,
            warmup,
        } => modes::req(&endpoint, size, count, warmup, default_hwm, security).await,
        Command::Inproc {
            pattern,
            size,
            count,
        } => {
            if security == Security::Curve {
                return Err("--curve does not apply to inproc (no mechanism runs there)".into());
            }
            modes::inproc(pattern, size, count, default_hwm).await
        }
        Command::Fanout {
            endpoint,
            subs,
            size,
            count,
        } => {
            let subs = usize::try_from(subs)?;
            let size = usize::try_from(size)?;
            let hwm = hwm.unwrap_or(100_000);
            modes::fanout(&endpoint, subs, size, count, hwm, security).await
        }
        Command::Matrix { .. } => unreachable!("handled before the runtime starts"),
    }
}
