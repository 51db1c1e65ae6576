//! [`Settings`]: the options one endpoint runs with, taken from the socket's
//! options when it is bound or connected.
//!
//! The configuration types, from the user down: [`SocketOptions`] (public, what a
//! user sets) becomes one `Settings` per endpoint, which hands each sans-IO core
//! its own part: [`HandshakeConfig`] to the handshake, [`ConnectionConfig`] to the
//! connection after it. Nothing else carries options.

use std::sync::Arc;
use std::time::Duration;

use super::admission::Admission;
use crate::options::SocketOptions;
use crate::pipe::Pipe;
use crate::proto::{ConnectionConfig, HandshakeConfig, HeartbeatConfig, SocketType};
use crate::send_budget::{AddressBudgets, SendBudget};

/// The options one endpoint runs with, fixed when it is bound or connected.
#[derive(Debug)]
pub(crate) struct Settings {
    /// What the handshake core announces and checks.
    pub(super) handshake: HandshakeConfig,
    /// How long a peer has to finish its handshake.
    pub(super) handshake_timeout: Duration,
    /// What the connection core enforces after it (message size, heartbeats).
    pub(super) connection: ConnectionConfig,
    /// How long queued messages are still delivered after the socket closes.
    pub(super) linger: Duration,
    pub(super) send_hwm: usize,
    pub(super) send_hwm_bytes: Option<usize>,
    /// What all this endpoint's pipes may hold together.
    pub(super) send_budget: Option<Arc<SendBudget>>,
    /// What the pipes of one address's peers may hold together.
    pub(super) address_budgets: Option<AddressBudgets>,
    pub(super) handover: bool,
    pub(super) reconnect_interval: Duration,
    pub(super) reconnect_interval_max: Option<Duration>,
    /// XPUB: sent to each new peer first (ZMQ_XPUB_WELCOME_MSG).
    pub(super) welcome: Option<crate::Message>,
    /// A bound endpoint's caps on connections.
    pub(super) admission: Admission,
}

impl Settings {
    pub(crate) fn new(socket_type: SocketType, options: &SocketOptions) -> Settings {
        Settings {
            handshake: HandshakeConfig {
                socket_type,
                identity: options.routing_id.clone(),
                mechanism: options.mechanism.clone(),
                authenticator: options.authenticator.clone(),
            },
            handshake_timeout: options.handshake_timeout,
            connection: ConnectionConfig::new(options.max_message_size).with_heartbeat(
                HeartbeatConfig {
                    interval: options.heartbeat_interval,
                    timeout: options.heartbeat_timeout,
                    ttl: options.heartbeat_ttl,
                },
            ),
            linger: options.linger,
            send_hwm: options.send_hwm,
            send_hwm_bytes: options.send_hwm_bytes,
            send_budget: options.send_hwm_bytes_total.map(SendBudget::new),
            address_budgets: options.send_hwm_bytes_per_address.map(AddressBudgets::new),
            handover: options.router_handover,
            reconnect_interval: options.reconnect_interval,
            reconnect_interval_max: options.reconnect_interval_max,
            welcome: options
                .xpub_welcome_message
                .clone()
                .filter(|_| socket_type == SocketType::XPub),
            admission: Admission::new(options),
        }
    }

    /// A new outbound queue for one peer, bounded by this endpoint's send limits
    /// and, for a peer whose address is known (accepted), its address's.
    pub(crate) fn new_pipe(
        &self,
        writable: Arc<tokio::sync::Notify>,
        peer_address: Option<&str>,
    ) -> Arc<Pipe> {
        let mut budgets: Vec<Arc<SendBudget>> = self.send_budget.iter().cloned().collect();
        if let (Some(address_budgets), Some(peer)) = (&self.address_budgets, peer_address) {
            budgets.push(address_budgets.of(peer));
        }
        Pipe::sharing(self.send_hwm, self.send_hwm_bytes, budgets, writable)
    }

    /// The routing id this endpoint announces.
    pub(crate) fn identity(&self) -> bytes::Bytes {
        self.handshake.identity.clone()
    }
}
