//! Shared scaffolding of the pyzmq interop tests: which transport, which side binds,
//! fresh endpoints for each, and [`ZmqPeer`], a driver for the line-driven pyzmq
//! peer `zmtp/tests/py/zmq_peer.py` (see the script's docstring for its commands).
//!
//! Nothing here depends on `zmtp`: a [`ZmqPeer`] speaks in any message type that
//! converts from and into frames (`Vec<Vec<u8>>` by default; the `zmtp` tests use
//! `ZmqPeer<zmtp::Message>`).

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use crate::{frames, PyPeer};

/// The transport a test runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `tcp://` on the loopback interface.
    Tcp,
    /// `ipc://` (a Unix domain socket under the temp dir).
    Ipc,
}

/// Which side of a pairing binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// We bind, pyzmq connects.
    WeBind,
    /// pyzmq binds, we connect.
    TheyBind,
}

/// Every transport.
pub const TRANSPORTS: [Transport; 2] = [Transport::Tcp, Transport::Ipc];

/// Every transport with either side binding.
pub const COMBOS: [(Transport, Side); 4] = [
    (Transport::Tcp, Side::WeBind),
    (Transport::Tcp, Side::TheyBind),
    (Transport::Ipc, Side::WeBind),
    (Transport::Ipc, Side::TheyBind),
];

/// An endpoint for our socket to bind: port 0 (the socket reports the real one), or
/// a fresh ipc path.
pub fn our_bind_endpoint(t: Transport) -> String {
    match t {
        Transport::Tcp => "tcp://127.0.0.1:0".into(),
        Transport::Ipc => crate::ipc_endpoint("rs"),
    }
}

/// An endpoint for a pyzmq socket to bind: libzmq's wildcard port (the peer reports
/// the real one in its `READY` line), or a fresh ipc path.
pub fn their_bind_endpoint(t: Transport) -> String {
    match t {
        Transport::Tcp => "tcp://127.0.0.1:*".into(),
        Transport::Ipc => crate::ipc_endpoint("py"),
    }
}

/// A fixed endpoint, for a peer that is restarted on the same address.
pub fn fixed_endpoint(t: Transport) -> String {
    match t {
        Transport::Tcp => crate::tcp_endpoint(),
        Transport::Ipc => crate::ipc_endpoint("fixed"),
    }
}

/// The path of `zmtp/tests/py/zmq_peer.py`.
pub fn zmq_peer_script() -> PathBuf {
    crate::workspace_root().join("zmtp/tests/py/zmq_peer.py")
}

/// The rest of `peer`'s next line, which must start with `prefix` (and one space, if
/// there is one).
///
/// # Panics
///
/// On a line starting with `ERROR` (what the interop scripts print when anything
/// goes wrong), on any other line that does not start with `prefix`, or as
/// [`PyPeer::line`].
pub async fn answer(peer: &mut PyPeer, prefix: &str) -> String {
    let line = peer.line().await;
    if line.starts_with("ERROR") {
        peer.fail(&line);
    }
    match line.strip_prefix(prefix) {
        Some(rest) => rest.strip_prefix(' ').unwrap_or(rest).to_owned(),
        None => peer.fail(&format!("expected {prefix}, got {line:.200}")),
    }
}

/// Command-line options of a `zmq_peer.py` process: `--type` first, then options and
/// exactly one of [`ZmqArgs::bind`] and [`ZmqArgs::connect`].
#[derive(Clone, Debug)]
pub struct ZmqArgs(Vec<String>);

impl ZmqArgs {
    /// `--type socket_type` (`DEALER`, `ROUTER`, `PUB`, `SUB`, ...).
    pub fn new(socket_type: &str) -> ZmqArgs {
        ZmqArgs(vec!["--type".into(), socket_type.into()])
    }

    /// Appends `args` as they are.
    pub fn with(mut self, args: &[&str]) -> ZmqArgs {
        self.0.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// `--identity HEX`: the routing id (`ZMQ_ROUTING_ID`).
    pub fn identity(self, id: &[u8]) -> ZmqArgs {
        self.with(&["--identity", &frames::to_hex(id)])
    }

    /// `--heartbeat SPEC`, `ivl,timeout,ttl` in milliseconds, 0 for unset.
    pub fn heartbeat(self, spec: &str) -> ZmqArgs {
        self.with(&["--heartbeat", spec])
    }

    /// `--mandatory` (`ZMQ_ROUTER_MANDATORY`).
    pub fn mandatory(self) -> ZmqArgs {
        self.with(&["--mandatory"])
    }

    /// `--xpub-verbose` (`ZMQ_XPUB_VERBOSE`).
    pub fn xpub_verbose(self) -> ZmqArgs {
        self.with(&["--xpub-verbose"])
    }

    /// `--monitor`: record socket events (see [`ZmqPeer::events`]).
    pub fn monitor(self) -> ZmqArgs {
        self.with(&["--monitor"])
    }

    /// `--curve-server SECRET`: a CURVE server with this Z85 secret key.
    pub fn curve_server(self, secret_z85: &str) -> ZmqArgs {
        // `--opt=value`: a Z85 key may start with '-', which argparse would take
        // for an option.
        self.with(&[&format!("--curve-server={secret_z85}")])
    }

    /// `--curve-client SECRET,SERVER_PUBLIC`: a CURVE client (Z85 keys).
    pub fn curve_client(self, secret_z85: &str, server_public_z85: &str) -> ZmqArgs {
        self.with(&[&format!("--curve-client={secret_z85},{server_public_z85}")])
    }

    /// `--curve-allow KEY,...`: `zmq.auth` lets in only these Z85 client public
    /// keys (none when `keys` is empty).
    pub fn curve_allow(self, keys: &[&str]) -> ZmqArgs {
        let list = if keys.is_empty() {
            "none".to_owned()
        } else {
            keys.join(",")
        };
        self.with(&[&format!("--curve-allow={list}")])
    }

    /// `--bind ENDPOINT`.
    pub fn bind(self, endpoint: &str) -> ZmqArgs {
        self.with(&["--bind", endpoint])
    }

    /// `--connect ENDPOINT`.
    pub fn connect(self, endpoint: &str) -> ZmqArgs {
        self.with(&["--connect", endpoint])
    }

    /// The socket type given to [`ZmqArgs::new`].
    pub fn socket_type(&self) -> &str {
        &self.0[1]
    }

    fn binds(&self) -> bool {
        self.0.iter().any(|a| a == "--bind")
    }
}

/// A running `zmq_peer.py` process: one pyzmq socket, driven by lines. Killed on
/// drop, and the socket file it bound (which a killed libzmq leaves behind) removed.
///
/// `M` is the test's message type: what [`ZmqPeer::send`] takes (anything that
/// converts into it) and what [`ZmqPeer::recv`] returns.
pub struct ZmqPeer<M = Vec<Vec<u8>>> {
    peer: PyPeer,
    socket_type: String,
    endpoint: String,
    ipc_file: Option<PathBuf>,
    message: PhantomData<fn() -> M>,
}

impl<M> fmt::Debug for ZmqPeer<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZmqPeer")
            .field("peer", &self.peer)
            .field("socket_type", &self.socket_type)
            .field("endpoint", &self.endpoint)
            .field("ipc_file", &self.ipc_file)
            .finish()
    }
}

impl<M> ZmqPeer<M>
where
    M: From<Vec<Vec<u8>>> + IntoIterator,
    M::Item: AsRef<[u8]>,
{
    /// Starts a peer with `args` and waits for it to be bound or connected.
    pub async fn start(args: ZmqArgs) -> ZmqPeer<M> {
        let mut peer = PyPeer::spawn_script(zmq_peer_script(), &args.0);
        let endpoint = answer(&mut peer, "READY").await;
        let ipc_file = endpoint
            .strip_prefix("ipc://")
            .filter(|_| args.binds())
            .map(PathBuf::from);
        ZmqPeer {
            peer,
            socket_type: args.socket_type().to_owned(),
            endpoint,
            ipc_file,
            message: PhantomData,
        }
    }

    /// Starts a `socket_type` peer bound to `endpoint`.
    pub async fn bind(socket_type: &str, endpoint: &str) -> ZmqPeer<M> {
        ZmqPeer::start(ZmqArgs::new(socket_type).bind(endpoint)).await
    }

    /// Starts a `socket_type` peer connected to `endpoint`.
    pub async fn connect(socket_type: &str, endpoint: &str) -> ZmqPeer<M> {
        ZmqPeer::start(ZmqArgs::new(socket_type).connect(endpoint)).await
    }

    /// Changes how long each answer of the peer is waited for (30 s by default):
    /// for a flood or a long `recv_many`.
    pub fn with_timeout(mut self, timeout: Duration) -> ZmqPeer<M> {
        self.peer.set_timeout(timeout);
        self
    }

    /// The socket type (`DEALER`, `SUB`, ...).
    pub fn socket_type(&self) -> &str {
        &self.socket_type
    }

    /// Where it is bound (the real endpoint) or what it connected to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The rest of the peer's next line, which must start with `prefix` (see
    /// [`answer`]).
    pub async fn reply(&mut self, prefix: &str) -> String {
        answer(&mut self.peer, prefix).await
    }

    /// Sends `msg` and waits for the peer to confirm.
    pub async fn send(&mut self, msg: impl Into<M>) {
        self.command("send", msg.into()).await;
    }

    /// Sends `msg` if the socket can queue it at once (a client being refused may
    /// have no connection to queue it on); never waits.
    pub async fn try_send(&mut self, msg: impl Into<M>) {
        self.command("try_send", msg.into()).await;
    }

    /// ROUTER with [`ZmqArgs::mandatory`]: sends `msg`, retrying while its routing id
    /// is unknown.
    pub async fn send_mandatory(&mut self, msg: impl Into<M>) {
        self.command("send_mandatory", msg.into()).await;
    }

    /// Starts sending `count` messages, each `msg` with a 4-byte big-endian counter
    /// frame after it (0, 1, ...), without waiting; [`ZmqPeer::flooded`] waits for
    /// the peer to have sent them all.
    pub fn start_flood(&self, count: usize, msg: impl Into<M>) {
        self.peer
            .send_line(format!("flood {count} {}", frames::encode(msg.into())));
    }

    /// Waits for the end of [`ZmqPeer::start_flood`]; returns how many were sent.
    pub async fn flooded(&mut self) -> usize {
        let sent = self.reply("SENT").await;
        sent.parse()
            .unwrap_or_else(|_| self.peer.fail(&format!("SENT {sent:?} is no count")))
    }

    async fn command(&mut self, op: &str, msg: M) {
        self.peer.send_line(format!("{op} {}", frames::encode(msg)));
        self.reply("SENT").await;
    }

    /// Asks for the next message without waiting for it; collect it with
    /// [`ZmqPeer::msg`] (for a REQ that must be receiving before we act).
    pub fn start_recv(&self) {
        self.peer.send_line("recv");
    }

    /// The message asked for with [`ZmqPeer::start_recv`].
    pub async fn msg(&mut self) -> M {
        M::from(frames::decode(&self.reply("MSG").await))
    }

    /// The next message (the peer waits up to 30 s, then fails).
    pub async fn recv(&mut self) -> M {
        self.start_recv();
        self.msg().await
    }

    /// The next message if one comes within `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<M> {
        self.peer
            .send_line(format!("recv_within {}", wait.as_millis()));
        let line = self.peer.line().await;
        if line == "NONE" {
            return None;
        }
        match line.strip_prefix("MSG ") {
            Some(rest) => Some(M::from(frames::decode(rest))),
            None => self
                .peer
                .fail(&format!("expected MSG or NONE, got {line:.200}")),
        }
    }

    /// Receives up to `count` messages, each within the peer's wait (30 s); returns
    /// how many came and how many distinct last frames they had.
    pub async fn recv_many(&mut self, count: usize) -> (usize, usize) {
        self.peer.send_line(format!("recv_many {count}"));
        let answer = self.reply("RECEIVED").await;
        let mut numbers = answer.split(' ').map(str::parse::<usize>);
        match (numbers.next(), numbers.next()) {
            (Some(Ok(received)), Some(Ok(distinct))) => (received, distinct),
            _ => self.peer.fail(&format!("RECEIVED {answer:?}")),
        }
    }

    /// Receives every message already there, without waiting, and says how many
    /// there were.
    pub async fn drain(&mut self) -> usize {
        let mut n = 0;
        while self.recv_within(Duration::ZERO).await.is_some() {
            n += 1;
        }
        n
    }

    /// `ZMQ_SUBSCRIBE` (SUB, XSUB) `topic`, or `ZMQ_UNSUBSCRIBE` if not `subscribe`.
    pub async fn set_subscription(&mut self, subscribe: bool, topic: &[u8]) {
        let op = if subscribe {
            "subscribe"
        } else {
            "unsubscribe"
        };
        self.peer
            .send_line(format!("{op} {}", frames::to_hex(topic)));
        self.reply("OK").await;
    }

    /// Makes libzmq process its pending commands. A bound libzmq socket attaches a
    /// new peer (and a SUB sends it its subscriptions) only when the application
    /// calls into the socket; a peer waiting for our next line never does.
    pub async fn poke(&mut self) {
        self.peer.send_line("poke");
        self.reply("OK").await;
    }

    /// Every monitor event so far, by name (needs [`ZmqArgs::monitor`]).
    pub async fn events(&mut self) -> Vec<String> {
        self.peer.send_line("events");
        let list = self.reply("EVENTS").await;
        list.split(',')
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Waits until the monitor event `name` was seen `count` times (needs
    /// [`ZmqArgs::monitor`]).
    pub async fn wait_event(&mut self, name: &str, count: usize) {
        self.peer.send_line(format!("wait_event {name} {count}"));
        self.reply("EVENT").await;
    }

    /// Asserts that libzmq saw exactly one connection, never dropped (needs
    /// [`ZmqArgs::monitor`]).
    pub async fn assert_one_unbroken_connection(&mut self, context: &str) {
        self.wait_event("HANDSHAKE_SUCCEEDED", 1).await;
        let events = self.events().await;
        let count = |name: &str| events.iter().filter(|e| *e == name).count();
        assert_eq!(
            (count("DISCONNECTED"), count("HANDSHAKE_SUCCEEDED")),
            (0, 1),
            "{context}: pyzmq saw a disconnect or a reconnect; its events: {events:?}"
        );
    }

    /// Freezes the process (see [`PyPeer::pause`]).
    pub fn pause(&self) {
        self.peer.pause();
    }

    /// Thaws a process frozen by [`ZmqPeer::pause`].
    pub fn resume(&self) {
        self.peer.resume();
    }
}

impl<M> Drop for ZmqPeer<M> {
    fn drop(&mut self) {
        self.peer.kill();
        if let Some(path) = &self.ipc_file {
            let _ = std::fs::remove_file(path);
        }
    }
}
