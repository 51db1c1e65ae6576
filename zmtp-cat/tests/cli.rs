//! Runs the built `zmtp-cat` binary against itself: echo servers and clients over
//! tcp and ipc, exit codes for -n, --timeout and errors, and binary frames.
//!
//! Every wait is bounded (generous, for slow CI machines) and nothing asserts on
//! timing; child processes are killed when a test ends, pass or fail.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bound on every wait in these tests.
const WAIT: Duration = Duration::from_secs(30);

/// A running zmtp-cat, killed on drop. Its stdout and stderr are collected by threads.
struct Cat {
    child: Child,
    stdout_lines: mpsc::Receiver<String>,
    stdout_seen: Vec<String>,
    stderr_lines: mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
}

/// Forwards the lines of `stream` to a channel from a thread.
fn lines_of(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Cat {
    fn start(args: &[&str]) -> Cat {
        let mut child = Command::new(env!("CARGO_BIN_EXE_zmtp-cat"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start zmtp-cat");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        Cat {
            child,
            stdout_lines: lines_of(stdout),
            stdout_seen: Vec::new(),
            stderr_lines: lines_of(stderr),
            stderr_seen: Vec::new(),
        }
    }

    /// Writes `input` to stdin and closes it.
    fn feed(&mut self, input: &str) -> &mut Cat {
        let mut stdin = self.child.stdin.take().expect("stdin still open");
        stdin.write_all(input.as_bytes()).expect("write stdin");
        self
    }

    /// Waits for the "bound EP" line on stderr and returns EP.
    fn bound_endpoint(&mut self) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .stderr_lines
                .recv_timeout(left)
                .expect("zmtp-cat reports its bound endpoint");
            self.stderr_seen.push(line.clone());
            if let Some(ep) = line.strip_prefix("zmtp-cat: bound ") {
                return ep.to_string();
            }
        }
    }

    /// Waits for a stderr line that starts with `prefix` and returns it.
    fn stderr_line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .stderr_lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("a stderr line {prefix:?}, got {:?}", self.stderr_seen));
            self.stderr_seen.push(line.clone());
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    /// Waits for the exit; returns status, whole stdout and whole stderr.
    fn finish(mut self) -> (ExitStatus, String, String) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "zmtp-cat did not exit in time");
            std::thread::sleep(Duration::from_millis(20));
        };
        // The process is gone, so both pipes reach their end.
        let mut stdout = std::mem::take(&mut self.stdout_seen);
        stdout.extend(self.stdout_lines.iter());
        let mut stderr = std::mem::take(&mut self.stderr_seen);
        stderr.extend(self.stderr_lines.iter());
        let stdout: String = stdout.iter().map(|line| format!("{line}\n")).collect();
        (status, stdout, stderr.join("\n"))
    }

    /// Waits until `n` lines have been printed on stdout in all.
    fn wait_for_output_lines(&mut self, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.stdout_seen.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .stdout_lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("{n} lines on stdout, got {:?}", self.stdout_seen));
            self.stdout_seen.push(line);
        }
    }
}

impl Drop for Cat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh ipc:// endpoint in the temp directory.
fn ipc_endpoint() -> (String, PathBuf) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "zmtp-cat-test-{}-{}.sock",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    (format!("ipc://{}", path.display()), path)
}

#[test]
fn rep_echo_server_and_req_client_over_tcp() {
    let mut server = Cat::start(&["rep", "--bind", "tcp://127.0.0.1:0", "--echo"]);
    let endpoint = server.bound_endpoint();
    assert!(endpoint.starts_with("tcp://127.0.0.1:"), "{endpoint}");
    assert!(
        !endpoint.ends_with(":0"),
        "the real port is reported: {endpoint}"
    );

    let mut client = Cat::start(&["req", "--connect", &endpoint, "--timeout", "20000"]);
    // A bad hex line is reported and skipped; the others go out in order, one
    // request at a time, and come back the same.
    client.feed("hello\nworld|2\n0x123\n0x00ff|tab\n|0x|\n");
    let (status, stdout, stderr) = client.finish();
    assert!(status.success(), "{status:?} {stderr}");
    assert_eq!(stdout, "hello\nworld|2\n0x00ff|tab\n||\n");
    assert!(
        stderr.contains("line 3") && stderr.contains("0x123"),
        "{stderr}"
    );

    // The server printed each request as it answered it.
    let _ = server.child.kill();
    let (_, server_out, _) = server.finish();
    assert_eq!(server_out, "hello\nworld|2\n0x00ff|tab\n||\n");
}

#[test]
fn router_echo_server_and_dealer_client_over_ipc() {
    let (endpoint, path) = ipc_endpoint();
    let mut server = Cat::start(&["router", "-b", &endpoint, "--echo", "-n", "3"]);
    server.bound_endpoint();

    let mut client = Cat::start(&[
        "dealer",
        "-c",
        &endpoint,
        "--identity",
        "client-1",
        "-n",
        "3",
        "--timeout",
        "20000",
    ]);
    client.feed("one\na|b|c\n0xdeadbeef\n");
    let (status, stdout, stderr) = client.finish();
    assert!(status.success(), "{status:?} {stderr}");
    // DEALER and ROUTER keep order between one pair of peers.
    assert_eq!(stdout, "one\na|b|c\n0xdeadbeef\n");

    // The ROUTER printed the routing id first, echoed, and exited after -n 3.
    let (status, server_out, stderr) = server.finish();
    assert!(status.success(), "{status:?} {stderr}");
    assert_eq!(
        server_out,
        "client-1|one\nclient-1|a|b|c\nclient-1|0xdeadbeef\n"
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn router_answers_a_generated_binary_id_from_stdin() {
    // The dealer has no identity, so the router makes up a 0x00… one; feeding the
    // printed line back routes to that peer.
    let (endpoint, path) = ipc_endpoint();
    let mut router = Cat::start(&["router", "-b", &endpoint, "-n", "1", "--echo"]);
    router.bound_endpoint();
    let mut dealer = Cat::start(&["dealer", "-c", &endpoint, "-n", "1"]);
    dealer.feed("0x0001|bin\n");
    let (status, out, err) = dealer.finish();
    assert!(status.success(), "{status:?} {err}");
    assert_eq!(out, "0x0001|bin\n");
    let (status, out, err) = router.finish();
    assert!(status.success(), "{status:?} {err}");
    let fields: Vec<&str> = out.trim_end().split('|').collect();
    assert_eq!(fields.len(), 3, "{out}");
    assert!(
        fields[0].starts_with("0x00"),
        "generated id printed as hex: {out}"
    );
    assert_eq!(&fields[1..], ["0x0001", "bin"]);
    let _ = std::fs::remove_file(path);
}

#[test]
fn rep_answers_from_stdin_and_exits_at_end_of_input() {
    let (endpoint, path) = ipc_endpoint();
    let mut server = Cat::start(&["rep", "-b", &endpoint]);
    server.bound_endpoint();
    server.feed("first answer\nsecond|answer\n");

    let mut client = Cat::start(&["req", "-c", &endpoint]);
    client.feed("q1\nq2\nq3\n");
    // Two answers arrive; the third request stays unanswered, so the client is
    // killed once it has printed both.
    let (status, server_out, stderr) = server.finish();
    assert!(status.success(), "{status:?} {stderr}");
    assert_eq!(server_out, "q1\nq2\nq3\n");
    client.wait_for_output_lines(2);
    let _ = client.child.kill();
    let (_, client_out, _) = client.finish();
    assert_eq!(client_out, "first answer\nsecond|answer\n");
    let _ = std::fs::remove_file(path);
}

#[test]
fn timeout_exits_1_and_count_exits_0() {
    // Nobody listens on this endpoint: nothing ever arrives.
    let (endpoint, _) = ipc_endpoint();
    let mut lonely = Cat::start(&["dealer", "-c", &endpoint, "--timeout", "300"]);
    lonely.feed("");
    let (status, stdout, stderr) = lonely.finish();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("timeout"), "{stderr}");

    // -n 2: exits 0 after the second message even though stdin stays open.
    let (endpoint, path) = ipc_endpoint();
    let mut server = Cat::start(&["dealer", "-b", &endpoint, "-n", "2"]);
    server.bound_endpoint();
    let mut client = Cat::start(&["dealer", "-c", &endpoint, "--timeout", "20000"]);
    client.feed("x\ny\nz\n");
    let (status, stdout, stderr) = server.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stdout, "x\ny\n");
    drop(client);
    let _ = std::fs::remove_file(path);
}

#[test]
fn sub_prints_only_its_topics_from_a_pub() {
    let mut sub = Cat::start(&[
        "sub",
        "--bind",
        "tcp://127.0.0.1:0",
        "--subscribe",
        "a",
        "--subscribe",
        "0x62",
        "-n",
        "4",
    ]);
    let endpoint = sub.bound_endpoint();
    let mut publisher = Cat::start(&["pub", "--connect", &endpoint]);
    // A publisher drops what nobody has subscribed to yet: publish until the
    // subscription has arrived and four messages got through.
    let mut stdin = publisher.child.stdin.take().expect("stdin");
    let deadline = Instant::now() + WAIT;
    while sub.child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "sub never got 4 messages");
        stdin
            .write_all(b"x|skipped\na|1\nb|2\n")
            .expect("write to pub");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stdin);
    let (status, stdout, stderr) = sub.finish();
    assert!(status.success(), "{status:?} {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(
        lines.iter().all(|l| *l == "a|1" || *l == "b|2"),
        "only the subscribed topics: {stdout}"
    );
}

#[test]
fn errors_exit_2_with_one_line() {
    for args in [
        &["stream", "-c", "tcp://127.0.0.1:1"][..],
        &["dealer"],
        &["dealer", "-c", "udp://x:1"],
        &["dealer", "-c", "tcp://127.0.0.1:1", "--separator", "x"],
        &["req", "-c", "tcp://127.0.0.1:1", "--echo"],
        &["pub", "-c", "tcp://127.0.0.1:1", "--subscribe", "a"],
        &["sub", "-c", "tcp://127.0.0.1:1", "--subscribe", "0xzz"],
    ] {
        let mut cat = Cat::start(args);
        cat.feed("");
        let (status, stdout, stderr) = cat.finish();
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stdout, "", "{args:?}");
        assert!(
            !stderr.is_empty() && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
        if args[0] != "stream" {
            // clap's own usage errors add a hint line; ours are exactly one line.
            assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        }
    }
}

#[test]
fn monitor_prints_one_line_per_socket_event() {
    let mut server = Cat::start(&[
        "router",
        "--bind",
        "tcp://127.0.0.1:0",
        "--echo",
        "--monitor",
    ]);
    let endpoint = server.bound_endpoint();
    // The listening event may come before or after the "bound" line.
    let listening = format!("# listening endpoint={endpoint}");
    if !server.stderr_seen.contains(&listening) {
        server.stderr_line(&listening);
    }

    let mut client = Cat::start(&[
        "dealer",
        "-c",
        &endpoint,
        "--identity",
        "client-1",
        "-n",
        "1",
        "--timeout",
        "20000",
        "--monitor",
    ]);
    client.feed("hello\n");
    let (status, stdout, stderr) = client.finish();
    assert!(status.success(), "{status:?} {stderr}");
    assert_eq!(stdout, "hello\n");
    for line in [
        format!("# connected endpoint={endpoint}"),
        format!("# handshake_ok peer={endpoint}"),
        "# closed".into(),
    ] {
        assert!(stderr.lines().any(|l| l == line), "{line:?} in {stderr}");
    }
    assert!(
        stderr.lines().all(|l| l.starts_with("# ")),
        "only event lines: {stderr}"
    );

    // The server saw the client come, named, and go.
    let accepted = server.stderr_line("# accepted ");
    let peer = accepted
        .strip_prefix(&format!("# accepted endpoint={endpoint} peer="))
        .unwrap_or_else(|| panic!("{accepted}"))
        .to_string();
    assert!(peer.starts_with("127.0.0.1:"), "{accepted}");
    let handshake = server.stderr_line("# handshake_ok ");
    assert_eq!(
        handshake,
        format!("# handshake_ok peer={peer} routing_id=client-1")
    );
    let gone = server.stderr_line("# disconnected ");
    assert!(
        gone.starts_with(&format!(
            "# disconnected peer={peer} routing_id=client-1 kind="
        )),
        "{gone}"
    );
}

#[test]
fn help_documents_the_tool() {
    let mut cat = Cat::start(&["--help"]);
    cat.feed("");
    let (status, stdout, _) = cat.finish();
    assert!(status.success());
    for needle in [
        "--bind",
        "--connect",
        "--echo",
        "--timeout",
        "0x",
        "EXAMPLES",
        "rep",
        "--monitor",
        "# handshake_ok",
    ] {
        assert!(stdout.contains(needle), "help lacks {needle}");
    }
}

#[test]
fn curve_server_and_client_with_certificates_from_zmtp_keygen() {
    let dir = std::env::temp_dir().join(format!("zmtp-cat-curve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["server", "client", "stranger"] {
        let out = Command::new(env!("CARGO_BIN_EXE_zmtp-keygen"))
            .arg(dir.join(name))
            .output()
            .expect("zmtp-keygen runs");
        assert!(out.status.success(), "{out:?}");
    }
    let path = |file: &str| dir.join(file).to_str().unwrap().to_owned();
    let mut server = Cat::start(&[
        "rep",
        "--bind",
        "tcp://127.0.0.1:0",
        "--echo",
        "--curve-keys",
        &path("server.key_secret"),
        "--curve-allow",
        &path("client.key"),
        "--monitor",
    ]);
    let endpoint = server.bound_endpoint();
    let mut client = Cat::start(&[
        "req",
        "--connect",
        &endpoint,
        "--timeout",
        "20000",
        "--curve-keys",
        &path("client.key_secret"),
        "--curve-server",
        &path("server.key"),
    ]);
    client.feed("over curve|0x00ff\n");
    let (status, stdout, stderr) = client.finish();
    assert!(status.success(), "{status:?} {stderr}");
    assert_eq!(stdout, "over curve|0x00ff\n");

    // A key the server does not list is refused; the server's monitor says why.
    let mut stranger = Cat::start(&[
        "req",
        "--connect",
        &endpoint,
        "--curve-keys",
        &path("stranger.key_secret"),
        "--curve-server",
        &path("server.key"),
        "--monitor",
    ]);
    stranger.feed("let me in\n");
    let refused = server.stderr_line("# handshake_failed");
    assert!(refused.contains("not in the allow-list"), "{refused}");
    let told = stranger.stderr_line("# handshake_failed");
    assert!(told.contains("400"), "{told}");
    std::fs::remove_dir_all(&dir).unwrap();
}
