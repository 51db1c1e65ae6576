//! Runs the built `zmtp-bench` binary in its in-process, fan-out and recv/send modes
//! (NULL and CURVE) and checks the RESULT lines. No timing assertions; every wait is
//! bounded.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// A child killed on drop, whose stdout lines arrive on a channel.
struct Kid {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Kid {
    fn spawn(args: &[&str]) -> Kid {
        let mut child = Command::new(env!("CARGO_BIN_EXE_zmtp-bench"))
            .args(args)
            .args(["--timeout", "60"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start zmtp-bench");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Kid { child, lines }
    }

    fn line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(e) => panic!("no {prefix:?} line: {e}"),
            }
        }
    }

    fn success(mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                assert!(status.success(), "zmtp-bench failed: {status}");
                return;
            }
            assert!(Instant::now() < deadline, "zmtp-bench did not exit");
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fields(line: &str) -> HashMap<String, String> {
    assert!(line.starts_with("RESULT impl=zmtp "), "{line}");
    line.split_whitespace()
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn expect(f: &HashMap<String, String>, key: &str, value: &str) {
    assert_eq!(
        f.get(key).map(String::as_str),
        Some(value),
        "{key} in {f:?}"
    );
}

fn expect_number(f: &HashMap<String, String>, key: &str) {
    let v = f.get(key).unwrap_or_else(|| panic!("no {key} in {f:?}"));
    let n: f64 = v
        .parse()
        .unwrap_or_else(|_| panic!("{key}={v} is not a number"));
    assert!(n.is_finite() && n >= 0.0, "{key}={v}");
}

#[test]
fn inproc_pushpull() {
    let kid = Kid::spawn(&["inproc", "pushpull", "16", "1000"]);
    let f = fields(&kid.line("RESULT "));
    kid.success();
    expect(&f, "mechanism", "null");
    expect(&f, "pattern", "inproc-pushpull");
    expect(&f, "size", "16");
    expect(&f, "count", "1000");
    for key in ["secs", "msgs_per_s", "MB_per_s"] {
        expect_number(&f, key);
    }
}

#[test]
fn fanout_inproc_loses_nothing() {
    let kid = Kid::spawn(&["fanout", "inproc://smoke-fan", "3", "16", "1000"]);
    let f = fields(&kid.line("RESULT "));
    kid.success();
    expect(&f, "pattern", "fanout");
    expect(&f, "subs", "3");
    expect(&f, "size", "16");
    expect(&f, "count", "1000");
    expect(&f, "lost", "0");
    for key in ["secs", "msgs_per_s", "deliveries_per_s"] {
        expect_number(&f, key);
    }
}

#[test]
fn recv_send_over_tcp() {
    let receiver = Kid::spawn(&["recv", "tcp://127.0.0.1:0", "pushpull", "64", "1000"]);
    let ready = receiver.line("READY ");
    let endpoint = ready["READY ".len()..].trim().to_string();
    assert!(
        endpoint.starts_with("tcp://127.0.0.1:") && !endpoint.ends_with(":0"),
        "{ready}"
    );
    let sender = Kid::spawn(&["send", &endpoint, "pushpull", "64", "1000"]);
    let f = fields(&receiver.line("RESULT "));
    sender.success();
    receiver.success();
    expect(&f, "mechanism", "null");
    expect(&f, "pattern", "pushpull");
    expect(&f, "size", "64");
    expect(&f, "count", "1000");
    for key in ["secs", "msgs_per_s", "MB_per_s"] {
        expect_number(&f, key);
    }
}

/// `--curve`: the receiver (binds) is the CURVE server, the sender the client, both
/// with the fixed keys; the RESULT line says so.
#[test]
fn recv_send_over_tcp_with_curve() {
    let receiver = Kid::spawn(&[
        "recv",
        "tcp://127.0.0.1:0",
        "dealerrouter",
        "100",
        "300",
        "--curve",
    ]);
    let ready = receiver.line("READY ");
    let endpoint = ready["READY ".len()..].trim().to_string();
    let sender = Kid::spawn(&["--curve", "send", &endpoint, "dealerrouter", "100", "300"]);
    let f = fields(&receiver.line("RESULT "));
    sender.success();
    receiver.success();
    expect(&f, "mechanism", "curve");
    expect(&f, "pattern", "dealerrouter");
    expect(&f, "size", "100");
    expect(&f, "count", "300");
    for key in ["secs", "msgs_per_s", "MB_per_s"] {
        expect_number(&f, key);
    }
}

/// No mechanism runs over inproc://, so `--curve` there is an error, not a NULL run
/// reported as CURVE.
#[test]
fn curve_refused_on_inproc() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zmtp-bench"))
        .args([
            "inproc",
            "pushpull",
            "16",
            "10",
            "--curve",
            "--timeout",
            "60",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start zmtp-bench");
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            assert!(!status.success(), "--curve with inproc must fail");
            return;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("zmtp-bench inproc --curve did not exit");
        }
        thread::sleep(Duration::from_millis(10));
    }
}
