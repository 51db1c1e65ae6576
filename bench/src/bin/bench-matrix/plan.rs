//! What the matrix runs: its rows (scenarios), the implementations and runtimes
//! that run each row, and how many messages a run sends. Pure logic, no processes.

use clap::ValueEnum;

/// A ZeroMQ implementation: ours or an anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum Impl {
    /// This repository's, through `zmtp-bench`.
    Zmtp,
    /// The system's libzmq, through `anchor-libzmq`.
    Libzmq,
    /// zmq.rs (crates.io `zeromq`), through `anchor-zmqrs`.
    Zmqrs,
    /// omq.rs (crates.io `omq-tokio`), through `anchor-omq`.
    Omq,
}

impl Impl {
    /// Every implementation, in the table's column order.
    pub const ALL: [Impl; 4] = [Impl::Zmtp, Impl::Libzmq, Impl::Zmqrs, Impl::Omq];
    /// The anchors, candidates for "best anchor".
    pub const ANCHORS: [Impl; 3] = [Impl::Libzmq, Impl::Zmqrs, Impl::Omq];

    /// The name in RESULT lines (`impl=..`) and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Zmtp => "zmtp",
            Impl::Libzmq => "libzmq",
            Impl::Zmqrs => "zmqrs",
            Impl::Omq => "omq",
        }
    }

    /// Runs on tokio, so a runtime can be chosen.
    pub fn on_tokio(self) -> bool {
        self != Impl::Libzmq
    }

    /// Has CURVE.
    pub fn has_curve(self) -> bool {
        matches!(self, Impl::Zmtp | Impl::Libzmq)
    }
}

/// A tokio runtime flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Runtime {
    /// `new_current_thread`.
    Current,
    /// `new_multi_thread`.
    Multi,
}

impl Runtime {
    /// The mark in table cells.
    pub fn short(self) -> &'static str {
        match self {
            Runtime::Current => "ct",
            Runtime::Multi => "mt",
        }
    }
}

/// The runtime choice of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeChoice {
    /// current-thread only.
    Current,
    /// multi-thread only.
    Multi,
    /// Both; the better median of each row is reported.
    Best,
}

impl RuntimeChoice {
    /// The runtimes to run.
    pub fn runtimes(self) -> &'static [Runtime] {
        match self {
            RuntimeChoice::Current => &[Runtime::Current],
            RuntimeChoice::Multi => &[Runtime::Multi],
            RuntimeChoice::Best => &[Runtime::Current, Runtime::Multi],
        }
    }
}

/// One process's implementation and runtime (`None` for libzmq, which has no tokio).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct End {
    pub imp: Impl,
    pub runtime: Option<Runtime>,
}

impl End {
    /// "zmqrs/mt", "libzmq".
    pub fn label(self) -> String {
        match self.runtime {
            Some(r) => format!("{}/{}", self.imp.name(), r.short()),
            None => self.imp.name().to_string(),
        }
    }
}

/// A column of the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    /// Both ends of one implementation.
    Same(Impl),
    /// The sender (or REQ client) of one implementation, the receiver (REP
    /// server) of another.
    Cross(Impl, Impl),
}

impl Column {
    /// The header.
    pub fn title(self) -> String {
        match self {
            Column::Same(i) => i.name().to_string(),
            Column::Cross(a, b) => format!("{}→{}", a.name(), b.name()),
        }
    }
}

/// One way of running a row: the column it counts for and its two ends (for
/// inproc rows, both are the one process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Variant {
    pub column: Column,
    /// Sender, or the REQ client of latency rows.
    pub sender: End,
    /// Receiver, or the REP server of latency rows.
    pub receiver: End,
}

impl Variant {
    /// "zmqrs/mt", "zmtp/mt→libzmq".
    pub fn label(&self) -> String {
        match self.column {
            Column::Same(_) => self.sender.label(),
            Column::Cross(..) => format!("{}→{}", self.sender.label(), self.receiver.label()),
        }
    }
}

/// The kind of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `recv` and `send` processes over tcp or ipc; msg/s of the receiver.
    Throughput,
    /// One `zmtp-bench inproc` process.
    Inproc,
    /// `rep` and `req` processes; round-trip latency of the client.
    Latency,
}

/// The socket pattern of throughput rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Pattern {
    Pushpull,
    Dealerrouter,
}

impl Pattern {
    pub const ALL: [Pattern; 2] = [Pattern::Pushpull, Pattern::Dealerrouter];

    pub fn name(self) -> &'static str {
        match self {
            Pattern::Pushpull => "pushpull",
            Pattern::Dealerrouter => "dealerrouter",
        }
    }
}

/// The sections `--only` picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Section {
    /// Throughput over tcp://127.0.0.1.
    Tcp,
    /// Throughput over ipc://.
    Ipc,
    /// zmtp's inproc throughput.
    Inproc,
    /// REQ/REP latency over tcp and ipc.
    Lat,
}

/// Where the two processes of a latency row run (`--lat-placement`).
///
/// On a virtual machine the round trip depends on the scheduler's placement more
/// than on any implementation: two processes on one vCPU hand over with a context
/// switch (about 8 µs a round trip on the 2-core VM), on two vCPUs each hop wakes
/// a halted vCPU (about 75 µs). Left free, a run lands in either mode, or switches
/// between them, and its p50 follows. Pinned, each mode is measured on its own:
/// one core shows what the implementations themselves spend, two cores what a
/// round trip between machines' cores costs. A multi-thread runtime (or libzmq's
/// I/O thread) shares its process's one CPU when pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Placement {
    /// Wherever the scheduler puts them.
    Free,
    /// Both processes on the first CPU this program may use.
    OneCore,
    /// The client on the first CPU, the server on the second.
    TwoCores,
}

impl Placement {
    /// The row label's suffix.
    fn suffix(self) -> &'static str {
        match self {
            Placement::Free => "",
            Placement::OneCore => ", one core",
            Placement::TwoCores => ", two cores",
        }
    }

    /// The CPUs (indexes into the usable ones) of the server and the client.
    pub fn cpus(self) -> (Option<usize>, Option<usize>) {
        match self {
            Placement::Free => (None, None),
            Placement::OneCore => (Some(0), Some(0)),
            Placement::TwoCores => (Some(1), Some(0)),
        }
    }
}

/// A scenario: one line of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub kind: Kind,
    /// "pushpull", "dealerrouter" or "reqrep".
    pub pattern: &'static str,
    /// "tcp", "ipc" or "inproc".
    pub transport: &'static str,
    pub size: usize,
    /// Messages (round trips for latency) per run.
    pub count: u64,
    /// Untimed round trips of latency rows.
    pub warmup: u64,
    /// Where the processes run (throughput rows: free).
    pub placement: Placement,
    /// The ways it runs, one or more per column.
    pub variants: Vec<Variant>,
}

#[cfg(test)]
impl Row {
    /// A PUSH->PULL tcp 16 B row of 1000 messages, for tests.
    pub fn test(kind: Kind, variants: Vec<Variant>) -> Row {
        Row {
            kind,
            pattern: "pushpull",
            transport: "tcp",
            size: 16,
            count: 1000,
            warmup: 0,
            placement: Placement::Free,
            variants,
        }
    }
}

#[cfg(test)]
impl Variant {
    /// Both ends of `imp` on `runtime`, for tests.
    pub fn same(imp: Impl, runtime: Option<Runtime>) -> Variant {
        let end = End { imp, runtime };
        Variant {
            column: Column::Same(imp),
            sender: end,
            receiver: end,
        }
    }
}

impl Row {
    /// "pushpull tcp 16 B", "reqrep tcp 100 B, one core".
    pub fn label(&self) -> String {
        format!(
            "{} {} {}{}",
            self.pattern,
            self.transport,
            size_label(self.size),
            self.placement.suffix()
        )
    }
}

/// 65536 → "64 KiB", 16 → "16 B".
pub fn size_label(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

pub const SIZES: [usize; 4] = [16, 256, 4096, 65536];
pub const LATENCY_SIZE: usize = 100;

/// What the command line asks for.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub sections: Vec<Section>,
    pub sizes: Vec<usize>,
    pub patterns: Vec<Pattern>,
    pub impls: Vec<Impl>,
    pub curve: bool,
    pub zmtp_runtime: RuntimeChoice,
    pub anchor_runtime: RuntimeChoice,
    /// Target duration of one run.
    pub seconds: f64,
    pub latency_count: u64,
    pub latency_warmup: u64,
    /// The placements of the latency rows, a row each.
    pub latency_placements: Vec<Placement>,
}

/// Rough messages per second of a row on a small (2-core) machine, by kind and
/// size, used to size COUNT so that a run takes about `seconds`.
pub fn estimated_rate(kind: Kind, size: usize, curve: bool) -> f64 {
    let rate = match kind {
        Kind::Throughput => match size {
            0..=64 => 1_300_000.0,
            65..=1024 => 1_200_000.0,
            1025..=8192 => 300_000.0,
            _ => 30_000.0,
        },
        // inproc hands over buffers without copying: hardly depends on size.
        Kind::Inproc => 2_000_000.0,
        Kind::Latency => 13_000.0,
    };
    // CURVE boxes every frame (and adds 33 bytes to it).
    let slowdown = match (curve, size) {
        (false, _) => 1.0,
        (true, 0..=64) => 5.0,
        (true, _) => 10.0,
    };
    rate / slowdown
}

/// Messages of a throughput run: about `seconds` at the estimated rate, at least 1000.
pub fn throughput_count(kind: Kind, size: usize, curve: bool, seconds: f64) -> u64 {
    ((estimated_rate(kind, size, curve) * seconds) as u64).max(1000)
}

/// The variants of one column, given the runtime choices.
fn variants(column: Column, options: &PlanOptions) -> Vec<Variant> {
    let ends = |imp: Impl| -> Vec<End> {
        if !imp.on_tokio() {
            return vec![End { imp, runtime: None }];
        }
        let choice = if imp == Impl::Zmtp {
            options.zmtp_runtime
        } else {
            options.anchor_runtime
        };
        choice
            .runtimes()
            .iter()
            .map(|&r| End {
                imp,
                runtime: Some(r),
            })
            .collect()
    };
    match column {
        Column::Same(imp) => ends(imp)
            .into_iter()
            .map(|end| Variant {
                column,
                sender: end,
                receiver: end,
            })
            .collect(),
        // Every combination of the two ends' runtimes (libzmq has one).
        Column::Cross(from, to) => {
            let receivers = ends(to);
            ends(from)
                .into_iter()
                .flat_map(|sender| {
                    receivers.iter().map(move |&receiver| Variant {
                        column,
                        sender,
                        receiver,
                    })
                })
                .collect()
        }
    }
}

/// The columns that run over a network transport (tcp, ipc).
pub fn network_columns(options: &PlanOptions) -> Vec<Column> {
    let usable = |i: Impl| options.impls.contains(&i) && (!options.curve || i.has_curve());
    let mut columns: Vec<Column> = Impl::ALL
        .into_iter()
        .filter(|&i| usable(i))
        .map(Column::Same)
        .collect();
    if usable(Impl::Zmtp) && usable(Impl::Libzmq) {
        columns.push(Column::Cross(Impl::Zmtp, Impl::Libzmq));
        columns.push(Column::Cross(Impl::Libzmq, Impl::Zmtp));
    }
    columns
}

/// The rows, in the order they run.
pub fn build(options: &PlanOptions) -> Vec<Row> {
    let on = |s: Section| options.sections.contains(&s);
    let network: Vec<Variant> = network_columns(options)
        .into_iter()
        .flat_map(|c| variants(c, options))
        .collect();
    let mut rows = Vec::new();
    for transport in ["tcp", "ipc", "inproc"] {
        let inproc = transport == "inproc";
        let wanted = match transport {
            "tcp" => on(Section::Tcp),
            "ipc" => on(Section::Ipc),
            _ => on(Section::Inproc) && !options.curve && options.impls.contains(&Impl::Zmtp),
        };
        if !wanted {
            continue;
        }
        for &pattern in &options.patterns {
            for &size in &options.sizes {
                let kind = if inproc {
                    Kind::Inproc
                } else {
                    Kind::Throughput
                };
                let variants = if inproc {
                    variants(Column::Same(Impl::Zmtp), options)
                } else {
                    network.clone()
                };
                if variants.is_empty() {
                    continue;
                }
                rows.push(Row {
                    kind,
                    pattern: pattern.name(),
                    transport,
                    size,
                    count: throughput_count(kind, size, options.curve, options.seconds),
                    warmup: 0,
                    placement: Placement::Free,
                    variants,
                });
            }
        }
    }
    if on(Section::Lat) && !network.is_empty() {
        for &placement in &options.latency_placements {
            for transport in ["tcp", "ipc"] {
                rows.push(Row {
                    kind: Kind::Latency,
                    pattern: "reqrep",
                    transport,
                    size: LATENCY_SIZE,
                    count: options.latency_count,
                    warmup: options.latency_warmup,
                    placement,
                    variants: network.clone(),
                });
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> PlanOptions {
        PlanOptions {
            sections: vec![Section::Tcp, Section::Ipc, Section::Inproc, Section::Lat],
            sizes: SIZES.to_vec(),
            patterns: Pattern::ALL.to_vec(),
            impls: Impl::ALL.to_vec(),
            curve: false,
            zmtp_runtime: RuntimeChoice::Best,
            anchor_runtime: RuntimeChoice::Best,
            seconds: 1.0,
            latency_count: 10_000,
            latency_warmup: 1_000,
            latency_placements: vec![Placement::Free],
        }
    }

    #[test]
    fn counts_aim_at_the_target_time_with_a_floor() {
        assert_eq!(
            throughput_count(Kind::Throughput, 16, false, 1.0),
            1_300_000
        );
        assert_eq!(throughput_count(Kind::Throughput, 65536, false, 0.2), 6_000);
        assert_eq!(throughput_count(Kind::Throughput, 65536, true, 0.2), 1_000);
        assert_eq!(throughput_count(Kind::Inproc, 4096, false, 0.5), 1_000_000);
        assert_eq!(throughput_count(Kind::Throughput, 16, true, 1.0), 260_000);
    }

    #[test]
    fn full_matrix() {
        let rows = build(&options());
        // 2 patterns x 4 sizes x (tcp, ipc, inproc) + 2 latency rows.
        assert_eq!(rows.len(), 26);
        let tcp = &rows[0];
        assert_eq!(tcp.label(), "pushpull tcp 16 B");
        // zmtp ct+mt, libzmq, zmqrs ct+mt, omq ct+mt, two cross pairs with zmtp
        // on either runtime.
        assert_eq!(tcp.variants.len(), 11);
        let cross: Vec<String> = tcp
            .variants
            .iter()
            .filter(|v| matches!(v.column, Column::Cross(..)))
            .map(Variant::label)
            .collect();
        assert_eq!(
            cross,
            [
                "zmtp/ct→libzmq",
                "zmtp/mt→libzmq",
                "libzmq→zmtp/ct",
                "libzmq→zmtp/mt"
            ]
        );
        let inproc = rows.iter().find(|r| r.kind == Kind::Inproc).unwrap();
        assert_eq!(inproc.variants.len(), 2);
        assert!(inproc
            .variants
            .iter()
            .all(|v| v.column == Column::Same(Impl::Zmtp)));
        let lat = rows.last().unwrap();
        assert_eq!(
            (lat.kind, lat.transport, lat.size),
            (Kind::Latency, "ipc", 100)
        );
        assert_eq!((lat.count, lat.warmup), (10_000, 1_000));
    }

    #[test]
    fn filters() {
        let mut o = options();
        o.sections = vec![Section::Tcp];
        o.sizes = vec![256];
        o.patterns = vec![Pattern::Dealerrouter];
        o.impls = vec![Impl::Zmtp, Impl::Omq];
        o.anchor_runtime = RuntimeChoice::Multi;
        o.zmtp_runtime = RuntimeChoice::Current;
        let rows = build(&o);
        assert_eq!(rows.len(), 1);
        let labels: Vec<String> = rows[0].variants.iter().map(Variant::label).collect();
        assert_eq!(labels, ["zmtp/ct", "omq/mt"]);
        assert_eq!(rows[0].label(), "dealerrouter tcp 256 B");
    }

    #[test]
    fn curve_keeps_zmtp_libzmq_and_cross_pairs_without_inproc() {
        let mut o = options();
        o.curve = true;
        o.zmtp_runtime = RuntimeChoice::Current;
        let rows = build(&o);
        assert_eq!(rows.len(), 18);
        assert!(rows.iter().all(|r| r.kind != Kind::Inproc));
        let labels: Vec<String> = rows[0].variants.iter().map(Variant::label).collect();
        assert_eq!(
            labels,
            ["zmtp/ct", "libzmq", "zmtp/ct→libzmq", "libzmq→zmtp/ct"]
        );
    }

    #[test]
    fn a_latency_row_per_placement_and_transport_labelled_by_placement() {
        let mut o = options();
        o.sections = vec![Section::Lat];
        o.latency_placements = vec![Placement::Free, Placement::OneCore, Placement::TwoCores];
        let labels: Vec<String> = build(&o).iter().map(Row::label).collect();
        assert_eq!(
            labels,
            [
                "reqrep tcp 100 B",
                "reqrep ipc 100 B",
                "reqrep tcp 100 B, one core",
                "reqrep ipc 100 B, one core",
                "reqrep tcp 100 B, two cores",
                "reqrep ipc 100 B, two cores",
            ]
        );
        // Server and client: nowhere in particular, together, apart.
        assert_eq!(Placement::Free.cpus(), (None, None));
        assert_eq!(Placement::OneCore.cpus(), (Some(0), Some(0)));
        assert_eq!(Placement::TwoCores.cpus(), (Some(1), Some(0)));
    }

    #[test]
    fn sizes_label() {
        assert_eq!(size_label(16), "16 B");
        assert_eq!(size_label(65536), "64 KiB");
        assert_eq!(size_label(1000), "1000 B");
    }
}
