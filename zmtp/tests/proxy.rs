//! `zmtp::proxy` as a shared queue (ROUTER frontend, DEALER backend) between REQ
//! clients and REP workers, ours and pyzmq's; capture copies; steering (pause,
//! resume, statistics, terminate).
//!
//! Every wait is bounded and nothing asserts on timing: "no reply while paused" is
//! checked by counters and a short bounded wait that must not see a reply.

use std::time::Duration;

use testkit::PyPeer;
use zmtp::proxy::{self, ProxyStopped};
use zmtp::{Endpoint, Error, Message, Socket, SocketType};

/// Bound on every wait for something that must happen.
const WAIT: Duration = Duration::from_secs(30);
/// How long a paused proxy is watched for a reply that must not come.
const QUIET: Duration = Duration::from_millis(300);

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what} within {WAIT:?}"))
}

/// A ROUTER frontend and a DEALER backend, bound on ephemeral ports.
async fn queue_sockets() -> (Socket, Endpoint, Socket, Endpoint) {
    let mut frontend = Socket::new(SocketType::Router);
    let clients = frontend.bind("tcp://127.0.0.1:0").await.unwrap();
    let mut backend = Socket::new(SocketType::Dealer);
    let workers = backend.bind("tcp://127.0.0.1:0").await.unwrap();
    (frontend, clients, backend, workers)
}

/// A REP worker that answers each request `R` with `name:R`, forever.
async fn spawn_worker(name: String, endpoint: &Endpoint) -> tokio::task::JoinHandle<()> {
    let mut worker = Socket::new(SocketType::Rep);
    worker.connect(&endpoint.to_string()).unwrap();
    tokio::spawn(async move {
        while let Ok(request) = worker.recv().await {
            let mut reply = Vec::from(name.as_bytes());
            reply.push(b':');
            reply.extend_from_slice(&request[0]);
            if worker.send(reply).await.is_err() {
                return;
            }
        }
    })
}

#[tokio::test]
async fn queue_between_our_req_clients_and_rep_workers() {
    let (mut frontend, clients, mut backend, workers) = queue_sockets().await;
    let queue = tokio::spawn(async move { proxy::proxy(&mut frontend, &mut backend, None).await });
    let mut worker_tasks = Vec::new();
    for w in 0..3 {
        worker_tasks.push(spawn_worker(format!("w{w}"), &workers).await);
    }

    let mut client_tasks = Vec::new();
    for c in 0..4 {
        let mut client = Socket::new(SocketType::Req);
        client.connect(&clients.to_string()).unwrap();
        client_tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let request = format!("c{c}-{i}");
                client.send(request.clone()).await.unwrap();
                let reply = within("a reply", client.recv()).await.unwrap();
                assert_eq!(reply.len(), 1, "{reply:?}");
                let text = std::str::from_utf8(&reply[0]).unwrap().to_owned();
                let (worker, answered) = text.split_once(':').unwrap();
                assert!(worker.starts_with('w'), "{text}");
                assert_eq!(answered, request, "each client gets its own answer");
            }
        }));
    }
    for task in client_tasks {
        within("a client's ten requests", task).await.unwrap();
    }
    assert!(!queue.is_finished(), "the proxy only stops on error");
    queue.abort();
    for task in worker_tasks {
        task.abort();
    }
}

/// pyzmq REP worker: answers `R` with `py:R`.
const PY_REP: &str = r#"
import sys, zmq
s = zmq.Context().socket(zmq.REP)
s.connect(sys.argv[1])
print("READY")
while True:
    frames = s.recv_multipart()
    s.send_multipart([b"py:" + frames[0]] + frames[1:])
"#;

/// pyzmq REQ client: sends q0..q4 (the last one two frames), prints each reply.
const PY_REQ: &str = r#"
import sys, zmq
s = zmq.Context().socket(zmq.REQ)
s.setsockopt(zmq.RCVTIMEO, 30000)
s.connect(sys.argv[1])
print("READY")
for i in range(5):
    request = [b"q%d" % i] + ([b"more"] if i == 4 else [])
    s.send_multipart(request)
    print("REPLY " + "|".join(f.decode() for f in s.recv_multipart()))
print("DONE")
"#;

#[tokio::test]
async fn queue_between_pyzmq_req_and_pyzmq_rep() {
    let (mut frontend, clients, mut backend, workers) = queue_sockets().await;
    let queue = tokio::spawn(async move { proxy::proxy(&mut frontend, &mut backend, None).await });

    let mut worker = PyPeer::spawn_code(PY_REP, [workers.to_string()]);
    worker.expect("READY").await;
    let mut client = PyPeer::spawn_code(PY_REQ, [clients.to_string()]);
    client.expect("READY").await;
    for i in 0..4 {
        assert_eq!(client.line().await, format!("REPLY py:q{i}"));
    }
    assert_eq!(client.line().await, "REPLY py:q4|more");
    client.expect("DONE").await;
    assert!(!queue.is_finished());
    queue.abort();
}

#[tokio::test]
async fn capture_gets_a_copy_of_each_forwarded_message() {
    let (mut frontend, clients, mut backend, workers) = queue_sockets().await;
    // The capture DEALER connects to a reader: its pipe exists at once, so no copy
    // is dropped for want of a peer.
    let mut reader = Socket::new(SocketType::Dealer);
    let copies = reader.bind("tcp://127.0.0.1:0").await.unwrap();
    let mut capture = Socket::new(SocketType::Dealer);
    capture.connect(&copies.to_string()).unwrap();
    let (control, commands) = proxy::control();
    let queue = tokio::spawn(async move {
        proxy::proxy_steerable(&mut frontend, &mut backend, Some(&mut capture), commands).await
    });
    let _worker = spawn_worker("w".into(), &workers).await;
    let mut client = Socket::new(SocketType::Req);
    client.connect(&clients.to_string()).unwrap();

    for i in 0..3 {
        client.send(format!("ping{i}")).await.unwrap();
        let reply = within("a reply", client.recv()).await.unwrap();
        assert_eq!(reply, Message::from(format!("w:ping{i}")));

        // Request as the frontend ROUTER gave it (id, delimiter, body), then the
        // reply as the backend DEALER got it (same envelope).
        let request = within("the request's copy", reader.recv()).await.unwrap();
        assert_eq!(request.len(), 3, "{request:?}");
        assert!(request[1].is_empty(), "{request:?}");
        assert_eq!(request[2], format!("ping{i}").as_bytes());
        let answer = within("the reply's copy", reader.recv()).await.unwrap();
        assert_eq!(answer.len(), 3, "{answer:?}");
        assert_eq!(answer[0], request[0], "the same client's envelope");
        assert_eq!(answer[2], format!("w:ping{i}").as_bytes());
    }

    let stats = control.statistics().await.unwrap();
    assert_eq!(stats.capture_dropped, 0);
    assert_eq!(stats.frontend.messages_in, 3);
    assert_eq!(stats.backend.messages_out, 3);
    assert_eq!(stats.backend.messages_in, 3);
    assert_eq!(stats.frontend.messages_out, 3);
    assert_eq!(stats.frontend.bytes_in, stats.backend.bytes_out);
    control.terminate().await.unwrap();
    within("the proxy's end", queue).await.unwrap().unwrap();
}

#[tokio::test]
async fn pause_holds_messages_resume_forwards_terminate_returns_ok() {
    let (mut frontend, clients, mut backend, workers) = queue_sockets().await;
    let (control, commands) = proxy::control();
    let queue = tokio::spawn(async move {
        proxy::proxy_steerable(&mut frontend, &mut backend, None, commands).await
    });
    let _worker = spawn_worker("w".into(), &workers).await;
    let mut client = Socket::new(SocketType::Req);
    client.connect(&clients.to_string()).unwrap();

    client.send("before").await.unwrap();
    let reply = within("a reply", client.recv()).await.unwrap();
    assert_eq!(reply, Message::from("w:before"));

    control.pause().await.unwrap();
    let paused_at = control.statistics().await.unwrap();
    client.send("held").await.unwrap();
    let nothing = tokio::time::timeout(QUIET, client.recv()).await;
    assert!(nothing.is_err(), "no reply while paused: {nothing:?}");
    let still = control.statistics().await.unwrap();
    assert_eq!(still, paused_at, "nothing forwarded while paused");

    // The request waited in the frontend; resuming forwards it. (The timed-out recv
    // above was cancelled without losing anything.)
    control.resume().await.unwrap();
    let reply = within("the held reply", client.recv()).await.unwrap();
    assert_eq!(reply, Message::from("w:held"));
    let after = control.statistics().await.unwrap();
    assert_eq!(
        after.frontend.messages_in,
        paused_at.frontend.messages_in + 1
    );
    assert_eq!(
        after.frontend.messages_out,
        paused_at.frontend.messages_out + 1
    );

    // A clone steers the same proxy; terminate ends it with Ok, after which every
    // handle reports that it is gone.
    let other = control.clone();
    other.terminate().await.unwrap();
    let ended: Result<(), Error> = within("the proxy's end", queue).await.unwrap();
    ended.unwrap();
    assert_eq!(control.pause().await, Err(ProxyStopped));
    assert_eq!(other.statistics().await, Err(ProxyStopped));
}

#[tokio::test]
async fn terminate_while_paused_and_dropped_handles_leave_it_running() {
    let (mut frontend, clients, mut backend, workers) = queue_sockets().await;

    // Dropping every handle: the proxy carries on unpaused.
    let (control, commands) = proxy::control();
    let queue = tokio::spawn(async move {
        proxy::proxy_steerable(&mut frontend, &mut backend, None, commands).await
    });
    control.pause().await.unwrap();
    drop(control);
    let _worker = spawn_worker("w".into(), &workers).await;
    let mut client = Socket::new(SocketType::Req);
    client.connect(&clients.to_string()).unwrap();
    client.send("unsteered").await.unwrap();
    let reply = within("a reply", client.recv()).await.unwrap();
    assert_eq!(reply, Message::from("w:unsteered"));
    assert!(!queue.is_finished());
    queue.abort();
    let _ = queue.await;

    // Terminate works while paused.
    let (mut frontend, _, mut backend, _) = queue_sockets().await;
    let (control, commands) = proxy::control();
    let queue = tokio::spawn(async move {
        proxy::proxy_steerable(&mut frontend, &mut backend, None, commands).await
    });
    control.pause().await.unwrap();
    control.terminate().await.unwrap();
    within("the proxy's end", queue).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_backed_up_backend_does_not_hold_replies() {
    // A worker (over inproc, so no kernel buffers absorb anything) that takes one
    // request and then stops reading: requests back up on the backend, while its
    // answer to the first must still reach the client.
    let mut frontend = Socket::new(SocketType::Router);
    let clients = frontend.bind("tcp://127.0.0.1:0").await.unwrap();
    let small = zmtp::SocketOptions::default().hwm(2);
    let mut backend = Socket::with_options(SocketType::Dealer, small.clone()).unwrap();
    backend.bind("inproc://proxy-backed-up").await.unwrap();
    let (control, commands) = proxy::control();
    let queue = tokio::spawn(async move {
        proxy::proxy_steerable(&mut frontend, &mut backend, None, commands).await
    });
    let mut worker = Socket::with_options(SocketType::Dealer, small).unwrap();
    worker.connect("inproc://proxy-backed-up").unwrap();
    let mut client = Socket::new(SocketType::Dealer);
    client.connect(&clients.to_string()).unwrap();

    client.send(["", "first"]).await.unwrap();
    let mut reply = within("the first request", worker.recv()).await.unwrap();
    const REQUESTS: u64 = 100;
    for i in 0..REQUESTS {
        within(
            "queueing a request",
            client.send(["".to_string(), format!("r{i}")]),
        )
        .await
        .unwrap();
    }
    // Wait until the proxy has stopped forwarding requests: the backend is full.
    let mut last = None;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stats = within("statistics", control.statistics()).await.unwrap();
        let forwarded = stats.backend.messages_out;
        assert!(forwarded < REQUESTS, "the worker never backed up");
        if forwarded > 1 && last == Some(forwarded) {
            break;
        }
        last = Some(forwarded);
    }
    // The worker answers the first request only now: [routing id, "", body].
    let _ = reply.pop_back();
    reply.push_back("reply to first");
    worker.send(reply).await.unwrap();
    let got = within("the reply while requests are backed up", client.recv())
        .await
        .unwrap();
    assert_eq!(got.frames(), ["", "reply to first"]);
    queue.abort();
}
