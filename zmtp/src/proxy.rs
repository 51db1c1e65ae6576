//! A proxy between two sockets: libzmq's `zmq_proxy` and `zmq_proxy_steerable`.
//!
//! [`proxy`] moves every message that arrives on `frontend` to `backend` and every
//! message that arrives on `backend` to `frontend`, whole (all frames, as [`Bytes`](bytes::Bytes)
//! clones: no payload is copied), optionally sending a copy of each one to a capture
//! socket. [`proxy_steerable`] does the same and obeys a [`ProxyControl`] handle:
//! pause, resume, terminate and statistics, as libzmq's control socket commands
//! `PAUSE`, `RESUME`, `TERMINATE` and `STATISTICS`.
//!
//! The classic use is a shared queue (zguide "rrbroker"): REQ clients connect to a
//! ROUTER frontend, REP workers connect to a DEALER backend, and the proxy in between
//! load-balances requests over the workers and routes each reply back to its client.
//!
//! ```
//! use zmtp::{proxy, Message, Socket, SocketType};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), zmtp::Error> {
//! let mut frontend = Socket::new(SocketType::Router);
//! let clients = frontend.bind("tcp://127.0.0.1:0").await?;
//! let mut backend = Socket::new(SocketType::Dealer);
//! let workers = backend.bind("tcp://127.0.0.1:0").await?;
//! let (control, commands) = proxy::control();
//! let queue = tokio::spawn(async move {
//!     proxy::proxy_steerable(&mut frontend, &mut backend, None, commands).await
//! });
//!
//! let mut worker = Socket::new(SocketType::Rep);
//! worker.connect(&workers.to_string())?;
//! let mut client = Socket::new(SocketType::Req);
//! client.connect(&clients.to_string())?;
//!
//! client.send("ping").await?;
//! let request = worker.recv().await?;
//! assert_eq!(request, Message::from("ping"));
//! worker.send("pong").await?;
//! assert_eq!(client.recv().await?, Message::from("pong"));
//!
//! let stats = control.statistics().await.expect("the proxy runs");
//! assert_eq!(stats.frontend.messages_in, 1);
//! assert_eq!(stats.backend.messages_in, 1);
//! control.terminate().await.expect("the proxy runs");
//! queue.await.expect("the proxy task")?;
//! # Ok(())
//! # }
//! ```
//!
//! # Behaviour, and where it differs from libzmq
//!
//! - **Fairness.** The proxy takes one message at a time and alternates which side
//!   it looks at first, so a busy side cannot starve the other (libzmq forwards
//!   bursts of up to 1000 messages per side and turn).
//! - **A destination that would make `send` wait** (a DEALER backend with no worker
//!   yet, or every worker's queue at the high-water mark) stops only the direction
//!   that feeds it: the proxy reads a side only while the other side can take a
//!   message ([`Socket::poll_send_ready`]), as libzmq 4.3 polls for `POLLOUT`. Replies
//!   keep flowing meanwhile, and what waits stays in the source socket's queues.
//! - **Capture never blocks.** libzmq sends to the capture socket with a blocking
//!   send, so a capture socket that can block (DEALER or PUSH at its high-water mark
//!   or without a peer) stalls libzmq's proxy; the usual PUB capture drops instead.
//!   Here a copy the capture socket cannot take at once is dropped, whatever its
//!   type, and counted in [`ProxyStatistics::capture_dropped`]. Any other capture
//!   error ends the proxy, as in libzmq.
//! - **Errors.** A receive or send error ends the proxy with that error, as in libzmq,
//!   except [`Error::HostUnreachable`] (a ROUTER with `router_mandatory` asked to
//!   reply to a client that left): that message is dropped and the proxy goes on, as
//!   every other peer should not suffer for one that left.
//! - **Cancelling.** Dropping the proxy future stops it; a message received but not
//!   yet handed to its destination is then lost. [`ProxyControl::terminate`] stops it
//!   at the same point.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::{Context, Poll};

use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::{Message, Socket};

/// Commands a [`ProxyControl`] may have queued before the proxy reads them.
const COMMAND_CAPACITY: usize = 16;

/// Forwards messages between `frontend` and `backend` until a socket fails, sending
/// a copy of each forwarded message to `capture` when given (libzmq `zmq_proxy`).
///
/// It only returns on an error (for example [`Error::Closed`]); drop the future, or
/// use [`proxy_steerable`], to stop it. See the [module docs](self) for the details.
pub async fn proxy(
    frontend: &mut Socket,
    backend: &mut Socket,
    capture: Option<&mut Socket>,
) -> Result<(), Error> {
    Proxy::new(frontend, backend, capture, None).run().await
}

/// [`proxy`], steered by the [`ProxyControl`] handles of `commands` (libzmq
/// `zmq_proxy_steerable`): returns `Ok(())` once [`ProxyControl::terminate`] is
/// called.
///
/// When every [`ProxyControl`] is dropped the proxy carries on (unpaused) as a plain
/// [`proxy`].
pub async fn proxy_steerable(
    frontend: &mut Socket,
    backend: &mut Socket,
    capture: Option<&mut Socket>,
    commands: ProxyCommands,
) -> Result<(), Error> {
    Proxy::new(frontend, backend, capture, Some(commands.0))
        .run()
        .await
}

/// A control handle and the commands to give [`proxy_steerable`].
pub fn control() -> (ProxyControl, ProxyCommands) {
    let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
    (ProxyControl { commands: tx }, ProxyCommands(rx))
}

/// The receiving end of a [`ProxyControl`]; hand it to [`proxy_steerable`].
#[derive(Debug)]
pub struct ProxyCommands(mpsc::Receiver<Command>);

/// Steers a running [`proxy_steerable`]; clone it to steer from several places.
///
/// Every call returns once the proxy has applied the command, so after `pause()`
/// returns, no further message is forwarded until `resume()`.
#[derive(Debug, Clone)]
pub struct ProxyControl {
    commands: mpsc::Sender<Command>,
}

/// The proxy a [`ProxyControl`] steers has ended (terminated, failed or dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the proxy is not running")]
pub struct ProxyStopped;

impl ProxyControl {
    /// Stops forwarding: messages wait in the sockets (up to their high-water marks)
    /// until [`ProxyControl::resume`]. Pausing a paused proxy does nothing.
    pub async fn pause(&self) -> Result<(), ProxyStopped> {
        self.ask(Command::Pause).await
    }

    /// Forwards again after [`ProxyControl::pause`].
    pub async fn resume(&self) -> Result<(), ProxyStopped> {
        self.ask(Command::Resume).await
    }

    /// Ends the proxy: its future returns `Ok(())` once this returns.
    pub async fn terminate(&self) -> Result<(), ProxyStopped> {
        self.ask(Command::Terminate).await
    }

    /// Messages and bytes forwarded so far (libzmq's `STATISTICS`).
    pub async fn statistics(&self) -> Result<ProxyStatistics, ProxyStopped> {
        self.ask(Command::Statistics).await
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ProxyStopped> {
        let (ack, answer) = oneshot::channel();
        self.commands
            .send(command(ack))
            .await
            .map_err(|_| ProxyStopped)?;
        answer.await.map_err(|_| ProxyStopped)
    }
}

/// What a [`ProxyControl`] asks; each carries the channel its answer goes back on.
#[derive(Debug)]
enum Command {
    Pause(oneshot::Sender<()>),
    Resume(oneshot::Sender<()>),
    Terminate(oneshot::Sender<()>),
    Statistics(oneshot::Sender<ProxyStatistics>),
}

/// Counters of one side of the proxy. A multipart message counts once, its bytes are
/// the sum of its frames (as libzmq counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SideStatistics {
    /// Messages received on this socket.
    pub messages_in: u64,
    /// Bytes received on this socket.
    pub bytes_in: u64,
    /// Messages sent on this socket.
    pub messages_out: u64,
    /// Bytes sent on this socket.
    pub bytes_out: u64,
}

/// What [`ProxyControl::statistics`] returns: libzmq's eight `STATISTICS` counters,
/// plus the capture copies dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyStatistics {
    /// The frontend's counters.
    pub frontend: SideStatistics,
    /// The backend's counters.
    pub backend: SideStatistics,
    /// Copies the capture socket could not take at once, dropped.
    pub capture_dropped: u64,
}

/// Which way a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    FrontendToBackend,
    BackendToFrontend,
}

/// What the proxy does next.
enum Next {
    Command(Option<Command>),
    Received(Direction, Result<Message, Error>),
}

/// Whether the proxy goes on after a command.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Terminate,
}

struct Proxy<'a> {
    frontend: &'a mut Socket,
    backend: &'a mut Socket,
    capture: Option<&'a mut Socket>,
    state: State,
}

/// The proxy's state besides its sockets (split off so a pending send can borrow a
/// socket while commands change the state).
struct State {
    commands: Option<mpsc::Receiver<Command>>,
    paused: bool,
    /// Look at the backend first next time (alternates for fairness).
    backend_first: bool,
    stats: ProxyStatistics,
}

impl State {
    /// Applies a command (`None`: every handle is gone).
    fn apply(&mut self, command: Option<Command>) -> Flow {
        // A handle that stopped waiting for the answer is no reason to fail.
        match command {
            None => {
                self.commands = None;
                self.paused = false;
            }
            Some(Command::Pause(ack)) => {
                self.paused = true;
                let _ = ack.send(());
            }
            Some(Command::Resume(ack)) => {
                self.paused = false;
                let _ = ack.send(());
            }
            Some(Command::Statistics(ack)) => {
                let _ = ack.send(self.stats);
            }
            Some(Command::Terminate(ack)) => {
                let _ = ack.send(());
                return Flow::Terminate;
            }
        }
        Flow::Continue
    }

    fn poll_command(&mut self, cx: &mut Context<'_>) -> Poll<Option<Command>> {
        match &mut self.commands {
            Some(commands) => commands.poll_recv(cx),
            None => Poll::Pending,
        }
    }
}

impl<'a> Proxy<'a> {
    fn new(
        frontend: &'a mut Socket,
        backend: &'a mut Socket,
        capture: Option<&'a mut Socket>,
        commands: Option<mpsc::Receiver<Command>>,
    ) -> Proxy<'a> {
        Proxy {
            frontend,
            backend,
            capture,
            state: State {
                commands,
                paused: false,
                backend_first: false,
                stats: ProxyStatistics::default(),
            },
        }
    }

    async fn run(mut self) -> Result<(), Error> {
        loop {
            match poll_fn(|cx| self.poll_next(cx)).await {
                Next::Command(command) => {
                    if self.state.apply(command) == Flow::Terminate {
                        return Ok(());
                    }
                }
                Next::Received(direction, msg) => {
                    if self.forward(direction, msg?).await? == Flow::Terminate {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Commands first, then (unless paused) one message from the side whose turn it
    /// is, else from the other side. A side is polled only when the one before had
    /// nothing, so no message is taken and left behind.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Next> {
        if let Poll::Ready(command) = self.state.poll_command(cx) {
            return Poll::Ready(Next::Command(command));
        }
        if self.state.paused {
            return Poll::Pending;
        }
        let order = if self.state.backend_first {
            [Direction::BackendToFrontend, Direction::FrontendToBackend]
        } else {
            [Direction::FrontendToBackend, Direction::BackendToFrontend]
        };
        for direction in order {
            let (source, destination) = match direction {
                Direction::FrontendToBackend => (&mut *self.frontend, &mut *self.backend),
                Direction::BackendToFrontend => (&mut *self.backend, &mut *self.frontend),
            };
            if destination.poll_send_ready(cx).is_pending() {
                continue;
            }
            if let Poll::Ready(msg) = source.poll_recv(cx) {
                self.state.backend_first = direction == Direction::FrontendToBackend;
                return Poll::Ready(Next::Received(direction, msg));
            }
        }
        Poll::Pending
    }

    /// Copies `msg` to the capture socket, then sends it on, serving commands while
    /// the send waits.
    async fn forward(&mut self, direction: Direction, msg: Message) -> Result<Flow, Error> {
        let bytes = msg.byte_len() as u64;
        let (source, destination) = match direction {
            Direction::FrontendToBackend => (&mut self.state.stats.frontend, &mut *self.backend),
            Direction::BackendToFrontend => (&mut self.state.stats.backend, &mut *self.frontend),
        };
        source.messages_in += 1;
        source.bytes_in += bytes;
        if let Some(capture) = self.capture.as_deref_mut() {
            // One poll: a copy that would wait is dropped (see the module docs).
            match capture.send(msg.clone()).now_or_never() {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(e),
                None => self.state.stats.capture_dropped += 1,
            }
        }
        let mut send = pin!(destination.send(msg));
        let sent = loop {
            let next = poll_fn(|cx| {
                if let Poll::Ready(sent) = send.as_mut().poll(cx) {
                    return Poll::Ready(Ok(sent));
                }
                self.state.poll_command(cx).map(Err)
            })
            .await;
            match next {
                Ok(sent) => break sent,
                Err(command) => {
                    if self.state.apply(command) == Flow::Terminate {
                        return Ok(Flow::Terminate);
                    }
                }
            }
        };
        match sent {
            Ok(()) => {
                let out = match direction {
                    Direction::FrontendToBackend => &mut self.state.stats.backend,
                    Direction::BackendToFrontend => &mut self.state.stats.frontend,
                };
                out.messages_out += 1;
                out.bytes_out += bytes;
                Ok(Flow::Continue)
            }
            Err(Error::HostUnreachable(_)) => {
                tracing::debug!("proxy: dropping a message for a peer that is gone");
                Ok(Flow::Continue)
            }
            Err(e) => Err(e),
        }
    }
}
