//! The real `mdp-broker` binary under handshake attacks from one source address,
//! 127.0.0.2, while well-behaved peers on 127.0.0.1 carry on (issue #20's rows 5, 6,
//! 11 and 12):
//!
//! - row 5: ~1 100 connections that send 10 bytes of greeting and hold their
//!   handshake (reconnecting when closed); and the same with a replayed CURVE HELLO
//!   against a CURVE broker;
//! - row 6: 1 000 idle pyzmq DEALERs against `--max-connections 1000`;
//! - row 11: one captured CURVE HELLO replayed many times over raw TCP;
//! - row 12: PLAIN password guessing as fast as the broker answers.
//!
//! Each test prints a `FIGURES` line (run with `--nocapture`). With
//! `ATTACK_BROKER=/path/to/mdp-broker` the attacks run against that binary instead
//! (an older build, to measure the difference; its assertions are expected to
//! fail then). The tests take turns: each holds hundreds of connections.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{bounded, wait_for_service, wait_until, BrokerProcess, BROKER, WAIT};
use mdp::{CallOptions, Client, ClientOptions, Worker, WorkerOptions};
use mdp_torture::raw_zmtp::greeting;
use testkit::PyPeer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinSet;
use zmtp::{certificate, CurveKeyPair, Message};

/// Where every attacker connects from; the legitimate peers use 127.0.0.1.
const ATTACKER: &str = "127.0.0.2";

/// One attack at a time: each holds hundreds of connections on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A CURVE HELLO command frame: flags, length 200, body.
const HELLO_FRAME_LEN: usize = 2 + 200;

/// The broker under attack: ours, or `ATTACK_BROKER`'s.
fn start_broker(extra: &[&str]) -> BrokerProcess {
    let binary =
        std::env::var_os("ATTACK_BROKER").map_or_else(|| PathBuf::from(BROKER), PathBuf::from);
    BrokerProcess::launch(&binary, "tcp://127.0.0.1:0", extra).unwrap_or_else(|e| panic!("{e}"))
}

fn address(broker: &BrokerProcess) -> SocketAddr {
    broker
        .endpoint
        .trim_start_matches("tcp://")
        .parse()
        .expect("a tcp endpoint")
}

/// A TCP connection to `target` from `source` (a loopback address).
async fn connect_from(source: &str, target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    let from: std::net::IpAddr = source.parse().expect("an IPv4 address");
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(target).await
}

/// Reads until the peer closes (or `limit` passes); returns what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut seen = Vec::new();
    let reading = async {
        let mut buf = [0u8; 1024];
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            seen.extend_from_slice(&buf[..n]);
        }
    };
    let _ = tokio::time::timeout(limit, reading).await;
    seen
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// An ERROR command with this ZAP status (`\x05ERROR` + length + status).
fn error_status(status: &[u8; 3]) -> Vec<u8> {
    let mut body = b"\x05ERROR\x03".to_vec();
    body.extend_from_slice(status);
    body
}

/// The broker's CPU time so far (user + system), from `/proc/PID/stat` (in clock
/// ticks of 10 ms, Linux's USER_HZ).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the line are the 12th and 13th after the name.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// TCP connections from `source` to the broker in state ESTABLISHED, seen from
/// the broker's side (`/proc/net/tcp`): accepted by the kernel, whether the
/// broker has taken them yet or not.
fn established_from(broker: &BrokerProcess, source: &str) -> usize {
    let port = address(broker).port();
    let local = format!("0100007F:{port:04X}");
    let octets: Vec<u8> = source.split('.').filter_map(|o| o.parse().ok()).collect();
    let remote: String = octets.iter().rev().map(|o| format!("{o:02X}")).collect();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            cols.get(1) == Some(&local.as_str())
                && cols.get(2).is_some_and(|r| r.starts_with(&remote))
                && cols.get(3) == Some(&"01")
        })
        .count()
}

/// What the connection holders saw.
#[derive(Default, Debug)]
struct Holders {
    /// Connections opened.
    opened: AtomicU64,
    /// Of those, closed by the broker before it sent anything.
    refused_at_once: AtomicU64,
    /// Of those, greeted by the broker (it took them into their handshake).
    greeted: AtomicU64,
    /// Open right now.
    open: AtomicU64,
    /// The most open at once.
    most_open: AtomicU64,
}

impl Holders {
    /// Connections the broker has dealt with: taken into a handshake, or closed.
    fn answered(&self) -> u64 {
        self.greeted.load(Ordering::Relaxed) + self.refused_at_once.load(Ordering::Relaxed)
    }
}

/// `n` tasks, each keeping a connection from [`ATTACKER`] that sends `first` and
/// then nothing, until the broker closes it; then, after a pause, another. Stops
/// (every task aborted) when the returned set is dropped.
fn hold_connections(
    target: SocketAddr,
    n: usize,
    first: Vec<u8>,
    stats: Arc<Holders>,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    let first = Arc::new(first);
    for _ in 0..n {
        let (first, stats) = (first.clone(), stats.clone());
        set.spawn(async move {
            loop {
                if let Ok(mut stream) = connect_from(ATTACKER, target).await {
                    stats.opened.fetch_add(1, Ordering::Relaxed);
                    let open = stats.open.fetch_add(1, Ordering::Relaxed) + 1;
                    stats.most_open.fetch_max(open, Ordering::Relaxed);
                    let _ = stream.write_all(&first).await;
                    let mut byte = [0u8; 1];
                    match stream.read(&mut byte).await {
                        Ok(1..) => {
                            stats.greeted.fetch_add(1, Ordering::Relaxed);
                            read_until_closed(&mut stream, Duration::from_secs(3600)).await;
                        }
                        _ => {
                            stats.refused_at_once.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    stats.open.fetch_sub(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
    set
}

/// `n` fresh clients from 127.0.0.1, at once, one request each (one attempt):
/// how long each took to be served, or why it was not.
async fn fresh_clients(
    endpoint: &str,
    options: &ClientOptions,
    n: usize,
) -> Vec<Result<Duration, String>> {
    let mut set = JoinSet::new();
    for i in 0..n {
        let (endpoint, options) = (endpoint.to_owned(), options.clone());
        set.spawn(async move {
            let start = Instant::now();
            let client = Client::connect_with(&endpoint, options).map_err(|e| e.to_string())?;
            let body = format!("fresh {i}");
            let limits = CallOptions {
                timeout: Duration::from_secs(30),
                attempts: 1,
            };
            let reply = client
                .request_with("echo", body.clone(), limits)
                .await
                .map_err(|e| format!("fresh client {i}: {e}"))?;
            if reply != Message::from(body) {
                return Err(format!("fresh client {i} got {reply:?}"));
            }
            Ok(start.elapsed())
        });
    }
    let mut out = Vec::new();
    while let Some(done) = set.join_next().await {
        out.push(done.unwrap_or_else(|e| Err(e.to_string())));
    }
    out
}

/// With `SHOW_BROKER_LOG` set, prints the broker's log (the tail it keeps).
fn show_log(broker: &BrokerProcess) {
    if std::env::var_os("SHOW_BROKER_LOG").is_some() {
        println!("--- broker log ---\n{}--- end ---", broker.stderr());
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// "9/10 served, median 12 ms, worst 40 ms".
fn describe(results: &[Result<Duration, String>]) -> String {
    let times: Vec<Duration> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    let worst = times.iter().max().copied().unwrap_or_default();
    format!(
        "{}/{} served, median {:?}, worst {:?}",
        times.len(),
        results.len(),
        median(times),
        worst
    )
}

/// The broker's log has a line about refusals for `why` that names the attacker,
/// and none that names a legitimate peer as refused.
fn assert_attacker_alone_refused(broker: &BrokerProcess, why: &str) {
    let log = broker.stderr();
    assert!(
        log.lines().any(|l| l.contains(why) && l.contains(ATTACKER)),
        "no line about {why:?} names {ATTACKER}:\n{log}"
    );
    assert_eq!(refusals_of_legitimate_peers(broker), Vec::<String>::new());
}

/// Log lines of the broker that name 127.0.0.1 as refused (a legitimate peer
/// turned away); the broker's own endpoint, `tcp://127.0.0.1:PORT`, does not count.
fn refusals_of_legitimate_peers(broker: &BrokerProcess) -> Vec<String> {
    broker
        .stderr()
        .lines()
        .filter(|l| l.contains("refused") && l.replace("tcp://127.0.0.1", "").contains("127.0.0.1"))
        .map(str::to_owned)
        .collect()
}

fn echo_worker(endpoint: &str, options: WorkerOptions) {
    let worker = Worker::new(endpoint, "echo").options(options);
    tokio::spawn(worker.run(|request| async move { Ok(request) }));
}

/// Key pairs for a CURVE broker and its peers, in a fresh directory removed on drop.
struct Keys {
    dir: PathBuf,
    broker: CurveKeyPair,
    worker: CurveKeyPair,
    client: CurveKeyPair,
}

impl Keys {
    fn new(tag: &str) -> Keys {
        let dir = std::env::temp_dir().join(format!("attack-keys-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("allowed")).unwrap();
        let make = |name: &str, allow: bool| {
            let pair = CurveKeyPair::generate();
            let (public, _) = certificate::write_pair(&pair, &dir.join(name)).unwrap();
            if allow {
                std::fs::copy(&public, dir.join("allowed").join(format!("{name}.key"))).unwrap();
            }
            pair
        };
        let broker = make("broker", false);
        let worker = make("worker", true);
        let client = make("client", true);
        Keys {
            dir,
            broker,
            worker,
            client,
        }
    }

    /// The broker's flags.
    fn broker_args(&self) -> Vec<String> {
        vec![
            "--curve-secret-key".into(),
            self.dir.join("broker.key_secret").display().to_string(),
            "--allow-keys".into(),
            self.dir.join("allowed").display().to_string(),
        ]
    }

    fn client(&self) -> ClientOptions {
        ClientOptions::default().curve(self.client.clone(), self.broker.public)
    }

    fn worker(&self) -> WorkerOptions {
        WorkerOptions::default().curve(self.worker.clone(), self.broker.public)
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A broker with `extra` flags and our echo worker registered, and a client that
/// has seen it.
async fn broker_with_echo(extra: &[&str]) -> (BrokerProcess, Client) {
    let broker = start_broker(extra);
    echo_worker(&broker.endpoint, WorkerOptions::default());
    let client = Client::connect(&broker.endpoint).unwrap();
    wait_for_service(&client, "echo").await;
    (broker, client)
}

/// A CURVE broker with the keys' allow-list, our CURVE echo worker registered, and
/// a CURVE client that has seen it.
async fn curve_broker_with_echo(keys: &Keys) -> (BrokerProcess, Client) {
    let args = keys.broker_args();
    let broker = start_broker(&args.iter().map(String::as_str).collect::<Vec<_>>());
    echo_worker(&broker.endpoint, keys.worker());
    let client = Client::connect_with(&broker.endpoint, keys.client()).unwrap();
    wait_for_service(&client, "echo").await;
    (broker, client)
}

/// Runs a real CURVE client (ours, from 127.0.0.1) through a relay that records
/// what it sends; once it has been served, returns its greeting and HELLO, as an
/// eavesdropper would have captured them.
async fn capture_curve_hello(broker: &BrokerProcess, keys: &Keys) -> Vec<u8> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay = format!("tcp://{}", listener.local_addr().unwrap());
    let target = address(broker);
    let captured = Arc::new(Mutex::new(Vec::new()));
    let recorder = captured.clone();
    let task = tokio::spawn(async move {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let Ok(server) = TcpStream::connect(target).await else {
            return;
        };
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        let up = async {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = client_read.read(&mut buf).await {
                {
                    let mut seen = recorder.lock().unwrap();
                    let room = (64 + HELLO_FRAME_LEN).saturating_sub(seen.len());
                    seen.extend_from_slice(&buf[..n.min(room)]);
                }
                if server_write.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        };
        let down = tokio::io::copy(&mut server_read, &mut client_write);
        let _ = tokio::join!(up, down);
    });
    let client = Client::connect_with(&relay, keys.client()).unwrap();
    let reply = bounded(
        "the recorded CURVE client's request",
        client.request("echo", "record me"),
    )
    .await;
    assert_eq!(reply.unwrap(), Message::from("record me"));
    drop(client);
    task.abort();
    let captured = captured.lock().unwrap().clone();
    assert_eq!(
        captured.len(),
        64 + HELLO_FRAME_LEN,
        "a greeting and a HELLO"
    );
    assert_eq!(
        &captured[64..64 + 8],
        b"\x04\xc8\x05HELLO",
        "the HELLO frame"
    );
    captured
}

/// Row 5: ~1 100 connections from one address that send 10 bytes of greeting and
/// never finish (reconnecting whenever they are closed) hold at most their
/// address's share of the handshake slots: fresh clients from 127.0.0.1 (ours and
/// majortomo) are each served, and none of their connections is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_greetings_from_one_address_leave_room_for_others() {
    let _serial = SERIAL.lock().await;
    let (broker, _probe) = broker_with_echo(&[]).await;

    let stats = Arc::new(Holders::default());
    let attackers = 1_100;
    let held = hold_connections(
        address(&broker),
        attackers,
        greeting(3, b"NULL")[..10].to_vec(),
        stats.clone(),
    );
    wait_until(
        "the broker has taken or closed every slow connection",
        || stats.answered() >= attackers as u64,
    )
    .await;
    let start = Instant::now();
    let results = fresh_clients(&broker.endpoint, &ClientOptions::default(), 10).await;
    let mut majortomo = PyPeer::spawn_script(
        common::mdp_peer_script(),
        [broker.endpoint.as_str(), "majortomo-client", "echo"],
    );
    majortomo.expect("READY").await;
    majortomo.send_line("python too");
    let python = majortomo.line().await;
    println!(
        "FIGURES row 5 (NULL, {attackers} slow greetings from {ATTACKER}): fresh clients {}; \
         majortomo: {python}; attacker connections held at most {} at once, {} opened, \
         {} closed at once; in {:?}",
        describe(&results),
        stats.most_open.load(Ordering::Relaxed),
        stats.opened.load(Ordering::Relaxed),
        stats.refused_at_once.load(Ordering::Relaxed),
        start.elapsed(),
    );
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(python, "REPLY python too");
    // The attacker met its address's cap; the legitimate peers met none.
    assert!(
        stats.refused_at_once.load(Ordering::Relaxed) > 0,
        "{stats:?}"
    );
    assert_attacker_alone_refused(&broker, "per-address handshake cap");
    drop(held);
}

/// Row 5 against a CURVE broker: the slow connections send a greeting and a
/// replayed HELLO and then nothing. The replays are refused at once, so they hold
/// nothing, and fresh CURVE clients from 127.0.0.1 are each served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_hellos_held_open_leave_room_for_others() {
    let _serial = SERIAL.lock().await;
    let keys = Keys::new("row5");
    let (broker, _probe) = curve_broker_with_echo(&keys).await;
    let hello = capture_curve_hello(&broker, &keys).await;

    let stats = Arc::new(Holders::default());
    let attackers = 1_100;
    let held = hold_connections(address(&broker), attackers, hello, stats.clone());
    wait_until(
        "the broker has answered or closed every replaying connection",
        || stats.answered() >= attackers as u64,
    )
    .await;
    let results = fresh_clients(&broker.endpoint, &keys.client(), 10).await;
    println!(
        "FIGURES row 5 (CURVE, {attackers} replayed HELLOs held from {ATTACKER}): fresh clients {}; \
         attacker connections open at most {} at once, {} opened",
        describe(&results),
        stats.most_open.load(Ordering::Relaxed),
        stats.opened.load(Ordering::Relaxed),
    );
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_attacker_alone_refused(&broker, "replayed");
    drop(held);
}

/// Row 6: 1 000 idle pyzmq DEALERs from one address against `--max-connections
/// 1000` get their address's share; 10 fresh clients from 127.0.0.1 are all
/// served, and none of their connections is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_dealers_from_one_address_leave_room_for_others() {
    let _serial = SERIAL.lock().await;
    let (broker, _probe) = broker_with_echo(&["--max-connections", "1000"]).await;

    let port = address(&broker).port();
    let code = r#"
import sys, zmq
endpoint, n = sys.argv[1], int(sys.argv[2])
ctx = zmq.Context()
ctx.set(zmq.MAX_SOCKETS, n + 64)
sockets = []
for _ in range(n):
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    sockets.append(s)
print("READY", flush=True)
sys.stdin.readline()
"#;
    // pyzmq's source-address syntax: connect from 127.0.0.2.
    let endpoint = format!("tcp://{ATTACKER}:0;127.0.0.1:{port}");
    let mut dealers = PyPeer::spawn_code(code, [endpoint.as_str(), "1000"]);
    dealers.expect("READY").await;
    wait_until("100 DEALERs from 127.0.0.2 are connected", || {
        established_from(&broker, ATTACKER) >= 100
    })
    .await;
    // libzmq connects in the background: give all 1 000 time to land (and the
    // refused ones to come back, every 100 ms, as libzmq reconnects).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = established_from(&broker, ATTACKER);
    let results = fresh_clients(&broker.endpoint, &ClientOptions::default(), 10).await;
    println!(
        "FIGURES row 6 (1 000 idle pyzmq DEALERs from {ATTACKER}, --max-connections 1000): \
         fresh clients {}; attacker connections established {held}",
        describe(&results),
    );
    show_log(&broker);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_attacker_alone_refused(&broker, "per-address connection cap");
    drop(dealers);
}

/// Row 11: one captured CURVE HELLO replayed 5 000 times over raw TCP from one
/// address: every replay is refused (ERROR 300 and the connection closed, never a
/// WELCOME) before any public-key work, and a CURVE client and worker on
/// 127.0.0.1 are served throughout, on their first attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_curve_hellos_are_refused_before_any_public_key_work() {
    let _serial = SERIAL.lock().await;
    let keys = Keys::new("row11");
    let (broker, side) = curve_broker_with_echo(&keys).await;
    let hello = Arc::new(capture_curve_hello(&broker, &keys).await);

    let replays = 5_000u64;
    let welcomed = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let target = address(&broker);
    let cpu_before = cpu_time(broker.pid());
    let lines_before = broker.stderr_lines();
    let start = Instant::now();
    let mut replayers = JoinSet::new();
    for _ in 0..16 {
        let (hello, welcomed, refused, next) = (
            hello.clone(),
            welcomed.clone(),
            refused.clone(),
            next.clone(),
        );
        replayers.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < replays {
                let Ok(mut stream) = connect_from(ATTACKER, target).await else {
                    continue;
                };
                let _ = stream.write_all(&hello).await;
                // The broker's greeting, then a WELCOME (64 + 170 bytes), or ERROR and
                // the end of the connection.
                let mut answer = Vec::new();
                let mut buf = [0u8; 512];
                let reading = async {
                    while answer.len() < 64 + 170 {
                        match stream.read(&mut buf).await {
                            Ok(n @ 1..) => answer.extend_from_slice(&buf[..n]),
                            _ => break,
                        }
                    }
                };
                let _ = tokio::time::timeout(WAIT, reading).await;
                if contains(&answer, b"\x07WELCOME") {
                    welcomed.fetch_add(1, Ordering::Relaxed);
                } else if contains(&answer, &error_status(b"300")) {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    // The side pair, meanwhile: one attempt per request.
    let mut side_times = Vec::new();
    while !replayers.is_empty() {
        let body = format!("side {}", side_times.len());
        let asked = Instant::now();
        let limits = CallOptions {
            timeout: Duration::from_secs(30),
            attempts: 1,
        };
        let reply = side.request_with("echo", body.clone(), limits).await;
        assert_eq!(
            reply.unwrap(),
            Message::from(body),
            "the side client during the replays"
        );
        side_times.push(asked.elapsed());
        while replayers.try_join_next().is_some() {}
    }
    let elapsed = start.elapsed();
    let cpu = cpu_time(broker.pid()).saturating_sub(cpu_before);
    let lines = broker.stderr_lines() - lines_before;
    let (welcomed, refused) = (
        welcomed.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    println!(
        "FIGURES row 11 ({replays} replays of one CURVE HELLO from {ATTACKER}): {welcomed} \
         welcomed, {refused} refused with ERROR 300; broker CPU {cpu:?} in all, {:?} per \
         replay; side pair {} requests, p50 {:?}; {lines} log lines in {elapsed:?}",
        cpu / u32::try_from(replays).unwrap_or(1),
        side_times.len(),
        median(side_times.clone()),
    );
    show_log(&broker);
    assert_eq!(welcomed, 0, "a replayed HELLO was answered with WELCOME");
    assert_eq!(refused, replays, "every replay refused with ERROR 300");
    assert!(!side_times.is_empty());
    // One line a second, at most, for the replays (and one for anything else).
    let bound = 2 * (elapsed.as_secs() + 2);
    assert!(
        lines <= bound,
        "{lines} log lines over {elapsed:?}:\n{}",
        broker.stderr()
    );
    // A fresh CURVE client still gets in.
    let reply = bounded("a fresh CURVE client", async {
        Client::connect_with(&broker.endpoint, keys.client())
            .unwrap()
            .request("echo", "after")
            .await
    })
    .await;
    assert_eq!(reply.unwrap(), Message::from("after"));
}

/// A PLAIN login as raw bytes: greeting, HELLO with the credentials, INITIATE
/// announcing a DEALER.
fn plain_login(user: &[u8], password: &[u8]) -> Vec<u8> {
    let mut bytes = greeting(3, b"PLAIN");
    let mut hello = b"\x05HELLO".to_vec();
    for field in [user, password] {
        hello.push(u8::try_from(field.len()).unwrap());
        hello.extend_from_slice(field);
    }
    let mut initiate = b"\x08INITIATE\x0bSocket-Type".to_vec();
    initiate.extend_from_slice(&6u32.to_be_bytes());
    initiate.extend_from_slice(b"DEALER");
    for body in [hello, initiate] {
        bytes.extend_from_slice(&[0x04, u8::try_from(body.len()).unwrap()]);
        bytes.extend_from_slice(&body);
    }
    bytes
}

/// Row 12: PLAIN password guessing from one address, as fast as the broker answers,
/// for a few seconds. The guesses the broker checks are bounded by the back-off
/// (5 free failures, then blocks of 1 s, 2 s, 4 s...), its log says it in a bounded
/// number of lines, and a PLAIN client on 127.0.0.1 still logs in and is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_password_guessing_is_throttled() {
    let _serial = SERIAL.lock().await;
    let dir = std::env::temp_dir().join(format!("attack-plain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let users = dir.join("users");
    std::fs::write(&users, "service=s3cret\n").unwrap();
    let broker = start_broker(&["--plain-users", users.to_str().unwrap()]);
    let plain =
        |password: &str| zmtp::proto::MechanismConfig::plain_client("service", password.to_owned());
    let worker_options = WorkerOptions::default().mechanism(plain("s3cret"));
    echo_worker(&broker.endpoint, worker_options);
    let client_options = ClientOptions::default().mechanism(plain("s3cret"));
    let probe = Client::connect_with(&broker.endpoint, client_options.clone()).unwrap();
    wait_for_service(&probe, "echo").await;

    let window = Duration::from_secs(6);
    let answered = Arc::new(AtomicU64::new(0));
    let throttled = Arc::new(AtomicU64::new(0));
    let attempts = Arc::new(AtomicU64::new(0));
    let target = address(&broker);
    let lines_before = broker.stderr_lines();
    let start = Instant::now();
    let mut guessers = JoinSet::new();
    for g in 0..8 {
        let (answered, throttled, attempts) =
            (answered.clone(), throttled.clone(), attempts.clone());
        guessers.spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < window {
                n += 1;
                let Ok(mut stream) = connect_from(ATTACKER, target).await else {
                    continue;
                };
                attempts.fetch_add(1, Ordering::Relaxed);
                let guess = format!("guess-{g}-{n}");
                let _ = stream
                    .write_all(&plain_login(b"service", guess.as_bytes()))
                    .await;
                let answer = read_until_closed(&mut stream, WAIT).await;
                if contains(&answer, &error_status(b"400")) {
                    answered.fetch_add(1, Ordering::Relaxed);
                } else {
                    assert!(
                        !contains(&answer, b"\x05READY"),
                        "a wrong password was let in"
                    );
                    throttled.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    // Meanwhile a legitimate PLAIN client on 127.0.0.1 logs in and is served.
    tokio::time::sleep(window / 2).await;
    let fresh = fresh_clients(&broker.endpoint, &client_options, 1).await;
    while let Some(done) = guessers.join_next().await {
        done.unwrap();
    }
    let elapsed = start.elapsed();
    // Let the last aggregated lines out (they come at most a second late).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let lines = broker.stderr_lines() - lines_before;
    let answered = answered.load(Ordering::Relaxed);
    let secs = elapsed.as_secs_f64();
    println!(
        "FIGURES row 12 (PLAIN guessing from {ATTACKER}, 8 guessers): {} attempts, {answered} \
         guesses checked ({:.1}/s), {} refused unchecked; {lines} log lines in {elapsed:?} \
         ({:.0} per 10 s); legitimate client {}",
        attempts.load(Ordering::Relaxed),
        answered as f64 / secs,
        throttled.load(Ordering::Relaxed),
        lines as f64 * 10.0 / (secs + 1.5),
        describe(&fresh),
    );
    show_log(&broker);
    assert!(fresh[0].is_ok(), "{fresh:?}");
    // 5 free failures, then one per block: blocks start at 0 s, 1 s, 3 s, 7 s...
    // so within `secs` seconds at most 5 + 1 + log2(secs + 1) + 1 guesses.
    let bound = 5 + 2 + (secs + 1.0).log2().ceil() as u64;
    assert!(
        answered <= bound,
        "{answered} guesses checked in {elapsed:?}, bound {bound}"
    );
    assert!(throttled.load(Ordering::Relaxed) > 0);
    // At most one line a second per kind of refusal (three kinds here), plus slack.
    let line_bound = 3 * (elapsed.as_secs() + 3);
    assert!(
        lines <= line_bound,
        "{lines} log lines:\n{}",
        broker.stderr()
    );
    let log = broker.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains("PLAIN logins") && l.contains(ATTACKER)),
        "{log}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
