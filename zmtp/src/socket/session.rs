//! Background tasks of a socket (libzmq's sessions): listeners, connecting endpoints
//! (with reconnect and backoff), and the life of one connection from handshake to
//! table removal.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span};

use super::admission::Admitted;
use super::pair::PairOwner;
use super::peers::{DuplicateRoutingId, PeerKey};
use super::settings::Settings;
use super::shared::Core;
use super::sub::resubscribe;
use crate::backoff::Backoff;
use crate::defense::{Refusal, Topic};
use crate::delivery::{Delivery, SubscriptionTable};
use crate::engine::{self, ConnectionError, Established};
use crate::inbound::InboundKind;
use crate::input_gate::InputGate;
use crate::monitor::{Reason, ReasonKind, SocketEvent};
use crate::pipe::Pipe;
use crate::proto::{HandshakeError, SocketType};
use crate::transport::{self, Endpoint, Listener, Stream};
use crate::util::printable;

/// Accepts connections on `listener` until the socket closes.
///
/// Each connection's handshake deadline is fixed here, at accept: nothing the peer
/// sends moves it, and the caps are checked once, here, not per byte.
pub(crate) async fn listen(
    core: Arc<Core>,
    listener: Listener,
    endpoint: Endpoint,
    settings: Arc<Settings>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = core.cancel.cancelled() => return,
        };
        match accepted {
            Ok((stream, addr)) => {
                let deadline = tokio::time::Instant::now() + settings.handshake_timeout;
                core.events.emit(|| SocketEvent::Accepted {
                    endpoint: endpoint.clone(),
                    peer: addr.clone(),
                });
                let admitted = match settings.admission.admit(&addr) {
                    Ok(admitted) => admitted,
                    Err(refusal) => {
                        refuse_over_cap(&core, &addr, &refusal);
                        drop(stream);
                        continue;
                    }
                };
                let span = tracing::info_span!("zmtp", socket = %core.socket_type);
                let (core2, settings2) = (core.clone(), settings.clone());
                core.tasks.spawn(async move {
                    // The socket's closing both stops the handshake and closes the
                    // connection.
                    let stop = core2.cancel.clone();
                    let scope = Scope {
                        stop: &stop,
                        close: &stop,
                        span: &span,
                    };
                    let admitted = Some(admitted);
                    connection(
                        &core2, stream, &addr, &settings2, None, scope, admitted, deadline,
                    )
                    .await;
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reports a connection closed as it was accepted (a cap reached, an address
/// blocked) on the monitor; the admission counted it for the log, which says it
/// with the others of its kind at most once a second.
fn refuse_over_cap(core: &Core, peer: &str, refusal: &Refusal) {
    core.events.emit(|| SocketEvent::HandshakeFailed {
        peer: peer.to_owned(),
        reason: Reason::new(
            ReasonKind::Refused,
            format!("connection refused: {refusal}"),
        ),
    });
}

/// Keeps `endpoint` connected until the socket closes or the peer commits a protocol
/// error (libzmq does not reconnect after those). `pipe` is the endpoint's queue: it
/// lives across reconnects, so messages sent while the peer is away wait for it.
///
/// When the socket closes with messages still queued, connecting goes on for the
/// linger period so they can still be delivered, as libzmq does. What it logs is
/// said under `span`.
pub(crate) async fn keep_connected(
    core: Arc<Core>,
    endpoint: Endpoint,
    settings: Arc<Settings>,
    key: PeerKey,
    pipe: Arc<Pipe>,
    stop: CancellationToken,
    span: Span,
) {
    let _stop_guard = stop.clone().drop_guard();
    let linger = settings.linger;
    // Closes the endpoint's connections: at once when the socket closes (they
    // linger) or when the endpoint is disconnected. Their engines watch this token
    // alone, so nothing is polled twice on every turn of their loops.
    let close = core.cancel.child_token();
    let (cancel, stop2, close2, pipe2) = (
        core.cancel.clone(),
        stop.clone(),
        close.clone(),
        pipe.clone(),
    );
    core.tasks.spawn(async move {
        tokio::select! {
            () = cancel.cancelled() => {
                if !pipe2.is_empty() {
                    tokio::select! {
                        () = tokio::time::sleep(linger) => {}
                        () = stop2.cancelled() => {}
                    }
                }
                stop2.cancel();
            }
            () = stop2.cancelled() => {}
        }
        close2.cancel();
    });

    let mut backoff = Backoff::new(settings.reconnect_interval, settings.reconnect_interval_max);
    loop {
        let mut established = false;
        let attempt = tokio::select! {
            a = transport::connect(&endpoint) => a,
            () = stop.cancelled() => break,
        };
        match attempt {
            Ok(stream) => {
                core.events.emit(|| SocketEvent::Connected {
                    endpoint: endpoint.clone(),
                });
                let peer = endpoint.to_string();
                let session = Some((key, pipe.clone()));
                let deadline = tokio::time::Instant::now() + settings.handshake_timeout;
                let scope = Scope {
                    stop: &stop,
                    close: &close,
                    span: &span,
                };
                let (end, handshaken) = connection(
                    &core, stream, &peer, &settings, session, scope, None, deadline,
                )
                .await;
                established = handshaken;
                let closing = core.cancel.is_cancelled();
                if stop.is_cancelled() || (closing && pipe.is_empty()) {
                    break;
                }
                if !end.is_retryable() && !closing {
                    span.in_scope(|| {
                        tracing::warn!(%endpoint, reason = %end, "not reconnecting after a protocol error");
                    });
                    break;
                }
            }
            Err(e) => span.in_scope(|| {
                tracing::debug!(%endpoint, error = %e, "connect failed; will retry");
            }),
        }
        let delay = backoff.after(established);
        core.events.emit(|| SocketEvent::ConnectRetried {
            endpoint: endpoint.clone(),
            after: delay,
        });
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.cancelled() => break,
        }
    }
    core.peers.remove(key);
    core.pair.release(PairOwner::Endpoint(key));
}

/// What a connection runs under.
#[derive(Clone, Copy)]
struct Scope<'a> {
    /// Abandons the handshake.
    stop: &'a CancellationToken,
    /// Parent of the engine's close token: once the handshake is done, the
    /// connection closes (after the linger) when this is cancelled.
    close: &'a CancellationToken,
    /// What the connection's log lines are said under (socket, endpoint).
    span: &'a Span,
}

/// One connection: handshake (until `deadline`), join the peer table, run the
/// engine, leave the table. Returns why it ended and whether the handshake had
/// succeeded. An accepted connection (`admitted`) has its handshake watched by the
/// endpoint's per-address defences, and its failures logged aggregated.
///
/// The engine runs outside `scope.span`: entering a span costs the subscriber a
/// few hundred instructions, on every poll, and the engine logs nothing above debug.
#[allow(clippy::too_many_arguments)]
async fn connection(
    core: &Core,
    stream: Stream,
    peer_addr: &str,
    settings: &Settings,
    session: Option<(PeerKey, Arc<Pipe>)>,
    scope: Scope<'_>,
    mut admitted: Option<Admitted>,
    deadline: tokio::time::Instant,
) -> (ConnectionError, bool) {
    // `admitted` holds the connection's slot in the endpoint's caps until it ends.
    let opened = open(
        core,
        stream,
        peer_addr,
        settings,
        session,
        scope,
        &mut admitted,
        deadline,
    )
    .instrument(scope.span.clone())
    .await;
    let (stream, established, attached) = match opened {
        Ok(opened) => opened,
        Err(end) => return end,
    };
    // The engine watches its close token (a child of `scope.close`) itself: a
    // disconnected endpoint or a closing socket closes it, and what is queued
    // still goes for the linger.
    let end = engine::run(
        stream,
        established,
        settings.connection,
        settings.linger,
        attached.pipe.clone(),
        attached.delivery.clone(),
        attached.close.clone(),
    )
    .await;
    detach(core, attached, peer_addr, &end)
        .instrument(scope.span.clone())
        .await;
    (end, true)
}

/// The handshake, and the peer joined to the socket: [`connection`] up to its
/// engine. An error is the connection's end, and whether the handshake succeeded.
#[allow(clippy::too_many_arguments)]
async fn open(
    core: &Core,
    mut stream: Stream,
    peer_addr: &str,
    settings: &Settings,
    session: Option<(PeerKey, Arc<Pipe>)>,
    scope: Scope<'_>,
    admitted: &mut Option<Admitted>,
    deadline: tokio::time::Instant,
) -> Result<(Stream, Established, Attached), (ConnectionError, bool)> {
    let guard = admitted.as_ref().map(|a| a.guard(peer_addr));
    let handshake = tokio::select! {
        h = engine::handshake(&mut stream, settings.handshake.clone(), deadline, peer_addr, guard) => h,
        () = scope.stop.cancelled() => return Err((ConnectionError::LocalClose, false)),
    };
    if let Some(admitted) = admitted.as_mut() {
        admitted.handshake_done();
    }
    let established = match handshake {
        Ok(done) => done,
        Err(e) => {
            match admitted {
                Some(admitted) => log_refused_handshake(admitted, settings, peer_addr, &e),
                None => log_end(peer_addr, None, &e, "handshake failed"),
            }
            core.events.emit(|| SocketEvent::HandshakeFailed {
                peer: peer_addr.to_owned(),
                reason: e.reason(),
            });
            // An ERROR we wrote must reach the peer: close gently.
            tokio::select! {
                () = engine::close_after_error(&mut stream) => {}
                () = scope.stop.cancelled() => {}
            }
            return Err((e, false));
        }
    };
    let peer = &established.peer;
    let attached = attach(
        core,
        peer_addr,
        settings,
        session,
        &peer.identity,
        scope.close,
    )
    .map_err(|e| (e, true))?;
    announce(core, &attached, peer_addr).await;
    tracing::debug!(
        peer = peer_addr,
        peer_type = ?peer.socket_type,
        version = %peer.version,
        routing_id = attached.routing_id.as_deref(),
        "connected"
    );
    Ok((stream, established, attached))
}

/// A peer that passed its handshake, joined to its socket.
pub(crate) struct Attached {
    pub(crate) key: PeerKey,
    /// What the socket queues for the peer.
    pub(crate) pipe: Arc<Pipe>,
    /// Where what the peer sends goes.
    pub(crate) delivery: Delivery,
    /// Cancelled when the socket closes or drops this peer (ROUTER handover).
    pub(crate) close: CancellationToken,
    /// A connecting endpoint's pipe outlives the connection.
    persistent: bool,
    pair_owner: Option<PairOwner>,
    routing_id: Option<String>,
}

/// Joins a peer to the socket after its handshake: PAIR's one slot, the peer table
/// (ROUTER: under its routing id), the subscriptions a SUB resends and the welcome
/// an XPUB sends. `session` is a connecting endpoint's key and pipe; an accepted peer
/// gets new ones. `identity` is the peer's announced routing id. The connection's
/// close token is a child of `close_parent`.
pub(crate) fn attach(
    core: &Core,
    peer_addr: &str,
    settings: &Settings,
    session: Option<(PeerKey, Arc<Pipe>)>,
    identity: &bytes::Bytes,
    close_parent: &CancellationToken,
) -> Result<Attached, ConnectionError> {
    let persistent = session.is_some();
    let refuse = |e: ConnectionError| {
        tracing::warn!(peer = peer_addr, reason = %e, "refusing peer");
        core.events.emit(|| SocketEvent::HandshakeFailed {
            peer: peer_addr.to_owned(),
            reason: e.reason(),
        });
        e
    };
    // PAIR: one peer only; a later connection is closed (libzmq pair.cpp xattach_pipe).
    let pair_owner = match (&session, core.socket_type) {
        (_, t) if t != SocketType::Pair => None,
        (Some((key, _)), _) => Some(PairOwner::Endpoint(*key)),
        (None, _) => Some(core.pair.accepted()),
    };
    if pair_owner.is_some_and(|owner| !core.pair.claim(owner)) {
        return Err(refuse(ConnectionError::PairTaken));
    }
    let (key, pipe) = match session {
        Some(session) => session,
        None => {
            let pipe = settings.new_pipe(core.peers.writable.clone(), Some(peer_addr));
            (core.peers.add(pipe.clone()), pipe)
        }
    };
    let close = close_parent.child_token();
    let gate = Arc::new(InputGate::default());
    let connection = core.peers.link(key, close.clone(), gate.clone());
    let prefix = if core.socket_type == SocketType::Router {
        match core.peers.name(key, identity, settings.handover) {
            Ok(id) => Some(id),
            Err(DuplicateRoutingId(id)) => {
                if persistent {
                    core.peers.disconnected(key);
                } else {
                    core.peers.remove(key);
                }
                return Err(refuse(ConnectionError::DuplicateRoutingId(printable(&id))));
            }
        }
    } else {
        None
    };
    core.events.emit(|| SocketEvent::HandshakeSucceeded {
        peer: peer_addr.to_owned(),
        routing_id: prefix.clone(),
    });
    if matches!(core.socket_type, SocketType::Sub | SocketType::XSub) {
        resubscribe(core, &pipe);
    }
    if let Some(welcome) = &settings.welcome {
        let _ = pipe.try_push(welcome.clone());
    }
    Ok(Attached {
        key,
        pipe,
        routing_id: prefix.as_deref().map(printable),
        delivery: Delivery {
            inbound: core.inbound.clone(),
            peer: key,
            connection,
            gate,
            prefix,
            subscribers: core
                .subscribers
                .clone()
                .map(|table| table as Arc<dyn SubscriptionTable>),
        },
        close,
        persistent,
        pair_owner,
    })
}

/// Tells a ROUTER application that the peer arrived (with its address), before
/// anything the peer sends.
pub(crate) async fn announce(core: &Core, attached: &Attached, peer_addr: &str) {
    if let Some(joined) = attached
        .delivery
        .lifecycle(InboundKind::Joined(peer_addr.into()))
    {
        // Refused only when the socket is gone, and then nobody asks.
        let _ = core.inbound.push(&mut vec![joined]).await;
    }
}

/// The peer's connection ended: it leaves the table (a connecting endpoint keeps its
/// pipe for the next connection), PAIR's slot and the subscription table; a ROUTER
/// application is told, after everything the connection delivered.
pub(crate) async fn detach(
    core: &Core,
    attached: Attached,
    peer_addr: &str,
    end: &ConnectionError,
) {
    let key = attached.key;
    let released = if attached.persistent {
        core.peers.disconnected(key)
    } else {
        core.peers.remove(key)
    };
    if let Some(owner @ PairOwner::Accepted(_)) = attached.pair_owner {
        core.pair.release(owner);
    }
    let mut gone = Vec::new();
    if let Some(subscribers) = &core.subscribers {
        subscribers.peer_gone(key, &mut gone);
    }
    gone.extend(attached.delivery.lifecycle(InboundKind::Left));
    if !gone.is_empty() {
        let _ = core.inbound.push(&mut gone).await;
    }
    log_end(
        peer_addr,
        attached.routing_id.as_deref(),
        end,
        "connection closed",
    );
    core.events.emit(|| SocketEvent::Disconnected {
        peer: peer_addr.to_owned(),
        routing_id: released,
        reason: end.reason(),
    });
}

/// A failed handshake of an accepted connection, for the log: any peer can cause
/// these at will, so they are counted per kind, and said at most once a second per
/// kind with the addresses that caused the most. Refusals by the endpoint's
/// defences were counted where they were decided; timeouts and early closes are
/// debug noise.
fn log_refused_handshake(
    admitted: &Admitted,
    settings: &Settings,
    peer_addr: &str,
    e: &ConnectionError,
) {
    let logins = match settings.handshake.mechanism.name() {
        n if n == crate::proto::MechanismName::PLAIN => "PLAIN logins",
        n if n == crate::proto::MechanismName::CURVE => "CURVE logins",
        _ => "connections",
    };
    let handshakes = |why| Topic {
        what: "handshakes",
        why,
    };
    let topic = match e {
        ConnectionError::Handshake(h) => match h {
            HandshakeError::Refused(_) => return,
            HandshakeError::Denied(_) => Topic {
                what: logins,
                why: "credentials refused",
            },
            HandshakeError::Greeting(_) => handshakes("bad greeting"),
            HandshakeError::MechanismMismatch { .. } => handshakes("security mechanism mismatch"),
            HandshakeError::Frame(_) | HandshakeError::DataBeforeReady => {
                handshakes("bad handshake frame")
            }
            HandshakeError::Command(_) | HandshakeError::UnexpectedCommand(_) => {
                handshakes("bad handshake command")
            }
            HandshakeError::PeerError(_) => handshakes("ERROR from the peer"),
            HandshakeError::UnknownSocketType(_)
            | HandshakeError::IncompatibleSocketType { .. } => handshakes("wrong socket type"),
            HandshakeError::Crypto(_) => handshakes("failed CURVE checks"),
            HandshakeError::Timeout | HandshakeError::PeerClosed(_) => {
                tracing::debug!(peer = peer_addr, reason = %e, "handshake failed");
                return;
            }
        },
        e if e.is_protocol_error() => handshakes("protocol error"),
        e => {
            tracing::debug!(peer = peer_addr, reason = %e, "handshake failed");
            return;
        }
    };
    admitted
        .defenses()
        .log(topic, admitted.source(), || format!("{peer_addr}: {e}"));
}

/// Protocol errors are the peer's fault and worth a warning that names it; ordinary
/// disconnects are debug noise.
fn log_end(peer: &str, routing_id: Option<&str>, end: &ConnectionError, what: &str) {
    if end.is_protocol_error() {
        tracing::warn!(peer, routing_id, reason = %end, "{what}");
    } else {
        tracing::debug!(peer, routing_id, reason = %end, "{what}");
    }
}
