//! `mdp-torture`: attacks a Majordomo broker and reports what it lost.
//!
//! ```text
//! mdp-torture torture [--long] [--broker PATH]
//! mdp-torture chaos   [--long] [--broker PATH] [--seconds S]
//! mdp-torture soak    [--minutes M] [--broker PATH]
//! mdp-torture cluster [--long] [--broker PATH] [--seconds S]
//! mdp-torture worker ENDPOINT [--dialect D]   # an echo worker (chaos kills these)
//! ```
//!
//! Each run starts its own broker (by default the `mdp-broker` next to this
//! binary), prints one RESULT line, and exits 1 if the broker died, a request was
//! lost, or its memory went over the bound.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use mdp::Dialect;
use mdp::{Worker, WorkerOptions};
use mdp_torture::load::Counted;
use mdp_torture::{chaos, cluster, torture};

#[derive(Parser)]
#[command(
    about = "Attacks a Majordomo broker (the real mdp-broker binary) and reports what it lost"
)]
struct Cli {
    #[command(subcommand)]
    command: Run,
}

#[derive(Subcommand)]
enum Run {
    /// Malformed input, slowloris and floods while a side client must keep being served
    Torture {
        /// Minutes instead of seconds
        #[arg(long)]
        long: bool,
        /// The broker binary (default: mdp-broker beside this one)
        #[arg(long)]
        broker: Option<PathBuf>,
    },
    /// Load while workers are killed and the broker restarts once: nothing may be lost
    Chaos {
        /// Minutes instead of seconds
        #[arg(long)]
        long: bool,
        /// The broker binary (default: mdp-broker beside this one)
        #[arg(long)]
        broker: Option<PathBuf>,
        /// How long the load runs (default: 8 s, 180 s with --long)
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Steady load for minutes; requests served, errors, lost, and RSS over time
    Soak {
        /// How long
        #[arg(long, default_value_t = 10)]
        minutes: u64,
        /// The broker binary (default: mdp-broker beside this one)
        #[arg(long)]
        broker: Option<PathBuf>,
    },
    /// Three peered brokers under load while a random one is killed and restarted:
    /// nothing may be lost
    Cluster {
        /// Minutes instead of seconds (a kill every 10-20 s)
        #[arg(long)]
        long: bool,
        /// The broker binary (default: mdp-broker beside this one)
        #[arg(long)]
        broker: Option<PathBuf>,
        /// How long the load runs (default: 10 s, 180 s with --long)
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// An echo worker for the `echo` service (what chaos starts and kills)
    Worker {
        /// The broker's endpoint
        endpoint: String,
        /// mdp01, mdp02, majortomo or overseer
        #[arg(long, default_value = "mdp02")]
        dialect: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mdp-torture: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Run::Torture { long, broker } => {
                let broker = broker_binary(broker)?;
                let config = if long {
                    torture::Config::long(broker)
                } else {
                    torture::Config::short(broker)
                };
                eprintln!("torture: {config:?}");
                let report = torture::run(&config).await?;
                println!("{report}");
                Ok(())
            }
            Run::Chaos {
                long,
                broker,
                seconds,
            } => {
                let (broker, worker) = (broker_binary(broker)?, this_binary()?);
                let mut config = if long {
                    chaos::Config::long(broker, worker)
                } else {
                    chaos::Config::short(broker, worker)
                };
                config.duration = seconds.map_or(config.duration, Duration::from_secs);
                eprintln!("chaos: {config:?}");
                let report = chaos::run(&config).await?;
                passed(&report, report.counted)
            }
            Run::Soak { minutes, broker } => {
                let config = chaos::Config::soak(broker_binary(broker)?, this_binary()?, minutes);
                eprintln!("soak: {config:?}");
                let report = chaos::run(&config).await?;
                passed(&report, report.counted)
            }
            Run::Cluster {
                long,
                broker,
                seconds,
            } => {
                let (broker, worker) = (broker_binary(broker)?, this_binary()?);
                let mut config = match long {
                    true => cluster::Config::long(broker, worker),
                    false => cluster::Config::short(broker, worker),
                };
                config.duration = seconds.map_or(config.duration, Duration::from_secs);
                eprintln!("cluster: {config:?}");
                let report = cluster::run(&config).await?;
                passed(&report, report.counted)
            }
            Run::Worker { endpoint, dialect } => {
                let dialect = match dialect.as_str() {
                    "mdp01" => Dialect::Mdp01,
                    "mdp02" => Dialect::Mdp02,
                    "majortomo" => Dialect::Majortomo,
                    "overseer" => Dialect::Overseer,
                    other => return Err(format!("unknown dialect {other:?}")),
                };
                let options = WorkerOptions::default()
                    .dialect(dialect)
                    .heartbeat_interval(Duration::from_millis(200))
                    .liveness(5)
                    .reconnect_interval(Duration::from_millis(100))
                    .reconnect_interval_max(Duration::from_millis(500));
                let worker = Worker::new(&endpoint, "echo").options(options);
                worker
                    .run(|request| async move {
                        // Hold each request a moment, so kills find workers busy.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        Ok(request)
                    })
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mdp-torture: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `report`; an error unless every request came back.
fn passed(report: &impl std::fmt::Display, counted: Counted) -> Result<(), String> {
    println!("{report}");
    if counted.passed() {
        Ok(())
    } else {
        Err(counted.failure())
    }
}

fn this_binary() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))
}

/// `given`, or the `mdp-broker` beside this binary.
fn broker_binary(given: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(path) = given {
        return Ok(path);
    }
    let beside = this_binary()?.with_file_name("mdp-broker");
    if beside.exists() {
        Ok(beside)
    } else {
        Err(format!(
            "no broker at {}: build it (cargo build -p mdp-broker) or pass --broker",
            beside.display()
        ))
    }
}
