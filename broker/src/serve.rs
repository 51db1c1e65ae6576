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

use std::future::Future;
use std::time::Duration;

use mdp::broker::Broker;
use tokio::time::Instant;
use zmtp::{Message, Socket, SocketEvent};

/// Most messages handled per wake-up before timers get a look.
const BURST: usize = 1024;

/// Runs the broker until `shutdown` completes; then every worker gets DISCONNECT.
pub async fn serve(
    mut socket: Socket,
    mut broker: Broker,
    shutdown: impl Future<Output = ()>,
) -> Result<(), zmtp::Error> {
    tokio::pin!(shutdown);
    let mut events = socket.monitor();
    let mut outgoing: Vec<(bytes::Bytes, Message)> = Vec::new();
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
