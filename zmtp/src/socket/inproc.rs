//! `inproc://`: sockets of the same process linked without a byte stream.
//!
//! A bound name sits in a process-wide registry. A connecting socket looks it up
//! (or waits until it is bound: connect-before-bind works, as in libzmq 4) and joins
//! both sockets as peers of each other, exactly as a TCP connection would after its
//! handshake (`attach`). Two forwarding loops then move what each side queues into
//! the other side's inbound queue: whole [`Message`](crate::Message)s, whose frames
//! are reference-counted [`Bytes`], so nothing is framed, encoded or copied.
//! Subscriptions travel the same way, straight into a publisher's table.
//!
//! High-water marks hold as in libzmq: a sender's queue holds up to its send HWM
//! and the receiver's up to its receive HWM; beyond that PUSH waits and PUB drops.
//!
//! When the bound socket closes, its connectors wait for the name to be bound again
//! (a reconnect); when a sender closes, what it queued is still delivered for up to
//! its linger period.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::pair::PairOwner;
use super::peers::PeerKey;
use super::session::{announce, attach, detach};
use super::settings::Settings;
use super::shared::Core;
use crate::delivery::Delivery;
use crate::engine::ConnectionError;
use crate::monitor::SocketEvent;
use crate::pipe::{Outbound, Pipe};
use crate::proto::HandshakeError;
use crate::transport::Endpoint;

/// A bound name: the socket behind it and the options it was bound with.
#[derive(Debug)]
struct Binding {
    core: Weak<Core>,
    settings: Arc<Settings>,
    serial: u64,
}

#[derive(Debug, Default)]
struct Names {
    bound: HashMap<String, Binding>,
    next_serial: u64,
}

/// Every inproc name bound in this process.
#[derive(Debug, Default)]
struct Registry {
    names: Mutex<Names>,
    /// Signalled when a name is bound.
    bound: Notify,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::default);

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Names> {
        // Single map operations under the lock: a poisoned lock still holds a valid map.
        self.names.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live socket bound to `name`, if any.
    fn lookup(&self, name: &str) -> Option<(Arc<Core>, Arc<Settings>)> {
        let names = self.lock();
        let binding = names.bound.get(name)?;
        let core = binding.core.upgrade()?;
        (!core.cancel.is_cancelled()).then(|| (core, binding.settings.clone()))
    }
}

/// Binds `name` for `core` until the socket closes.
pub(super) fn bind(core: &Arc<Core>, name: &str, settings: Arc<Settings>) -> io::Result<()> {
    let mut names = REGISTRY.lock();
    if let Some(existing) = names.bound.get(name) {
        let live = existing
            .core
            .upgrade()
            .is_some_and(|core| !core.cancel.is_cancelled());
        if live {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("inproc://{name} is already bound"),
            ));
        }
    }
    let serial = names.next_serial;
    names.next_serial += 1;
    names.bound.insert(
        name.to_owned(),
        Binding {
            core: Arc::downgrade(core),
            settings,
            serial,
        },
    );
    drop(names);
    REGISTRY.bound.notify_waiters();

    let (cancel, name) = (core.cancel.clone(), name.to_owned());
    core.tasks.spawn(async move {
        cancel.cancelled().await;
        let mut names = REGISTRY.lock();
        if names.bound.get(&name).is_some_and(|b| b.serial == serial) {
            names.bound.remove(&name);
        }
    });
    Ok(())
}

/// How a link ended, for the connecting side.
enum LinkEnd {
    /// Our socket closed.
    Closed,
    /// The bound socket went away: wait for the name to be bound again.
    PeerGone,
    /// The peers cannot talk (incompatible types, PAIR taken): give up, as libzmq
    /// does after a protocol error.
    Refused,
}

/// Keeps a connecting socket linked to `name`, waiting for it to be bound whenever
/// it is not, until the socket closes or the link is refused.
pub(super) async fn keep_connected(
    core: Arc<Core>,
    name: String,
    settings: Arc<Settings>,
    key: PeerKey,
    pipe: Arc<Pipe>,
) {
    let endpoint = Endpoint::Inproc(name.clone());
    loop {
        let bound = REGISTRY.bound.notified();
        tokio::pin!(bound);
        bound.as_mut().enable();
        match REGISTRY.lookup(&name) {
            Some((their_core, their_settings)) => {
                core.events.emit(|| SocketEvent::Connected {
                    endpoint: endpoint.clone(),
                });
                let ours = Side {
                    core: core.clone(),
                    settings: settings.clone(),
                };
                let theirs = Side {
                    core: their_core,
                    settings: their_settings,
                };
                match link(&ours, &theirs, &endpoint, (key, pipe.clone())).await {
                    LinkEnd::Closed | LinkEnd::Refused => break,
                    LinkEnd::PeerGone => {}
                }
            }
            None => {
                tokio::select! {
                    () = bound => {}
                    () = core.cancel.cancelled() => break,
                }
            }
        }
    }
    core.peers.remove(key);
    core.pair.release(PairOwner::Endpoint(key));
}

/// One socket of a link.
struct Side {
    core: Arc<Core>,
    settings: Arc<Settings>,
}

impl Side {
    /// The routing id this side announces (REQ, DEALER and ROUTER only, as in READY).
    fn identity(&self) -> Bytes {
        if self.core.socket_type.sends_identity() {
            self.settings.identity()
        } else {
            Bytes::new()
        }
    }
}

/// Joins our socket and the bound one as peers and forwards both ways until either
/// closes.
async fn link(
    ours: &Side,
    theirs: &Side,
    endpoint: &Endpoint,
    session: (PeerKey, Arc<Pipe>),
) -> LinkEnd {
    let peer_addr = endpoint.to_string();
    let (our_type, their_type) = (ours.core.socket_type, theirs.core.socket_type);
    if !our_type.is_compatible(their_type) {
        let e = HandshakeError::IncompatibleSocketType {
            ours: our_type,
            peer: their_type,
        };
        tracing::warn!(peer = %peer_addr, reason = %e, "refusing peer");
        ours.core.events.emit(|| SocketEvent::HandshakeFailed {
            peer: peer_addr.clone(),
            reason: ConnectionError::from(e).reason(),
        });
        return LinkEnd::Refused;
    }
    let our_end = match attach(
        &ours.core,
        &peer_addr,
        &ours.settings,
        Some(session),
        &theirs.identity(),
        &ours.core.cancel,
    ) {
        Ok(attached) => attached,
        Err(_) => return LinkEnd::Refused,
    };
    theirs.core.events.emit(|| SocketEvent::Accepted {
        endpoint: endpoint.clone(),
        peer: peer_addr.clone(),
    });
    let their_end = match attach(
        &theirs.core,
        &peer_addr,
        &theirs.settings,
        None,
        &ours.identity(),
        &theirs.core.cancel,
    ) {
        Ok(attached) => attached,
        Err(e) => {
            ours.core.events.emit(|| SocketEvent::HandshakeFailed {
                peer: peer_addr.clone(),
                reason: e.reason(),
            });
            detach(&ours.core, our_end, &peer_addr, &e).await;
            return LinkEnd::Refused;
        }
    };

    announce(&ours.core, &our_end, &peer_addr).await;
    announce(&theirs.core, &their_end, &peer_addr).await;
    let stop = CancellationToken::new();
    let watch = async {
        tokio::select! {
            () = our_end.close.cancelled() => {}
            () = their_end.close.cancelled() => {}
        }
        stop.cancel();
    };
    let to_them = forward(
        our_end.pipe.clone(),
        their_end.delivery.clone(),
        (&stop, &our_end.close),
        ours.settings.linger,
    );
    let to_us = forward(
        their_end.pipe.clone(),
        our_end.delivery.clone(),
        (&stop, &their_end.close),
        theirs.settings.linger,
    );
    tokio::join!(watch, to_them, to_us);

    let we_closed = our_end.close.is_cancelled();
    let (our_reason, their_reason) = if our_end.pipe.subscriptions_lost() {
        (ConnectionError::SubscriptionsLost, ConnectionError::Closed)
    } else if their_end.pipe.subscriptions_lost() {
        (ConnectionError::Closed, ConnectionError::SubscriptionsLost)
    } else if we_closed {
        (ConnectionError::LocalClose, ConnectionError::Closed)
    } else {
        (ConnectionError::Closed, ConnectionError::LocalClose)
    };
    detach(&ours.core, our_end, &peer_addr, &our_reason).await;
    // Their side may have to hand cancels to an application that is not reading
    // (XPUB): that must not hold up our socket's close.
    let their_core = theirs.core.clone();
    theirs.core.tasks.spawn(async move {
        detach(&their_core, their_end, &peer_addr, &their_reason).await;
    });
    if ours.core.cancel.is_cancelled() {
        LinkEnd::Closed
    } else {
        LinkEnd::PeerGone
    }
}

/// Moves everything queued on `from` to `to` until `stop`; then delivers what is
/// still queued for up to `linger`, unless the receiver is gone. When `from` lost
/// subscription changes (the receiver fell too far behind), cancels `restart`, the
/// sender's end of the link, as a TCP engine closes its connection: the next link
/// starts with the full set.
async fn forward(
    from: Arc<Pipe>,
    to: Delivery,
    (stop, restart): (&CancellationToken, &CancellationToken),
    linger: Duration,
) {
    let mut items = VecDeque::new();
    let mut batch = Vec::new();
    loop {
        if to.inbound.is_closed() {
            // Leave what is queued to the next link (a rebound name) rather than
            // hand it to a socket that is gone.
            return;
        }
        if from.subscriptions_lost() {
            restart.cancel();
            return;
        }
        if to.gate.is_paused() && !stop.is_cancelled() {
            tokio::select! {
                () = to.gate.opened() => {}
                () = stop.cancelled() => {}
            }
            continue;
        }
        from.drain(&mut items);
        for item in items.drain(..) {
            match item {
                Outbound::Message(msg) => to.message(msg, &mut batch),
                // Not made for inproc links (they do not note a thread), but a
                // body copied in is still a message.
                Outbound::Inline(body) => to.message(
                    crate::Message::from(bytes::Bytes::copy_from_slice(body.bytes())),
                    &mut batch,
                ),
                // Not made for inproc links either: the messages again.
                Outbound::Framed(framed) => {
                    for msg in framed.into_messages() {
                        to.message(msg, &mut batch);
                    }
                }
                Outbound::Subscribe(topic) => to.subscription(true, topic, &mut batch),
                Outbound::Cancel(topic) => to.subscription(false, topic, &mut batch),
            }
        }
        if batch.is_empty() {
            if stop.is_cancelled() || from.is_closed() {
                return;
            }
            tokio::select! {
                () = from.wait_for_messages() => {}
                () = stop.cancelled() => {}
            }
            continue;
        }
        let delivered = if stop.is_cancelled() {
            tokio::time::timeout(linger, to.inbound.push(&mut batch))
                .await
                .is_ok_and(|pushed| pushed.is_ok())
        } else {
            // Pushing waits while the receiver is at its HWM; a stop meanwhile leaves
            // the batch whole (the push is all or nothing) for the linger round.
            tokio::select! {
                pushed = to.inbound.push(&mut batch) => pushed.is_ok(),
                () = stop.cancelled() => true,
            }
        };
        if !delivered {
            return;
        }
    }
}
