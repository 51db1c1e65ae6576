//! From the runs' numbers to the tables: RESULT parsing, medians, the best runtime
//! and the best anchor of a row, ratios, number formatting, text and Markdown
//! tables. Pure logic, no processes.

use std::collections::{BTreeMap, HashMap};

use crate::plan::{Column, Impl, Kind, Row, Runtime, Variant};

/// The `key=value` fields of a `RESULT ...` line.
pub fn fields(line: &str) -> HashMap<String, String> {
    line.split_whitespace()
        .skip_while(|w| *w != "RESULT")
        .skip(1)
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The numeric field `key`.
pub fn number(fields: &HashMap<String, String>, key: &str) -> Result<f64, String> {
    let value = fields
        .get(key)
        .ok_or_else(|| format!("RESULT has no {key}"))?;
    value
        .parse()
        .map_err(|_| format!("RESULT {key}={value} is not a number"))
}

/// Fails unless field `key` is `want`.
pub fn expect(fields: &HashMap<String, String>, key: &str, want: &str) -> Result<(), String> {
    match fields.get(key) {
        Some(v) if v == want => Ok(()),
        other => Err(format!("RESULT {key}={other:?}, expected {want}")),
    }
}

/// One run's measurement: msg/s (throughput) or p50 µs (latency), with p99 µs,
/// and the CPU time both processes took per message (per round trip), user and
/// system, in ns: on a shared machine it holds where rates swing with the load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub value: f64,
    pub p99: Option<f64>,
    pub cpu_ns: Option<f64>,
}

/// The median; `None` if empty. Even counts average the middle two.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The medians of one variant's runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub runtime: Option<Runtime>,
    pub value: f64,
    pub p99: Option<f64>,
    /// CPU per message (see [`Sample`]).
    pub cpu_ns: Option<f64>,
    /// Runs that succeeded, of `runs`.
    pub ok: usize,
    pub runs: usize,
}

/// Medians of `samples` (the successful runs of `runs` attempted); `None` if none.
pub fn summarize(runtime: Option<Runtime>, samples: &[Sample], runs: usize) -> Option<Summary> {
    let value = median(&samples.iter().map(|s| s.value).collect::<Vec<_>>())?;
    let p99s: Vec<f64> = samples.iter().filter_map(|s| s.p99).collect();
    let cpus: Vec<f64> = samples.iter().filter_map(|s| s.cpu_ns).collect();
    Some(Summary {
        runtime,
        value,
        p99: median(&p99s),
        cpu_ns: median(&cpus),
        ok: samples.len(),
        runs,
    })
}

/// Whether a larger value is better (throughput) or a smaller one (latency).
pub fn higher_is_better(kind: Kind) -> bool {
    kind != Kind::Latency
}

/// The better of `candidates` (by median); ties keep the first.
pub fn best<T: Copy>(
    candidates: impl IntoIterator<Item = (T, f64)>,
    higher: bool,
) -> Option<(T, f64)> {
    candidates.into_iter().fold(None, |acc, (t, v)| match acc {
        Some((_, b)) if (higher && v <= b) || (!higher && v >= b) => acc,
        _ => Some((t, v)),
    })
}

/// ours / theirs, if both are positive.
pub fn ratio(ours: f64, theirs: f64) -> Option<f64> {
    (ours > 0.0 && theirs > 0.0).then(|| ours / theirs)
}

/// 2_560_000 → "2.56M", 410_000 → "410k", 12_345 → "12.3k", 999 → "999".
pub fn format_rate(value: f64) -> String {
    let three = |x: f64| -> String {
        if x >= 99.95 {
            format!("{x:.0}")
        } else if x >= 9.995 {
            format!("{x:.1}")
        } else {
            format!("{x:.2}")
        }
    };
    if value >= 999_500.0 {
        format!("{}M", three(value / 1e6))
    } else if value >= 999.5 {
        format!("{}k", three(value / 1e3))
    } else {
        format!("{value:.0}")
    }
}

/// Microseconds: one decimal under 1000.
pub fn format_us(value: f64) -> String {
    if value >= 999.95 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// One measured cell: the variant that won (its runtime) and its medians.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell {
    /// The column does not run in this row (or has not run yet).
    Absent,
    /// Every run of every variant failed.
    Failed,
    /// `marked`: more than one runtime ran; the cell shows which won.
    Ok { summary: Summary, marked: bool },
}

/// All runs of a matrix: for each row, each variant's samples and its attempts.
#[derive(Debug, Default)]
pub struct Results {
    runs: BTreeMap<(usize, Variant), (Vec<Sample>, usize)>,
}

impl Results {
    /// Records a run of `variant` in row `row` (`None`: it failed).
    pub fn record(&mut self, row: usize, variant: Variant, sample: Option<Sample>) {
        let entry = self.runs.entry((row, variant)).or_default();
        entry.1 += 1;
        entry.0.extend(sample);
    }

    /// The cell of `column` in row number `index`.
    pub fn cell(&self, index: usize, row: &Row, column: Column) -> Cell {
        let variants: Vec<&Variant> = row.variants.iter().filter(|v| v.column == column).collect();
        if variants.is_empty() {
            return Cell::Absent;
        }
        let recorded: Vec<(&Variant, &(Vec<Sample>, usize))> = variants
            .iter()
            .filter_map(|v| Some((*v, self.runs.get(&(index, **v))?)))
            .collect();
        if recorded.is_empty() {
            // Not run (interrupted).
            return Cell::Absent;
        }
        let summaries: Vec<Summary> = recorded
            .into_iter()
            .filter_map(|(v, (samples, runs))| {
                // The runtime that varies: a cross pair's end that is on tokio.
                let runtime = v.sender.runtime.or(v.receiver.runtime);
                summarize(runtime, samples, *runs)
            })
            .collect();
        let chosen = best(
            summaries.iter().map(|s| (*s, s.value)),
            higher_is_better(row.kind),
        );
        match chosen {
            None => Cell::Failed,
            Some((summary, _)) => Cell::Ok {
                summary,
                marked: variants.len() > 1,
            },
        }
    }
}

/// The text of a cell.
pub fn cell_text(kind: Kind, cell: &Cell) -> String {
    match cell {
        Cell::Absent => "-".into(),
        Cell::Failed => "fail".into(),
        Cell::Ok { summary, marked } => {
            let mut text = match kind {
                Kind::Latency => format!(
                    "{}/{}",
                    format_us(summary.value),
                    summary.p99.map_or("?".into(), format_us)
                ),
                _ => format_rate(summary.value),
            };
            if *marked {
                if let Some(r) = summary.runtime {
                    text.push(' ');
                    text.push_str(r.short());
                }
            }
            if summary.ok < summary.runs {
                text.push_str(&format!(" ({}/{})", summary.ok, summary.runs));
            }
            text
        }
    }
}

/// The best anchor of a row: its implementation and median.
pub fn best_anchor(kind: Kind, cells: &BTreeMap<Column, Cell>) -> Option<(Impl, Summary)> {
    let candidates = Impl::ANCHORS
        .iter()
        .filter_map(|&i| match cells.get(&Column::Same(i)) {
            Some(Cell::Ok { summary, .. }) => Some(((i, *summary), summary.value)),
            _ => None,
        });
    best(candidates, higher_is_better(kind)).map(|(t, _)| t)
}

/// A table ready to print.
#[derive(Debug, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Columns before this one are left-aligned, the rest right-aligned.
    pub left: usize,
}

impl Table {
    /// A table of `rows` under `headers`, the first column left-aligned, without
    /// the columns in which every row has "-".
    pub fn of_rows(headers: Vec<String>, rows: Vec<Vec<String>>) -> Table {
        let mut table = Table {
            headers,
            rows,
            left: 1,
        };
        table.drop_empty_columns();
        table
    }

    /// Drops the columns (after the first) in which every row has "-".
    pub fn drop_empty_columns(&mut self) {
        let keep: Vec<bool> = (0..self.headers.len())
            .map(|c| c == 0 || self.rows.iter().any(|r| r.get(c).is_some_and(|x| x != "-")))
            .collect();
        let filter = |cells: &mut Vec<String>| {
            let mut i = 0;
            cells.retain(|_| {
                let k = keep.get(i).copied().unwrap_or(true);
                i += 1;
                k
            });
        };
        filter(&mut self.headers);
        for row in &mut self.rows {
            filter(row);
        }
    }

    /// Aligned plain text.
    pub fn text(&self) -> String {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(widths.len()) {
                widths[i] = widths[i].max(width(cell));
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate().take(widths.len()) {
                if i > 0 {
                    out.push_str("  ");
                }
                let pad = " ".repeat(widths[i] - width(cell));
                if i < self.left {
                    out.push_str(cell);
                    out.push_str(&pad);
                } else {
                    out.push_str(&pad);
                    out.push_str(cell);
                }
            }
            out.trim_end().to_string() + "\n"
        };
        let mut out = line(&self.headers);
        out += &line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
        for row in &self.rows {
            out += &line(row);
        }
        out
    }

    /// A GitHub-flavoured Markdown table.
    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| {
            let escaped: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
            format!("| {} |\n", escaped.join(" | "))
        };
        let mut out = line(&self.headers);
        let rule: Vec<String> = (0..self.headers.len())
            .map(|i| if i < self.left { ":--" } else { "--:" }.to_string())
            .collect();
        out += &format!("|{}|\n", rule.join("|"));
        for row in &self.rows {
            out += &line(row);
        }
        out
    }
}

/// The command line as a shell would take it back.
pub fn shell_line(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@%".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_result_lines() {
        let f = fields(
            "RESULT impl=zmtp mechanism=null pattern=pushpull size=16 count=1000 secs=0.5 msgs_per_s=1998 MB_per_s=0.03",
        );
        assert_eq!(f["impl"], "zmtp");
        assert_eq!(number(&f, "msgs_per_s"), Ok(1998.0));
        assert!(number(&f, "p50_us").is_err());
        assert!(expect(&f, "size", "16").is_ok());
        assert!(expect(&f, "impl", "libzmq").is_err());
        let f = fields("RESULT impl=omq size=100 count=10 p50_us=41.5 p99_us=x");
        assert_eq!(number(&f, "p50_us"), Ok(41.5));
        assert!(number(&f, "p99_us").is_err());
        assert!(fields("READY tcp://127.0.0.1:5555").is_empty());
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn best_and_ratio() {
        let c = [("a", 1.0), ("b", 3.0), ("c", 3.0), ("d", 2.0)];
        assert_eq!(best(c, true), Some(("b", 3.0)));
        assert_eq!(best(c, false), Some(("a", 1.0)));
        assert_eq!(best(Vec::<(u8, f64)>::new(), true), None);
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(3.0, 0.0), None);
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(format_rate(2_560_000.0), "2.56M");
        assert_eq!(format_rate(12_345_678.0), "12.3M");
        assert_eq!(format_rate(410_000.0), "410k");
        assert_eq!(format_rate(999_700.0), "1.00M");
        assert_eq!(format_rate(12_345.0), "12.3k");
        assert_eq!(format_rate(1_234.0), "1.23k");
        assert_eq!(format_rate(999.0), "999");
        assert_eq!(format_us(41.25), "41.2");
        assert_eq!(format_us(1234.4), "1234");
    }

    fn row(kind: Kind, variants: Vec<Variant>) -> Row {
        Row::test(kind, variants)
    }

    fn same(imp: Impl, runtime: Option<Runtime>) -> Variant {
        Variant::same(imp, runtime)
    }

    fn sample(value: f64) -> Option<Sample> {
        Some(Sample {
            value,
            p99: None,
            cpu_ns: None,
        })
    }

    #[test]
    fn cells_keep_the_better_runtime_and_count_failures() {
        let ct = same(Impl::Omq, Some(Runtime::Current));
        let mt = same(Impl::Omq, Some(Runtime::Multi));
        let lz = same(Impl::Libzmq, None);
        let not_run = same(Impl::Zmqrs, None);
        let r = row(Kind::Throughput, vec![ct, mt, lz, not_run]);
        let mut results = Results::default();
        for v in [1.0e6, 3.0e6, 2.0e6] {
            results.record(0, ct, sample(v));
        }
        for v in [2.5e6, 2.6e6] {
            results.record(0, mt, sample(v));
        }
        results.record(0, mt, None);
        results.record(0, lz, None);
        let omq = results.cell(0, &r, Column::Same(Impl::Omq));
        assert_eq!(cell_text(Kind::Throughput, &omq), "2.55M mt (2/3)");
        let libzmq = results.cell(0, &r, Column::Same(Impl::Libzmq));
        assert_eq!(libzmq, Cell::Failed);
        assert_eq!(cell_text(Kind::Throughput, &libzmq), "fail");
        let zmqrs = results.cell(0, &r, Column::Same(Impl::Zmqrs));
        assert_eq!(zmqrs, Cell::Absent);
        let zmtp = results.cell(0, &r, Column::Same(Impl::Zmtp));
        assert_eq!(cell_text(Kind::Throughput, &zmtp), "-");
        let cells = BTreeMap::from([
            (Column::Same(Impl::Omq), omq),
            (Column::Same(Impl::Libzmq), libzmq),
        ]);
        let (imp, s) = best_anchor(Kind::Throughput, &cells).unwrap();
        assert_eq!((imp, s.value), (Impl::Omq, 2.55e6));
    }

    #[test]
    fn latency_cells_prefer_lower() {
        let ct = same(Impl::Zmtp, Some(Runtime::Current));
        let mt = same(Impl::Zmtp, Some(Runtime::Multi));
        let r = row(Kind::Latency, vec![ct, mt]);
        let mut results = Results::default();
        results.record(
            0,
            ct,
            Some(Sample {
                value: 30.0,
                p99: Some(50.0),
                cpu_ns: None,
            }),
        );
        results.record(
            0,
            mt,
            Some(Sample {
                value: 40.0,
                p99: Some(45.0),
                cpu_ns: None,
            }),
        );
        let cell = results.cell(0, &r, Column::Same(Impl::Zmtp));
        assert_eq!(cell_text(Kind::Latency, &cell), "30.0/50.0 ct");
    }

    #[test]
    fn tables() {
        let mut t = Table {
            headers: ["row", "a→b", "x", "y"].map(String::from).to_vec(),
            rows: vec![
                ["pushpull tcp 16 B", "1.00M", "-", "2"]
                    .map(String::from)
                    .to_vec(),
                ["r|2", "12k", "-", "fail"].map(String::from).to_vec(),
            ],
            left: 1,
        };
        t.drop_empty_columns();
        assert_eq!(t.headers, ["row", "a→b", "y"]);
        assert_eq!(
            t.text(),
            "row                  a→b     y\n\
             -----------------  -----  ----\n\
             pushpull tcp 16 B  1.00M     2\n\
             r|2                  12k  fail\n"
        );
        assert_eq!(
            t.markdown(),
            "| row | a→b | y |\n|:--|--:|--:|\n| pushpull tcp 16 B | 1.00M | 2 |\n| r\\|2 | 12k | fail |\n"
        );
    }

    #[test]
    fn shell_lines() {
        let args = ["bench-matrix", "--sizes", "16,256", "a b", "it's"].map(String::from);
        assert_eq!(
            shell_line(&args),
            r"bench-matrix --sizes 16,256 'a b' 'it'\''s'"
        );
    }
}
