//! `zmtp-bench matrix`: runs a table of benchmarks as child processes of this program
//! and prints the results aligned.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::BoxError;

const SIZES: [usize; 4] = [16, 256, 4096, 65536];
const FANOUT_SIZES: [usize; 2] = [16, 256];
const FANOUT_SUBS: u64 = 8;
const LATENCY_SIZE: usize = 100;
/// How long a child may take to print READY.
const READY_WAIT: Duration = Duration::from_secs(30);

/// Rough messages per second of each kind of row on a small machine, used to size
/// COUNT so a row takes about the target time.
fn estimated_rate(kind: Kind, size: usize) -> f64 {
    match kind {
        Kind::Pair => match size {
            0..=64 => 1_300_000.0,
            65..=1024 => 1_200_000.0,
            1025..=8192 => 300_000.0,
            _ => 30_000.0,
        },
        // inproc hands over `Bytes` without copying: the rate hardly depends on size.
        Kind::Inproc => 2_000_000.0,
        Kind::Fanout => 200_000.0,
        Kind::Latency => 13_000.0,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `recv` and `send` children over tcp or ipc.
    Pair,
    /// One `inproc` child.
    Inproc,
    /// One `fanout` child.
    Fanout,
    /// `rep` and `req` children.
    Latency,
}

struct Spec {
    kind: Kind,
    pattern: &'static str,
    transport: &'static str,
    size: usize,
    count: u64,
}

enum Outcome {
    Throughput {
        secs: f64,
        msgs_per_s: f64,
        mb_per_s: f64,
        note: String,
    },
    Latency(HashMap<String, String>),
    Failed(String),
}

/// How much slower CURVE rows run than NULL ones, roughly, by message size (CURVE
/// boxes every frame and adds 33 bytes to it).
fn curve_slowdown(kind: Kind, size: usize) -> f64 {
    match (kind, size) {
        (Kind::Latency, _) => 1.3,
        (_, 0..=64) => 5.0,
        _ => 10.0,
    }
}

/// The settings of a matrix run (the command line's).
pub struct Options {
    /// About 0.2 s per row instead of about 1 s.
    pub quick: bool,
    /// Children run tokio's current-thread runtime.
    pub current_thread: bool,
    /// Each row's time limit, in seconds.
    pub timeout: u64,
    /// The children's `--hwm`.
    pub hwm: Option<u64>,
    /// CURVE rows (children get `--curve`; inproc rows are left out).
    pub curve: bool,
}

/// Runs the matrix; fails if any row failed (after printing the table).
pub fn run(options: &Options) -> Result<(), BoxError> {
    let Options {
        quick,
        current_thread,
        timeout,
        hwm,
        curve,
    } = *options;
    let exe = std::env::current_exe()?;
    let target = if quick { 0.2 } else { 1.0 };
    let count = |kind: Kind, size: usize| -> u64 {
        let mut rate = estimated_rate(kind, size);
        if curve {
            rate /= curve_slowdown(kind, size);
        }
        let n = (rate * target) as u64;
        n.max(1000)
    };
    // No mechanism runs over inproc: CURVE rows leave it out.
    let transports: &[&'static str] = if curve {
        &["tcp", "ipc"]
    } else {
        &["tcp", "ipc", "inproc"]
    };
    let mut specs = Vec::new();
    for pattern in ["pushpull", "dealerrouter"] {
        for &transport in transports {
            for size in SIZES {
                let kind = if transport == "inproc" {
                    Kind::Inproc
                } else {
                    Kind::Pair
                };
                specs.push(Spec {
                    kind,
                    pattern,
                    transport,
                    size,
                    count: count(kind, size),
                });
            }
        }
    }
    for transport in ["inproc", "tcp"] {
        if curve && transport == "inproc" {
            continue;
        }
        for size in FANOUT_SIZES {
            specs.push(Spec {
                kind: Kind::Fanout,
                pattern: "fanout-1x8",
                transport,
                size,
                count: count(Kind::Fanout, size),
            });
        }
    }
    specs.push(Spec {
        kind: Kind::Latency,
        pattern: "reqrep",
        transport: "tcp",
        size: LATENCY_SIZE,
        count: count(Kind::Latency, LATENCY_SIZE),
    });

    let mut common = vec![
        "--timeout".to_string(),
        timeout.to_string(),
        "--exit-with-stdin".to_string(),
    ];
    if current_thread {
        common.push("--current-thread".to_string());
    }
    if curve {
        common.push("--curve".to_string());
    }
    if let Some(hwm) = hwm {
        common.extend(["--hwm".to_string(), hwm.to_string()]);
    }
    let runner = Runner {
        exe,
        common,
        limit: Duration::from_secs(timeout),
    };
    let mut results = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        eprintln!(
            "[{}/{}] {} {} {} B x {}",
            i + 1,
            specs.len(),
            spec.pattern,
            spec.transport,
            spec.size,
            spec.count
        );
        let outcome = runner
            .run(spec, i)
            .unwrap_or_else(|e| Outcome::Failed(e.to_string()));
        if let Outcome::Failed(e) = &outcome {
            eprintln!("  failed: {e}");
        }
        results.push(outcome);
    }
    print_tables(&specs, &results, options);
    let failed = results
        .iter()
        .filter(|o| matches!(o, Outcome::Failed(_)))
        .count();
    if failed > 0 {
        return Err(format!("{failed} row(s) failed").into());
    }
    Ok(())
}

struct Runner {
    exe: PathBuf,
    common: Vec<String>,
    limit: Duration,
}

impl Runner {
    fn spawn(&self, args: &[String]) -> Result<Kid, BoxError> {
        let mut all = args.to_vec();
        all.extend(self.common.iter().cloned());
        Kid::spawn(&self.exe, all)
    }

    fn run(&self, spec: &Spec, row: usize) -> Result<Outcome, BoxError> {
        let size = spec.size.to_string();
        let count = spec.count.to_string();
        let deadline = Instant::now() + self.limit;
        let ipc_path =
            std::env::temp_dir().join(format!("zmtp-bench-{}-{row}.sock", std::process::id()));
        let _cleanup = RemoveOnDrop(ipc_path.clone());
        let endpoint = match spec.transport {
            "tcp" => "tcp://127.0.0.1:0".to_string(),
            "ipc" => format!("ipc://{}", ipc_path.display()),
            _ => format!("inproc://zmtp-bench-matrix-{row}"),
        };
        match spec.kind {
            Kind::Pair => {
                let receiver =
                    self.spawn(&strings(&["recv", &endpoint, spec.pattern, &size, &count]))?;
                let ready = receiver.line("READY ", Instant::now() + READY_WAIT)?;
                let bound = ready["READY ".len()..].trim().to_string();
                let sender =
                    self.spawn(&strings(&["send", &bound, spec.pattern, &size, &count]))?;
                let result = receiver.line("RESULT ", deadline)?;
                sender.finish(deadline)?;
                receiver.finish(deadline)?;
                throughput(&result, spec.size)
            }
            Kind::Inproc => {
                let child = self.spawn(&strings(&["inproc", spec.pattern, &size, &count]))?;
                let result = child.line("RESULT ", deadline)?;
                child.finish(deadline)?;
                throughput(&result, spec.size)
            }
            Kind::Fanout => {
                let subs = FANOUT_SUBS.to_string();
                let child = self.spawn(&strings(&["fanout", &endpoint, &subs, &size, &count]))?;
                let result = child.line("RESULT ", deadline)?;
                child.finish(deadline)?;
                throughput(&result, spec.size)
            }
            Kind::Latency => {
                let warmup = (spec.count / 10).max(100);
                let total = (spec.count + warmup).to_string();
                let server = self.spawn(&strings(&["rep", &endpoint, &total]))?;
                let ready = server.line("READY ", Instant::now() + READY_WAIT)?;
                let bound = ready["READY ".len()..].trim().to_string();
                let client = self.spawn(&strings(&[
                    "req",
                    &bound,
                    &size,
                    &count,
                    &warmup.to_string(),
                ]))?;
                let result = client.line("RESULT ", deadline)?;
                client.finish(deadline)?;
                server.finish(deadline)?;
                Ok(Outcome::Latency(fields(&result)))
            }
        }
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The `key=value` fields of a RESULT line.
fn fields(line: &str) -> HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn number(fields: &HashMap<String, String>, key: &str) -> Result<f64, BoxError> {
    let value = fields
        .get(key)
        .ok_or_else(|| format!("RESULT has no {key}"))?;
    Ok(value.parse()?)
}

fn throughput(line: &str, size: usize) -> Result<Outcome, BoxError> {
    let f = fields(line);
    let secs = number(&f, "secs")?;
    let msgs_per_s = number(&f, "msgs_per_s")?;
    if let Some(lost) = f.get("lost") {
        // Fan-out: MB/s counts what the subscribers received.
        let deliveries = number(&f, "deliveries_per_s")?;
        return Ok(Outcome::Throughput {
            secs,
            msgs_per_s,
            mb_per_s: deliveries * size as f64 / 1e6,
            note: format!("deliveries/s={} lost={lost}", group(deliveries)),
        });
    }
    Ok(Outcome::Throughput {
        secs,
        msgs_per_s,
        mb_per_s: number(&f, "MB_per_s")?,
        note: String::new(),
    })
}

/// A child process of ours, killed when dropped; its stdout is read line by line on
/// a thread so waits can be bounded.
struct Kid {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Kid {
    fn spawn(exe: &Path, args: Vec<String>) -> Result<Kid, BoxError> {
        let name = args.join(" ");
        let mut child = Command::new(exe)
            .args(&args)
            // Never written: the child sees end of file when we are gone.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        // Wrap first so the child is killed even if the rest fails.
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take();
        let kid = Kid { name, child, lines };
        let stdout = stdout.ok_or("child has no stdout")?;
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(kid)
    }

    /// The next stdout line starting with `prefix` (others are skipped).
    fn line(&self, prefix: &str, deadline: Instant) -> Result<String, BoxError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("`{}`: no {prefix}line in time", self.name).into())
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!("`{}` exited without a {prefix}line", self.name).into())
                }
            }
        }
    }

    /// Waits for a successful exit until `deadline`.
    fn finish(mut self, deadline: Instant) -> Result<(), BoxError> {
        loop {
            if let Some(status) = self.child.try_wait()? {
                if status.success() {
                    return Ok(());
                }
                return Err(format!("`{}` failed: {status}", self.name).into());
            }
            if Instant::now() >= deadline {
                return Err(format!("`{}` did not exit in time", self.name).into());
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// 1234567.8 → "1,234,568".
fn group(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn size_label(size: usize) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

fn print_tables(specs: &[Spec], results: &[Outcome], options: &Options) {
    println!(
        "zmtp-bench matrix{}{} ({} runtime; MB = 10^6 bytes of body)",
        if options.quick { " --quick" } else { "" },
        if options.curve { " --curve" } else { "" },
        if options.current_thread {
            "current-thread"
        } else {
            "multi-thread"
        }
    );
    println!();
    let mut rows = Vec::new();
    let mut latency = Vec::new();
    for (spec, outcome) in specs.iter().zip(results) {
        let head = vec![
            spec.pattern.to_string(),
            spec.transport.to_string(),
            size_label(spec.size),
            group(spec.count as f64),
        ];
        match outcome {
            Outcome::Throughput {
                secs,
                msgs_per_s,
                mb_per_s,
                note,
            } => {
                let mut row = head;
                row.extend([
                    format!("{secs:.3}"),
                    group(*msgs_per_s),
                    format!("{mb_per_s:.1}"),
                    note.clone(),
                ]);
                rows.push(row);
            }
            Outcome::Latency(f) => {
                let mut row = head;
                for key in ["mean_us", "p50_us", "p99_us", "p999_us", "max_us"] {
                    row.push(f.get(key).cloned().unwrap_or_else(|| "?".into()));
                }
                let rt = f.get("rt_per_s").and_then(|v| v.parse().ok());
                row.push(rt.map_or_else(|| "?".into(), group));
                latency.push(row);
            }
            Outcome::Failed(e) => {
                let mut row = head;
                row.extend(["-", "-", "-"].map(String::from));
                row.push(format!("FAILED: {e}"));
                if spec.kind == Kind::Latency {
                    latency.push(row);
                } else {
                    rows.push(row);
                }
            }
        }
    }
    print_table(
        &[
            "pattern",
            "transport",
            "size",
            "count",
            "secs",
            "msg/s",
            "MB/s",
            "",
        ],
        &rows,
    );
    if !latency.is_empty() {
        println!();
        print_table(
            &[
                "pattern",
                "transport",
                "size",
                "count",
                "mean_us",
                "p50_us",
                "p99_us",
                "p999_us",
                "max_us",
                "rt/s",
            ],
            &latency,
        );
    }
}

/// Prints `rows` under `headers`: the first two columns and the last free-text
/// column left-aligned, the rest right-aligned.
fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let columns = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.len());
        }
    }
    let left = |i: usize| i < 2 || (i == columns - 1 && headers[i].is_empty());
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate().take(columns) {
            if i > 0 {
                out.push_str("  ");
            }
            if left(i) {
                out.push_str(&format!("{cell:<width$}", width = widths[i]));
            } else {
                out.push_str(&format!("{cell:>width$}", width = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(&headers.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&rule);
    for row in rows {
        line(row);
    }
}
