//! The harness shared by the anchors: other ZeroMQ implementations run with
//! `zmtp-bench`'s throughput and latency command lines, so one script can pair any
//! implementation's end with any other's and compare the RESULT lines.
//!
//! ```text
//! anchor-NAME recv ENDPOINT pushpull|dealerrouter SIZE COUNT [OPTIONS]
//! anchor-NAME send ENDPOINT pushpull|dealerrouter SIZE COUNT [OPTIONS]
//! anchor-NAME rep  ENDPOINT TOTAL                            [OPTIONS]
//! anchor-NAME req  ENDPOINT SIZE COUNT WARMUP                [OPTIONS]
//! OPTIONS: [--curve] [--hwm N] [--timeout S] [--current-thread|--multi-thread] [--hold]
//! ```
//!
//! `recv` binds, prints `READY <endpoint>` (the port resolved), receives COUNT
//! messages and prints
//! `RESULT impl=NAME mechanism=null|curve pattern=.. size=.. count=.. secs=.. msgs_per_s=.. MB_per_s=..`,
//! timed from the first message to the last as zmtp-bench does. `send` connects and
//! sends COUNT messages of SIZE zero bytes, then closes with a 60 s linger.
//!
//! `rep` binds a REP socket, prints `READY <endpoint>`, echoes TOTAL messages (the
//! peer's WARMUP + COUNT) and closes, lingering so the last reply goes out. `req`
//! connects a REQ socket, makes WARMUP untimed then COUNT timed round trips of SIZE
//! zero bytes, checks every reply is the request echoed (one frame, same bytes) and
//! prints
//! `RESULT impl=NAME mechanism=null|curve size=.. count=.. mean_us=.. p50_us=.. p99_us=.. p999_us=.. max_us=.. rt_per_s=..`
//! (nearest-rank percentiles; `rt_per_s` is COUNT over the whole timed loop), as
//! zmtp-bench does.
//!
//! `--curve` uses the fixed keys of zmtp-bench (libzmq's test keys): the binding
//! side (recv, rep) is the CURVE server, the connecting side (send, req) the client.
//! An anchor whose implementation has no CURVE refuses `--curve`. `--current-thread`
//! (the default) and `--multi-thread` pick the tokio runtime of the anchors that run
//! on tokio; the others ignore them.
//!
//! An anchor is a binary in src/bin/ that calls [`run`] (which parses [`Args`]),
//! does the socket work its own way and reports through [`print_ready`], [`Clock`]
//! (throughput), [`Latency`] and [`check_echo`] (latency).

use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The fixed CURVE keys: the very file zmtp-bench uses.
#[path = "../../zmtp-bench/src/curve_keys.rs"]
pub mod curve_keys;

/// Errors of an anchor.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which end of which pair this process is, with what that mode needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bind, receive, print the throughput RESULT.
    Recv(Throughput),
    /// Connect, send.
    Send(Throughput),
    /// Bind a REP socket, echo `total` messages.
    Rep {
        /// Messages to echo: the peer's WARMUP + COUNT (at least 1).
        total: u64,
    },
    /// Connect a REQ socket, make round trips, print the latency RESULT.
    Req(RoundTrips),
}

/// A `recv`/`send` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throughput {
    /// The socket pair.
    pub pattern: Pattern,
    /// Message body size in bytes.
    pub size: usize,
    /// Number of messages (at least 1).
    pub count: u64,
}

/// A `req` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundTrips {
    /// Request (and reply) size in bytes.
    pub size: usize,
    /// Timed round trips (at least 1).
    pub count: u64,
    /// Untimed round trips before them.
    pub warmup: u64,
}

/// The socket pair of a throughput run.
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
    /// The mode and its positional arguments.
    pub mode: Mode,
    /// Where to bind or connect.
    pub endpoint: String,
    /// CURVE with [`curve_keys`] instead of NULL.
    pub curve: bool,
    /// High-water mark in messages (default 1000, as libzmq).
    pub hwm: u32,
    /// Give up after this long (default 300 s).
    pub timeout: Duration,
    /// Tokio's multi-thread runtime instead of the current-thread one (anchors
    /// on tokio only; `--multi-thread`, default `--current-thread`).
    pub multi_thread: bool,
    /// `send`: once everything is sent, keep the connection open until stdin
    /// reaches end of file (`--hold`). A driver closes stdin when the receiver has
    /// reported, so the receiver never sees its peer leave mid-stream: libzmq 4.3's
    /// receiver, at its high-water mark when the peer closes, stops reading and
    /// never delivers the rest (seen over ipc at 16 B).
    pub hold: bool,
}

/// Blocks until stdin reaches end of file (or fails): `--hold`'s wait.
pub fn wait_for_stdin_eof() {
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
}

/// `--hold` for an anchor on tokio: waits for stdin's end of file on a blocking
/// thread, so the runtime keeps flushing meanwhile.
pub async fn hold(args: &Args) {
    if args.hold {
        let _ = tokio::task::spawn_blocking(wait_for_stdin_eof).await;
    }
}

const USAGE: &str = "usage: recv|send ENDPOINT pushpull|dealerrouter SIZE COUNT [OPTIONS]
       rep ENDPOINT TOTAL [OPTIONS]
       req ENDPOINT SIZE COUNT WARMUP [OPTIONS]
OPTIONS: [--curve] [--hwm N] [--timeout SECONDS] [--current-thread|--multi-thread]
         [--hold] (send: keep the connection until stdin closes)";

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
        let mut hold = false;
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
                "--hold" => hold = true,
                "--hwm" => hwm = number(&value("--hwm")?, "--hwm")?,
                "--timeout" => timeout = number(&value("--timeout")?, "--timeout")?,
                "-h" | "--help" => return Err(USAGE.into()),
                flag if flag.starts_with("--") => {
                    return Err(format!("unknown option {flag}\n{USAGE}").into())
                }
                _ => positional.push(arg),
            }
        }
        if hwm == 0 {
            return Err("--hwm must be at least 1".into());
        }
        if positional.is_empty() {
            return Err(format!("no mode given\n{USAGE}").into());
        }
        let rest = positional.split_off(1);
        let mode = &positional[0];
        let (endpoint, mode) = match mode.as_str() {
            "recv" | "send" => {
                let [endpoint, pattern, size, count] =
                    exactly(mode, "ENDPOINT PATTERN SIZE COUNT", rest)?;
                let pattern = match pattern.as_str() {
                    "pushpull" => Pattern::Pushpull,
                    "dealerrouter" => Pattern::Dealerrouter,
                    other => return Err(format!("unknown pattern {other:?}\n{USAGE}").into()),
                };
                let run = Throughput {
                    pattern,
                    size: number(&size, "SIZE")?,
                    count: at_least_1(&count, "COUNT")?,
                };
                let mode = if mode.as_str() == "recv" {
                    Mode::Recv(run)
                } else {
                    Mode::Send(run)
                };
                (endpoint, mode)
            }
            "rep" => {
                let [endpoint, total] = exactly(mode, "ENDPOINT TOTAL", rest)?;
                let total = at_least_1(&total, "TOTAL")?;
                (endpoint, Mode::Rep { total })
            }
            "req" => {
                let [endpoint, size, count, warmup] =
                    exactly(mode, "ENDPOINT SIZE COUNT WARMUP", rest)?;
                let run = RoundTrips {
                    size: number(&size, "SIZE")?,
                    count: at_least_1(&count, "COUNT")?,
                    warmup: number(&warmup, "WARMUP")?,
                };
                (endpoint, Mode::Req(run))
            }
            other => return Err(format!("unknown mode {other:?}\n{USAGE}").into()),
        };
        Ok(Args {
            mode,
            endpoint,
            curve,
            hwm,
            timeout: Duration::from_secs(timeout),
            multi_thread,
            hold,
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

/// The `N` arguments after `mode`, named `names` in the error if there are not `N`.
fn exactly<const N: usize>(
    mode: &str,
    names: &str,
    args: Vec<String>,
) -> Result<[String; N], BoxError> {
    <[String; N]>::try_from(args).map_err(|args| {
        format!(
            "{mode} takes {N} arguments ({names}), got {}\n{USAGE}",
            args.len()
        )
        .into()
    })
}

fn at_least_1(text: &str, what: &str) -> Result<u64, BoxError> {
    match number(text, what)? {
        0 => Err(format!("{what} must be at least 1").into()),
        n => Ok(n),
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

    /// Call after the last message of `run`: prints the RESULT line of
    /// `implementation` ([`Args::mechanism`] gives `mechanism`).
    pub fn finish(&self, implementation: &str, mechanism: &str, run: &Throughput) {
        let secs = self.start.map_or(0.0, |t| t.elapsed().as_secs_f64());
        // The clock starts at the first message, so it times the other count - 1.
        let msgs_per_s = if run.count > 1 && secs > 0.0 {
            (run.count - 1) as f64 / secs
        } else {
            0.0
        };
        let mb_per_s = msgs_per_s * run.size as f64 / 1e6;
        println!(
            "RESULT impl={implementation} mechanism={mechanism} pattern={} size={} count={} secs={secs:.6} msgs_per_s={msgs_per_s:.0} MB_per_s={mb_per_s:.2}",
            run.pattern.name(),
            run.size,
            run.count,
        );
    }
}

/// Records the timed round trips of a `req` run and prints their statistics, as
/// zmtp-bench's `req` does.
#[derive(Debug)]
pub struct Latency {
    run: RoundTrips,
    samples: Vec<Duration>,
    start: Instant,
}

impl Latency {
    /// Call after the warmup, just before the first timed round trip of `run`: the
    /// rate in the RESULT line is over the time from here to [`Latency::finish`].
    pub fn start(run: &RoundTrips) -> Latency {
        Latency {
            run: *run,
            samples: Vec::with_capacity(usize::try_from(run.count).unwrap_or(0)),
            start: Instant::now(),
        }
    }

    /// One round trip's time.
    pub fn record(&mut self, round_trip: Duration) {
        self.samples.push(round_trip);
    }

    /// Call after the last timed round trip: prints the RESULT line of
    /// `implementation` ([`Args::mechanism`] gives `mechanism`).
    pub fn finish(self, implementation: &str, mechanism: &str) {
        let secs = self.start.elapsed().as_secs_f64();
        println!("{}", self.result(implementation, mechanism, secs));
    }

    /// The RESULT line, the timed loop having taken `secs`.
    fn result(mut self, implementation: &str, mechanism: &str, secs: f64) -> String {
        let samples = &mut self.samples;
        samples.sort_unstable();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let mean = if samples.is_empty() {
            0.0
        } else {
            samples.iter().map(|&d| us(d)).sum::<f64>() / samples.len() as f64
        };
        let pct = |q: f64| us(percentile(samples, q));
        let max = samples.last().map_or(0.0, |&d| us(d));
        let rt_per_s = if secs > 0.0 {
            samples.len() as f64 / secs
        } else {
            0.0
        };
        format!(
            "RESULT impl={implementation} mechanism={mechanism} size={} count={} mean_us={mean:.2} p50_us={:.2} p99_us={:.2} p999_us={:.2} max_us={max:.2} rt_per_s={rt_per_s:.0}",
            self.run.size,
            samples.len(),
            pct(0.50),
            pct(0.99),
            pct(0.999),
        )
    }
}

/// Nearest-rank percentile `q` (0..=1) of sorted samples.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Checks a REQ's reply, given as its number of frames and its first frame: it
/// must be the `request` echoed, one frame of the same bytes.
pub fn check_echo(request: &[u8], frames: usize, first: Option<&[u8]>) -> Result<(), BoxError> {
    match first {
        Some(body) if frames == 1 && body == request => Ok(()),
        Some(body) if frames == 1 && body.len() != request.len() => Err(format!(
            "the reply is not the request echoed: {} bytes for a {}-byte request",
            body.len(),
            request.len()
        )
        .into()),
        Some(_) if frames == 1 => {
            Err("the reply is not the request echoed: its bytes differ".into())
        }
        _ => Err(format!("the reply is not the request echoed: {frames} frames, not 1").into()),
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
        let run = Throughput {
            pattern: Pattern::Dealerrouter,
            size: 16,
            count: 1000,
        };
        assert_eq!(a.mode, Mode::Recv(run));
        assert_eq!(a.endpoint, "tcp://127.0.0.1:0");
        assert_eq!(a.hwm, 5);
        assert_eq!(a.mechanism(), "curve");
        assert!(!a.multi_thread);
        let a = parse("--timeout 9 send tcp://x:1 pushpull 0 1").unwrap();
        let run = Throughput {
            pattern: Pattern::Pushpull,
            size: 0,
            count: 1,
        };
        assert_eq!(a.mode, Mode::Send(run));
        assert_eq!(a.timeout, Duration::from_secs(9));
        assert_eq!(a.mechanism(), "null");
        let a = parse("send tcp://x:1 pushpull 0 1 --current-thread --multi-thread").unwrap();
        assert!(a.multi_thread);

        let a = parse("rep ipc:///tmp/x.sock 11000 --curve").unwrap();
        assert_eq!(a.mode, Mode::Rep { total: 11000 });
        assert_eq!(a.endpoint, "ipc:///tmp/x.sock");
        assert_eq!((a.mechanism(), a.hwm), ("curve", 1000));
        let a = parse("req tcp://x:1 100 10000 0 --hwm 7 --multi-thread").unwrap();
        let run = RoundTrips {
            size: 100,
            count: 10000,
            warmup: 0,
        };
        assert_eq!(a.mode, Mode::Req(run));
        assert_eq!(a.endpoint, "tcp://x:1");
        assert_eq!(a.hwm, 7);
        assert!(a.multi_thread);

        for bad in [
            "",
            "--curve",
            "recv tcp://x:1 pushpull 16",
            "recv tcp://x:1 pubsub 16 10",
            "recv tcp://x:1 pushpull 16 0",
            "recv tcp://x:1 pushpull 16 10 --nope",
            "recv tcp://x:1 pushpull 16 10 --hwm 0",
            "recv tcp://x:1 pushpull 16 10 --hwm",
            "send tcp://x:1 pushpull 16 10 extra",
            "rep tcp://x:1",
            "rep tcp://x:1 0",
            "rep tcp://x:1 10 5",
            "rep tcp://x:1 many",
            "req tcp://x:1 100 10000",
            "req tcp://x:1 100 0 10",
            "req tcp://x:1 100 10 -1",
            "req tcp://x:1 100 10 10 10",
            "req tcp://x:1 pushpull 10 10",
            "reqrep tcp://x:1 100 10 10",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn latency_result_has_nearest_rank_percentiles() {
        let run = RoundTrips {
            size: 100,
            count: 1000,
            warmup: 10,
        };
        let mut latency = Latency::start(&run);
        // 1..=1000 µs, recorded out of order.
        for us in (1..=1000u64).rev() {
            latency.record(Duration::from_micros(us));
        }
        assert_eq!(
            latency.result("x", "null", 0.5),
            "RESULT impl=x mechanism=null size=100 count=1000 mean_us=500.50 p50_us=500.00 \
             p99_us=990.00 p999_us=999.00 max_us=1000.00 rt_per_s=2000"
        );
        let one = [Duration::from_micros(7)];
        assert_eq!(percentile(&one, 0.999), one[0]);
        assert_eq!(percentile(&one, 0.0), one[0]);
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn checks_the_echo() {
        let request = [0u8; 4];
        assert!(check_echo(&request, 1, Some(&[0; 4])).is_ok());
        assert!(check_echo(&request, 1, Some(&[0; 3])).is_err());
        assert!(check_echo(&request, 1, Some(&[0, 0, 1, 0])).is_err());
        assert!(check_echo(&request, 2, Some(&[0; 4])).is_err());
        assert!(check_echo(&request, 0, None).is_err());
        assert!(check_echo(&[], 1, Some(&[])).is_ok());
    }
}
