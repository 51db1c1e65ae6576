//! A request whose caller stops waiting frees its place at once: with one broker
//! connection allowed, a second request to the same service goes out right after
//! the first future is dropped, not after the first's (hour-long) timeout.

use std::time::Duration;

use mdp::{CallOptions, Client, ClientOptions};
use zmtp::{Socket, SocketType};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_dropped_request_future_frees_its_place_at_once() {
    // The "broker" is a ROUTER that never answers.
    let mut broker = Socket::new(SocketType::Router);
    let endpoint = broker.bind("tcp://127.0.0.1:0").await.expect("bind");
    let client = Client::connect_with(
        endpoint.to_string(),
        ClientOptions::default().max_connections(1),
    )
    .expect("client");
    let hour = CallOptions {
        timeout: Duration::from_secs(3600),
        attempts: 1,
    };

    let first = tokio::spawn({
        let client = client.clone();
        async move { client.request_with("echo", "first", hour).await }
    });
    let got = tokio::time::timeout(WAIT, broker.recv())
        .await
        .expect("the first request within the bound")
        .expect("recv");
    assert_eq!(got.frames().last().map(|f| &f[..]), Some(&b"first"[..]));

    // The first caller gives up; the second request to the same service must go
    // out now, on a fresh connection (the first may still get a late reply).
    first.abort();
    let second = tokio::spawn({
        let client = client.clone();
        async move { client.request_with("echo", "second", hour).await }
    });
    let got = tokio::time::timeout(WAIT, broker.recv())
        .await
        .expect("the second request goes out long before the first's timeout")
        .expect("recv");
    assert_eq!(got.frames().last().map(|f| &f[..]), Some(&b"second"[..]));
    second.abort();
}
