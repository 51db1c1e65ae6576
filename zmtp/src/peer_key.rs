//! [`PeerKey`]: which peer of a socket, for everything below the socket (queues,
//! deliveries) and the socket itself.

/// Identifies one peer (one pipe) of a socket.
pub type PeerKey = u64;
