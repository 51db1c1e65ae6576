//! `mdp-broker demo`: the two-minute tour. A broker with its event bus, three workers
//! (two dialects, one typed) and three clients, all in this process: requests,
//! events and heartbeats flow, the live stats table is printed every second, and
//! everything shuts down cleanly at the end, every request counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mdp::broker::snapshot::WorkerSummary;
use mdp::broker::{Broker, BrokerConfig};
use mdp::events::{Publisher, Subscriber};
use mdp::{Client, Dialect, Worker, WorkerOptions};
use tokio::sync::watch;
use tokio::task::JoinSet;
use zmtp::{Message, Socket, SocketOptions, SocketType};

use crate::serve::{self, StatsHandle};

/// Heartbeats this often in the demo, so they show within its few seconds.
const HEARTBEAT: Duration = Duration::from_millis(500);

/// What the clients counted.
#[derive(Debug, Default)]
struct Counts {
    sent: AtomicU64,
    answered: AtomicU64,
    wrong: AtomicU64,
    events: AtomicU64,
}

/// Runs the tour for `seconds`.
pub async fn run(seconds: u64) -> Result<(), String> {
    let failed = |what: &'static str| move |e: zmtp::Error| format!("demo: {what}: {e}");
    let mut socket = Socket::new(SocketType::Router);
    let endpoint = socket
        .bind("tcp://127.0.0.1:0")
        .await
        .map_err(failed("bind"))?
        .to_string();
    let (events_in, events_out) = crate::pubsub::start(
        "tcp://127.0.0.1:0",
        "tcp://127.0.0.1:0",
        SocketOptions::default(),
        &crate::pubsub::BusLimits::default(),
    )
    .await?;
    println!("mdp-broker demo: a broker, its event bus, 3 workers and 3 clients in this process, for {seconds} s.");
    println!("  broker      {endpoint}   (meanwhile, try: mdp -b {endpoint} services)");
    println!("  event bus   publishers -> {events_in}, subscribers <- {events_out}");
    println!("  workers     echo x2 (MDP/0.1 and MDP/0.2), square x1 (typed MessagePack)");
    println!("  clients     3, calling echo and square in turn; heartbeats every {HEARTBEAT:?}");
    println!();

    // Clients stop first and finish the request in hand; then workers and broker.
    let (stop_clients_tx, stop_clients) = watch::channel(false);
    let (stop_servers_tx, stop_servers) = watch::channel(false);
    let stopped = |mut stop: watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let (stats, questions) = StatsHandle::new(HEARTBEAT);
    let config = BrokerConfig::default().heartbeat_interval(HEARTBEAT);
    let broker = tokio::spawn(serve::serve(
        socket,
        Broker::new(config),
        stopped(stop_servers.clone()),
        serve::Extras {
            stats: Some(questions),
            ..serve::Extras::default()
        },
    ));

    let worker_options = |dialect| {
        WorkerOptions::default()
            .dialect(dialect)
            .heartbeat_interval(HEARTBEAT)
    };
    let mut workers = JoinSet::new();
    for dialect in [Dialect::Mdp01, Dialect::Mdp02] {
        let echo = Worker::new(endpoint.clone(), "echo").options(worker_options(dialect));
        workers.spawn(echo.run_until(
            |body| async move { Ok(body) },
            stopped(stop_servers.clone()),
        ));
    }
    let square = Worker::new(endpoint.clone(), "square").options(worker_options(Dialect::Mdp01));
    workers.spawn(square.run_typed_until(
        |n: u64| async move {
            // A little work, so the latency columns have something to show.
            tokio::time::sleep(Duration::from_millis(1 + n % 5)).await;
            Ok::<_, std::io::Error>(n * n)
        },
        stopped(stop_servers.clone()),
    ));

    let counts = Arc::new(Counts::default());
    let mut tasks = JoinSet::new();
    for id in 0..3u64 {
        let client = Client::connect(&endpoint).map_err(|e| format!("demo: client: {e}"))?;
        let (counts, stop) = (counts.clone(), stop_clients.clone());
        tasks.spawn(async move {
            let mut n = id;
            while !*stop.borrow() {
                counts.sent.fetch_add(1, Ordering::Relaxed);
                let right = if n % 2 == 0 {
                    let body = format!("hello {n}");
                    let reply = client.request("echo", body.clone()).await;
                    reply.ok() == Some(Message::from(body))
                } else {
                    let reply: Result<u64, _> = client.call("square", &n).await;
                    reply.ok() == Some(n * n)
                };
                let counter = if right {
                    &counts.answered
                } else {
                    &counts.wrong
                };
                counter.fetch_add(1, Ordering::Relaxed);
                n += 3;
            }
        });
    }

    let mut subscriber = Subscriber::connect(&events_out, ["demo."])
        .await
        .map_err(failed("subscriber"))?;
    let (counts_sub, mut stop_sub) = (counts.clone(), stop_clients.clone());
    tasks.spawn(async move {
        loop {
            tokio::select! {
                event = subscriber.recv() => {
                    let Ok(event) = event else { return };
                    counts_sub.events.fetch_add(1, Ordering::Relaxed);
                    let body: Vec<String> =
                        event.body.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
                    println!("event {} {}", String::from_utf8_lossy(&event.topic), body.join(" "));
                }
                _ = stop_sub.wait_for(|s| *s) => return,
            }
        }
    });
    let mut publisher = Publisher::connect(&events_in)
        .await
        .map_err(failed("publisher"))?;

    // ZeroMQ's slow joiner: events published before the subscription has travelled
    // up to the publisher are not delivered. Say hello until one arrives.
    for _ in 0..200 {
        if counts.events.load(Ordering::Relaxed) > 0 {
            break;
        }
        publisher
            .publish("demo.hello", "the event bus is up")
            .await
            .map_err(failed("publish"))?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for second in 1..=seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let sent = counts.sent.load(Ordering::Relaxed);
        // Once a second, beside the requests.
        publisher
            .publish("demo.tick", format!("second={second} requests={sent}"))
            .await
            .map_err(failed("publish"))?;
        if let Some(snapshot) = stats.get().await {
            println!("\n[{second}s]\n{snapshot}");
        }
    }
    let workers_now = mdp_workers(&endpoint).await;
    if !workers_now.is_empty() {
        println!("workers, as mmi.workers sees them (HEARD: since their last heartbeat or reply):");
        print!("{}", WorkerSummary::table(&workers_now));
    }

    println!("\nshutting down: clients stop, workers send DISCONNECT, the broker stops");
    let _ = stop_clients_tx.send(true);
    while tasks.join_next().await.is_some() {}
    let _ = stop_servers_tx.send(true);
    while let Some(done) = workers.join_next().await {
        if let Ok(Err(e)) = done {
            eprintln!("demo: a worker failed: {e}");
        }
    }
    match broker.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("demo: the broker failed: {e}")),
        Err(e) => return Err(format!("demo: the broker task failed: {e}")),
    }
    let sent = counts.sent.load(Ordering::Relaxed);
    let answered = counts.answered.load(Ordering::Relaxed);
    let wrong = counts.wrong.load(Ordering::Relaxed);
    println!(
        "done: {sent} requests, {answered} answered right, {wrong} wrong or lost; {} events delivered",
        counts.events.load(Ordering::Relaxed)
    );
    if wrong > 0 {
        return Err(format!("demo: {wrong} requests went wrong"));
    }
    Ok(())
}

/// The broker's workers, through `mmi.workers` like any client would ask.
async fn mdp_workers(endpoint: &str) -> Vec<WorkerSummary> {
    let Ok(client) = Client::connect(endpoint) else {
        return Vec::new();
    };
    match client.request("mmi.workers", Message::new()).await {
        Ok(reply) => reply
            .first()
            .and_then(|frame| rmp_serde::from_slice(frame).ok())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}
