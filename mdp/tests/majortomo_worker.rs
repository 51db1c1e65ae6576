//! Our worker behind the real majortomo broker (PyPI majortomo 0.2.0), called by a
//! majortomo client: the wire dialect, re-registration after a broker restart, and
//! failing handlers.

use std::time::Duration;

use mdp::{Dialect, Worker, WorkerOptions};
use testkit::PyPeer;
use zmtp::Message;

/// majortomo's broker on argv[1], with fast heartbeats so restarts are noticed quickly.
const BROKER: &str = r#"
import sys
from majortomo.broker import main
sys.argv = ["majortomo-broker", "-b", sys.argv[1], "-i", "0.25", "-t", "1.0"]
main()
"#;

/// A majortomo client: each stdin line "service body" becomes a request; prints
/// "REPLY f1|f2…" or "TIMEOUT".
const CLIENT: &str = r#"
import sys
from majortomo import Client
from majortomo.error import Timeout
client = Client(sys.argv[1])
client.connect()
print("READY", flush=True)
while True:
    line = sys.stdin.readline()
    if not line:
        break
    service, body = line.strip().split(" ", 1)
    client.send(service.encode(), body.encode())
    try:
        reply = client.recv_all_as_list(timeout=float(sys.argv[2]))
        print("REPLY " + "|".join(f.decode() for f in reply), flush=True)
    except Timeout:
        print("TIMEOUT", flush=True)
        client.close()
        client = Client(sys.argv[1])
        client.connect()
"#;

fn fast_worker(endpoint: &str, service: &'static str) -> Worker {
    Worker::new(endpoint, service).options(
        WorkerOptions::default()
            .dialect(Dialect::Majortomo)
            .heartbeat_interval(Duration::from_millis(200))
            .liveness(3)
            .reconnect_interval(Duration::from_millis(100))
            .reconnect_interval_max(Duration::from_millis(500)),
    )
}

fn upper(msg: Message) -> Message {
    msg.iter().map(|f| f.to_ascii_uppercase()).collect()
}

/// Sends `service body` until a reply comes (a request may time out while the worker
/// re-registers); returns the reply line. Bounded by `tries`.
async fn call(client: &mut PyPeer, service: &str, body: &str, tries: usize) -> String {
    for _ in 0..tries {
        client.send_line(format!("{service} {body}"));
        let line = client.line().await;
        if line.starts_with("REPLY ") {
            return line;
        }
    }
    client.fail(&format!("no reply to {service} {body} after {tries} tries"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_worker_serves_a_majortomo_client_through_the_majortomo_broker() {
    let ep = testkit::tcp_endpoint();
    let _broker = PyPeer::spawn_code(BROKER, [&ep]);
    tokio::spawn(fast_worker(&ep, "upper").run(|req| async move { Ok(upper(req)) }));
    let mut client = PyPeer::spawn_code(CLIENT, [ep.as_str(), "5"]);
    client.expect("READY").await;
    assert_eq!(call(&mut client, "upper", "hello", 10).await, "REPLY HELLO");
    // Several requests in a row on the same registration.
    for i in 0..20 {
        assert_eq!(
            call(&mut client, "upper", &format!("msg{i}"), 1).await,
            format!("REPLY MSG{i}")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_worker_re_registers_after_the_broker_restarts() {
    let ep = testkit::tcp_endpoint();
    let mut broker = PyPeer::spawn_code(BROKER, [&ep]);
    tokio::spawn(fast_worker(&ep, "upper").run(|req| async move { Ok(upper(req)) }));
    let mut client = PyPeer::spawn_code(CLIENT, [ep.as_str(), "5"]);
    client.expect("READY").await;
    assert_eq!(
        call(&mut client, "upper", "before", 10).await,
        "REPLY BEFORE"
    );

    broker.kill();
    drop(broker);
    let _broker = PyPeer::spawn_code(BROKER, [&ep]);
    // Nothing is done on our side: the worker notices and registers again.
    assert_eq!(call(&mut client, "upper", "after", 10).await, "REPLY AFTER");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_or_panicking_handler_does_not_kill_the_worker() {
    let ep = testkit::tcp_endpoint();
    let _broker = PyPeer::spawn_code(BROKER, [&ep]);
    tokio::spawn(fast_worker(&ep, "picky").run(|req: Message| async move {
        match &req[0][..] {
            b"fail" => Err("refusing to serve 'fail'".into()),
            b"panic" => panic!("handler panic (expected by the test)"),
            _ => Ok(upper(req)),
        }
    }));
    let mut client = PyPeer::spawn_code(CLIENT, [ep.as_str(), "2"]);
    client.expect("READY").await;
    assert_eq!(call(&mut client, "picky", "ok", 10).await, "REPLY OK");
    for bad in ["fail", "panic"] {
        client.send_line(format!("picky {bad}"));
        assert_eq!(
            client.line().await,
            "TIMEOUT",
            "majortomo has no error reply"
        );
        assert_eq!(call(&mut client, "picky", "still", 10).await, "REPLY STILL");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_disconnect_and_returns() {
    let ep = testkit::tcp_endpoint();
    let _broker = PyPeer::spawn_code(BROKER, [&ep]);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(fast_worker(&ep, "upper").run_until(
        |req| async move { Ok(upper(req)) },
        async move {
            let _ = rx.await;
        },
    ));
    let mut client = PyPeer::spawn_code(CLIENT, [ep.as_str(), "5"]);
    client.expect("READY").await;
    assert_eq!(call(&mut client, "upper", "x", 10).await, "REPLY X");
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), worker)
        .await
        .expect("worker stops within the timeout")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn mmi_services_are_refused() {
    let err = Worker::new("tcp://127.0.0.1:1", "mmi.service")
        .run(|r| async move { Ok(r) })
        .await
        .unwrap_err();
    assert!(matches!(err, mdp::worker::WorkerError::ReservedService));
}
