//! The broker loop: one ROUTER socket glued to the [`Broker`] state machine.
//!
//! Every wake-up handles a whole burst: the event that woke it plus everything
//! already queued (up to a bound, so ticks are never starved), then one pass that
//! sends what the state machine produced and pauses or resumes the connections it
//! says. No task hop per message.
//!
//! The ROUTER hands over each connection's arrival, messages and departure in order
//! ([`zmtp::RouterEvent`]), so a dead worker's request is requeued at once, a gone
//! client's queued requests are dropped, and nothing is ever sent to a connection
//! that took a departed peer's routing id. Time comes from tokio's clock, so tests
//! can drive it with `tokio::time::pause`.
//!
//! Beside it: a [`StatsHandle`] through which other tasks (the metrics endpoint)
//! ask for a fresh [`Stats`] snapshot, and an optional one-line summary logged at
//! info level every so often.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mdp::broker::snapshot::Stats;
use mdp::broker::{Broker, Flow};

use crate::health::Health;
use crate::peering::{Happened, PeerLinks};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use zmtp::clock::now;
use zmtp::{Error, RouterEvent, Socket};

/// Most messages handled per wake-up before timers get a look.
const BURST: usize = 1024;

/// Asks the broker loop for a snapshot of its figures, and reads its health;
/// cheap to clone.
#[derive(Debug, Clone)]
pub struct StatsHandle {
    questions: mpsc::Sender<oneshot::Sender<Stats>>,
    health: Arc<Health>,
}

impl StatsHandle {
    /// A handle for a loop that heartbeats every `heartbeat`, and the receiving
    /// end to give to [`serve`] (in [`Extras`], with [`StatsHandle::health`]).
    pub fn new(heartbeat: Duration) -> (StatsHandle, mpsc::Receiver<oneshot::Sender<Stats>>) {
        let (questions, rx) = mpsc::channel(64);
        let health = Arc::new(Health::new(heartbeat));
        (StatsHandle { questions, health }, rx)
    }

    /// The broker's figures now; `None` once the broker loop has stopped.
    pub async fn get(&self) -> Option<Stats> {
        let (tx, rx) = oneshot::channel();
        self.questions.send(tx).await.ok()?;
        rx.await.ok()
    }

    /// The loop's liveness and readiness.
    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }
}

/// What runs beside the broker loop.
#[derive(Default)]
pub struct Extras {
    /// The links this broker dials to its peers.
    pub peers: Option<PeerLinks>,
    /// Where the loop tells it turned, and whether it is ready.
    pub health: Option<Arc<Health>>,
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
    let Extras {
        mut stats,
        summary_every,
        mut peers,
        health,
    } = extras;
    let mut summary = Summary::new(summary_every, Instant::now());
    // One timer for the state machine's next tick and the next summary, moved only
    // when that changes: a fresh timer per turn would enter and leave tokio's timer
    // wheel every time, and each timer more is one more future polled per turn.
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    let mut timer_at = None;
    loop {
        let turned_at = now();
        if let Some(health) = &health {
            let ready = peers.as_ref().map_or(true, |links| links.ready(&broker));
            health.turned(ready, turned_at);
        }
        let tick = Instant::from_std(broker.next_tick(turned_at));
        let wake = summary.next.map_or(tick, |at| at.min(tick));
        if timer_at != Some(wake) {
            timer_at = Some(wake);
            timer.as_mut().reset(wake);
        }
        tokio::select! {
            // In a fixed order, the socket first: no random start to draw, and a busy
            // turn polls nothing else. Time is looked at after each burst (a socket
            // that never runs dry would keep the timer from its turn), and the other
            // branches get theirs when the socket has nothing or once the task's
            // cooperative budget is spent.
            biased;
            event = recv_event_fairly(&mut socket) => {
                // One clock read for the burst: its events came in the same wake-up.
                let at = now();
                handle(&mut broker, event?, at);
                drain(&mut socket, &mut broker, at);
                let at = Instant::from_std(at);
                if at >= wake {
                    on_time(&mut broker, &mut summary, at, tick);
                }
            }
            happened = next_on(&mut peers) => {
                if let Some(links) = peers.as_mut() {
                    links.apply(&mut broker, happened?);
                    links.drain(&mut broker, BURST);
                }
            }
            () = &mut timer => {
                timer_at = None;
                on_time(&mut broker, &mut summary, Instant::now(), tick);
            }
            Some(reply) = recv_some(&mut stats) => {
                let _ = reply.send(broker.stats_snapshot());
            }
            () = &mut shutdown => {
                tracing::info!("shutting down: disconnecting workers");
                broker.shutdown();
                flush(&mut socket, &mut peers, &mut broker);
                // A short linger lets the DISCONNECTs (and BYEs) out.
                if let Some(links) = peers {
                    links.close().await;
                }
                tokio::time::timeout(Duration::from_secs(2), socket.close()).await.ok();
                return Ok(());
            }
        }
        flush(&mut socket, &mut peers, &mut broker);
    }
}

/// The next connection event, after one unit of the task's cooperative budget:
/// once it is spent, `Pending`, so that a socket that never runs dry (connections
/// on other threads) does not keep the loop's other branches from their turn.
async fn recv_event_fairly(socket: &mut Socket) -> Result<RouterEvent, Error> {
    tokio::task::coop::consume_budget().await;
    socket.recv_event().await
}

/// What is due at `at`: the summary line if its time came, and the state machine's
/// tick unless the summary alone was due (the tick is at `tick`).
fn on_time(broker: &mut Broker, summary: &mut Summary, at: Instant, tick: Instant) {
    let summary_due = summary.log_if_due(broker, at);
    if !summary_due || at >= tick {
        broker.handle_tick(at.into_std());
    }
}

/// The summary line logged every so often, if asked for.
struct Summary {
    every: Option<Duration>,
    /// When the next line is due.
    next: Option<Instant>,
    /// Requests at the last line, for the count since.
    last_requests: u64,
}

impl Summary {
    fn new(every: Option<Duration>, now: Instant) -> Summary {
        Summary {
            every,
            next: every.map(|every| now + every),
            last_requests: 0,
        }
    }

    /// Logs the line if it is due at `at`; returns whether it was.
    fn log_if_due(&mut self, broker: &Broker, at: Instant) -> bool {
        if !self.next.is_some_and(|due| at >= due) {
            return false;
        }
        log_summary(&broker.stats_snapshot(), &mut self.last_requests);
        self.next = self.every.map(|every| at + every);
        true
    }
}

/// What the dialed links do next, or never without them.
async fn next_on(peers: &mut Option<PeerLinks>) -> Result<Happened, Error> {
    match peers {
        Some(links) => links.next().await,
        None => std::future::pending().await,
    }
}

/// The next question, or never when nobody can ask.
async fn recv_some<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// One line: workers, services, requests (and how many since the last line), replies,
/// drops, requeues, malformed messages, requests held (and their bytes), paused
/// connections, messages that could not be delivered.
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
        held_bytes = t.held_bytes,
        paused = t.paused,
        undelivered = t.undelivered,
        "broker summary"
    );
}

fn handle(broker: &mut Broker, event: RouterEvent, now: std::time::Instant) {
    match event {
        RouterEvent::Joined { peer, address } => broker.handle_connect(&peer, &address, now),
        RouterEvent::Message { peer, message } => {
            broker.handle_message(&peer, message.frames(), now);
        }
        RouterEvent::Left { peer } => broker.handle_disconnect(&peer, now),
        _ => {}
    }
}

/// Handles the events already queued, up to the burst bound.
fn drain(socket: &mut Socket, broker: &mut Broker, now: std::time::Instant) {
    for _ in 1..BURST {
        match socket.try_recv_event() {
            Ok(event) => handle(broker, event, now),
            Err(_) => break,
        }
    }
}

/// Pauses and resumes what the state machine says, and sends what it produced. A
/// message the socket cannot take (the peer's queue is full) goes back to the state
/// machine, which may produce more (a request given to another worker).
fn flush(socket: &mut Socket, peers: &mut Option<PeerLinks>, broker: &mut Broker) {
    loop {
        for flow in broker.drain_flow() {
            let (peer, pause) = match flow {
                Flow::Pause(peer) => (peer, true),
                Flow::Resume(peer) => (peer, false),
            };
            match (PeerLinks::from_core(&peer), peers.as_mut()) {
                (Some(dialed), Some(links)) if pause => links.pause(&dialed),
                (Some(dialed), Some(links)) => links.resume(&dialed),
                (Some(_), None) => {}
                (None, _) if pause => {
                    socket.pause(&peer);
                }
                (None, _) => {
                    socket.resume(&peer);
                }
            }
        }
        let mut full = Vec::new();
        for (peer, msg) in broker.drain_outgoing() {
            let sent = match (PeerLinks::from_core(&peer), peers.as_mut()) {
                (Some(dialed), Some(links)) => links.send_to(&dialed, msg),
                (Some(_), None) => continue,
                (None, _) => socket.send_to(&peer, msg),
            };
            match sent {
                Ok(()) => {}
                Err(Error::WouldBlock) => full.push(peer),
                // Gone: its departure is on its way, and is handled in order.
                Err(_) => {}
            }
        }
        if full.is_empty() {
            return;
        }
        for peer in full {
            broker.handle_undeliverable(&peer, now());
        }
    }
}
