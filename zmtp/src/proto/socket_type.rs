//! Socket types and which pairs may talk (RFC 37 "The Socket-Type property").

/// A ZeroMQ socket type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketType {
    /// Synchronous request (RFC 28).
    Req,
    /// Synchronous reply (RFC 28).
    Rep,
    /// Asynchronous request, load-balanced (RFC 28).
    Dealer,
    /// Asynchronous reply, routed by identity (RFC 28).
    Router,
    /// Publisher (RFC 29).
    Pub,
    /// Subscriber (RFC 29).
    Sub,
    /// Raw publisher that sees subscriptions (RFC 29).
    XPub,
    /// Raw subscriber that sends subscriptions as messages (RFC 29).
    XSub,
    /// Pipeline source (RFC 30).
    Push,
    /// Pipeline sink (RFC 30).
    Pull,
    /// Exclusive pair (RFC 31).
    Pair,
}

impl SocketType {
    /// Every socket type, in RFC order.
    pub const ALL: [SocketType; 11] = [
        SocketType::Req,
        SocketType::Rep,
        SocketType::Dealer,
        SocketType::Router,
        SocketType::Pub,
        SocketType::Sub,
        SocketType::XPub,
        SocketType::XSub,
        SocketType::Push,
        SocketType::Pull,
        SocketType::Pair,
    ];

    /// The name sent in the `Socket-Type` property ("DEALER", …).
    pub fn as_str(self) -> &'static str {
        match self {
            SocketType::Req => "REQ",
            SocketType::Rep => "REP",
            SocketType::Dealer => "DEALER",
            SocketType::Router => "ROUTER",
            SocketType::Pub => "PUB",
            SocketType::Sub => "SUB",
            SocketType::XPub => "XPUB",
            SocketType::XSub => "XSUB",
            SocketType::Push => "PUSH",
            SocketType::Pull => "PULL",
            SocketType::Pair => "PAIR",
        }
    }

    /// Parses a socket type name, ignoring ASCII case.
    pub fn from_name(name: &[u8]) -> Option<SocketType> {
        SocketType::ALL
            .into_iter()
            .find(|t| t.as_str().as_bytes().eq_ignore_ascii_case(name))
    }

    /// Whether a socket of this type may talk to a peer of type `peer` (RFC 37, as
    /// libzmq's `mechanism_t::check_socket_type`).
    pub fn is_compatible(self, peer: SocketType) -> bool {
        use SocketType::*;
        match self {
            Req => matches!(peer, Rep | Router),
            Rep => matches!(peer, Req | Dealer),
            Dealer => matches!(peer, Rep | Dealer | Router),
            Router => matches!(peer, Req | Dealer | Router),
            Pub | XPub => matches!(peer, Sub | XSub),
            Sub | XSub => matches!(peer, Pub | XPub),
            Push => matches!(peer, Pull),
            Pull => matches!(peer, Push),
            Pair => matches!(peer, Pair),
        }
    }

    /// Whether this type sends the `Identity` property in READY (libzmq sends it for
    /// REQ, DEALER and ROUTER only).
    pub fn sends_identity(self) -> bool {
        matches!(
            self,
            SocketType::Req | SocketType::Dealer | SocketType::Router
        )
    }
}

impl std::fmt::Display for SocketType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SocketType {
    type Err = String;
    fn from_str(s: &str) -> Result<SocketType, String> {
        SocketType::from_name(s.as_bytes()).ok_or_else(|| format!("unknown socket type {s:?}"))
    }
}

#[cfg(test)]
#[path = "tests/socket_type.rs"]
mod tests;
