//! What several of zmtp's integration tests share: waiting for a connection's
//! failure on a socket's monitor.

use std::time::Duration;

use zmtp::{Monitor, SocketEvent};

/// How long any single wait in these tests may last.
pub const WAIT: Duration = Duration::from_secs(30);

/// The reason of the next HandshakeFailed (or, with `disconnects`, Disconnected).
pub async fn next_failure(events: &mut Monitor, disconnects: bool) -> String {
    loop {
        match tokio::time::timeout(WAIT, events.recv()).await {
            Ok(Some(SocketEvent::HandshakeFailed { reason, .. })) => return reason.to_string(),
            Ok(Some(SocketEvent::Disconnected { reason, .. })) if disconnects => {
                return reason.to_string()
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("monitor ended"),
            Err(_) => panic!("no failure within {WAIT:?}"),
        }
    }
}
