//! The real `mdp-broker` binary with real peers of every dialect: zguide-style 0.1,
//! RFC 18 0.2, Overseer msgpack, majortomo, and our Rust client and worker, including
//! requests that cross dialects.

mod common;

use std::time::Duration;

use common::{ask, mdp_peer, BrokerProcess, StartBroker};
use mdp::{Client, ClientOptions, Dialect, Worker, WorkerOptions};
use testkit::PyPeer;
use zmtp::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zguide_client_and_worker() {
    let broker = BrokerProcess::start();
    let _w = mdp_peer(&broker.endpoint, "zguide-worker", "echo").await;
    let mut c = mdp_peer(&broker.endpoint, "zguide-client", "echo").await;
    assert_eq!(ask(&mut c, "hello").await, "REPLY echo|HELLO");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc18_client_and_worker_stream() {
    let broker = BrokerProcess::start();
    let _w = mdp_peer(&broker.endpoint, "rfc18-worker", "echo").await;
    let mut c = mdp_peer(&broker.endpoint, "rfc18-client", "echo").await;
    assert_eq!(ask(&mut c, "hi").await, "PARTIAL echo|hi");
    assert_eq!(c.line().await, "FINAL echo|HI");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overseer_msgpack_client_and_worker() {
    let broker = BrokerProcess::start();
    let _w = mdp_peer(&broker.endpoint, "overseer-worker", "add").await;
    let mut c = mdp_peer(&broker.endpoint, "overseer-client", "add").await;
    assert_eq!(ask(&mut c, "6 7").await, "REPLY add|13");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn majortomo_client_and_worker() {
    let broker = BrokerProcess::start();
    let _w = mdp_peer(&broker.endpoint, "majortomo-worker", "echo").await;
    let mut c = mdp_peer(&broker.endpoint, "majortomo-client", "echo").await;
    assert_eq!(ask(&mut c, "hey").await, "REPLY HEY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_cross_dialects() {
    let broker = BrokerProcess::start();
    // A 0.1 client served by a majortomo worker; an RFC 18 client (streaming) served
    // by a 0.1 worker; a majortomo client served by an RFC 18 worker that streams.
    let _w1 = mdp_peer(&broker.endpoint, "majortomo-worker", "mt").await;
    let _w2 = mdp_peer(&broker.endpoint, "zguide-worker", "zg").await;
    let _w3 = mdp_peer(&broker.endpoint, "rfc18-worker", "rfc").await;
    let mut c1 = mdp_peer(&broker.endpoint, "zguide-client", "mt").await;
    assert_eq!(ask(&mut c1, "one").await, "REPLY mt|ONE");
    let mut c2 = mdp_peer(&broker.endpoint, "rfc18-client", "zg").await;
    assert_eq!(ask(&mut c2, "two").await, "FINAL zg|TWO");
    let mut c3 = mdp_peer(&broker.endpoint, "majortomo-client", "rfc").await;
    // majortomo's recv_all gathers the PARTIAL and the FINAL.
    assert_eq!(ask(&mut c3, "three").await, "REPLY three|THREE");
    // A 0.1 client gets one reply with every frame of a streamed answer.
    let mut c4 = mdp_peer(&broker.endpoint, "zguide-client", "rfc").await;
    assert_eq!(ask(&mut c4, "four").await, "REPLY rfc|four|FOUR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_and_worker_with_mmi() {
    let broker = BrokerProcess::start();
    let ep = broker.endpoint.clone();
    tokio::spawn(
        Worker::new(&ep, "echo")
            .options(WorkerOptions::default().dialect(Dialect::Mdp02))
            .run(|req| async move { Ok(req) }),
    );
    let client = Client::connect_with(
        &ep,
        ClientOptions::default().timeout(Duration::from_secs(10)),
    )
    .unwrap();
    let wait = Duration::from_secs(60);
    let reply = tokio::time::timeout(wait, client.request("echo", ["a", "", "b"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, Message::from(["a", "", "b"]));
    assert!(tokio::time::timeout(wait, client.service_exists("echo"))
        .await
        .unwrap()
        .unwrap());
    assert!(!tokio::time::timeout(wait, client.service_exists("nope"))
        .await
        .unwrap()
        .unwrap());
    // Many in flight to two services over the MDP 0.1 client's shared connection.
    let calls = (0..40).map(|i| {
        let client = client.clone();
        async move {
            let body = format!("m{i}");
            assert_eq!(
                client.request("echo", body.clone()).await.unwrap(),
                Message::from(body)
            );
        }
    });
    tokio::time::timeout(wait, futures_util::future::join_all(calls))
        .await
        .unwrap();
}

#[derive(serde::Deserialize)]
struct Add {
    x: i64,
    y: i64,
}

/// The README's Python example (`examples/python/add_client.py`, pyzmq + msgpack over
/// MDP 0.1) against our typed Rust worker, through the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_add_example_with_our_typed_worker() {
    let broker = BrokerProcess::start();
    tokio::spawn(
        Worker::new(&broker.endpoint, "add")
            .run_typed(|add: Add| async move { Ok::<_, std::io::Error>(add.x + add.y) }),
    );
    let client = Client::connect(&broker.endpoint).unwrap();
    let wait = Duration::from_secs(60);
    while !tokio::time::timeout(wait, client.service_exists("add"))
        .await
        .unwrap()
        .unwrap()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let example = testkit::workspace_root().join("examples/python/add_client.py");
    let mut py = PyPeer::spawn_script(example, [broker.endpoint.as_str(), "6", "7"]);
    assert_eq!(py.line().await, "6 + 7 = 13");
}

/// kill -9 a worker that holds a request while another worker of the service lives:
/// the broker notices (its connection closes, or heartbeats stop), gives the request
/// to the live worker, and the client gets its reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_survives_its_worker_being_killed() {
    let broker = BrokerProcess::start_with(&["--heartbeat-interval", "200"]);
    let mut doomed = mdp_peer(&broker.endpoint, "zguide-hang", "echo").await;
    let mut client = mdp_peer(&broker.endpoint, "zguide-client", "echo").await;
    client.send_line("precious");
    assert_eq!(doomed.line().await, "GOT precious");
    let _healthy = mdp_peer(&broker.endpoint, "zguide-worker", "echo").await;
    doomed.kill();
    assert_eq!(client.line().await, "REPLY echo|PRECIOUS");
}

/// The same with heartbeats so slow (10 minutes) that only the closed connection can
/// tell the broker: it does not wait for the worker to expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_workers_request_is_requeued_when_its_connection_closes() {
    let broker = BrokerProcess::start_with(&["--heartbeat-interval", "600000"]);
    let mut doomed = mdp_peer(&broker.endpoint, "zguide-hang", "echo").await;
    let mut client = mdp_peer(&broker.endpoint, "zguide-client", "echo").await;
    client.send_line("precious");
    assert_eq!(doomed.line().await, "GOT precious");
    let _healthy = mdp_peer(&broker.endpoint, "zguide-worker", "echo").await;
    doomed.kill();
    assert_eq!(client.line().await, "REPLY echo|PRECIOUS");
}
