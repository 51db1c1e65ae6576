//! `--monitor`: the socket's connection events as stderr lines.
//!
//! One line per event: `# ` (never the start of a diagnostic, which starts with
//! `zmtp-cat: `), the event name, then `key=value` fields; `reason=` comes last and
//! runs to the end of the line (it may hold spaces). Routing ids are written as
//! message frames are printed, so they can be matched against stdout lines.

use zmtp::SocketEvent;

use crate::text;

/// The stderr line for `event`, without the line ending.
pub fn describe(event: &SocketEvent, separator: &str) -> String {
    let id = |id: &Option<bytes::Bytes>| match id {
        Some(id) => format!(" routing_id={}", text::encode_frame(id, separator)),
        None => String::new(),
    };
    match event {
        SocketEvent::Listening { endpoint } => format!("# listening endpoint={endpoint}"),
        SocketEvent::Accepted { endpoint, peer } => {
            format!("# accepted endpoint={endpoint} peer={peer}")
        }
        SocketEvent::Connected { endpoint } => format!("# connected endpoint={endpoint}"),
        SocketEvent::ConnectRetried { endpoint, after } => format!(
            "# connect_retried endpoint={endpoint} after_ms={}",
            after.as_millis()
        ),
        SocketEvent::HandshakeSucceeded { peer, routing_id } => {
            format!("# handshake_ok peer={peer}{}", id(routing_id))
        }
        SocketEvent::HandshakeFailed { peer, reason } => {
            format!(
                "# handshake_failed peer={peer} kind={:?} reason={}",
                reason.kind(),
                one_line(reason.detail())
            )
        }
        SocketEvent::Disconnected {
            peer,
            routing_id,
            reason,
        } => format!(
            "# disconnected peer={peer}{} kind={:?} reason={}",
            id(routing_id),
            reason.kind(),
            one_line(reason.detail())
        ),
        SocketEvent::Closed => "# closed".into(),
        // Events added to the library later: still one line, with a stable prefix.
        other => format!("# other {}", one_line(&format!("{other:?}"))),
    }
}

/// `s` with line breaks replaced, so an event stays one line.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;

    #[test]
    fn one_greppable_line_per_event() {
        let endpoint: zmtp::Endpoint = "tcp://127.0.0.1:5555".parse().unwrap();
        let cases = [
            (
                SocketEvent::Listening {
                    endpoint: endpoint.clone(),
                },
                "# listening endpoint=tcp://127.0.0.1:5555",
            ),
            (
                SocketEvent::Accepted {
                    endpoint: endpoint.clone(),
                    peer: "127.0.0.1:40312".into(),
                },
                "# accepted endpoint=tcp://127.0.0.1:5555 peer=127.0.0.1:40312",
            ),
            (
                SocketEvent::ConnectRetried {
                    endpoint: endpoint.clone(),
                    after: Duration::from_millis(100),
                },
                "# connect_retried endpoint=tcp://127.0.0.1:5555 after_ms=100",
            ),
            (
                SocketEvent::HandshakeSucceeded {
                    peer: "p".into(),
                    routing_id: Some(Bytes::from_static(b"\0\x01")),
                },
                "# handshake_ok peer=p routing_id=0x0001",
            ),
            (
                SocketEvent::HandshakeSucceeded {
                    peer: "p".into(),
                    routing_id: None,
                },
                "# handshake_ok peer=p",
            ),
            (
                SocketEvent::Disconnected {
                    peer: "p".into(),
                    routing_id: Some(Bytes::from_static(b"client-1")),
                    reason: zmtp::Reason::new(zmtp::ReasonKind::Io, "connection reset\nby peer"),
                },
                "# disconnected peer=p routing_id=client-1 kind=Io reason=connection reset by peer",
            ),
            (SocketEvent::Closed, "# closed"),
        ];
        for (event, line) in cases {
            assert_eq!(describe(&event, "|"), line);
        }
    }
}
