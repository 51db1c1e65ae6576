//! A [`Stats`] snapshot in Prometheus' text exposition format (version 0.0.4), in
//! at most a given number of bytes.
//!
//! Service names come from workers, so a peer chooses how long they are and, up to
//! the broker's bound on remembered names, how many. Each name is written on ten
//! lines, so a history of long names would make a body of tens of megabytes. The
//! body is capped: services are taken live ones first (workers or queued requests
//! now), then the remembered ones, shortest names first within each, until the next
//! one would pass the cap; the rest are left out and a
//! `# truncated: N services not shown` comment says how many. The samples shown keep
//! the services' name order.
//!
//! The size of each service's lines is counted by writing them to a counter (no
//! memory), so the cap is exact and the only allocation is the body itself.

use std::fmt::{self, Write as _};
use std::time::Duration;

use bytes::Bytes;
use mdp::broker::snapshot::{PeerSummary, ServiceStats, Stats};

/// Room kept for the `# truncated` comment.
const TRUNCATED_RESERVE: usize = 128;

/// The lines each service has in the body (see [`SECTIONS`]); a unit test holds
/// the two together.
const LINES_PER_SERVICE: usize = 11;

/// The snapshot as a body of at most `max_bytes` bytes (once the broker-wide figures,
/// about 2 KiB, fit), with `uptime` as `mdp_broker_uptime_seconds`.
pub fn render(stats: &Stats, uptime: Duration, max_bytes: usize) -> Bytes {
    let fixed = size_of(|out| write_totals(out, stats, uptime))
        + SECTIONS
            .iter()
            .map(|section| size_of(|out| section.write_header(out)))
            .sum::<usize>()
        + TRUNCATED_RESERVE;
    let (shown, services_size) = choose(&stats.services, max_bytes.saturating_sub(fixed));
    let left_out = shown.iter().filter(|&&shown| !shown).count();

    let mut out = String::with_capacity(fixed + services_size);
    // Writing to a String cannot fail.
    let _ = write_totals(&mut out, stats, uptime);
    for section in SECTIONS {
        let _ = section.write_header(&mut out);
        for (service, _) in stats.services.iter().zip(&shown).filter(|(_, &s)| s) {
            let _ = (section.samples)(&mut out, service);
        }
    }
    if left_out > 0 {
        let _ = writeln!(
            out,
            "# truncated: {left_out} services not shown (the body is capped at {max_bytes} bytes)"
        );
    }
    Bytes::from(out)
}

/// Which services fit in `budget` bytes (by index), and the bytes they take.
fn choose(services: &[ServiceStats], budget: usize) -> (Vec<bool>, usize) {
    // Live services first, then shortest names first.
    let mut order: Vec<(bool, usize, usize)> = services
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let remembered_only = s.workers == 0 && s.queued == 0 && s.via_peers == 0;
            let label = size_of(|out| write!(out, "{}", Label(&s.name)));
            (remembered_only, label, i)
        })
        .collect();
    order.sort_unstable();
    let mut shown = vec![false; services.len()];
    let mut used = 0;
    for (_, label, i) in order {
        let (Some(service), Some(flag)) = (services.get(i), shown.get_mut(i)) else {
            break;
        };
        let left = budget - used;
        // Every line carries the name: a name too long is ruled out without
        // counting its lines.
        if label.saturating_mul(LINES_PER_SERVICE) > left {
            break;
        }
        let cost: usize = SECTIONS
            .iter()
            .map(|section| size_of(|out| (section.samples)(out, service)))
            .sum();
        if cost > left {
            break;
        }
        used += cost;
        *flag = true;
    }
    (shown, used)
}

/// A run of samples, one or more per service, after the family's `HELP` and `TYPE`
/// lines (a summary's `_sum` and `_count` runs have none: they belong to the family
/// before them).
struct Section {
    /// Name, type and help of the family, for the section that opens it.
    header: Option<(&'static str, &'static str, &'static str)>,
    /// Writes one service's samples.
    samples: fn(&mut dyn fmt::Write, &ServiceStats) -> fmt::Result,
}

impl Section {
    fn write_header(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        match self.header {
            Some((name, kind, help)) => write_header(out, name, kind, help),
            None => Ok(()),
        }
    }
}

/// The per-service families, in the order of the body.
const SECTIONS: [Section; 9] = [
    Section {
        header: Some((
            "mdp_service_workers",
            "gauge",
            "Workers of a service, idle or busy.",
        )),
        samples: |out, s| {
            let states = [("idle", s.idle as f64), ("busy", s.busy as f64)];
            write_split(out, "mdp_service_workers", s, "state", states)
        },
    },
    Section {
        header: Some((
            "mdp_service_peer_workers",
            "gauge",
            "Workers of the service at peered brokers, reached through them.",
        )),
        samples: |out, s| write_sample(out, "mdp_service_peer_workers", s, s.via_peers as f64),
    },
    Section {
        header: Some((
            "mdp_service_queued",
            "gauge",
            "Requests waiting for a worker of the service.",
        )),
        samples: |out, s| write_sample(out, "mdp_service_queued", s, s.queued as f64),
    },
    Section {
        header: Some((
            "mdp_service_served_total",
            "counter",
            "Requests of the service answered.",
        )),
        samples: |out, s| write_sample(out, "mdp_service_served_total", s, s.served as f64),
    },
    Section {
        header: Some((
            "mdp_service_failed_total",
            "counter",
            "Requests of the service dropped.",
        )),
        samples: |out, s| write_sample(out, "mdp_service_failed_total", s, s.failed as f64),
    },
    Section {
        header: Some((
            "mdp_service_requeued_total",
            "counter",
            "Requests of the service given to another worker after theirs died.",
        )),
        samples: |out, s| write_sample(out, "mdp_service_requeued_total", s, s.requeued as f64),
    },
    Section {
        header: Some((
            "mdp_service_latency_seconds",
            "summary",
            "Time from request to final reply (quantiles over the last one to two minutes).",
        )),
        samples: |out, s| {
            let seconds = |ms: Option<f64>| ms.map_or(f64::NAN, |ms| ms / 1000.0);
            let quantiles = [("0.5", seconds(s.p50_ms)), ("0.99", seconds(s.p99_ms))];
            write_split(out, "mdp_service_latency_seconds", s, "quantile", quantiles)
        },
    },
    Section {
        header: None,
        samples: |out, s| {
            write_sample(
                out,
                "mdp_service_latency_seconds_sum",
                s,
                s.latency_sum_seconds,
            )
        },
    },
    Section {
        header: None,
        samples: |out, s| {
            write_sample(
                out,
                "mdp_service_latency_seconds_count",
                s,
                s.latency_count as f64,
            )
        },
    },
];

/// The broker-wide families.
fn write_totals(out: &mut dyn fmt::Write, stats: &Stats, uptime: Duration) -> fmt::Result {
    let t = &stats.totals;
    for (name, kind, help, value) in [
        (
            "mdp_broker_uptime_seconds",
            "gauge",
            "Seconds since the broker started.",
            uptime.as_secs_f64(),
        ),
        (
            "mdp_broker_requests_total",
            "counter",
            "Requests received from clients, MMI included.",
            t.requests as f64,
        ),
        (
            "mdp_broker_replies_total",
            "counter",
            "Final replies delivered to clients.",
            t.replies as f64,
        ),
        (
            "mdp_broker_dropped_total",
            "counter",
            "Requests dropped: TTL passed, queue full, client gone, or worker died (drop).",
            t.dropped as f64,
        ),
        (
            "mdp_broker_requeued_total",
            "counter",
            "Requests given to another worker after theirs died.",
            t.requeued as f64,
        ),
        (
            "mdp_broker_malformed_total",
            "counter",
            "Malformed messages ignored.",
            t.malformed as f64,
        ),
        (
            "mdp_broker_workers",
            "gauge",
            "Workers registered.",
            t.workers as f64,
        ),
        (
            "mdp_broker_requests_held",
            "gauge",
            "Requests held: waiting for a worker or in flight.",
            t.held as f64,
        ),
        (
            "mdp_broker_requests_held_bytes",
            "gauge",
            "What the requests held cost: their frames plus the broker's bookkeeping.",
            t.held_bytes as f64,
        ),
        (
            "mdp_broker_connections_paused",
            "gauge",
            "Client connections not read because they hold their quota.",
            t.paused as f64,
        ),
        (
            "mdp_broker_undelivered_total",
            "counter",
            "Messages the socket could not deliver (the peer did not read, or had left).",
            t.undelivered as f64,
        ),
        (
            "mdp_broker_peers_up",
            "gauge",
            "Links to peered brokers that are up.",
            t.peers_up as f64,
        ),
        (
            "mdp_broker_handed_to_peers_total",
            "counter",
            "Requests handed to peered brokers.",
            t.handed_to_peers as f64,
        ),
        (
            "mdp_broker_served_for_peers_total",
            "counter",
            "Requests served here for peered brokers.",
            t.served_for_peers as f64,
        ),
        (
            "mdp_broker_returned_by_peers_total",
            "counter",
            "Requests peered brokers gave back (bounced, or held when they left).",
            t.returned_by_peers as f64,
        ),
    ] {
        write_header(out, name, kind, help)?;
        writeln!(out, "{name} {value}")?;
    }
    write_peers(out, stats)
}

/// Per peered broker: its workers and what it holds of ours (links are few: our
/// own peer list, and a bounded number that dialed us).
fn write_peers(out: &mut dyn fmt::Write, stats: &Stats) -> fmt::Result {
    for (name, help, value) in [
        (
            "mdp_peer_workers",
            "Workers of a peered broker (all its services).",
            (|p| p.workers as f64) as fn(&PeerSummary) -> f64,
        ),
        (
            "mdp_peer_services",
            "Services a peered broker serves.",
            |p| p.services as f64,
        ),
        (
            "mdp_peer_holding",
            "Requests of ours a peered broker holds.",
            |p| p.holding as f64,
        ),
    ] {
        write_header(out, name, "gauge", help)?;
        for p in &stats.peers {
            writeln!(
                out,
                "{name}{{peer=\"{}\",dialed=\"{}\"}} {}",
                Label(&p.name),
                p.dialed,
                value(p)
            )?;
        }
    }
    Ok(())
}

fn write_header(out: &mut dyn fmt::Write, name: &str, kind: &str, help: &str) -> fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} {kind}")
}

/// `name{service="..."} value`.
fn write_sample(
    out: &mut dyn fmt::Write,
    name: &str,
    service: &ServiceStats,
    value: f64,
) -> fmt::Result {
    writeln!(
        out,
        "{name}{{service=\"{}\"}} {value}",
        Label(&service.name)
    )
}

/// `name{service="...",key="k"} value` for each `(k, value)`.
fn write_split(
    out: &mut dyn fmt::Write,
    name: &str,
    service: &ServiceStats,
    key: &str,
    samples: [(&str, f64); 2],
) -> fmt::Result {
    for (k, value) in samples {
        writeln!(
            out,
            "{name}{{service=\"{}\",{key}=\"{k}\"}} {value}",
            Label(&service.name)
        )?;
    }
    Ok(())
}

/// A label value with `\`, `"` and newlines escaped, as the format wants.
struct Label<'a>(&'a str);

impl fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut plain = 0;
        for (at, special) in self.0.match_indices(['\\', '"', '\n']) {
            f.write_str(self.0.get(plain..at).unwrap_or_default())?;
            f.write_str(match special {
                "\\" => "\\\\",
                "\"" => "\\\"",
                _ => "\\n",
            })?;
            plain = at + special.len();
        }
        f.write_str(self.0.get(plain..).unwrap_or_default())
    }
}

/// How many bytes `write` writes (nothing is kept).
fn size_of(write: impl FnOnce(&mut dyn fmt::Write) -> fmt::Result) -> usize {
    struct Counter(usize);
    impl fmt::Write for Counter {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut counter = Counter(0);
    let _ = write(&mut counter);
    counter.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use mdp::broker::snapshot::Totals;

    fn service(name: &str, workers: u64) -> ServiceStats {
        ServiceStats {
            name: name.into(),
            workers,
            idle: workers,
            busy: 0,
            queued: 0,
            served: 5,
            failed: 1,
            requeued: 0,
            via_peers: 0,
            p50_ms: Some(1.5),
            p99_ms: None,
            latency_count: 5,
            latency_sum_seconds: 0.25,
        }
    }

    fn parse(body: &[u8]) -> prometheus_parse::Scrape {
        let text = std::str::from_utf8(body).unwrap();
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
    }

    #[test]
    fn renders_every_family_with_escaped_labels() {
        let stats = Stats {
            totals: Totals {
                requests: 7,
                replies: 5,
                workers: 2,
                ..Totals::default()
            },
            services: vec![ServiceStats {
                busy: 1,
                idle: 1,
                workers: 2,
                queued: 3,
                via_peers: 4,
                ..service("say \"hi\"\\\n", 2)
            }],
            peers: vec![PeerSummary {
                name: "b\"1".into(),
                instance: "00000000000000ff".into(),
                dialed: true,
                services: 1,
                workers: 4,
                idle: 1,
                holding: 2,
            }],
        };
        let body = render(&stats, Duration::from_secs(3), 1 << 20);
        let text = std::str::from_utf8(&body).unwrap();
        for line in [
            "mdp_broker_requests_total 7",
            "mdp_broker_workers 2",
            "mdp_broker_uptime_seconds 3",
            r#"mdp_service_workers{service="say \"hi\"\\\n",state="busy"} 1"#,
            r#"mdp_service_queued{service="say \"hi\"\\\n"} 3"#,
            r#"mdp_service_latency_seconds{service="say \"hi\"\\\n",quantile="0.5"} 0.0015"#,
            r#"mdp_service_latency_seconds{service="say \"hi\"\\\n",quantile="0.99"} NaN"#,
            r#"mdp_service_latency_seconds_count{service="say \"hi\"\\\n"} 5"#,
            r#"mdp_service_peer_workers{service="say \"hi\"\\\n"} 4"#,
            r#"mdp_peer_workers{peer="b\"1",dialed="true"} 4"#,
            r#"mdp_peer_holding{peer="b\"1",dialed="true"} 2"#,
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert_eq!(text.lines().filter(|l| l.starts_with("# TYPE")).count(), 25);
        assert!(!text.contains("# truncated"));
    }

    #[test]
    fn lines_per_service_matches_the_sections() {
        let stats = Stats {
            totals: Totals::default(),
            services: vec![service("a", 1)],
            peers: vec![],
        };
        let one = render(&stats, Duration::ZERO, 1 << 20);
        let none = render(
            &Stats {
                services: vec![],
                peers: vec![],
                ..stats
            },
            Duration::ZERO,
            1 << 20,
        );
        let lines = |b: &Bytes| b.iter().filter(|&&c| c == b'\n').count();
        assert_eq!(lines(&one) - lines(&none), LINES_PER_SERVICE);
    }

    #[test]
    fn a_long_history_is_cut_at_the_cap_live_services_first() {
        // 300 remembered services with 1-4 KiB names, and two live ones whose names
        // sort last and are longer than many remembered ones.
        let mut services: Vec<ServiceStats> = (0..300)
            .map(|i| service(&format!("old-{i:03}-{}", "x".repeat(1024 + i * 10)), 0))
            .collect();
        services.push(service(&format!("zz-live-{}", "y".repeat(2000)), 1));
        services.push(ServiceStats {
            queued: 4,
            ..service("zz-queued", 0)
        });
        services.sort_by(|a, b| a.name.cmp(&b.name));
        let stats = Stats {
            totals: Totals::default(),
            services,
            peers: vec![],
        };
        let max = 256 << 10;
        let body = render(&stats, Duration::ZERO, max);
        assert!(body.len() <= max, "{} bytes", body.len());

        let scrape = parse(&body);
        let shown: std::collections::BTreeSet<&str> = scrape
            .samples
            .iter()
            .filter(|s| s.metric == "mdp_service_served_total")
            .filter_map(|s| s.labels.get("service"))
            .collect();
        assert!(shown.iter().any(|n| n.starts_with("zz-live-")));
        assert!(shown.contains("zz-queued"));
        // The remembered ones shown are the shortest names, and the body is full:
        // the next name would not have fitted.
        let remembered = |wanted: bool| {
            let set = &shown;
            stats
                .services
                .iter()
                .filter(|s| s.workers == 0 && s.queued == 0)
                .filter(move |s| set.contains(s.name.as_str()) == wanted)
                .map(|s| s.name.len())
        };
        let longest_shown = remembered(true).max().unwrap();
        let shortest_hidden = remembered(false).min().unwrap();
        assert!(longest_shown < shortest_hidden);
        // Besides its name, a line takes less than 100 bytes.
        let next = LINES_PER_SERVICE * (shortest_hidden + 100);
        assert!(
            max - body.len() < next + TRUNCATED_RESERVE,
            "{} bytes",
            body.len()
        );

        let left_out = stats.services.len() - shown.len();
        let text = std::str::from_utf8(&body).unwrap();
        let comment = format!("# truncated: {left_out} services not shown");
        assert!(
            text.lines().any(|l| l.starts_with(&comment)),
            "no {comment:?}"
        );
        // Every family of a shown service is whole.
        for s in &shown {
            let lines = text
                .lines()
                .filter(|l| l.contains(&format!("\"{s}\"")))
                .count();
            assert_eq!(lines, LINES_PER_SERVICE, "{s}");
        }
    }

    #[test]
    fn a_name_longer_than_the_cap_is_left_out_and_the_rest_still_parse() {
        let stats = Stats {
            totals: Totals::default(),
            services: vec![service(&"\"".repeat(100_000), 1), service("b", 1)],
            peers: vec![],
        };
        let body = render(&stats, Duration::ZERO, 64 << 10);
        assert!(body.len() <= 64 << 10);
        let text = std::str::from_utf8(&body).unwrap();
        // Shortest first: "b" is shown, the long one is not.
        assert!(text.contains("mdp_service_queued{service=\"b\"} 0"));
        assert!(text.contains("# truncated: 1 services not shown"));
        let _ = parse(&body);
    }

    #[test]
    fn a_cap_below_the_totals_still_gives_the_totals() {
        let stats = Stats {
            totals: Totals::default(),
            services: vec![service("a", 1)],
            peers: vec![],
        };
        let body = render(&stats, Duration::ZERO, 10);
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.contains("mdp_broker_workers 0"));
        assert!(text.contains("# truncated: 1 services not shown"));
    }
}
