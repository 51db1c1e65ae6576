//! The broker loop: one ROUTER socket glued to the [`Broker`] state machine.
//!
//! Every wake-up handles a whole burst: the message that woke it plus everything
//! already queued (up to a bound, so ticks are never starved), then one pass that
//! sends what the state machine produced. No task hop per message.
//!
//! The socket's monitor tells the state machine when a peer's connection is gone, so
//! a dead worker's request is requeued at once and a gone client's queued requests
//! are dropped, without waiting for heartbeats to expire. Queued messages are
//! handled before an event, so whatever a peer sent before it left is seen first.
//!
//! Beside it: a [`StatsHandle`] through which other tasks (the metrics endpoint)
//! ask for a fresh [`Stats`] snapshot, and an optional one-line summary logged at
//! info level every so often.

use std::future::Future;
use std::time::Duration;

use mdp::broker::snapshot::Stats;
use mdp::broker::Broker;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use zmtp::{Message, Socket, SocketEvent};

/// Most messages handled per wake-up before timers get a look.
const BURST: usize = 1024;

/// Asks the broker loop for a snapshot of its figures; cheap to clone.
#[derive(Debug, Clone)]
pub struct StatsHandle(mpsc::Sender<oneshot::Sender<Stats>>);

impl StatsHandle {
    /// A handle, and the receiving end to give to [`serve`].
    pub fn new() -> (StatsHandle, mpsc::Receiver<oneshot::Sender<Stats>>) {
        let (tx, rx) = mpsc::channel(64);
        (StatsHandle(tx), rx)
    }

    /// The broker's figures now; `None` once the broker loop has stopped.
    pub async fn get(&self) -> Option<Stats> {
        let (tx, rx) = oneshot::channel();
        self.0.send(tx).await.ok()?;
        rx.await.ok()
    }
}

/// What runs beside the broker loop.
#[derive(Debug, Default)]
pub struct Extras {
    /// Where [`StatsHandle`]s' questions arrive.
    pub stats: Option<mpsc::Receiver<oneshot::Sender<Stats>>>,
    /// Log a summary line this often.
    pub summary_every: Option<Duration>,
}

/// Runs the broker until `shutdown` completes; then every worker gets DISCONNECT.
pub async fn serve(
    mut socket: Socket,
    mut broker: Broker,
    shutdown: impl Future<Output = ()>,
    extras: Extras,
) -> Result<(), zmtp::Error> {
    tokio::pin!(shutdown);
    let mut events = socket.monitor();
    let mut outgoing: Vec<(bytes::Bytes, Message)> = Vec::new();
    let Extras {
        mut stats,
        summary_every,
    } = extras;
    let mut summary = summary_every.map(|every| {
        let mut interval = tokio::time::interval_at(Instant::now() + every, every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    });
    let mut last_requests = 0;
    loop {
        let tick = Instant::from_std(broker.next_tick(std::time::Instant::now()));
        tokio::select! {
            received = socket.recv() => {
                handle(&mut broker, received?);
                drain(&mut socket, &mut broker);
            }
            Some(event) = events.recv() => {
                // What the peer sent before it left is already queued: handle it first.
                drain(&mut socket, &mut broker);
                on_event(&mut broker, event);
                while let Some(event) = events.try_recv() {
                    on_event(&mut broker, event);
                }
            }
            () = tokio::time::sleep_until(tick) => broker.handle_tick(std::time::Instant::now()),
            Some(reply) = recv_some(&mut stats) => {
                let _ = reply.send(broker.stats_snapshot());
            }
            _ = tick_some(&mut summary) => {
                log_summary(&broker.stats_snapshot(), &mut last_requests);
            }
            () = &mut shutdown => {
                tracing::info!("shutting down: disconnecting workers");
                broker.shutdown();
                flush(&mut socket, &mut broker, &mut outgoing).await?;
                // A short linger lets the DISCONNECTs out.
                tokio::time::timeout(Duration::from_secs(2), socket.close()).await.ok();
                return Ok(());
            }
        }
        flush(&mut socket, &mut broker, &mut outgoing).await?;
    }
}

/// The next question, or never when nobody can ask.
async fn recv_some<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next tick of an interval, or never without one.
async fn tick_some(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// One line: workers, services, requests (and how many since the last line), replies,
/// drops, requeues, malformed messages, requests held.
fn log_summary(stats: &Stats, last_requests: &mut u64) {
    let t = &stats.totals;
    let recent = t.requests.saturating_sub(*last_requests);
    *last_requests = t.requests;
    let live = stats.services.iter().filter(|s| s.workers > 0).count();
    tracing::info!(
        workers = t.workers,
        services = live,
        requests = t.requests,
        recent,
        replies = t.replies,
        dropped = t.dropped,
        requeued = t.requeued,
        malformed = t.malformed,
        held = t.held,
        "broker summary"
    );
}

fn handle(broker: &mut Broker, mut msg: Message) {
    let Some(peer) = msg.pop_front() else {
        return;
    };
    broker.handle_message(&peer, msg.frames(), std::time::Instant::now());
}

/// Handles the messages already queued, up to the burst bound.
fn drain(socket: &mut Socket, broker: &mut Broker) {
    for _ in 1..BURST {
        match socket.try_recv() {
            Ok(msg) => handle(broker, msg),
            Err(_) => break,
        }
    }
}

fn on_event(broker: &mut Broker, event: SocketEvent) {
    if let SocketEvent::Disconnected {
        routing_id: Some(peer),
        ..
    } = event
    {
        broker.handle_disconnect(&peer, std::time::Instant::now());
    }
}

async fn flush(
    socket: &mut Socket,
    broker: &mut Broker,
    outgoing: &mut Vec<(bytes::Bytes, Message)>,
) -> Result<(), zmtp::Error> {
    outgoing.extend(broker.drain_outgoing());
    for (peer, mut msg) in outgoing.drain(..) {
        msg.push_front(peer);
        // ROUTER drops messages for peers that are gone or full; never blocks.
        socket.send(msg).await?;
    }
    Ok(())
}
