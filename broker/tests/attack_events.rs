//! Attacks on the event bus of the real `mdp-broker` (`--pubsub IN OUT`, default
//! bounds) with pyzmq peers, while an MDP client keeps calling an echo service on the
//! broker's request side:
//!
//! - a pyzmq subscriber that never reads (frozen with SIGSTOP) while 1 MiB events are
//!   published: the broker holds at most its queue limit for it (8 MiB by default,
//!   where the message HWM alone let it hold 1 000 events, about 1 GiB), a reading
//!   subscriber still gets every event, and the frozen one misses what came past
//!   its limit, as with any ZeroMQ PUB;
//! - a pyzmq subscriber that subscribes to 16 000 topics of distinct lengths: the
//!   broker keeps what its caps allow (10 000 topics / 1 MiB per subscriber), logs
//!   the rest as ignored at most once a second, and events still reach a
//!   legitimate subscriber.
//!
//! Nothing asserts on timing; every wait is bounded. Each test prints what it
//! measured (broker RSS, broker CPU per event, echo round trips) for the record.
//! `ATTACK_BROKER=/path/to/mdp-broker` runs the same scenarios against
//! another build (to measure one from before a change; its bounds may fail), and
//! `ATTACK_BROKER_ARGS="--flag value ..."` adds arguments to the broker's.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{bounded, wait_for_service, wait_until, BrokerProcess, BROKER, WAIT};
use mdp::{Client, ClientOptions, Worker};
use mdp_torture::broker_process::memory_kib;
use testkit::interop::ZmqPeer;
use testkit::PyPeer;
use zmtp::{Message, Socket, SocketType};

const MIB: u64 = 1 << 20;

/// The broker with its event bus on fresh ports: (broker, IN, OUT).
fn broker_with_bus() -> (BrokerProcess, String, String) {
    let binary =
        std::env::var_os("ATTACK_BROKER").map_or_else(|| PathBuf::from(BROKER), PathBuf::from);
    let extra = std::env::var("ATTACK_BROKER_ARGS").unwrap_or_default();
    let mut args = vec!["--pubsub", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"];
    args.extend(extra.split_whitespace());
    let broker = BrokerProcess::launch(&binary, "tcp://127.0.0.1:0", &args)
        .unwrap_or_else(|e| panic!("{e}"));
    let events_in = broker.line_after("events in on ").expect("the IN endpoint");
    let events_out = broker
        .line_after("events out on ")
        .expect("the OUT endpoint");
    (broker, events_in, events_out)
}

fn bus_peer_script() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/bus_peer.py")
}

/// The broker's resident memory now, in bytes.
fn rss(broker: &BrokerProcess) -> u64 {
    memory_kib(broker.pid(), "VmRSS").expect("the broker runs") * 1024
}

/// The broker's CPU time so far (user + system, from /proc).
fn cpu(broker: &BrokerProcess) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", broker.pid())).expect("stat");
    // Fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a stat line")
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 1000 / clock_ticks_per_second())
}

/// The broker's time on a CPU so far, to the nanosecond: the sum over its threads of
/// `/proc/PID/task/TID/schedstat` (`cpu` counts in clock ticks, 10 ms here).
fn cpu_ns(broker: &BrokerProcess) -> Duration {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", broker.pid())).expect("tasks");
    let nanos: u64 = tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

fn clock_ticks_per_second() -> u64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK")
}

/// An echo service behind the broker and a client of it: the request side that must
/// stay served whatever happens on the bus.
struct Echo {
    client: Client,
    slowest: Duration,
    calls: u32,
}

impl Echo {
    async fn start(endpoint: &str) -> Echo {
        tokio::spawn(Worker::new(endpoint, "echo").run(|request| async move { Ok(request) }));
        let options = ClientOptions::default().timeout(WAIT).attempts(1);
        let client = Client::connect_with(endpoint, options).expect("a client");
        wait_for_service(&client, "echo").await;
        Echo {
            client,
            slowest: Duration::ZERO,
            calls: 0,
        }
    }

    /// One request, answered within the wait with its own body.
    async fn check(&mut self) {
        let body = format!("call {}", self.calls);
        let start = Instant::now();
        let reply = bounded("an echo reply", self.client.request("echo", body.clone()))
            .await
            .expect("the echo service answers");
        assert_eq!(reply, Message::from(body));
        self.slowest = self.slowest.max(start.elapsed());
        self.calls += 1;
    }
}

/// A subscriber that reads everything on a task of its own and notes the number of
/// each event (see `bus_peer.py`).
struct Reader {
    seen: Arc<Mutex<Vec<u64>>>,
}

impl Reader {
    async fn start(endpoint: &str, topic: &'static str) -> Reader {
        let mut socket = Socket::new(SocketType::Sub);
        socket.subscribe(topic).unwrap();
        socket.connect(endpoint).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let notes = seen.clone();
        tokio::spawn(async move {
            while let Ok(event) = socket.recv().await {
                if let Some(n) = event_number(&event, topic) {
                    notes.lock().unwrap().push(n);
                }
            }
        });
        Reader { seen }
    }

    fn latest(&self) -> Option<u64> {
        self.seen.lock().unwrap().iter().copied().max()
    }

    /// Waits until event `n` (or a later one) has arrived.
    async fn wait_for(&self, n: u64) {
        wait_until(&format!("event {n} to reach the reader"), || {
            self.latest().is_some_and(|latest| latest >= n)
        })
        .await;
    }

    /// The events from `first` to `last` that did not arrive.
    fn missing(&self, first: u64, last: u64) -> Vec<u64> {
        let seen = self.seen.lock().unwrap();
        let got: std::collections::HashSet<u64> = seen.iter().copied().collect();
        (first..=last).filter(|n| !got.contains(n)).collect()
    }
}

/// The number of an event: the second frame of a multipart event, or what follows
/// the topic in a one-frame event (`TOPICn.xxx`).
fn event_number(event: &Message, topic: &str) -> Option<u64> {
    let digits = match event.frames() {
        [_, number, ..] => &number[..],
        [only] => only.strip_prefix(topic.as_bytes())?,
        [] => return None,
    };
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// A pyzmq publisher (`bus_peer.py pub`).
struct Publisher {
    peer: PyPeer,
    next: u64,
}

impl Publisher {
    async fn connect(endpoint: &str) -> Publisher {
        let mut peer = PyPeer::spawn_script(bus_peer_script(), ["pub", endpoint]);
        peer.expect("READY").await;
        Publisher { peer, next: 0 }
    }

    /// Sends `count` events of `size` bytes on `topic` (ending in `*`: one frame);
    /// returns the number of the last.
    async fn publish(&mut self, count: u64, size: u64, topic: &str) -> u64 {
        let first = self.next;
        self.peer
            .send_line(format!("publish {first} {count} {size} {topic}"));
        self.peer.expect("SENT").await;
        self.next += count;
        self.next - 1
    }

    /// Publishes small events until `reader` gets one: the subscription has reached
    /// the publisher through the bus.
    async fn until_read(&mut self, reader: &Reader, topic: &str) -> u64 {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "no event reached the reader");
            let last = self.publish(1, 64, topic).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            if reader.latest().is_some_and(|latest| latest >= last) {
                return last;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_costs_a_bounded_queue() {
    let (broker, events_in, events_out) = broker_with_bus();
    let mut echo = Echo::start(&broker.endpoint).await;
    echo.check().await;

    // The subscriber that will stop reading, and one that reads everything.
    let mut frozen: ZmqPeer = ZmqPeer::connect("SUB", &events_out).await;
    frozen.set_subscription(true, b"big").await;
    let reader = Reader::start(&events_out, "big").await;
    let mut publisher = Publisher::connect(&events_in).await;
    publisher.until_read(&reader, "big").await;
    bounded("the frozen subscriber's subscription", async {
        loop {
            publisher.publish(1, 64, "big").await;
            if frozen
                .recv_within(Duration::from_millis(50))
                .await
                .is_some()
            {
                break;
            }
        }
    })
    .await;
    frozen.pause();
    let first = publisher.publish(1, 64, "big").await;
    reader.wait_for(first).await;
    let idle = rss(&broker);

    // 1 200 events of 1 MiB, four at a time (so the reader, which keeps up, never
    // passes its own limit): more than the 1 000 the message HWM alone would have
    // queued for the frozen subscriber.
    let events = 1200;
    let mut peak = idle;
    let mut last = first;
    while last < first + events {
        // An echo call goes with each round, answered while the events flow.
        let round = async {
            last = publisher.publish(4, MIB, "big").await;
            reader.wait_for(last).await;
        };
        tokio::join!(round, echo.check());
        peak = peak.max(rss(&broker));
    }
    echo.check().await;
    let high_water = memory_kib(broker.pid(), "VmHWM").expect("the broker runs") * 1024;
    let bus_thread = std::fs::read_dir(format!("/proc/{}/task", broker.pid()))
        .expect("the broker's threads")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .any(|name| name.trim() == "event-bus");
    eprintln!(
        "broker RSS with a frozen subscriber, {events} events of 1 MiB: idle {} MiB, \
         peak sampled {} MiB, VmHWM {} MiB; slowest echo {:?} over {} calls; \
         forwarder on its own thread: {bus_thread}",
        idle / MIB,
        peak / MIB,
        high_water / MIB,
        echo.slowest,
        echo.calls,
    );

    // The reader lost nothing; the broker's growth stayed within the bound.
    let missing = reader.missing(first, last);
    assert!(
        missing.is_empty(),
        "the reading subscriber missed events {missing:?}; the broker said:\n{}",
        broker.stderr()
    );
    // Held for the frozen subscriber: its 8 MiB queue plus the batch its connection
    // had taken to write (up to another 8 MiB and one event); for the reader, the
    // same at most; 8 MiB read from the publisher ahead of the forwarder; the
    // assembly of a 1 MiB event per connection; allocator slack. About 60 MiB:
    // 128 MiB leaves room for the allocator and is 8 times less than the ~1 GiB
    // the HWM alone allowed.
    let bound = 128 * MIB;
    assert!(
        high_water.saturating_sub(idle) < bound,
        "the broker grew from {} MiB to {} MiB with a subscriber that never reads",
        idle / MIB,
        high_water / MIB
    );
    assert!(bus_thread, "the forwarder runs on a thread named event-bus");

    // Thawed, the frozen subscriber gets what was held for it, then what is new:
    // far fewer than what was published meanwhile.
    frozen.resume();
    let marker = publisher.publish(1, 64, "big").await;
    let mut got = 0;
    loop {
        let event = frozen
            .recv_within(WAIT)
            .await
            .expect("the thawed subscriber gets events again");
        got += 1;
        if event
            .get(1)
            .is_some_and(|n| n == marker.to_string().as_bytes())
        {
            break;
        }
    }
    eprintln!("the frozen subscriber got {got} of the {events} events once thawed");
    assert!(
        got < events,
        "a subscriber that did not read was sent all {events} events"
    );
    echo.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_of_distinct_lengths_are_capped_and_events_still_flow() {
    let (broker, events_in, events_out) = broker_with_bus();
    let mut echo = Echo::start(&broker.endpoint).await;
    let reader = Reader::start(&events_out, "weather.").await;
    let mut publisher = Publisher::connect(&events_in).await;
    publisher.until_read(&reader, "weather.*").await;

    // 16 000 topics of lengths 1 to 16 000 (128 MB on the wire).
    let flood_started = Instant::now();
    let mut attacker =
        PyPeer::spawn_script(bus_peer_script(), ["flood", events_out.as_str(), "16000"]);
    attacker.expect("SUBSCRIBED").await;
    let capped = |stderr: &str| {
        stderr.contains("subscriptions past a cap ignored")
            || stderr.contains("too many subscriptions")
    };
    wait_until("the broker to log the cap", || capped(&broker.stderr())).await;
    echo.check().await;
    // Let the broker read the rest of the flood before measuring: until its CPU
    // time stops growing (or the wait is over; this only sharpens the figure).
    let quiet = Instant::now() + WAIT;
    let mut before = cpu(&broker);
    while Instant::now() < quiet {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = cpu(&broker);
        if now - before <= Duration::from_millis(20) {
            break;
        }
        before = now;
    }

    // 1 000 one-frame events of 16 KiB starting with "weather.": every topic length
    // the attacker holds is shorter than the frame, so none may be skipped by length.
    let events = 1000;
    let (cpu_before, ns_before) = (cpu(&broker), cpu_ns(&broker));
    let first = publisher.next;
    let mut last = first;
    while last + 1 < first + events {
        let round = async {
            last = publisher.publish(100, 16 * 1024, "weather.*").await;
            reader.wait_for(last).await;
        };
        tokio::join!(round, echo.check());
    }
    let spent = cpu(&broker) - cpu_before;
    let spent_ns = cpu_ns(&broker) - ns_before;
    let stderr = broker.stderr();
    let cap_lines = stderr.matches("subscriptions past a cap ignored").count();
    eprintln!(
        "broker CPU with 16 000 distinct-length subscriptions, {events} events of 16 KiB: \
         utime+stime {spent:?} ({:?} per event), schedstat {spent_ns:?} ({:?} per event); \
         slowest echo {:?}; cap log lines: {cap_lines}",
        spent / events as u32,
        spent_ns / events as u32,
        echo.slowest,
    );

    let missing = reader.missing(first, last);
    assert!(
        missing.is_empty(),
        "the legitimate subscriber missed events {missing:?}; the broker said:\n{stderr}"
    );
    // Logged, at most once a second.
    let seconds = flood_started.elapsed().as_secs() as usize;
    assert!(
        (1..=seconds + 1).contains(&cap_lines),
        "{cap_lines} cap lines in {seconds} s:\n{stderr}"
    );
    echo.check().await;
    drop(attacker);
}
