//! `--metrics ADDR`: the broker's figures in Prometheus' text format over HTTP
//! (`GET /metrics`), the same figures `mmi.stats` answers.
//!
//! HTTP is hyper's; every scrape asks the broker loop for a fresh snapshot. At most
//! [`MAX_CONNECTIONS`] scrapers at once, and one that does not send its request
//! headers within [`HEADER_TIMEOUT`] is dropped.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use mdp::broker::snapshot::Stats;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::serve::StatsHandle;

/// Most scrapes served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a scraper may take to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The content type of the text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds `addr` (e.g. `127.0.0.1:9100`, port 0 for any) and returns the address
/// bound; scrapes are then served on a task of their own for as long as the runtime
/// runs.
pub async fn start(addr: &str, stats: StatsHandle) -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let started = Instant::now();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let stats = stats.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| answer(request, stats.clone(), started));
                let served = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(e) = served {
                    tracing::debug!(error = %e, "metrics: connection ended");
                }
                drop(permit);
            });
        }
    });
    Ok(bound)
}

async fn answer(
    request: Request<Incoming>,
    stats: StatsHandle,
    started: Instant,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
    };
    if request.uri().path() != "/metrics" {
        return Ok(reply(
            StatusCode::NOT_FOUND,
            "not found: the figures are at /metrics\n".into(),
        ));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into()));
    }
    let Some(snapshot) = stats.get().await else {
        return Ok(reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "the broker is stopping\n".into(),
        ));
    };
    let mut response = reply(StatusCode::OK, render(&snapshot, started.elapsed()));
    if let Ok(value) = CONTENT_TYPE.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    Ok(response)
}

/// A label value with `\`, `"` and newlines escaped, as the format wants.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Writes one metric family: its HELP and TYPE lines, then one sample per
/// `(labels, value)`.
fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: impl IntoIterator<Item = (String, f64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// The snapshot in the text exposition format (version 0.0.4).
pub fn render(stats: &Stats, uptime: Duration) -> String {
    let mut out = String::new();
    let t = &stats.totals;
    let one = |v: u64| [(String::new(), v as f64)];
    family(
        &mut out,
        "mdp_broker_uptime_seconds",
        "gauge",
        "Seconds since the broker started.",
        [(String::new(), uptime.as_secs_f64())],
    );
    for (name, kind, help, value) in [
        (
            "mdp_broker_requests_total",
            "counter",
            "Requests received from clients, MMI included.",
            t.requests,
        ),
        (
            "mdp_broker_replies_total",
            "counter",
            "Final replies delivered to clients.",
            t.replies,
        ),
        (
            "mdp_broker_dropped_total",
            "counter",
            "Requests dropped: TTL passed, queue full, client gone, or worker died (drop).",
            t.dropped,
        ),
        (
            "mdp_broker_requeued_total",
            "counter",
            "Requests given to another worker after theirs died.",
            t.requeued,
        ),
        (
            "mdp_broker_malformed_total",
            "counter",
            "Malformed messages ignored.",
            t.malformed,
        ),
        (
            "mdp_broker_workers",
            "gauge",
            "Workers registered.",
            t.workers,
        ),
        (
            "mdp_broker_requests_held",
            "gauge",
            "Requests held: waiting for a worker or in flight.",
            t.held,
        ),
    ] {
        family(&mut out, name, kind, help, one(value));
    }

    let per_service = |f: &dyn Fn(&mdp::broker::snapshot::ServiceStats) -> u64| {
        stats
            .services
            .iter()
            .map(|s| (format!("{{service=\"{}\"}}", label(&s.name)), f(s) as f64))
            .collect::<Vec<_>>()
    };
    let workers = stats.services.iter().flat_map(|s| {
        [("idle", s.idle), ("busy", s.busy)].map(|(state, n)| {
            (
                format!("{{service=\"{}\",state=\"{state}\"}}", label(&s.name)),
                n as f64,
            )
        })
    });
    family(
        &mut out,
        "mdp_service_workers",
        "gauge",
        "Workers of a service, idle or busy.",
        workers,
    );
    family(
        &mut out,
        "mdp_service_queued",
        "gauge",
        "Requests waiting for a worker of the service.",
        per_service(&|s| s.queued),
    );
    family(
        &mut out,
        "mdp_service_served_total",
        "counter",
        "Requests of the service answered.",
        per_service(&|s| s.served),
    );
    family(
        &mut out,
        "mdp_service_failed_total",
        "counter",
        "Requests of the service dropped.",
        per_service(&|s| s.failed),
    );
    family(
        &mut out,
        "mdp_service_requeued_total",
        "counter",
        "Requests of the service given to another worker after theirs died.",
        per_service(&|s| s.requeued),
    );
    let latency = stats.services.iter().flat_map(|s| {
        let name = label(&s.name);
        let quantile = |q: &str, ms: Option<f64>| {
            (
                format!("{{service=\"{name}\",quantile=\"{q}\"}}"),
                ms.map_or(f64::NAN, |ms| ms / 1000.0),
            )
        };
        [quantile("0.5", s.p50_ms), quantile("0.99", s.p99_ms)]
    });
    let _ = writeln!(
        out,
        "# HELP mdp_service_latency_seconds Time from request to final reply \
         (quantiles over the last one to two minutes)."
    );
    let _ = writeln!(out, "# TYPE mdp_service_latency_seconds summary");
    for (labels, value) in latency {
        let _ = writeln!(out, "mdp_service_latency_seconds{labels} {value}");
    }
    for s in &stats.services {
        let name = label(&s.name);
        let _ = writeln!(
            out,
            "mdp_service_latency_seconds_sum{{service=\"{name}\"}} {}",
            s.latency_sum_seconds
        );
        let _ = writeln!(
            out,
            "mdp_service_latency_seconds_count{{service=\"{name}\"}} {}",
            s.latency_count
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mdp::broker::snapshot::{ServiceStats, Totals};

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
                name: "say \"hi\"\\\n".into(),
                workers: 2,
                idle: 1,
                busy: 1,
                queued: 3,
                served: 5,
                failed: 1,
                requeued: 0,
                p50_ms: Some(1.5),
                p99_ms: None,
                latency_count: 5,
                latency_sum_seconds: 0.25,
            }],
        };
        let text = render(&stats, Duration::from_secs(3));
        for line in [
            "mdp_broker_requests_total 7",
            "mdp_broker_workers 2",
            "mdp_broker_uptime_seconds 3",
            r#"mdp_service_workers{service="say \"hi\"\\\n",state="busy"} 1"#,
            r#"mdp_service_queued{service="say \"hi\"\\\n"} 3"#,
            r#"mdp_service_latency_seconds{service="say \"hi\"\\\n",quantile="0.5"} 0.0015"#,
            r#"mdp_service_latency_seconds{service="say \"hi\"\\\n",quantile="0.99"} NaN"#,
            r#"mdp_service_latency_seconds_count{service="say \"hi\"\\\n"} 5"#,
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert_eq!(text.lines().filter(|l| l.starts_with("# TYPE")).count(), 14);
    }
}
