//! The broker killed (`kill -9`) and restarted on the same port under load: workers
//! register again, clients' retries are answered, nothing is lost. (A worker killed
//! while it holds a request is in `interop.rs`, with Python peers.)
//!
//! Nothing here is timed: what happens when is decided by counters, every wait is
//! bounded and generous (loaded CI machines), and only outcomes are asserted.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{bounded, wait_for_service, wait_until, BrokerProcess, StartBroker};
use mdp::worker::HandlerResult;
use mdp::{CallOptions, Client, Worker, WorkerOptions};
use tokio::sync::watch;
use tokio::task::JoinSet;
use zmtp::Message;

/// Short heartbeats, so a dead broker or worker is noticed within about a second.
const BROKER_ARGS: &[&str] = &["--heartbeat-interval", "200", "--heartbeat-liveness", "5"];

fn worker_options() -> WorkerOptions {
    WorkerOptions::default()
        .heartbeat_interval(Duration::from_millis(200))
        .liveness(5)
        .reconnect_interval(Duration::from_millis(100))
        .reconnect_interval_max(Duration::from_millis(500))
}

/// What the echo workers of the restart test record, and how they decide to hold
/// requests.
///
/// The handlers themselves start holding at a set count of requests, so the kill
/// comes at the planned point of the load however late the test's own task gets to
/// run on a loaded machine.
struct Echo {
    /// Generation 0 is the first broker's; each kill starts the next (before the
    /// next broker runs), and the final probes have one of their own.
    generation: AtomicUsize,
    /// Handler calls so far.
    calls: AtomicUsize,
    /// From this call on, handlers hold their requests: their workers stay busy
    /// until the broker of their generation is killed.
    hold_from: AtomicUsize,
    /// Generations whose held requests are let go (held ones wait for theirs).
    released: watch::Sender<usize>,
    /// Requests held, with their generation (a retry may be held again later).
    held: Mutex<HashSet<(String, usize)>>,
    /// Requests served, with their generation.
    served: Mutex<HashSet<(String, usize)>>,
    /// Per worker, the latest generation it served a request of.
    last_generation: Vec<AtomicUsize>,
    /// Final replies the clients got.
    replies: AtomicUsize,
    /// Clients still running their loop.
    running: AtomicUsize,
}

impl Echo {
    async fn serve(&self, worker: usize, request: Message) -> HandlerResult {
        let body = request
            .first()
            .map(|frame| String::from_utf8_lossy(frame).into_owned())
            .unwrap_or_default();
        // The generation first: the main task moves `hold_from` before it starts a
        // generation, so a call of the new generation sees the new `hold_from`.
        let generation = self.generation.load(Ordering::SeqCst);
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if call >= self.hold_from.load(Ordering::SeqCst) {
            self.held.lock().unwrap().insert((body, generation));
            // Let go once the broker is killed (or dropped with the worker's session).
            let mut released = self.released.subscribe();
            let _ = released.wait_for(|r| *r > generation).await;
            return Ok(request);
        }
        self.served.lock().unwrap().insert((body, generation));
        self.last_generation[worker].fetch_max(generation, Ordering::SeqCst);
        Ok(request)
    }

    fn held_in(&self, generation: usize) -> usize {
        let held = self.held.lock().unwrap();
        held.iter().filter(|(_, g)| *g == generation).count()
    }
}

/// kill -9 the broker twice in the middle of a load of requests, some of them held by
/// workers and others queued, and start it again on the same port: at once the first
/// time, after the workers and clients noticed it gone the second time. The workers
/// register again and every request gets its own reply through the clients' retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_under_load() {
    const WORKERS: usize = 4;
    const CLIENTS: usize = 5;
    const REQUESTS: usize = 45;
    /// How long each outage lasts: none, then longer than the workers' liveness
    /// (1 s) and the clients' timeout (2 s). Not asserted: it only picks the path
    /// (the old connections reconnect to the new broker, or the workers give up on
    /// the old one and register afresh).
    const OUTAGES: [Duration; 2] = [Duration::ZERO, Duration::from_millis(3000)];
    /// Handler calls between two outages: a third of the requests.
    const STEP: usize = CLIENTS * REQUESTS / 3;
    let endpoint = testkit::restartable_endpoint();
    let mut broker = BrokerProcess::start_on(&endpoint, BROKER_ARGS);
    assert_eq!(broker.endpoint, endpoint);

    let echo = Arc::new(Echo {
        generation: AtomicUsize::new(0),
        calls: AtomicUsize::new(0),
        hold_from: AtomicUsize::new(STEP),
        released: watch::Sender::new(0),
        held: Mutex::new(HashSet::new()),
        served: Mutex::new(HashSet::new()),
        last_generation: (0..WORKERS).map(|_| AtomicUsize::new(0)).collect(),
        replies: AtomicUsize::new(0),
        running: AtomicUsize::new(CLIENTS),
    });
    for w in 0..WORKERS {
        let echo = echo.clone();
        let worker = Worker::new(&endpoint, "echo").options(worker_options());
        tokio::spawn(worker.run(move |request| {
            let echo = echo.clone();
            async move { echo.serve(w, request).await }
        }));
    }
    let probe = Client::connect(&endpoint).unwrap();
    wait_for_service(&probe, "echo").await;

    // Every attempt gets two seconds; enough attempts to outlast the outages.
    let limits = CallOptions {
        timeout: Duration::from_secs(2),
        attempts: 15,
    };
    let mut clients = JoinSet::new();
    for c in 0..CLIENTS {
        let client = Client::connect(&endpoint).unwrap();
        let echo = echo.clone();
        clients.spawn(async move {
            for r in 0..REQUESTS {
                let body = format!("client {c} request {r}");
                let reply = client
                    .request_with("echo", body.clone(), limits)
                    .await
                    .unwrap_or_else(|e| panic!("{body:?}: {e}"));
                assert_eq!(reply, Message::from(body));
                echo.replies.fetch_add(1, Ordering::SeqCst);
            }
            echo.running.fetch_sub(1, Ordering::SeqCst);
        });
    }

    for (killed, outage) in OUTAGES.into_iter().enumerate() {
        // Past the hold point, every worker ends up holding a request (or every
        // running client has one held): then the broker is killed.
        wait_until("the workers hold requests", || {
            let running = echo.running.load(Ordering::SeqCst);
            let held = echo.held_in(killed);
            held > 0 && held >= running.min(WORKERS)
        })
        .await;
        broker.kill();
        // The next hold point, then the next generation, then the held requests let
        // go (their replies go to a dead broker, or are refused by the next one).
        let next = if killed + 1 < OUTAGES.len() {
            echo.calls.load(Ordering::SeqCst) + STEP
        } else {
            usize::MAX
        };
        echo.hold_from.store(next, Ordering::SeqCst);
        echo.generation.store(killed + 1, Ordering::SeqCst);
        echo.released.send_replace(killed + 1);
        tokio::time::sleep(outage).await;
        broker = restart(&endpoint).await;
    }
    bounded("every client to get every reply", async {
        while let Some(done) = clients.join_next().await {
            done.unwrap();
        }
    })
    .await;
    assert_eq!(echo.replies.load(Ordering::SeqCst), CLIENTS * REQUESTS);

    // Requests that were held when their broker died were answered through a retry
    // that a later broker gave to a worker.
    let held = echo.held.lock().unwrap().clone();
    let served = echo.served.lock().unwrap().clone();
    let unanswered: Vec<_> = held
        .iter()
        .filter(|(body, killed)| !served.iter().any(|(b, g)| b == body && g > killed))
        .collect();
    assert!(
        unanswered.is_empty(),
        "held requests not served again after their broker died: {unanswered:?}"
    );

    // Every worker registered with the last broker: it hands requests to its idle
    // workers oldest first, so a few rounds reach every registered one. The probes
    // get a generation of their own, long after anything a killed broker sent.
    assert!(bounded("mmi.service", probe.service_exists("echo"))
        .await
        .unwrap());
    let probing = OUTAGES.len() + 1;
    echo.generation.store(probing, Ordering::SeqCst);
    let mut probes = 0;
    bounded("every worker to serve through the last broker", async {
        while echo
            .last_generation
            .iter()
            .any(|g| g.load(Ordering::SeqCst) < probing)
        {
            let body = format!("probe {probes}");
            probes += 1;
            let reply = probe.request_with("echo", body.clone(), limits).await;
            assert_eq!(reply.unwrap(), Message::from(body));
        }
    })
    .await;
    eprintln!(
        "restarts: {} requests held by workers when their broker died; {probes} probes \
         until every worker had served through the last broker",
        held.len()
    );
}

/// A broker on `endpoint` again. The port was just released by a killed broker;
/// should the bind still fail, it is tried again for a while.
async fn restart(endpoint: &str) -> BrokerProcess {
    let mut failures = 0;
    loop {
        // Reading the broker's first line blocks: let the runtime's other tasks run.
        match tokio::task::block_in_place(|| BrokerProcess::try_start_on(endpoint, BROKER_ARGS)) {
            Ok(broker) => return broker,
            Err(e) if failures < 50 => {
                failures += 1;
                eprintln!("restarting the broker: {e}; trying again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot restart the broker on {endpoint}: {e}"),
        }
    }
}
