//! `zmtp-cat`: send stdin lines as ZeroMQ messages, print received ones on stdout.
//!
//! See `zmtp-cat --help` (the text lives in [`cli`]).

mod cli;
mod events;
mod run;
mod text;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() {
    // The stdin reader thread may be blocked in a read: exit without waiting for it.
    std::process::exit(zmtp_cat())
}

/// Runs the tool and returns the exit status: 0 done, 1 timeout, 2 error.
fn zmtp_cat() -> i32 {
    let args = cli::Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("zmtp-cat: error: cannot start the runtime: {e}");
            return 2;
        }
    };
    match runtime.block_on(run::run(args)) {
        Ok(()) | Err(run::Stop::Interrupted) => 0,
        Err(run::Stop::Timeout(after)) => {
            eprintln!("zmtp-cat: timeout: no message for {} ms", after.as_millis());
            1
        }
        Err(run::Stop::Error(e)) => {
            eprintln!("zmtp-cat: error: {e}");
            2
        }
    }
}
