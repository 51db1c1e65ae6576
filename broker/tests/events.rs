//! The event bus (`--pubsub IN OUT`) of the real broker: a pyzmq publisher reaches
//! our subscriber and a pyzmq subscriber, and our publisher reaches both too, each
//! getting only the topics it subscribed to.

mod common;

use std::time::Duration;

use common::{bounded, BrokerProcess, StartBroker, WAIT};
use mdp::events::{Event, Publisher, Subscriber};
use mdp::Format;
use testkit::interop::ZmqPeer;

/// The broker with its event bus on fresh ports: (broker, IN, OUT).
fn broker_with_bus() -> (BrokerProcess, String, String) {
    let broker = BrokerProcess::start_with(&["--pubsub", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"]);
    let events_in = broker.line_after("events in on ").expect("the IN endpoint");
    let events_out = broker
        .line_after("events out on ")
        .expect("the OUT endpoint");
    (broker, events_in, events_out)
}

/// Whoever publishes in a test.
enum Sender {
    Python(ZmqPeer),
    Ours(Box<Publisher>),
}

impl Sender {
    async fn publish(&mut self, topic: &str, body: &[u8]) {
        match self {
            Sender::Python(peer) => {
                peer.send(vec![topic.as_bytes().to_vec(), body.to_vec()])
                    .await
            }
            Sender::Ours(publisher) => publisher
                .publish(topic.to_string(), body.to_vec())
                .await
                .unwrap(),
        }
    }
}

/// Our subscriber's next event within `wait`.
async fn next_ours(sub: &mut Subscriber, wait: Duration) -> Option<Event> {
    tokio::time::timeout(wait, sub.recv())
        .await
        .ok()
        .map(|e| e.unwrap())
}

/// The pyzmq subscriber's next event within `wait`: (topic, body frames).
async fn next_python(sub: &mut ZmqPeer, wait: Duration) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let mut frames = sub.recv_within(wait).await?;
    let topic = frames.remove(0);
    Some((topic, frames))
}

/// Publishes `weather.probe` until both subscribers have one (the subscriptions
/// have reached the publisher), then `sports.score` (nobody's topic) and
/// `weather.final`; each subscriber must then see `weather.final` and only
/// `weather.*` topics on the way.
async fn both_receive_only_their_topic(
    publisher: &mut Sender,
    ours: &mut Subscriber,
    python: &mut ZmqPeer,
) {
    let short = Duration::from_millis(50);
    let (mut ours_ready, mut python_ready) = (false, false);
    bounded("both subscriptions to reach the publisher", async {
        while !(ours_ready && python_ready) {
            publisher.publish("weather.probe", b"-").await;
            ours_ready |= next_ours(ours, short).await.is_some();
            python_ready |= next_python(python, short).await.is_some();
        }
    })
    .await;
    publisher.publish("sports.score", b"3-1").await;
    publisher.publish("weather.final", b"sunny").await;
    loop {
        let event = next_ours(ours, WAIT).await.expect("weather.final for us");
        assert!(event.topic.starts_with(b"weather."), "we got {event:?}");
        if event.topic == "weather.final" {
            assert_eq!(event.body, zmtp::Message::from("sunny"));
            break;
        }
    }
    loop {
        let (topic, body) = next_python(python, WAIT)
            .await
            .expect("weather.final for pyzmq");
        assert!(topic.starts_with(b"weather."), "pyzmq got {topic:?}");
        if topic == b"weather.final" {
            assert_eq!(body, [b"sunny".to_vec()]);
            break;
        }
    }
}

async fn subscribers(events_out: &str) -> (Subscriber, ZmqPeer) {
    let ours = Subscriber::connect(events_out, ["weather."]).await.unwrap();
    let mut python: ZmqPeer = ZmqPeer::connect("SUB", events_out).await;
    python.set_subscription(true, b"weather.").await;
    (ours, python)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pyzmq_publisher_reaches_our_and_pyzmq_subscribers_by_topic() {
    let (_broker, events_in, events_out) = broker_with_bus();
    let (mut ours, mut python) = subscribers(&events_out).await;
    let mut publisher = Sender::Python(ZmqPeer::connect("PUB", &events_in).await);
    both_receive_only_their_topic(&mut publisher, &mut ours, &mut python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_publisher_reaches_our_and_pyzmq_subscribers_by_topic() {
    let (_broker, events_in, events_out) = broker_with_bus();
    let (mut ours, mut python) = subscribers(&events_out).await;
    let mut publisher = Sender::Ours(Box::new(Publisher::connect(&events_in).await.unwrap()));
    both_receive_only_their_topic(&mut publisher, &mut ours, &mut python).await;

    // Typed events: MessagePack in one frame.
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Reading {
        city: String,
        celsius: f64,
    }
    let Sender::Ours(publisher) = &mut publisher else {
        unreachable!()
    };
    let reading = Reading {
        city: "Oslo".into(),
        celsius: -3.5,
    };
    publisher
        .publish_typed("weather.oslo", &reading, Format::MessagePack)
        .await
        .unwrap();
    let event = next_ours(&mut ours, WAIT).await.expect("the typed event");
    assert_eq!(
        event.decode::<Reading>(Format::MessagePack).unwrap(),
        reading
    );
}
