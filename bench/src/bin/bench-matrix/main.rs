//! `bench-matrix`: the full comparison of zmtp (through `zmtp-bench`) with libzmq,
//! zmq.rs and omq.rs (through the anchors of this package), run as child
//! processes, printed as one table of medians per kind with ratios.
//!
//! ```text
//! bench-matrix [--quick] [--runs N] [--seconds S] [--only tcp,ipc,inproc,lat]
//!              [--sizes 16,256] [--patterns pushpull,dealerrouter]
//!              [--impls zmtp,libzmq,zmqrs,omq] [--curve]
//!              [--anchor-runtime current|multi|best] [--zmtp-runtime current|multi|best]
//!              [--timeout S] [--hwm N] [--lat-count N] [--lat-warmup N]
//!              [--lat-placement free,one-core,two-cores] [--markdown]
//!              [--zmtp-bench PATH] [--anchors DIR]
//! ```
//!
//! Rows: throughput (PUSH/PULL, DEALER/ROUTER x 16 B .. 64 KiB over tcp and ipc, the
//! receiver's msg/s), zmtp's inproc throughput, and REQ/REP 100 B latency over tcp
//! and ipc (the client's p50 and p99), with the two processes where the scheduler
//! puts them, pinned to one CPU, or pinned to two (`--lat-placement`). Each row runs every column RUNS times,
//! interleaved (run 1 of every column, then run 2, ...) so drift hits all alike;
//! cells are medians. Columns: zmtp, libzmq, zmqrs, omq, the best anchor and
//! zmtp/best, and the cross pairs zmtp→libzmq and libzmq→zmtp. With `best`
//! runtimes (the default), tokio implementations run on both runtimes and the cell
//! keeps the better median, marked `ct` or `mt`. scripts/bench-matrix builds
//! everything and runs this.

mod child;
mod cpu;
mod machine;
mod plan;
mod report;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use clap::Parser;

use child::{interrupted, RemoveDirOnDrop, Runner};
use plan::{Column, Impl, Kind, Pattern, Placement, PlanOptions, Row, RuntimeChoice, Section};
use report::{best_anchor, cell_text, format_rate, format_us, ratio, Cell, Results, Table};

#[derive(Debug, Parser)]
#[command(
    name = "bench-matrix",
    about = "Runs zmtp-bench and the anchors (libzmq, zmq.rs, omq.rs) over the full \
             comparison matrix and prints tables of medians with ratios"
)]
struct Cli {
    /// About 0.2 s per run, 1 run, latency 2000 round trips (200 warm-up).
    #[arg(long)]
    quick: bool,
    /// Runs per cell (default 3, 1 with --quick).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    runs: Option<u32>,
    /// Target seconds per throughput run (default 1, 0.2 with --quick).
    #[arg(long)]
    seconds: Option<f64>,
    /// Sections to run (default all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Section>,
    /// Message sizes of the throughput rows (default 16,256,4096,65536).
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Patterns of the throughput rows (default both).
    #[arg(long, value_enum, value_delimiter = ',')]
    patterns: Vec<Pattern>,
    /// Implementations (default all; cross pairs need zmtp and libzmq).
    #[arg(long, value_enum, value_delimiter = ',')]
    impls: Vec<Impl>,
    /// CURVE instead of NULL: zmtp, libzmq and the cross pairs only; no inproc.
    #[arg(long)]
    curve: bool,
    /// Tokio runtime of zmq.rs and omq.rs (`best`: both, the better median kept).
    #[arg(long, value_enum, default_value_t = RuntimeChoice::Best)]
    anchor_runtime: RuntimeChoice,
    /// Tokio runtime of zmtp-bench (`best`: both, the better median kept).
    #[arg(long, value_enum, default_value_t = RuntimeChoice::Best)]
    zmtp_runtime: RuntimeChoice,
    /// Seconds a run may take (passed on to the children, which get 5 s more
    /// before they are killed; default 60, 20 with --quick).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: Option<u64>,
    /// High-water mark passed on to every child (zmq.rs ignores it).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    hwm: Option<u64>,
    /// Timed round trips per latency run (default 10000, 2000 with --quick).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    lat_count: Option<u64>,
    /// Untimed round trips first (default 1000, 200 with --quick).
    #[arg(long)]
    lat_warmup: Option<u64>,
    /// Where the latency rows' two processes run, a row each (default free): on a
    /// VM a free pair lands on one vCPU (a context switch per hop) or on two (a
    /// halted vCPU woken per hop), and its p50 follows the placement more than the
    /// implementation; pinned, each is measured apart.
    #[arg(long, value_enum, value_delimiter = ',')]
    lat_placement: Vec<Placement>,
    /// Print the tables as Markdown.
    #[arg(long)]
    markdown: bool,
    /// The zmtp-bench binary (default: the workspace's target/release/zmtp-bench).
    #[arg(long)]
    zmtp_bench: Option<PathBuf>,
    /// The directory of anchor-libzmq, anchor-zmqrs, anchor-omq (default: this
    /// program's).
    #[arg(long)]
    anchors: Option<PathBuf>,
    /// Print the plan (rows, counts, variants) and exit.
    #[arg(long)]
    dry_run: bool,
}

fn or_all<T: Copy>(chosen: Vec<T>, all: &[T]) -> Vec<T> {
    if chosen.is_empty() {
        all.to_vec()
    } else {
        chosen
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bench-matrix: {e}");
            ExitCode::from(2)
        }
    }
}

/// The workspace's root (this package lives in its bench/ directory).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    let argv: Vec<String> = std::env::args().collect();
    let runs = cli.runs.unwrap_or(if cli.quick { 1 } else { 3 }) as usize;
    let seconds = cli.seconds.unwrap_or(if cli.quick { 0.2 } else { 1.0 });
    if seconds.is_nan() || seconds <= 0.0 {
        return Err("--seconds must be positive".into());
    }
    let options = PlanOptions {
        sections: or_all(
            cli.only,
            &[Section::Tcp, Section::Ipc, Section::Inproc, Section::Lat],
        ),
        sizes: or_all(cli.sizes, &plan::SIZES),
        patterns: or_all(cli.patterns, &Pattern::ALL),
        impls: or_all(cli.impls, &Impl::ALL),
        curve: cli.curve,
        zmtp_runtime: cli.zmtp_runtime,
        anchor_runtime: cli.anchor_runtime,
        seconds,
        latency_count: cli
            .lat_count
            .unwrap_or(if cli.quick { 2_000 } else { 10_000 }),
        latency_warmup: cli
            .lat_warmup
            .unwrap_or(if cli.quick { 200 } else { 1_000 }),
        latency_placements: or_all(cli.lat_placement, &[Placement::Free]),
    };
    let rows = plan::build(&options);
    if rows.is_empty() {
        return Err("nothing to run with these filters".into());
    }
    let anchors = match cli.anchors {
        Some(dir) => dir,
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .parent()
            .ok_or("cannot find this program's directory")?
            .to_path_buf(),
    };
    let zmtp_bench = cli
        .zmtp_bench
        .unwrap_or_else(|| repo_root().join("target/release/zmtp-bench"));
    let ipc_dir = std::env::temp_dir().join(format!("bench-matrix-{}", std::process::id()));
    let runner = Runner {
        zmtp_bench,
        anchors,
        timeout: cli.timeout.unwrap_or(if cli.quick { 20 } else { 60 }),
        hwm: cli.hwm,
        curve: cli.curve,
        ipc_dir: ipc_dir.clone(),
        serial: AtomicU64::new(0),
        cpus: child::usable_cpus(),
    };
    let pinned_cpus = rows
        .iter()
        .filter_map(|row| {
            let (server, client) = row.placement.cpus();
            server.max(client)
        })
        .max()
        .map(|highest| highest + 1);
    if let Some(needed) = pinned_cpus {
        if runner.cpus.len() < needed {
            return Err(format!(
                "--lat-placement needs {needed} usable CPUs, this program may use {:?}",
                runner.cpus
            ));
        }
    }
    if cli.dry_run {
        for row in &rows {
            let variants: Vec<String> = row.variants.iter().map(|v| v.label()).collect();
            println!("{} x {}: {}", row.label(), row.count, variants.join(", "));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut used: Vec<Impl> = rows
        .iter()
        .flat_map(|r| &r.variants)
        .flat_map(|v| [v.sender.imp, v.receiver.imp])
        .collect();
    used.sort();
    used.dedup();
    for imp in used {
        let exe = runner.exe(imp);
        if !exe.is_file() {
            return Err(format!(
                "{} is missing (build it, or see --zmtp-bench/--anchors; scripts/bench-matrix builds everything)",
                exe.display()
            ));
        }
    }
    std::fs::create_dir_all(&ipc_dir).map_err(|e| format!("{}: {e}", ipc_dir.display()))?;
    let _ipc_cleanup = RemoveDirOnDrop(ipc_dir);
    child::catch_signals();

    // The machine before: load averages and a 1 s sample of its CPU use.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load_before = machine::loadavg();
    let busy = machine::sample_busy(Duration::from_secs(1));
    let busy_flag = machine::is_busy(load_before.map(|l| l[0]), busy, cores);
    let busy_text = busy.map_or("?".into(), |b| format!("{b:.0}%"));
    let busy_note = if busy_flag {
        " -- BUSY (1-min load > cores/2 or CPU > 25% busy): expect noise"
    } else {
        ""
    };
    println!(
        "machine: {cores} cores, loadavg {} (before), CPU busy {busy_text} over 1 s before \
         start{busy_note}",
        machine::format_loadavg(load_before),
    );
    let _ = std::io::stdout().flush();

    let started = Instant::now();
    let mut results = Results::default();
    let mut failures = Vec::new();
    let total: usize = rows.iter().map(|r| r.variants.len()).sum::<usize>() * runs;
    let mut done = 0;
    'rows: for (index, row) in rows.iter().enumerate() {
        eprintln!(
            "[row {}/{}] {} x {}{}",
            index + 1,
            rows.len(),
            row.label(),
            row.count,
            if row.kind == Kind::Latency {
                format!(" (+{} warm-up)", row.warmup)
            } else {
                String::new()
            }
        );
        let mut dead = vec![false; row.variants.len()];
        for run in 0..runs {
            // Rotate the order from run to run as well.
            for k in 0..row.variants.len() {
                let i = (k + run) % row.variants.len();
                let variant = &row.variants[i];
                done += 1;
                if dead[i] {
                    continue;
                }
                let outcome = runner.run(row, variant);
                if interrupted() {
                    break 'rows;
                }
                match outcome {
                    Ok(sample) => {
                        let shown = match row.kind {
                            Kind::Latency => format!(
                                "p50 {} us, p99 {} us",
                                format_us(sample.value),
                                sample.p99.map_or("?".into(), format_us)
                            ),
                            _ => format!("{} msg/s", format_rate(sample.value)),
                        };
                        eprintln!(
                            "  [{done}/{total}] run {} {}: {shown}",
                            run + 1,
                            variant.label()
                        );
                        results.record(index, *variant, Some(sample));
                    }
                    Err(e) => {
                        eprintln!(
                            "  [{done}/{total}] run {} {}: FAILED {e}",
                            run + 1,
                            variant.label()
                        );
                        failures.push(format!(
                            "{} / {} run {}: {e}",
                            row.label(),
                            variant.label(),
                            run + 1
                        ));
                        results.record(index, *variant, None);
                        // Later runs would most likely fail the same way (or time out).
                        dead[i] = true;
                    }
                }
            }
        }
    }
    let stopped = interrupted();
    let load_after = machine::loadavg();

    // The report (in Markdown, the header lines as a list).
    println!();
    let item = if cli.markdown { "- " } else { "" };
    let libzmq = libzmq_version();
    println!(
        "{item}bench-matrix: zmtp vs libzmq {libzmq}, zmq.rs, omq.rs; {}; medians of {runs} \
         run(s), ~{seconds} s per throughput run; {:.0} s{}",
        if cli.curve { "CURVE" } else { "NULL" },
        started.elapsed().as_secs_f64(),
        if stopped {
            "; INTERRUPTED: partial"
        } else {
            ""
        }
    );
    let command = report::shell_line(&argv);
    if cli.markdown {
        println!("{item}command: `{command}`");
    } else {
        println!("command: {command}");
    }
    println!(
        "{item}commit: {}",
        machine::git_commit(&repo_root()).unwrap_or_else(|| "?".into())
    );
    println!(
        "{item}machine: {cores} cores, loadavg {} (before) / {} (after), CPU busy {busy_text} \
         over 1 s before start{busy_note}",
        machine::format_loadavg(load_before),
        machine::format_loadavg(load_after),
    );
    if pinned_cpus.is_some() {
        let cpu = |i: usize| runner.cpus[i];
        println!(
            "{item}pinned latency rows: one core = both processes on CPU {}; two cores = \
             client on CPU {}, server on CPU {} (each process's threads share its CPU)",
            cpu(0),
            cpu(0),
            runner.cpus.get(1).map_or("-".into(), |c| c.to_string()),
        );
    }
    let mut notes = Vec::new();
    let throughput: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].kind != Kind::Latency)
        .collect();
    let latency: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].kind == Kind::Latency)
        .collect();
    if !throughput.is_empty() {
        let (table, line) = table(&rows, &throughput, &results);
        print_table(
            "Throughput, msg/s (the receiver's; median)",
            &table,
            cli.markdown,
        );
        notes.push(line);
        print_table(
            "CPU per message, ns: both processes, user + system (median; lower is better)",
            &cpu::table(&rows, &throughput, &results),
            cli.markdown,
        );
    }
    if !latency.is_empty() {
        let (table, line) = table(&rows, &latency, &results);
        print_table(
            &format!(
                "REQ/REP latency {} B, p50/p99 µs of the round trip (median; zmtp/best compares p50, lower is better)",
                plan::LATENCY_SIZE
            ),
            &table,
            cli.markdown,
        );
        notes.push(line);
        print_table(
            "CPU per round trip, ns: both processes, user + system, warm-up included (median; lower is better)",
            &cpu::table(&rows, &latency, &results),
            cli.markdown,
        );
    }
    println!();
    println!(
        "ct/mt: the tokio runtime (current-thread/multi-thread) whose median won where both \
         ran (cross pairs: zmtp's); (k/n): only k of n runs succeeded."
    );
    for note in notes {
        println!("{note}");
    }
    if !failures.is_empty() {
        println!();
        println!("{} run(s) failed:", failures.len());
        for f in &failures {
            println!("  {f}");
        }
    }
    Ok(if stopped {
        ExitCode::from(130)
    } else if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_table(title: &str, table: &Table, markdown: bool) {
    println!();
    if markdown {
        println!("**{title}**");
        println!();
        print!("{}", table.markdown());
    } else {
        println!("{title}");
        print!("{}", table.text());
    }
}

/// The table of `indices` (rows of one kind) and its summary line.
fn table(rows: &[Row], indices: &[usize], results: &Results) -> (Table, String) {
    let columns = [
        Column::Same(Impl::Zmtp),
        Column::Same(Impl::Libzmq),
        Column::Same(Impl::Zmqrs),
        Column::Same(Impl::Omq),
    ];
    let crosses = [
        Column::Cross(Impl::Zmtp, Impl::Libzmq),
        Column::Cross(Impl::Libzmq, Impl::Zmtp),
    ];
    let mut headers: Vec<String> = vec!["row".into()];
    headers.extend(columns.iter().map(|c| c.title()));
    headers.extend(["best anchor".to_string(), "zmtp/best".to_string()]);
    headers.extend(crosses.iter().map(|c| c.title()));
    let latency = indices.iter().any(|&i| rows[i].kind == Kind::Latency);
    let (mut compared, mut good, mut worse) = (0, 0, 0);
    let mut out = Vec::new();
    for &i in indices {
        let row = &rows[i];
        let cells: BTreeMap<Column, Cell> = columns
            .iter()
            .chain(&crosses)
            .map(|&c| (c, results.cell(i, row, c)))
            .collect();
        let mut line = vec![row.label()];
        line.extend(columns.iter().map(|c| cell_text(row.kind, &cells[c])));
        let anchor = best_anchor(row.kind, &cells);
        let shown = |v: f64| match row.kind {
            Kind::Latency => format_us(v),
            _ => format_rate(v),
        };
        line.push(anchor.map_or("-".into(), |(imp, s)| {
            format!("{} {}", shown(s.value), imp.name())
        }));
        let zmtp = match cells[&Column::Same(Impl::Zmtp)] {
            Cell::Ok { summary, .. } => Some(summary.value),
            _ => None,
        };
        let r = zmtp.zip(anchor).and_then(|(z, (_, a))| ratio(z, a.value));
        if let Some(r) = r {
            compared += 1;
            if (latency && r <= 0.75) || (!latency && r >= 1.5) {
                good += 1;
            }
            if (latency && r > 1.0) || (!latency && r < 1.0) {
                worse += 1;
            }
        }
        line.push(r.map_or("-".into(), |r| format!("{r:.2}")));
        line.extend(crosses.iter().map(|c| cell_text(row.kind, &cells[c])));
        out.push(line);
    }
    let table = Table::of_rows(headers, out);
    let summary = if latency {
        format!(
            "latency: zmtp/best p50 <= 0.75 in {good} of {compared} compared rows; zmtp slower (> 1.00) in {worse}"
        )
    } else {
        format!(
            "throughput: zmtp/best >= 1.5 in {good} of {compared} compared rows; zmtp slower (< 1.00) in {worse}"
        )
    };
    (table, summary)
}

/// The system libzmq's version (pkg-config), or "?".
fn libzmq_version() -> String {
    Command::new("pkg-config")
        .args(["--modversion", "libzmq"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "?".into())
}
