//! The `mdp` command line against the real broker: `call` (arguments, stdin, JSON
//! and MessagePack, partial replies, timeouts) with our worker, a majortomo worker
//! and a Python msgpack worker; `services`, `workers`, `stats`, `ping`; and
//! `mdp worker` putting a shell command behind a service.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{bounded, output_within, wait_for_service, BrokerProcess, StartBroker};
use mdp::{Client, Worker};
use testkit::PyPeer;
use zmtp::Message;

const MDP: &str = env!("CARGO_BIN_EXE_mdp");

/// Runs `mdp ARGS` against `broker` with `stdin`, waiting at most [`WAIT`].
fn mdp(broker: &BrokerProcess, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(MDP)
        .args(args)
        .env("MDP_BROKER", &broker.endpoint)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run mdp");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).unwrap();
    }
    output_within(child, &format!("mdp {args:?}"))
}

/// `mdp ARGS` that must succeed: its stdout.
fn ok(broker: &BrokerProcess, args: &[&str], stdin: Option<&[u8]>) -> String {
    let out = mdp(broker, args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "mdp {args:?}: {}\n{stderr}",
        out.status
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `mdp ARGS` run off the async test's threads.
async fn ok_async(broker: &BrokerProcess, args: &[&str]) -> String {
    tokio::task::block_in_place(|| ok(broker, args, None))
}

async fn py_worker(broker: &BrokerProcess, mode: &str, service: &str) -> PyPeer {
    let mut p = PyPeer::spawn_script(
        common::mdp_peer_script(),
        [broker.endpoint.as_str(), mode, service],
    );
    p.expect("READY").await;
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_sends_arguments_or_stdin_and_prints_each_frame() {
    let broker = BrokerProcess::start();
    tokio::spawn(Worker::new(broker.endpoint.clone(), "echo").run(|body| async move { Ok(body) }));
    let client = Client::connect(&broker.endpoint).unwrap();
    wait_for_service(&client, "echo").await;
    assert_eq!(
        ok_async(&broker, &["call", "echo", "one", "two"]).await,
        "one\ntwo\n"
    );
    let piped =
        tokio::task::block_in_place(|| ok(&broker, &["call", "echo"], Some(b"from stdin\n")));
    assert_eq!(piped, "from stdin\n");
    let mixed =
        tokio::task::block_in_place(|| ok(&broker, &["call", "echo", "a", "-"], Some(b"b")));
    assert_eq!(mixed, "a\nb\n");
    // JSON text both ways.
    let json = ok_async(&broker, &["call", "echo", "--json", r#"{ "k" : [1, 2] }"#]).await;
    assert_eq!(json, "{\"k\":[1,2]}\n");
    // Every dialect the CLI speaks gets the same answer.
    for dialect in ["mdp01", "mdp02", "majortomo"] {
        let out = ok_async(&broker, &["--dialect", dialect, "call", "echo", "x"]).await;
        assert_eq!(out, "x\n", "{dialect}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_reaches_a_majortomo_worker_and_a_python_msgpack_worker() {
    let broker = BrokerProcess::start();
    let _majortomo = py_worker(&broker, "majortomo-worker", "upper").await;
    let _msgpack = py_worker(&broker, "overseer-worker", "add").await;
    let client = Client::connect(&broker.endpoint).unwrap();
    wait_for_service(&client, "upper").await;
    wait_for_service(&client, "add").await;
    assert_eq!(
        ok_async(&broker, &["call", "upper", "hello", "world"]).await,
        "HELLO\nWORLD\n"
    );
    // JSON in, MessagePack on the wire, the msgpack reply printed as JSON.
    let sum = ok_async(
        &broker,
        &["call", "add", "--msgpack", r#"{"x": 2, "y": 40}"#],
    )
    .await;
    assert_eq!(sum, "42\n");
    let from_stdin = tokio::task::block_in_place(|| {
        ok(
            &broker,
            &["call", "add", "--msgpack"],
            Some(br#"{"x": -1, "y": 1}"#),
        )
    });
    assert_eq!(from_stdin, "0\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_prints_partial_replies_then_the_final_one() {
    let broker = BrokerProcess::start();
    // A PARTIAL with the body, then a FINAL with it upper-cased.
    let _w = py_worker(&broker, "rfc18-worker", "stream").await;
    let client = Client::connect(&broker.endpoint).unwrap();
    wait_for_service(&client, "stream").await;
    assert_eq!(
        ok_async(&broker, &["call", "stream", "hi"]).await,
        "hi\nHI\n"
    );
    // An MDP/0.1 client gets them gathered into one reply.
    let gathered = ok_async(&broker, &["--dialect", "mdp01", "call", "stream", "hi"]).await;
    assert_eq!(gathered, "hi\nHI\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_without_a_reply_fails_after_its_retries() {
    let broker = BrokerProcess::start();
    let out = tokio::task::block_in_place(|| {
        mdp(
            &broker,
            &["call", "nobody", "x", "--timeout", "200", "--retries", "1"],
            None,
        )
    });
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("after 2 attempts"), "{stderr}");
    assert!(out.stdout.is_empty());
    // Bad JSON is refused before anything is sent.
    let out = tokio::task::block_in_place(|| mdp(&broker, &["call", "x", "--msgpack", "{"], None));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not JSON"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_workers_and_stats_show_what_the_broker_holds() {
    let broker = BrokerProcess::start();
    tokio::spawn(Worker::new(broker.endpoint.clone(), "echo").run(|body| async move { Ok(body) }));
    let client = Client::connect(&broker.endpoint).unwrap();
    wait_for_service(&client, "echo").await;
    for _ in 0..3 {
        bounded("echo", client.request("echo", "x")).await.unwrap();
    }

    let services = ok_async(&broker, &["services"]).await;
    let lines: Vec<&str> = services.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["SERVICE", "WORKERS", "IDLE", "BUSY", "QUEUED", "PEERS", "VIA"]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["echo", "1", "1", "0", "0", "0", "-"]
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok_async(&broker, &["services", "--json"]).await).unwrap();
    assert_eq!(json[0]["name"], "echo");
    assert_eq!(json[0]["workers"], 1);

    let workers = ok_async(&broker, &["workers", "echo"]).await;
    let row: Vec<&str> = workers.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[1..5], ["echo", "MDP/0.1", "idle", "3"]);
    assert_eq!(
        ok_async(&broker, &["workers", "missing"])
            .await
            .lines()
            .count(),
        1
    );

    let stats = ok_async(&broker, &["stats"]).await;
    assert!(stats.starts_with("requests "), "{stats}");
    let echo: Vec<&str> = stats
        .lines()
        .find(|l| l.starts_with("echo"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&echo[..9], ["echo", "1", "1", "0", "0", "0", "3", "0", "0"]);
    let json: serde_json::Value =
        serde_json::from_str(&ok_async(&broker, &["stats", "--json"]).await).unwrap();
    assert_eq!(json["services"][0]["served"], 3);
    assert!(json["services"][0]["p50_ms"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_measures_round_trips_and_fails_without_a_broker() {
    let broker = BrokerProcess::start();
    let out = ok_async(&broker, &["ping", "-c", "3", "-i", "10"]).await;
    assert_eq!(
        out.lines().filter(|l| l.starts_with("reply from")).count(),
        3,
        "{out}"
    );
    assert!(out.contains("3 sent, 3 answered"), "{out}");

    let port = testkit::free_tcp_port();
    let dead = format!("tcp://127.0.0.1:{port}");
    let out = tokio::task::block_in_place(|| {
        mdp(&broker, &["-b", &dead, "ping", "--timeout", "200"], None)
    });
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 sent, 0 answered"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_serves_a_service_with_a_shell_command() {
    let broker = BrokerProcess::start();
    // Killed on drop.
    let spawn = |args: &[&str]| {
        let mut command = Command::new(MDP);
        command.env("MDP_BROKER", &broker.endpoint).args(args);
        PyPeer::spawn_process(format!("mdp {}", args.join(" ")), command)
    };
    let _upper = spawn(&["worker", "upper", "--", "tr", "a-z", "A-Z"]);
    let _env = spawn(&[
        "worker",
        "env",
        "--concurrency",
        "2",
        "--",
        "sh",
        "-c",
        "cat >/dev/null; echo \"$MDP_SERVICE $MDP_FRAMES\"",
    ]);
    let _failing = spawn(&[
        "worker",
        "failing",
        "--",
        "sh",
        "-c",
        "echo partial; exit 3",
    ]);
    let client = Client::connect(&broker.endpoint).unwrap();
    for service in ["upper", "env", "failing"] {
        wait_for_service(&client, service).await;
    }
    let reply = bounded("upper", client.request("upper", "shout"))
        .await
        .unwrap();
    assert_eq!(reply, Message::from("SHOUT"));
    let reply = bounded("env", client.request("env", Message::from(vec!["a", "b"])))
        .await
        .unwrap();
    assert_eq!(reply, Message::from("env 2\n"));
    // A failing command still answers, with what it wrote.
    let reply = bounded("failing", client.request("failing", "x"))
        .await
        .unwrap();
    assert_eq!(reply, Message::from("partial\n"));
    // Through `mdp call`, end to end.
    assert_eq!(ok_async(&broker, &["call", "upper", "cli"]).await, "CLI\n");
}
