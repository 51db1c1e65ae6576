//! Peered `mdp-broker`s (the real binary) on 127.0.0.1, 127.0.0.2 and 127.0.0.3
//! with real peers of every dialect: a request reaches a worker on another broker
//! and its reply comes back in the client's dialect; a Rust client that knows
//! every broker carries on when one dies; brokers, workers and clients find each
//! other through a name that resolves to every broker (an `MDP_HOSTS_FILE`, so no
//! system file changes), and find a broker added to the name later.

mod common;

use std::time::Duration;

use common::{ask, bounded, mdp_peer, wait_for_service, BrokerProcess, StartBroker, BROKER};
use mdp::broker::snapshot::WorkerSummary;
use mdp::{Client, ClientOptions, Dialect};
use mdp_torture::cluster::Cluster;
use testkit::PyPeer;

/// Heartbeats the Python peers keep up with (theirs: every second; a worker
/// silent for 5 s is dead), and a peer link silent for 5 s is dead.
const HEARTBEATS: &[&str] = &["--heartbeat-interval", "1000", "--heartbeat-liveness", "5"];

fn cluster() -> Cluster {
    Cluster::start(std::path::Path::new(BROKER), 3, HEARTBEATS).unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until broker `i` knows a worker of `service` (its own or a peer's).
async fn reachable(cluster: &Cluster, i: usize, service: &'static str) {
    let client = Client::connect(cluster.endpoint(i)).unwrap();
    wait_for_service(&client, service).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_peers_are_served_across_the_cluster_each_in_its_own_dialect() {
    let cluster = cluster();
    // A majortomo worker on broker 0, a zguide 0.1 worker and an Overseer worker
    // on broker 2.
    let _mt = mdp_peer(&cluster.endpoint(0), "majortomo-worker", "mt").await;
    let _zg = mdp_peer(&cluster.endpoint(2), "zguide-worker", "zg").await;
    let _ov = mdp_peer(&cluster.endpoint(2), "overseer-worker", "add").await;
    for service in ["mt", "zg", "add"] {
        for i in 0..3 {
            reachable(&cluster, i, service).await;
        }
    }
    // A zguide 0.1 REQ client on broker 2, served by the majortomo worker on 0.
    let mut zguide = mdp_peer(&cluster.endpoint(2), "zguide-client", "mt").await;
    assert_eq!(ask(&mut zguide, "one").await, "REPLY mt|ONE");
    // An Overseer client on broker 1, served by the Overseer worker on 2.
    let mut overseer = mdp_peer(&cluster.endpoint(1), "overseer-client", "add").await;
    assert_eq!(ask(&mut overseer, "6 7").await, "REPLY add|13");
    // An RFC 18 client on broker 1, served by the zguide worker on 2.
    let mut rfc18 = mdp_peer(&cluster.endpoint(1), "rfc18-client", "zg").await;
    assert_eq!(ask(&mut rfc18, "two").await, "FINAL zg|TWO");
    // A majortomo client on broker 2 for the majortomo worker on 0.
    let mut majortomo = mdp_peer(&cluster.endpoint(2), "majortomo-client", "mt").await;
    assert_eq!(ask(&mut majortomo, "three").await, "REPLY THREE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_every_broker_carries_on_when_one_dies() {
    let mut cluster = cluster();
    let _w0 = mdp_peer(&cluster.endpoint(0), "zguide-worker", "echo").await;
    let _w2 = mdp_peer(&cluster.endpoint(2), "zguide-worker", "echo").await;
    for i in 0..3 {
        reachable(&cluster, i, "echo").await;
    }
    let options = ClientOptions::default()
        .dialect(Dialect::Mdp01)
        .timeout(Duration::from_secs(2))
        .attempts(10);
    let client = Client::connect_with(cluster.endpoints(), options).unwrap();
    for n in 0..30 {
        let body = format!("before {n}");
        let reply = bounded("a reply", client.request("echo", body.clone())).await;
        assert_eq!(reply.unwrap(), zmtp::Message::from(body.to_uppercase()));
    }
    cluster.kill(1);
    cluster.kill(0);
    // Broker 2 and its own worker serve everything now.
    for n in 0..30 {
        let body = format!("after {n}");
        let reply = bounded("a reply", client.request("echo", body.clone())).await;
        assert_eq!(reply.unwrap(), zmtp::Message::from(body.to_uppercase()));
    }
}

/// A hosts file that says `brokers` is each of `hosts`.
fn hosts_file(path: &std::path::Path, hosts: &[String]) {
    let text: String = hosts.iter().map(|h| format!("{h} brokers\n")).collect();
    // Written whole and renamed, so a reader never sees half of it.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The workers broker `i` has itself (not those it reaches through peers) for
/// `service`, from its `mmi.workers` answer.
async fn local_workers(cluster: &Cluster, i: usize, service: &str) -> usize {
    let client = Client::connect(cluster.endpoint(i)).unwrap();
    let reply = bounded(
        "mmi.workers",
        client.request("mmi.workers", service.to_owned()),
    )
    .await
    .unwrap();
    let list: Vec<WorkerSummary> = rmp_serde::from_slice(&reply.frames()[0]).unwrap();
    list.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_workers_and_clients_find_each_other_through_one_name() {
    let dir = std::env::temp_dir().join(format!("mdp-dns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hosts = dir.join("hosts");
    // At first the name stands for broker 0 only: every broker peers with it
    // (broker 0 recognises itself), brokers 1 and 2 not with each other.
    hosts_file(&hosts, &[Cluster::host(0)]);
    let hosts_var = hosts.to_str().unwrap().to_owned();
    let env = [(mdp::discovery::HOSTS_FILE_VAR, hosts_var.as_str())];
    let cluster = Cluster::start_with(
        std::path::Path::new(BROKER),
        3,
        HEARTBEATS,
        &env,
        Some("tcp://brokers:{port}"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let name = format!("tcp://brokers:{}", cluster.port());
    let mdp_cli = std::path::Path::new(BROKER).with_file_name("mdp");
    // A worker given the name registers where it points.
    let mut command = std::process::Command::new(&mdp_cli);
    command
        .args(["-b", &name, "worker", "shout", "--", "tr", "a-z", "A-Z"])
        .env(mdp::discovery::HOSTS_FILE_VAR, &hosts_var);
    let _worker = PyPeer::spawn_process("mdp worker", command);
    for i in 0..3 {
        reachable(&cluster, i, "shout").await;
    }
    assert_eq!(local_workers(&cluster, 0, "shout").await, 1);
    assert_eq!(local_workers(&cluster, 1, "shout").await, 0);
    // A client given the name is served.
    let mut call = std::process::Command::new(&mdp_cli);
    call.args(["-b", &name, "call", "--timeout", "5000", "shout", "hello"])
        .env(mdp::discovery::HOSTS_FILE_VAR, &hosts_var)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = common::output_within(call.spawn().unwrap(), "mdp call");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "HELLO");
    // A worker of broker 2 alone is out of broker 1's reach: they are not peers.
    let _late = mdp_peer(&cluster.endpoint(2), "zguide-worker", "late").await;
    reachable(&cluster, 2, "late").await;
    let on_one = Client::connect(cluster.endpoint(1)).unwrap();
    assert!(!on_one.service_exists("late").await.unwrap());
    // The name now stands for all three (pods came up): within a resolution
    // period brokers 1 and 2 peer, and the worker registers with all of them.
    hosts_file(
        &hosts,
        &[Cluster::host(0), Cluster::host(1), Cluster::host(2)],
    );
    wait_for_service(&on_one, "late").await;
    let reply = bounded("a reply through the new peer", on_one.request("late", "x")).await;
    assert_eq!(reply.unwrap(), zmtp::Message::from("X"));
    common::wait_until_async("the worker to register with broker 1", || {
        let cluster = &cluster;
        async move { local_workers(cluster, 1, "shout").await == 1 }
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `GET path` on broker `broker`'s metrics address: the status line.
async fn probe(addr: &str, path: &'static str) -> String {
    let addr = addr.to_owned();
    tokio::task::spawn_blocking(move || common::http_get(&addr, path).0)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_waits_for_a_peer_and_healthz_for_the_loop() {
    // A lone broker without peers is ready at once.
    let alone = BrokerProcess::start_with(&["--metrics", "127.0.0.1:0"]);
    let addr = common::metrics_address(&alone);
    assert!(probe(&addr, "/healthz").await.contains("200"));
    common::wait_until_async("the lone broker to say it is ready", || {
        let addr = addr.clone();
        async move { probe(&addr, "/readyz").await.contains("200") }
    })
    .await;
    // One whose peer list names itself and a broker not started yet is live but
    // not ready until that broker comes and the link is up.
    let port = testkit::restartable_port(&["127.0.0.1", "127.0.0.2"]);
    let (a, b) = (
        format!("tcp://127.0.0.1:{port}"),
        format!("tcp://127.0.0.2:{port}"),
    );
    let args = |bind: &str| {
        vec![
            "--peer".to_string(),
            a.clone(),
            "--peer".to_string(),
            b.clone(),
            "--metrics".to_string(),
            "127.0.0.1:0".to_string(),
        ]
        .into_iter()
        .chain(std::iter::once(bind.to_owned()))
        .collect::<Vec<String>>()
    };
    let first_args = args("--name=first");
    let first_args: Vec<&str> = first_args.iter().map(String::as_str).collect();
    let first = BrokerProcess::start_on(&a, &first_args);
    let addr = common::metrics_address(&first);
    assert!(probe(&addr, "/healthz").await.contains("200"));
    common::wait_until_async("the first broker to see itself", || {
        let addr = addr.clone();
        async move { probe(&addr, "/readyz").await.contains("503") }
    })
    .await;
    let second_args = args("--name=second");
    let second_args: Vec<&str> = second_args.iter().map(String::as_str).collect();
    let _second = BrokerProcess::start_on(&b, &second_args);
    common::wait_until_async("readyz to say 200 once peered", || {
        let addr = addr.clone();
        async move { probe(&addr, "/readyz").await.contains("200") }
    })
    .await;
}
