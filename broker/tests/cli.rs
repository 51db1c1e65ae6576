//! The `mdp-broker` command line as an operator meets it: a clean stop on SIGTERM
//! (workers told), an immediate restart on the same port, one-line errors with a
//! non-zero exit for a busy port or a bad argument, and a log file that rotates.

mod common;

use std::process::Command;

use common::{bounded, wait_for_service, wait_until, BrokerProcess, StartBroker};
use mdp::proto::{ToWorker, WorkerCommand};
use mdp::Dialect;
use zmtp::{Socket, SocketType};

fn broker_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mdp-broker"))
}

fn sigterm(broker: &BrokerProcess) {
    let status = Command::new("kill")
        .args(["-TERM", &broker.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// A registered worker of `dialect` on a raw DEALER (so the test sees every frame).
async fn raw_worker(endpoint: &str, dialect: Dialect) -> Socket {
    let mut worker = Socket::new(SocketType::Dealer);
    worker.connect(endpoint).unwrap();
    let ready = WorkerCommand::Ready {
        service: "echo".into(),
    };
    worker.send(ready.encode(dialect)).await.unwrap();
    worker
}

#[tokio::test]
async fn sigterm_disconnects_workers_then_the_port_is_free_at_once() {
    let mut broker = BrokerProcess::start();
    let endpoint = broker.endpoint.clone();
    let mut workers = Vec::new();
    for dialect in [Dialect::Mdp01, Dialect::Mdp02, Dialect::Majortomo] {
        workers.push((dialect, raw_worker(&endpoint, dialect).await));
    }
    // Registered once MMI says so.
    let client = mdp::Client::connect(&endpoint).unwrap();
    wait_for_service(&client, "echo").await;

    sigterm(&broker);
    for (dialect, worker) in &mut workers {
        // Heartbeats may come first; DISCONNECT must come, in the worker's dialect.
        loop {
            let msg = bounded("DISCONNECT", worker.recv()).await.unwrap();
            match ToWorker::parse(*dialect, msg.frames()) {
                Ok(ToWorker::Disconnect) => break,
                Ok(ToWorker::Heartbeat) => continue,
                other => panic!("{dialect}: expected DISCONNECT, got {other:?}"),
            }
        }
    }
    wait_until("the broker exits after SIGTERM", || !broker.is_running()).await;

    // Connections were open when it stopped; the same port binds again at once.
    let again = BrokerProcess::try_start_on(&endpoint, &[]).expect("rebind the same port");
    assert_eq!(again.endpoint, endpoint);
}

#[test]
fn a_busy_port_is_a_one_line_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = broker_command()
        .args(["-b", &format!("tcp://127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("mdp-broker:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    assert!(errors[0].contains(&port.to_string()), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing claims to listen");
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        &["--heartbeat-interval", "soon"][..],
        &["--on-worker-death", "panic"],
        &["--log-max-size", "10X"],
        &["-b", "udp://127.0.0.1:1"],
    ] {
        let out = broker_command().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} must fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.trim().is_empty(), "{args:?}: an error is printed");
        assert!(out.stdout.is_empty(), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn log_file_is_written_and_rotated() {
    let dir = std::env::temp_dir().join(format!("mdp-broker-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let log = dir.join("logs/broker.log");
    let broker = BrokerProcess::start_with(&[
        "-vv",
        "--log-file",
        log.to_str().unwrap(),
        "--log-max-size",
        "4K",
        "--log-keep",
        "2",
    ]);
    // At -vv every message in and out is a line: plenty to rotate 4 KiB files.
    let mut peer = Socket::new(SocketType::Dealer);
    peer.connect(&broker.endpoint).unwrap();
    for i in 0..200 {
        let mut msg = zmtp::Message::from(["", "MDPC01", "mmi.service"]);
        msg.push_back(format!("service-{i}"));
        peer.send(msg).await.unwrap();
    }
    let rotated = dir.join("logs/broker.log.1");
    wait_until("the log rotates twice", || {
        rotated.exists() && dir.join("logs/broker.log.2").exists()
    })
    .await;
    assert!(
        !dir.join("logs/broker.log.3").exists(),
        "only --log-keep files"
    );
    // The broker may still be rotating (the lines of the last requests): between
    // its renames the file is briefly missing, so the read is tried again.
    let mut text = String::new();
    wait_until("the rotated log can be read", || {
        match std::fs::read_to_string(&rotated) {
            Ok(read) => text = read,
            Err(_) => return false,
        }
        true
    })
    .await;
    assert!(
        text.len() <= 4096,
        "rotated at the size: {} bytes",
        text.len()
    );
    assert!(
        text.contains("command=\"REQUEST\"") && text.contains("mmi.service"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "no terminal colours in a file");
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_shows_requests_events_and_stats_then_stops_cleanly() {
    let demo = broker_command()
        .args(["demo", "--seconds", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run mdp-broker demo");
    let out = common::output_within(demo, "mdp-broker demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "[1s]",
        "[2s]",
        "SERVICE",
        "echo",
        "square",
        "P99 MS",
        "HEARD",
        "event demo.tick",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in\n{stdout}");
    }
    let done = stdout
        .lines()
        .find(|l| l.starts_with("done: "))
        .expect("a done line");
    assert!(done.contains(" 0 wrong or lost"), "{done}");
}
