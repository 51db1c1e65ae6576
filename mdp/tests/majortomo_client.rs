//! Our client through the real majortomo broker (PyPI majortomo 0.2.0): with our
//! worker and with majortomo's worker, many requests in flight, streaming, typed
//! calls, and timeouts.

use std::time::Duration;

use futures_util::StreamExt;
use mdp::proto::ReplyKind;
use mdp::{Client, ClientError, ClientOptions, Dialect, Worker, WorkerOptions};
use testkit::PyPeer;
use zmtp::Message;

const WAIT: Duration = Duration::from_secs(60);

const BROKER: &str = r#"
import sys
from majortomo.broker import main
sys.argv = ["majortomo-broker", "-b", sys.argv[1], "-i", "0.25", "-t", "1.0"]
main()
"#;

/// A majortomo worker for argv[2]: replies "partial:<body>" as PARTIAL, then the
/// upper-cased body as FINAL.
const MAJORTOMO_WORKER: &str = r#"
import sys
from majortomo import Worker
worker = Worker(sys.argv[1], sys.argv[2].encode(), heartbeat_interval=0.25, heartbeat_timeout=1.0)
worker.connect()
print("READY", flush=True)
while True:
    client, frames = worker.wait_for_request()
    worker.send_reply_partial(client, [b"partial:" + frames[0]])
    worker.send_reply_final(client, [f.upper() for f in frames])
"#;

fn options() -> ClientOptions {
    ClientOptions::default()
        .dialect(Dialect::Majortomo)
        .timeout(Duration::from_secs(5))
        .attempts(5)
}

fn worker(ep: &str, service: &'static str) -> Worker {
    Worker::new(ep, service).options(
        WorkerOptions::default()
            .dialect(Dialect::Majortomo)
            .heartbeat_interval(Duration::from_millis(250)),
    )
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .expect("within the test's bound")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_and_our_worker_through_majortomo() {
    let ep = testkit::tcp_endpoint();
    let _broker = PyPeer::spawn_code(BROKER, [&ep]);
    tokio::spawn(worker(&ep, "echo").run(|req| async move { Ok(req) }));
    let client = Client::connect_with(&ep, options()).unwrap();
    let reply = within(client.request("echo", ["hello", "", "world"]))
        .await
        .unwrap();
    assert_eq!(reply, Message::from(["hello", "", "world"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_in_flight_get_their_own_replies() {
    let ep = testkit::tcp_endpoint();
    let _broker = PyPeer::spawn_code(BROKER, [&ep]);
    // Two workers per service answering after different delays: replies come back
    // out of order, and each must still reach the caller that asked.
    for delay_ms in [1u64, 7] {
        for service in ["alpha", "beta"] {
            tokio::spawn(worker(&ep, service).run(move |req: Message| async move {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                Ok(req)
            }));
        }
    }
    let client = Client::connect_with(&ep, options()).unwrap();
    let calls = (0..60).map(|i| {
        let client = client.clone();
        async move {
            let service = if i % 2 == 0 { "alpha" } else { "beta" };
            let body = format!("{service}-{i}");
            let reply = client.request(service, body.clone()).await.unwrap();
            assert_eq!(reply, Message::from(body));
        }
    });
    within(futures_util::future::join_all(calls)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_with_a_majortomo_worker_streams_partials() {
    let ep = testkit::tcp_endpoint();
    let _broker = PyPeer::spawn_code(BROKER, [&ep]);
    let mut py_worker = PyPeer::spawn_code(MAJORTOMO_WORKER, [ep.as_str(), "shout"]);
    py_worker.expect("READY").await;
    let client = Client::connect_with(&ep, options()).unwrap();

    let stream = within(client.request_stream("shout", "hey")).await.unwrap();
    let parts: Vec<_> = within(stream.collect::<Vec<_>>()).await;
    let parts: Vec<_> = parts.into_iter().map(Result::unwrap).collect();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].kind, ReplyKind::Partial);
    assert_eq!(parts[0].body, Message::from("partial:hey"));
    assert_eq!(parts[1].kind, ReplyKind::Final);
    assert_eq!(parts[1].body, Message::from("HEY"));

    // `request` gathers the parts of a streamed reply in order.
    let all = within(client.request("shout", "you")).await.unwrap();
    assert_eq!(all, Message::from(["partial:you", "YOU"]));
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Add {
    x: i64,
    y: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_calls_in_messagepack() {
    let ep = testkit::tcp_endpoint();
    let _broker = PyPeer::spawn_code(BROKER, [&ep]);
    tokio::spawn(worker(&ep, "add").run(|req: Message| async move {
        let add: Add = mdp::Format::MessagePack.decode(&req[0])?;
        Ok(Message::from(
            mdp::Format::MessagePack.encode(&(add.x + add.y))?,
        ))
    }));
    let client = Client::connect_with(&ep, options()).unwrap();
    let sum: i64 = within(client.call("add", &Add { x: 6, y: 7 }))
        .await
        .unwrap();
    assert_eq!(sum, 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_worker_means_a_timeout_after_every_attempt_and_nothing_left_running() {
    let ep = testkit::tcp_endpoint();
    let _broker = PyPeer::spawn_code(BROKER, [&ep]);
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let client = Client::connect_with(
        &ep,
        ClientOptions::default()
            .dialect(Dialect::Majortomo)
            .timeout(Duration::from_millis(300))
            .attempts(3),
    )
    .unwrap();
    let err = within(client.request("nobody-serves-this", "hi"))
        .await
        .unwrap_err();
    match err {
        ClientError::Timeout {
            service, attempts, ..
        } => {
            assert_eq!(service, "nobody-serves-this");
            assert_eq!(attempts, 3);
        }
        other => panic!("expected a timeout, got {other}"),
    }
    drop(client);
    // The dispatcher and its connections wind down once the client is gone.
    within(async {
        while metrics.num_alive_tasks() > baseline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_streaming_worker_to_our_client() {
    let ep = testkit::tcp_endpoint();
    let _broker = PyPeer::spawn_code(BROKER, [&ep]);
    tokio::spawn(worker(&ep, "count").run_streaming_until(
        |req: Message| {
            let n: usize = std::str::from_utf8(&req[0]).unwrap().parse().unwrap();
            futures_util::stream::iter((1..=n).map(|i| Ok(Message::from(i.to_string()))))
        },
        std::future::pending(),
    ));
    let client = Client::connect_with(&ep, options()).unwrap();
    let stream = within(client.request_stream("count", "4")).await.unwrap();
    let parts: Vec<_> = within(stream.collect::<Vec<_>>()).await;
    let kinds: Vec<_> = parts.iter().map(|p| p.as_ref().unwrap().kind).collect();
    let bodies: Vec<_> = parts.into_iter().map(|p| p.unwrap().body).collect();
    assert_eq!(
        kinds,
        [
            ReplyKind::Partial,
            ReplyKind::Partial,
            ReplyKind::Partial,
            ReplyKind::Final
        ]
    );
    assert_eq!(bodies, ["1", "2", "3", "4"].map(Message::from));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_worker_and_typed_client() {
    let ep = testkit::tcp_endpoint();
    let _broker = PyPeer::spawn_code(BROKER, [&ep]);
    tokio::spawn(
        worker(&ep, "add")
            .run_typed(|add: Add| async move { Ok::<_, std::io::Error>(add.x + add.y) }),
    );
    let client = Client::connect_with(&ep, options()).unwrap();
    let sum: i64 = within(client.call("add", &Add { x: 40, y: 2 }))
        .await
        .unwrap();
    assert_eq!(sum, 42);
    // A body that does not decode is a handler error, not a dead worker.
    let err =
        tokio::time::timeout(Duration::from_secs(3), client.request("add", "not msgpack")).await;
    assert!(err.is_err() || err.unwrap().is_err());
    let sum: i64 = within(client.call("add", &Add { x: 1, y: 1 }))
        .await
        .unwrap();
    assert_eq!(sum, 2);
}

#[test]
fn blocking_client_from_synchronous_code() {
    let ep = testkit::tcp_endpoint();
    let _broker = PyPeer::spawn_code(BROKER, [&ep]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _worker = runtime.spawn(worker(&ep, "echo").run(|req| async move { Ok(req) }));
    let client = mdp::blocking::Client::connect_with(&ep, options()).unwrap();
    assert_eq!(
        client.request("echo", "sync").unwrap(),
        Message::from("sync")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_call_timeout_and_attempts() {
    let ep = testkit::tcp_endpoint();
    let _broker = PyPeer::spawn_code(BROKER, [&ep]);
    // The client's defaults are long; this one call gives up after 2 × 200 ms.
    let client = Client::connect_with(&ep, options()).unwrap();
    let limits = mdp::CallOptions {
        timeout: Duration::from_millis(200),
        attempts: 2,
    };
    let err = within(client.request_with("nobody", "x", limits))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Timeout { attempts: 2, timeout, .. } if timeout == Duration::from_millis(200)),
        "{err}"
    );
}
