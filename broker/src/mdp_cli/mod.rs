//! `mdp`'s command line: call Majordomo services by hand, see what a broker serves, and put a shell
//! command behind a service. grpcurl for Majordomo.

mod call;
mod connection;
mod introspect;
mod json;
mod ping;
mod run_worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Talk to a Majordomo broker: call services, list them, ping the broker, or serve a
/// service with a shell command.
#[derive(Debug, Parser)]
#[command(
    name = "mdp",
    version,
    after_help = "Examples:\n  \
        mdp call echo hello\n  \
        echo '{\"a\": 2, \"b\": 3}' | mdp call add --msgpack\n  \
        mdp services\n  \
        mdp ping -c 3\n  \
        mdp worker upper -- tr a-z A-Z\n\n\
        The broker is $MDP_BROKER, or tcp://127.0.0.1:5555, unless -b says otherwise."
)]
struct Args {
    #[command(flatten)]
    broker: connection::BrokerArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Call SERVICE with a request of one frame per BODY (or stdin) and print the
    /// reply's frames, partial replies as they arrive.
    Call(call::CallArgs),
    /// List the services the broker knows: workers (idle, busy) and queued requests.
    Services(introspect::ListArgs),
    /// List the broker's workers, or one service's.
    Workers(introspect::WorkersArgs),
    /// Show the broker's counters and each service's served, failed and requeued
    /// requests and latency.
    Stats(introspect::ListArgs),
    /// Measure the round trip to the broker.
    Ping(ping::PingArgs),
    /// Serve SERVICE by running a command per request: the request body on its
    /// stdin, its stdout as the reply.
    Worker(run_worker::WorkerArgs),
}

/// Runs `mdp` with the command line `args` (the program name first), as the
/// binary does; returns its exit code.
pub fn main_with<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Args = match crate::parse_args(args) {
        Ok(args) => args,
        Err(code) => return code,
    };
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run(args)),
        Err(e) => {
            eprintln!("mdp: cannot start: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match args.command {
        Command::Call(call) => call::run(&args.broker, call).await,
        Command::Services(list) => introspect::services(&args.broker, list).await,
        Command::Workers(list) => introspect::workers(&args.broker, list).await,
        Command::Stats(list) => introspect::stats(&args.broker, list).await,
        Command::Ping(ping) => ping::run(&args.broker, ping).await,
        Command::Worker(worker) => run_worker::run(&args.broker, worker).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mdp: {e}");
            ExitCode::FAILURE
        }
    }
}
