//! `mdp-broker` and `mdp` as a library: both command lines, callable from another
//! program with its own arguments (the Python package runs them in-process, so
//! `pip install` gives both). The binaries are these two functions.
//!
//! ```no_run
//! // What `mdp-broker -b tcp://127.0.0.1:5555` does, until Ctrl-C or SIGTERM:
//! let code = mdp_broker::broker_main(["mdp-broker", "-b", "tcp://127.0.0.1:5555"]);
//! ```

mod broker_cli;
mod demo;
mod health;
mod logging;
mod mdp_cli;
mod metrics;
mod peering;
mod pubsub;
mod security;
mod serve;
mod signal;

pub use broker_cli::main_with as broker_main;
pub use mdp_cli::main_with as mdp_main;

/// The command line `args` as `A`, or the exit code after printing why not (or the
/// help or version asked for), as clap's `parse` would without exiting.
fn parse_args<A, I, T>(args: I) -> Result<A, std::process::ExitCode>
where
    A: clap::Parser,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    A::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            std::process::ExitCode::from(2)
        } else {
            std::process::ExitCode::SUCCESS
        }
    })
}

/// The process exit status an [`std::process::ExitCode`] stands for (0-255), for a
/// caller that reports it otherwise than by exiting (the Python package).
pub fn exit_status(code: std::process::ExitCode) -> u8 {
    (0..=u8::MAX)
        .find(|&n| std::process::ExitCode::from(n) == code)
        .unwrap_or(1)
}
