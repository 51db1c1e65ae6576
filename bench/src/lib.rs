//! The harness shared by the anchors: other ZeroMQ implementations run with
//! `zmtp-bench`'s throughput command line, so one script can pair any sender with any
//! receiver and compare the RESULT lines.
//!
//! ```text
//! anchor-NAME recv ENDPOINT pushpull|dealerrouter SIZE COUNT [--curve] [--hwm N] [--timeout S] [--current-thread|--multi-thread]
//! anchor-NAME send ENDPOINT pushpull|dealerrouter SIZE COUNT [--curve] [--hwm N] [--timeout S] [--current-thread|--multi-thread]
//! ```
//!
//! `recv` binds, prints `READY <endpoint>` (the port resolved), receives COUNT
//! messages and prints
//! `RESULT impl=NAME mechanism=null|curve pattern=.. size=.. count=.. secs=.. msgs_per_s=.. MB_per_s=..`,
//! timed from the first message to the last as zmtp-bench does. `send` connects and
//! sends COUNT messages of SIZE zero bytes, then closes with a 60 s linger.
//! `--curve` uses the fixed keys of zmtp-bench (libzmq's test keys): the binding
//! side is the CURVE server, the connecting side the client. An anchor whose
//! implementation has no CURVE refuses `--curve`. `--current-thread` (the default)
//! and `--multi-thread` pick the tokio runtime of the anchors that run on tokio;
//! the others ignore them.
//!
//! An anchor is a binary in src/bin/ that calls [`Args::from_env`], does the socket
//! work its own way and reports through [`Clock`] and [`print_ready`].

use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The fixed CURVE keys: the very file zmtp-bench uses.
#[path = "../../zmtp-bench/src/curve_keys.rs"]
pub mod curve_keys;

/// Errors of an anchor.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which end of the pair this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bind, receive, print RESULT.
    Recv,
    /// Connect, send.
    Send,
}

/// The socket pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// PUSH sends, PULL receives `[body]`.
    Pushpull,
    /// DEALER sends, ROUTER receives `[id, body]`.
    Dealerrouter,
}

impl Pattern {
    /// The name on the command line and in RESULT lines.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Pushpull => "pushpull",
            Pattern::Dealerrouter => "dealerrouter",
        }
    }
}

/// The command line.
#[derive(Debug, Clone)]
pub struct Args {
    /// recv or send.
    pub mode: Mode,
    /// Where to bind or connect.
    pub endpoint: String,
    /// The socket pair.
    pub pattern: Pattern,
    /// Message body size in bytes.
    pub size: usize,
    /// Number of messages (at least 1).
    pub count: u64,
    /// CURVE with [`curve_keys`] instead of NULL.
    pub curve: bool,
    /// High-water mark in messages (default 1000, as libzmq).
    pub hwm: u32,
    /// Give up after this long (default 300 s).
    pub timeout: Duration,
    /// Tokio's multi-thread runtime instead of the current-thread one (anchors
    /// on tokio only; `--multi-thread`, default `--current-thread`).
    pub multi_thread: bool,
}

const USAGE: &str = "usage: recv|send ENDPOINT pushpull|dealerrouter SIZE COUNT \
                     [--curve] [--hwm N] [--timeout SECONDS] \
                     [--current-thread|--multi-thread]";

impl Args {
    /// Parses the process's arguments.
    pub fn from_env() -> Result<Args, BoxError> {
        Args::parse(std::env::args().skip(1))
    }

    /// Parses arguments (the program name left out).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, BoxError> {
        let mut positional = Vec::new();
        let mut curve = false;
        let mut hwm = 1000u32;
        let mut timeout = 300u64;
        let mut multi_thread = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
            };
            match arg.as_str() {
                "--curve" => curve = true,
                "--current-thread" => multi_thread = false,
                "--multi-thread" => multi_thread = true,
                "--hwm" => hwm = number(&value("--hwm")?, "--hwm")?,
                "--timeout" => timeout = number(&value("--timeout")?, "--timeout")?,
                "-h" | "--help" => return Err(USAGE.into()),
                flag if flag.starts_with("--") => {
                    return Err(format!("unknown option {flag}\n{USAGE}").into())
                }
                _ => positional.push(arg),
            }
        }
        let [mode, endpoint, pattern, size, count] = <[String; 5]>::try_from(positional)
            .map_err(|_| format!("expected 5 arguments\n{USAGE}"))?;
        let mode = match mode.as_str() {
            "recv" => Mode::Recv,
            "send" => Mode::Send,
            other => return Err(format!("unknown mode {other:?}\n{USAGE}").into()),
        };
        let pattern = match pattern.as_str() {
            "pushpull" => Pattern::Pushpull,
            "dealerrouter" => Pattern::Dealerrouter,
            other => return Err(format!("unknown pattern {other:?}\n{USAGE}").into()),
        };
        let count: u64 = number(&count, "COUNT")?;
        if count == 0 || hwm == 0 {
            return Err("COUNT and --hwm must be at least 1".into());
        }
        Ok(Args {
            mode,
            endpoint,
            pattern,
            size: number(&size, "SIZE")?,
            count,
            curve,
            hwm,
            timeout: Duration::from_secs(timeout),
            multi_thread,
        })
    }

    /// `curve` or `null`, as in RESULT lines.
    pub fn mechanism(&self) -> &'static str {
        if self.curve {
            "curve"
        } else {
            "null"
        }
    }
}

fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, BoxError> {
    text.parse()
        .map_err(|_| format!("{what}: {text:?} is not a valid number").into())
}

/// The tokio runtime an anchor runs on: current-thread unless `--multi-thread`.
pub fn tokio_runtime(args: &Args) -> std::io::Result<tokio::runtime::Runtime> {
    if args.multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
}

/// Prints `READY <endpoint>` (flushed: the driver waits for it).
pub fn print_ready(endpoint: &str) {
    println!("READY {endpoint}");
}

/// Times a receiver from its first message to its last.
#[derive(Debug, Default)]
pub struct Clock {
    start: Option<Instant>,
}

impl Clock {
    /// Call once the first message has arrived.
    pub fn start(&mut self) {
        self.start = Some(Instant::now());
    }

    /// Call after the last message: prints the RESULT line of `implementation`.
    pub fn finish(&self, implementation: &str, args: &Args) {
        let secs = self.start.map_or(0.0, |t| t.elapsed().as_secs_f64());
        // The clock starts at the first message, so it times the other count - 1.
        let msgs_per_s = if args.count > 1 && secs > 0.0 {
            (args.count - 1) as f64 / secs
        } else {
            0.0
        };
        let mb_per_s = msgs_per_s * args.size as f64 / 1e6;
        println!(
            "RESULT impl={implementation} mechanism={} pattern={} size={} count={} secs={secs:.6} msgs_per_s={msgs_per_s:.0} MB_per_s={mb_per_s:.2}",
            args.mechanism(),
            args.pattern.name(),
            args.size,
            args.count,
        );
    }
}

/// Runs an anchor's `main`: parses the arguments, arms the `--timeout` watchdog,
/// runs `body` and turns its error into a message and exit status 1.
pub fn run(name: &str, body: impl FnOnce(&Args) -> Result<(), BoxError>) -> ExitCode {
    let args = match Args::from_env() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    let limit = args.timeout;
    let watchdog = name.to_string();
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("{watchdog}: timed out after {} s", limit.as_secs());
        std::process::exit(1);
    });
    match body(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Args, BoxError> {
        Args::parse(line.split_whitespace().map(String::from))
    }

    #[test]
    fn parses_zmtp_bench_command_lines() {
        let a = parse("recv tcp://127.0.0.1:0 dealerrouter 16 1000 --curve --hwm 5").unwrap();
        assert_eq!(a.mode, Mode::Recv);
        assert_eq!(a.pattern, Pattern::Dealerrouter);
        assert_eq!((a.size, a.count, a.hwm), (16, 1000, 5));
        assert_eq!(a.mechanism(), "curve");
        assert!(!a.multi_thread);
        let a = parse("--timeout 9 send tcp://x:1 pushpull 0 1").unwrap();
        assert_eq!(a.mode, Mode::Send);
        assert_eq!(a.timeout, Duration::from_secs(9));
        assert_eq!(a.mechanism(), "null");
        let a = parse("send tcp://x:1 pushpull 0 1 --current-thread --multi-thread").unwrap();
        assert!(a.multi_thread);
        for bad in [
            "recv tcp://x:1 pushpull 16",
            "recv tcp://x:1 pubsub 16 10",
            "recv tcp://x:1 pushpull 16 0",
            "recv tcp://x:1 pushpull 16 10 --nope",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
