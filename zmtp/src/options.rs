//! Socket options, with libzmq's defaults unless stated.

use std::time::Duration;

use bytes::Bytes;

use crate::auth::Authenticator;
use crate::defense::HandshakeDefenses;
use crate::proto::MechanismConfig;
use crate::Message;

/// Options of a socket. Set them before `bind`/`connect`: each connection takes the
/// options in force when its endpoint was bound or connected.
///
/// ```
/// use std::time::Duration;
/// use zmtp::SocketOptions;
///
/// let opts = SocketOptions::default()
///     .routing_id("worker-1")
///     .heartbeat(Duration::from_secs(1), Duration::from_secs(3))
///     .send_hwm(10_000);
/// assert_eq!(opts.recv_hwm, 1000);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SocketOptions {
    /// Our routing id, sent as the `Identity` property (REQ, DEALER, ROUTER). Empty: none,
    /// so a ROUTER peer makes one up. 1-255 bytes, first byte not 0x00 (RFC 37).
    pub routing_id: Bytes,
    /// Per-peer outbound queue limit in messages (ZMQ_SNDHWM, default 1000; 0: no limit).
    pub send_hwm: usize,
    /// Per-peer outbound queue limit in bytes, beside `send_hwm` (ours; libzmq has
    /// none). Counted as frame bodies plus a small fixed cost per message and per
    /// frame; a queue that is empty takes one message whatever its size, so large
    /// messages still flow. At the limit each socket type does what it does at the
    /// HWM: PUB, XPUB and ROUTER drop (ROUTER with `router_mandatory` waits), DEALER,
    /// PUSH, REQ and PAIR wait. Default `None` (no limit), as libzmq: set one wherever
    /// a peer that stops reading could otherwise make the socket hold `send_hwm` ×
    /// the largest message.
    pub send_hwm_bytes: Option<usize>,
    /// Outbound bytes of all the peers of one endpoint together (ours): past it, a
    /// peer that already has messages queued gets no more (dropped or waited for as
    /// at `send_hwm_bytes`), while a peer with an empty queue still gets one. So
    /// peers that read keep getting their messages when many peers that do not have
    /// used it up, and the socket holds at most this (plus a message per peer).
    /// Default `None`.
    pub send_hwm_bytes_total: Option<usize>,
    /// The same for the peers of one source address (an IPv4 address, an IPv6 /64;
    /// accepted peers only), so that the peers of one host that do not read cannot
    /// use up `send_hwm_bytes_total` for everybody. Default `None`.
    pub send_hwm_bytes_per_address: Option<usize>,
    /// Inbound queue limit in messages (ZMQ_RCVHWM, default 1000; 0: no limit). When it
    /// is full the engines stop reading and TCP pushes back on the senders.
    pub recv_hwm: usize,
    /// Inbound queue limit in bytes, beside `recv_hwm` (ours; libzmq has none),
    /// counted as for `send_hwm_bytes`. When it is reached the engines stop reading
    /// and TCP pushes back on the senders; what one read completed is admitted
    /// whole, so the queue can pass the limit by that much per connection. Default
    /// `None` (no limit), as libzmq.
    pub recv_hwm_bytes: Option<usize>,
    /// Send a PING this often (ZMQ_HEARTBEAT_IVL; default off).
    pub heartbeat_interval: Option<Duration>,
    /// Close a peer that sends nothing for this long after a PING (ZMQ_HEARTBEAT_TIMEOUT;
    /// default: the interval).
    pub heartbeat_timeout: Option<Duration>,
    /// TTL announced in our PINGs: the peer may close us after this much silence
    /// (ZMQ_HEARTBEAT_TTL; default none). Rounded down to tenths of a second.
    pub heartbeat_ttl: Option<Duration>,
    /// First wait before reconnecting (ZMQ_RECONNECT_IVL, default 100 ms).
    pub reconnect_interval: Duration,
    /// Upper bound of the doubling backoff (ZMQ_RECONNECT_IVL_MAX; default: no backoff,
    /// as libzmq).
    pub reconnect_interval_max: Option<Duration>,
    /// Time allowed for greeting and security handshake (ZMQ_HANDSHAKE_IVL, default 30 s).
    pub handshake_timeout: Duration,
    /// Largest inbound message in bytes over all frames (ZMQ_MAXMSGSIZE). A peer that
    /// sends more is disconnected before anything is allocated. Default 256 MiB; libzmq
    /// defaults to unlimited, which lets any peer exhaust memory.
    pub max_message_size: u64,
    /// How long a closed socket keeps trying to deliver queued messages (ZMQ_LINGER;
    /// default 30 s).
    pub linger: Duration,
    /// ROUTER: fail `send` to an unknown routing id instead of dropping the message,
    /// and wait for room instead of dropping when the peer's queue is full
    /// (ZMQ_ROUTER_MANDATORY).
    pub router_mandatory: bool,
    /// ROUTER: a new peer with a routing id already in use takes it over; the old
    /// connection is closed (ZMQ_ROUTER_HANDOVER). Otherwise the new one is refused.
    pub router_handover: bool,
    /// Security mechanism (NULL by default).
    pub mechanism: MechanismConfig,
    /// Decides which peers may connect: PLAIN and CURVE servers ask it about each
    /// client's credentials; with NULL it decides by address. None: everyone.
    pub authenticator: Option<Authenticator>,
    /// Most connections a bound endpoint keeps open at once; one more is closed as
    /// soon as it is accepted (default: no limit, as libzmq). Connections we make
    /// with `connect` do not count.
    pub max_connections: Option<usize>,
    /// Most connections a bound endpoint holds in their handshake at once, so peers
    /// that connect and never finish (a slowloris) cannot pile up; one more is closed
    /// as soon as it is accepted (default: no limit, as libzmq).
    pub max_handshakes: Option<usize>,
    /// Most connections a bound endpoint keeps open at once from one source address
    /// (an IPv4 address or an IPv6 /64; `ipc://` peers are not counted per
    /// address). Default: a tenth of [`SocketOptions::max_connections`] (at least
    /// 1), so one address can never fill the endpoint; no limit when that has none.
    pub max_connections_per_address: Option<usize>,
    /// Most connections a bound endpoint holds in their handshake at once from one
    /// source address. Default: a tenth of [`SocketOptions::max_handshakes`] (at
    /// least 1); no limit when that has none.
    pub max_handshakes_per_address: Option<usize>,
    /// Per-address metering of handshakes on bound endpoints: CURVE HELLO rate and
    /// replay check before public-key work, back-off after failed logins.
    pub handshake_defenses: HandshakeDefenses,
    /// XPUB: which subscription messages the application receives (ZMQ_XPUB_VERBOSE,
    /// ZMQ_XPUB_VERBOSER; default: only first subscribes and last cancels).
    pub xpub_verbosity: XpubVerbosity,
    /// XPUB: wait for room instead of dropping when a matching peer's queue is full
    /// (ZMQ_XPUB_NODROP).
    pub xpub_nodrop: bool,
    /// XPUB: a message sent to every new peer before anything else
    /// (ZMQ_XPUB_WELCOME_MSG). A SUB peer sees it only if it subscribes to it.
    pub xpub_welcome_message: Option<Message>,
    /// PUB/XPUB: most topics one peer may hold subscribed at once (ours; libzmq has
    /// no cap). Past any of the four subscription caps a peer's new subscriptions
    /// are ignored (an XPUB application does not see them either), counted in
    /// [`Socket::subscriptions_ignored`](crate::Socket::subscriptions_ignored) and
    /// logged at most once a second in aggregate. Default 100 000.
    pub max_subscriptions_per_peer: usize,
    /// PUB/XPUB: most bytes of topics one peer may hold subscribed at once (default
    /// 64 MiB).
    pub max_subscription_bytes_per_peer: usize,
    /// PUB/XPUB: most subscriptions all peers may hold together, each peer's
    /// counted (two peers on one topic count two), so that many peers cannot
    /// together grow the table without bound (default: no cap).
    pub max_subscriptions_total: Option<usize>,
    /// PUB/XPUB: most bytes of topics all peers may hold subscribed together
    /// (default: no cap).
    pub max_subscription_bytes_total: Option<usize>,
}

impl Default for SocketOptions {
    fn default() -> SocketOptions {
        SocketOptions {
            routing_id: Bytes::new(),
            send_hwm: 1000,
            send_hwm_bytes: None,
            send_hwm_bytes_total: None,
            send_hwm_bytes_per_address: None,
            recv_hwm: 1000,
            recv_hwm_bytes: None,
            heartbeat_interval: None,
            heartbeat_timeout: None,
            heartbeat_ttl: None,
            reconnect_interval: Duration::from_millis(100),
            reconnect_interval_max: None,
            handshake_timeout: Duration::from_secs(30),
            max_message_size: 256 * 1024 * 1024,
            linger: Duration::from_secs(30),
            router_mandatory: false,
            router_handover: false,
            mechanism: MechanismConfig::Null,
            authenticator: None,
            max_connections: None,
            max_handshakes: None,
            max_connections_per_address: None,
            max_handshakes_per_address: None,
            handshake_defenses: HandshakeDefenses::default(),
            xpub_verbosity: XpubVerbosity::Changes,
            xpub_nodrop: false,
            xpub_welcome_message: None,
            max_subscriptions_per_peer: 100_000,
            max_subscription_bytes_per_peer: 64 * 1024 * 1024,
            max_subscriptions_total: None,
            max_subscription_bytes_total: None,
        }
    }
}

impl SocketOptions {
    /// Caps the connections a bound endpoint keeps open at once.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = Some(n);
        self
    }

    /// Caps the connections a bound endpoint holds in their handshake at once.
    pub fn max_handshakes(mut self, n: usize) -> Self {
        self.max_handshakes = Some(n);
        self
    }

    /// Caps the connections a bound endpoint keeps open from one source address.
    pub fn max_connections_per_address(mut self, n: usize) -> Self {
        self.max_connections_per_address = Some(n);
        self
    }

    /// Caps the connections a bound endpoint holds in their handshake from one
    /// source address.
    pub fn max_handshakes_per_address(mut self, n: usize) -> Self {
        self.max_handshakes_per_address = Some(n);
        self
    }

    /// Sets the per-address metering of handshakes.
    pub fn handshake_defenses(mut self, defenses: HandshakeDefenses) -> Self {
        self.handshake_defenses = defenses;
        self
    }

    /// Sets the routing id.
    pub fn routing_id(mut self, id: impl Into<Bytes>) -> Self {
        self.routing_id = id.into();
        self
    }

    /// Sets both high-water marks.
    pub fn hwm(mut self, hwm: usize) -> Self {
        self.send_hwm = hwm;
        self.recv_hwm = hwm;
        self
    }

    /// Sets the send high-water mark.
    pub fn send_hwm(mut self, hwm: usize) -> Self {
        self.send_hwm = hwm;
        self
    }

    /// Sets the per-peer outbound queue limit in bytes (see
    /// [`SocketOptions::send_hwm_bytes`]).
    pub fn send_hwm_bytes(mut self, bytes: usize) -> Self {
        self.send_hwm_bytes = Some(bytes);
        self
    }

    /// Sets the outbound bytes of all the peers of one endpoint together.
    pub fn send_hwm_bytes_total(mut self, bytes: usize) -> Self {
        self.send_hwm_bytes_total = Some(bytes);
        self
    }

    /// Sets the outbound bytes of all the peers of one source address together.
    pub fn send_hwm_bytes_per_address(mut self, bytes: usize) -> Self {
        self.send_hwm_bytes_per_address = Some(bytes);
        self
    }

    /// Sets the receive high-water mark.
    pub fn recv_hwm(mut self, hwm: usize) -> Self {
        self.recv_hwm = hwm;
        self
    }

    /// Sets the inbound queue limit in bytes (see [`SocketOptions::recv_hwm_bytes`]).
    pub fn recv_hwm_bytes(mut self, bytes: usize) -> Self {
        self.recv_hwm_bytes = Some(bytes);
        self
    }

    /// Enables heartbeats: a PING every `interval`, and a peer silent for `timeout`
    /// after one is closed.
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.heartbeat_interval = Some(interval);
        self.heartbeat_timeout = Some(timeout);
        self
    }

    /// Sets the TTL announced in PINGs.
    pub fn heartbeat_ttl(mut self, ttl: Duration) -> Self {
        self.heartbeat_ttl = Some(ttl);
        self
    }

    /// Sets the reconnect interval and its backoff limit.
    pub fn reconnect(mut self, interval: Duration, max: Option<Duration>) -> Self {
        self.reconnect_interval = interval;
        self.reconnect_interval_max = max;
        self
    }

    /// Sets the handshake timeout.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets the largest accepted inbound message.
    pub fn max_message_size(mut self, bytes: u64) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets the linger period.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Sets ZMQ_ROUTER_MANDATORY.
    pub fn router_mandatory(mut self, on: bool) -> Self {
        self.router_mandatory = on;
        self
    }

    /// Sets ZMQ_ROUTER_HANDOVER.
    pub fn router_handover(mut self, on: bool) -> Self {
        self.router_handover = on;
        self
    }

    /// Sets which subscription messages an XPUB application receives.
    pub fn xpub_verbosity(mut self, verbosity: XpubVerbosity) -> Self {
        self.xpub_verbosity = verbosity;
        self
    }

    /// Sets ZMQ_XPUB_NODROP.
    pub fn xpub_nodrop(mut self, on: bool) -> Self {
        self.xpub_nodrop = on;
        self
    }

    /// Sets ZMQ_XPUB_WELCOME_MSG.
    pub fn xpub_welcome_message(mut self, msg: impl Into<Message>) -> Self {
        self.xpub_welcome_message = Some(msg.into());
        self
    }

    /// Caps the subscriptions one peer of a PUB or XPUB may hold: `topics` topics
    /// and `bytes` bytes of them.
    pub fn max_subscriptions_per_peer(mut self, topics: usize, bytes: usize) -> Self {
        self.max_subscriptions_per_peer = topics;
        self.max_subscription_bytes_per_peer = bytes;
        self
    }

    /// Caps the subscriptions all peers of a PUB or XPUB may hold together: `topics`
    /// subscriptions and `bytes` bytes of topics.
    pub fn max_subscriptions_total(mut self, topics: usize, bytes: usize) -> Self {
        self.max_subscriptions_total = Some(topics);
        self.max_subscription_bytes_total = Some(bytes);
        self
    }

    /// Sets the authenticator.
    pub fn authenticator(mut self, authenticator: Authenticator) -> Self {
        self.authenticator = Some(authenticator);
        self
    }

    /// Sets the security mechanism.
    pub fn mechanism(mut self, mechanism: MechanismConfig) -> Self {
        self.mechanism = mechanism;
        self
    }
}

/// Which subscription messages an XPUB application receives (ZMQ_XPUB_VERBOSE and
/// ZMQ_XPUB_VERBOSER).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XpubVerbosity {
    /// A subscribe when a topic gets its first subscriber, a cancel when it loses its
    /// last one (libzmq's default).
    #[default]
    Changes,
    /// Every subscribe any peer sends; cancels as in `Changes` (ZMQ_XPUB_VERBOSE).
    Subscribes,
    /// Every subscribe and every cancel (ZMQ_XPUB_VERBOSER).
    All,
}

impl XpubVerbosity {
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            XpubVerbosity::Changes => 0,
            XpubVerbosity::Subscribes => 1,
            XpubVerbosity::All => 2,
        }
    }

    pub(crate) fn from_u8(v: u8) -> XpubVerbosity {
        match v {
            1 => XpubVerbosity::Subscribes,
            2 => XpubVerbosity::All,
            _ => XpubVerbosity::Changes,
        }
    }
}
