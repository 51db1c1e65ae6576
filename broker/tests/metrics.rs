//! `--metrics`: the real broker's Prometheus endpoint scraped over HTTP and parsed,
//! its counters moving as requests flow (within the second a body is cached); and
//! `mmi.stats` agreeing with it.

mod common;

use std::time::Duration;

use common::{bounded, http_get, wait_for_service, BrokerProcess, StartBroker};
use mdp::broker::snapshot::Stats;
use mdp::{Client, Worker};
use prometheus_parse::{Scrape, Value};
use zmtp::Message;

fn scrape(addr: &str) -> Scrape {
    let (status, body) = http_get(addr, "/metrics");
    assert!(status.contains("200"), "{status}\n{body}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text parses")
}

/// The value of `name` with `labels` (all of them must match), if there is one.
fn find(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))?;
    match sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
        ref other => panic!("{name}: {other:?}"),
    }
}

/// The value of `name` with `labels` (all of them must match).
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    find(scrape, name, labels).unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_and_move_as_requests_flow() {
    let broker = BrokerProcess::start_with(&["--metrics", "127.0.0.1:0"]);
    let addr = common::metrics_address(&broker);

    let before = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || scrape(&addr)
    })
    .await
    .unwrap();
    assert_eq!(value(&before, "mdp_broker_requests_total", &[]), 0.0);
    assert_eq!(value(&before, "mdp_broker_workers", &[]), 0.0);

    let worker = tokio::spawn(
        Worker::new(broker.endpoint.clone(), "echo").run(|body: Message| async move { Ok(body) }),
    );
    let client = Client::connect(&broker.endpoint).unwrap();
    wait_for_service(&client, "echo").await;
    for i in 0..5 {
        let reply = bounded("an echo", client.request("echo", format!("{i}"))).await;
        assert_eq!(reply.unwrap(), Message::from(format!("{i}")));
    }

    // A body serves scrapes for up to a second (metrics::REFRESH_PERIOD): scrape
    // until one shows the requests.
    let echo = [("service", "echo")];
    let after = bounded("a scrape that counts the 5 requests", async {
        loop {
            let after = tokio::task::spawn_blocking({
                let addr = addr.clone();
                move || scrape(&addr)
            })
            .await
            .unwrap();
            if find(&after, "mdp_service_served_total", &echo) == Some(5.0) {
                return after;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(value(&after, "mdp_broker_workers", &[]), 1.0);
    assert_eq!(value(&after, "mdp_service_served_total", &echo), 5.0);
    assert_eq!(
        value(
            &after,
            "mdp_service_workers",
            &[("service", "echo"), ("state", "idle")]
        ),
        1.0
    );
    assert_eq!(value(&after, "mdp_service_queued", &echo), 0.0);
    // The mmi.service probes count as requests too.
    let requests = value(&after, "mdp_broker_requests_total", &[]);
    assert!(requests >= 6.0, "{requests}");
    let latency = after
        .samples
        .iter()
        .find(|s| {
            s.metric == "mdp_service_latency_seconds" && s.labels.get("service") == Some("echo")
        })
        .expect("the echo latency summary");
    match &latency.value {
        Value::Summary(summary) => {
            let p50 = summary
                .iter()
                .find(|q| q.quantile == 0.5)
                .expect("p50")
                .count;
            assert!(p50 > 0.0 && p50 < 60.0, "p50 {p50}");
        }
        other => panic!("latency is {other:?}"),
    }

    // mmi.stats says the same.
    let reply = bounded("mmi.stats", client.request("mmi.stats", Message::new()))
        .await
        .unwrap();
    let stats: Stats = rmp_serde::from_slice(&reply[0]).unwrap();
    let echo_stats = stats.services.iter().find(|s| s.name == "echo").unwrap();
    assert_eq!((echo_stats.served, echo_stats.workers), (5, 1));
    assert_eq!(echo_stats.latency_count, 5);

    // Other paths are not found; the endpoint keeps serving.
    let (status, _) = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || http_get(&addr, "/")
    })
    .await
    .unwrap();
    assert!(status.contains("404"), "{status}");
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_line_is_logged_every_interval() {
    let broker = BrokerProcess::start_with(&["--summary-interval", "1"]);
    let client = Client::connect(&broker.endpoint).unwrap();
    bounded("mmi.service", client.service_exists("echo"))
        .await
        .unwrap();
    common::wait_until("a summary line counting the request", || {
        broker
            .stderr()
            .lines()
            .any(|l| l.contains("broker summary") && l.contains("requests=1"))
    })
    .await;
}
