//! The CPU table: what each implementation's processes took per message (per
//! round trip for latency rows), both ends, user and system time, from the
//! kernel's accounting of this driver's children. On a shared machine a rate
//! swings with the load (libzmq's PUSH->PULL tcp 16 B ran at 4 M and at 8 M msg/s
//! in sittings ten minutes apart); the CPU a message costs moves far less.

use std::collections::BTreeMap;

use crate::plan::{Column, Impl, Row};
use crate::report::{best, ratio, Cell, Results, Summary, Table};

/// The columns: each implementation with itself, then the pairs with libzmq.
const COLUMNS: [Column; 6] = [
    Column::Same(Impl::Zmtp),
    Column::Same(Impl::Libzmq),
    Column::Same(Impl::Zmqrs),
    Column::Same(Impl::Omq),
    Column::Cross(Impl::Zmtp, Impl::Libzmq),
    Column::Cross(Impl::Libzmq, Impl::Zmtp),
];

/// The median CPU of a cell, if it ran.
fn cpu_of(cell: &Cell) -> Option<(Summary, f64)> {
    match cell {
        Cell::Ok { summary, .. } => summary.cpu_ns.map(|ns| (*summary, ns)),
        _ => None,
    }
}

/// "1234" ns, with the runtime when more than one ran (the one whose rate won).
fn text(cell: &Cell) -> String {
    match (cell, cpu_of(cell)) {
        (Cell::Ok { marked, .. }, Some((summary, ns))) => {
            let mut text = format!("{ns:.0}");
            if let (true, Some(r)) = (*marked, summary.runtime) {
                text.push(' ');
                text.push_str(r.short());
            }
            text
        }
        (Cell::Failed, _) => "fail".into(),
        _ => "-".into(),
    }
}

/// The table of `indices` (rows of one kind), with the lowest anchor and
/// zmtp / that anchor (lower is better).
pub fn table(rows: &[Row], indices: &[usize], results: &Results) -> Table {
    let mut headers: Vec<String> = vec!["row".into()];
    headers.extend(COLUMNS[..4].iter().map(|c| c.title()));
    headers.extend(["least anchor".to_string(), "zmtp/least".to_string()]);
    headers.extend(COLUMNS[4..].iter().map(|c| c.title()));
    let mut out = Vec::new();
    for &i in indices {
        let row = &rows[i];
        let cells: BTreeMap<Column, Cell> = COLUMNS
            .iter()
            .map(|&c| (c, results.cell(i, row, c)))
            .collect();
        let mut line = vec![row.label()];
        line.extend(COLUMNS[..4].iter().map(|c| text(&cells[c])));
        let least = best(
            Impl::ANCHORS.iter().filter_map(|&imp| {
                let (_, ns) = cpu_of(&cells[&Column::Same(imp)])?;
                Some((imp, ns))
            }),
            false,
        );
        line.push(least.map_or("-".into(), |(imp, ns)| format!("{ns:.0} {}", imp.name())));
        let zmtp = cpu_of(&cells[&Column::Same(Impl::Zmtp)]).map(|(_, ns)| ns);
        let r = zmtp.zip(least).and_then(|(z, (_, a))| ratio(z, a));
        line.push(r.map_or("-".into(), |r| format!("{r:.2}")));
        line.extend(COLUMNS[4..].iter().map(|c| text(&cells[c])));
        out.push(line);
    }
    Table::of_rows(headers, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Kind, Variant};
    use crate::report::Sample;

    #[test]
    fn the_least_cpu_per_message_is_the_anchor() {
        let same = |imp| Variant::same(imp, None);
        let (zmtp, libzmq, omq) = (same(Impl::Zmtp), same(Impl::Libzmq), same(Impl::Omq));
        let row = Row::test(Kind::Throughput, vec![zmtp, libzmq, omq]);
        let mut results = Results::default();
        let sample = |value: f64, cpu: f64| Sample {
            value,
            p99: None,
            cpu_ns: Some(cpu),
        };
        results.record(0, zmtp, Some(sample(5e6, 150.0)));
        results.record(0, libzmq, Some(sample(8e6, 200.0)));
        results.record(0, omq, Some(sample(3e6, 300.0)));
        let table = table(&[row], &[0], &results);
        assert_eq!(
            table.headers,
            ["row", "zmtp", "libzmq", "omq", "least anchor", "zmtp/least"]
        );
        assert_eq!(
            table.rows[0][1..],
            ["150", "200", "300", "200 libzmq", "0.75"]
        );
    }
}
