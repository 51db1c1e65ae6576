//! `--pubsub IN OUT`: the event bus beside the broker. Publishers connect PUB sockets
//! to IN (an XSUB), subscribers connect SUB sockets to OUT (an XPUB); events flow
//! down by topic prefix and subscriptions flow up, so publishers only send what
//! somebody wants. Any ZeroMQ PUB/SUB peer works unchanged (pyzmq, czmq, zeromq.js).

use zmtp::{Socket, SocketOptions, SocketType};

/// Binds both sides with the broker's socket options (security included) and
/// forwards between them on a task of its own. Returns the endpoints bound.
pub async fn start(
    publishers: &str,
    subscribers: &str,
    options: SocketOptions,
) -> Result<(String, String), String> {
    let bind = |socket_type, endpoint: &str| {
        let options = options.clone();
        let endpoint = endpoint.to_string();
        async move {
            let mut socket = Socket::with_options(socket_type, options)
                .map_err(|e| format!("event bus: {e}"))?;
            let bound = socket
                .bind(&endpoint)
                .await
                .map_err(|e| format!("event bus: cannot bind {endpoint}: {e}"))?;
            Ok::<_, String>((socket, bound.to_string()))
        }
    };
    let (mut inbound, publishers) = bind(SocketType::XSub, publishers).await?;
    let (mut outbound, subscribers) = bind(SocketType::XPub, subscribers).await?;
    tokio::spawn(async move {
        if let Err(e) = zmtp::proxy(&mut inbound, &mut outbound, None).await {
            tracing::error!(error = %e, "event bus stopped");
        }
    });
    Ok((publishers, subscribers))
}
