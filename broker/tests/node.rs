//! The Node.js examples (`examples/node`, the `zeromq` npm package) against the real
//! broker: the MDP client calls a Rust worker, and the subscriber gets the event
//! bus's events by topic. Node and npm must be installed (the test fails, naming
//! what is missing, otherwise); the package is installed under target/ on first use.

mod common;

use std::time::Duration;

use common::{wait_for_service, BrokerProcess, StartBroker};
use mdp::events::Publisher;
use mdp::{Client, Worker};
use testkit::{node, node_examples, PyPeer};
use zmtp::Message;

/// `node examples/node/SCRIPT ARGS...`, driven by lines.
fn node_peer(script: &str, args: &[&str]) -> PyPeer {
    let mut command = node();
    command.arg(node_examples().join(script)).args(args);
    PyPeer::spawn_process(format!("node {script} {}", args.join(" ")), command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_client_calls_a_rust_worker_through_the_broker() {
    let broker = BrokerProcess::start();
    tokio::spawn(
        Worker::new(broker.endpoint.clone(), "upper").run(|body: Message| async move {
            Ok(body
                .iter()
                .map(|frame| frame.to_ascii_uppercase())
                .collect::<Vec<_>>()
                .into())
        }),
    );
    let client = Client::connect(&broker.endpoint).unwrap();
    wait_for_service(&client, "upper").await;
    let mut node_client = node_peer(
        "mdp_client.js",
        &[&broker.endpoint, "upper", "hello", "node"],
    );
    assert_eq!(node_client.line().await, "HELLO");
    assert_eq!(node_client.line().await, "NODE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_subscriber_gets_the_event_bus_by_topic() {
    let broker = BrokerProcess::start_with(&["--pubsub", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"]);
    let events_in = broker.line_after("events in on ").unwrap();
    let events_out = broker.line_after("events out on ").unwrap();
    let mut subscriber = node_peer("subscriber.js", &[&events_out, "weather.", "0"]);
    subscriber.expect("SUBSCRIBED").await;
    let mut publisher = Publisher::connect(&events_in).await.unwrap();
    // Until the subscription has reached the publisher (the slow joiner).
    let probe = Duration::from_millis(100);
    let mut waited = Duration::ZERO;
    loop {
        publisher.publish("weather.probe", "-").await.unwrap();
        if subscriber.line_within(probe).await.is_some() {
            break;
        }
        waited += probe;
        assert!(waited < common::WAIT, "the Node subscriber got no event");
    }
    publisher.publish("sports.score", "3-1").await.unwrap();
    publisher
        .publish("weather.final", Message::from(vec!["sunny", "21C"]))
        .await
        .unwrap();
    loop {
        let line = subscriber.line().await;
        assert!(
            line.starts_with("weather."),
            "the Node subscriber got {line:?}"
        );
        if line.starts_with("weather.final") {
            assert_eq!(line, "weather.final sunny 21C");
            break;
        }
    }
}
