//! Issue #20's attacks on what a broker holds for others: each one what a hostile
//! or bursty peer did to deny the broker to everybody else, with what it returns
//! measured so the torture run can tell whether the broker held.
//!
//! - [`flood_unserved`]: requests spread over services nobody serves;
//! - [`long_names`]: workers registering huge service names;
//! - [`history_churn`]: workers registering ever new names and leaving;
//! - [`empty_partials`]: an MDP 0.2 worker answering an MDP 0.1 client with PARTIALs
//!   of empty frames;
//! - [`stolen_identity`]: a client leaves with a request in flight and a newcomer
//!   takes its routing id;
//! - [`async_burst`]: the zguide asynchronous client, every request before any reply.

use std::time::Duration;

use bytes::Bytes;
use zmtp::{Message, Socket, SocketOptions, SocketType};

use crate::wait::within;

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn dealer(endpoint_identity: Option<&str>) -> Result<Socket, String> {
    let mut options = SocketOptions::default().linger(Duration::ZERO);
    if let Some(id) = endpoint_identity {
        options = options.routing_id(id.to_owned());
    }
    Socket::with_options(SocketType::Dealer, options).map_err(text)
}

async fn connected(endpoint: &str, identity: Option<&str>) -> Result<Socket, String> {
    let mut socket = dealer(identity)?;
    socket.connect(endpoint).map_err(text)?;
    Ok(socket)
}

async fn send(socket: &mut Socket, msg: impl Into<Message>) -> Result<(), String> {
    within("the broker to take a message", socket.send(msg))
        .await?
        .map_err(text)
}

async fn recv(socket: &mut Socket, what: &str) -> Result<Message, String> {
    within(what, socket.recv()).await?.map_err(text)
}

/// The next REQUEST for a worker (its HEARTBEATs skipped): MDP 0.1's frames start
/// with an empty one, MDP 0.2's with the header.
async fn request(worker: &mut Socket, what: &str) -> Result<Message, String> {
    loop {
        let msg = recv(worker, what).await?;
        let command = match msg.first().map(|f| &f[..]) {
            Some(b"") => msg.get(2),
            _ => msg.get(1),
        };
        if command.map(|c| &c[..]) == Some(b"\x02") {
            return Ok(msg);
        }
    }
}

/// Asks `mmi.service` until `service` has a worker (a request sent before would
/// count as one for a service without workers, which may be refused by then).
async fn registered(endpoint: &str, service: &[u8]) -> Result<(), String> {
    let mut asker = connected(endpoint, None).await?;
    within("a worker to register", async {
        loop {
            send(
                &mut asker,
                frames([b"", b"MDPC01", b"mmi.service", service]),
            )
            .await?;
            let answer = recv(&mut asker, "an MMI answer").await?;
            if answer.last().map(|f| &f[..]) == Some(b"200") {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await?
}

fn frames<const N: usize>(frames: [&[u8]; N]) -> Message {
    frames.into_iter().map(Bytes::copy_from_slice).collect()
}

/// Sends `requests` MDP 0.1 requests from one DEALER, spread over `services`
/// service names that no worker serves, and never reads. Returns the socket, open.
pub async fn flood_unserved(
    endpoint: &str,
    requests: usize,
    services: usize,
) -> Result<Socket, String> {
    let mut socket = connected(endpoint, None).await?;
    for i in 0..requests {
        let service = format!("unserved-{}", i % services.max(1));
        let body = format!("{i}");
        send(
            &mut socket,
            frames([b"", b"MDPC01", service.as_bytes(), body.as_bytes()]),
        )
        .await?;
    }
    Ok(socket)
}

/// `workers` workers send READY with service names of `len` bytes; returns how
/// many got DISCONNECT for it.
pub async fn long_names(endpoint: &str, workers: usize, len: usize) -> Result<usize, String> {
    let mut refused = 0;
    for i in 0..workers {
        let mut socket = connected(endpoint, None).await?;
        let mut name = format!("{i:04}").into_bytes();
        name.resize(len, b'n');
        send(&mut socket, frames([b"", b"MDPW01", b"\x01", &name])).await?;
        let answer = recv(&mut socket, "the broker's answer to a long name").await?;
        if answer.get(2).map(|c| &c[..]) == Some(b"\x05") {
            refused += 1;
        }
    }
    Ok(refused)
}

/// `workers` workers each register a new service name and leave at once.
pub async fn history_churn(endpoint: &str, workers: usize) -> Result<usize, String> {
    for i in 0..workers {
        let mut socket = connected(endpoint, None).await?;
        let name = format!("churn-{i}");
        send(
            &mut socket,
            frames([b"", b"MDPW01", b"\x01", name.as_bytes()]),
        )
        .await?;
        send(&mut socket, frames([b"", b"MDPW01", b"\x05"])).await?;
        // Closed with its messages flushed: both must reach the broker.
        let _ = within("a worker to close", socket.close()).await;
    }
    Ok(workers)
}

/// An MDP 0.2 worker of `stream` answers an MDP 0.1 client's request with
/// `partials` PARTIALs of `frames` empty frames each, then FINAL `end`. Returns how
/// many frames the client's one reply had.
pub async fn empty_partials(
    endpoint: &str,
    partials: usize,
    frames_each: usize,
) -> Result<usize, String> {
    let mut worker = connected(endpoint, None).await?;
    send(&mut worker, frames([b"MDPW02", b"\x01", b"stream"])).await?;
    registered(endpoint, b"stream").await?;
    let mut client = connected(endpoint, None).await?;
    send(&mut client, frames([b"", b"MDPC01", b"stream", b"go"])).await?;
    let request = request(&mut worker, "the request for the partials worker").await?;
    let Some(address) = request.get(2).cloned() else {
        return Err(format!("a REQUEST without a client address: {request:?}"));
    };
    for _ in 0..partials {
        let mut partial = frames([b"MDPW02", b"\x03"]);
        partial.push_back(address.clone());
        partial.push_back(Bytes::new());
        partial.extend(std::iter::repeat(Bytes::new()).take(frames_each));
        send(&mut worker, partial).await?;
    }
    let mut last = frames([b"MDPW02", b"\x04"]);
    last.push_back(address);
    last.push_back(Bytes::new());
    last.push_back(Bytes::from_static(b"end"));
    send(&mut worker, last).await?;
    let reply = recv(&mut client, "the gathered reply").await?;
    if reply.last().map(|f| &f[..]) != Some(b"end") {
        return Err(format!(
            "the gathered reply does not end with the final: {} frames",
            reply.len()
        ));
    }
    // Empty, MDPC01, service, then the body.
    Ok(reply.len().saturating_sub(3))
}

/// `rounds` times: a client leaves with a request in flight on a worker, a
/// newcomer takes its routing id, the worker answers the departed one and then the
/// newcomer. Returns how many times the newcomer's first reply was not its own.
pub async fn stolen_identity(endpoint: &str, rounds: usize) -> Result<usize, String> {
    let mut worker = connected(endpoint, None).await?;
    send(&mut worker, frames([b"", b"MDPW01", b"\x01", b"hold"])).await?;
    registered(endpoint, b"hold").await?;
    let mut wrong = 0;
    for round in 0..rounds {
        // Heard from each round, so it does not expire on a slow machine.
        send(&mut worker, frames([b"", b"MDPW01", b"\x04"])).await?;
        let id = format!("victim-{round}");
        let mut departed = connected(endpoint, Some(&id)).await?;
        send(&mut departed, frames([b"", b"MDPC01", b"hold", b"private"])).await?;
        request(&mut worker, "the departed client's request").await?;
        drop(departed);
        // The newcomer is in once the broker answers it. While the old connection is
        // still there it is refused and reconnects, and what it had sent on the
        // refused connection is lost: it asks again until answered.
        let mut newcomer = connected(endpoint, Some(&id)).await?;
        within("the newcomer's MMI answer", async {
            loop {
                send(
                    &mut newcomer,
                    frames([b"", b"MDPC01", b"mmi.service", b"hold"]),
                )
                .await?;
                let answer = tokio::time::timeout(Duration::from_millis(500), newcomer.recv());
                if let Ok(answer) = answer.await {
                    return answer.map_err(text);
                }
            }
        })
        .await??;
        send(
            &mut worker,
            frames([b"", b"MDPW01", b"\x03", id.as_bytes(), b"", b"secret"]),
        )
        .await?;
        send(&mut newcomer, frames([b"", b"MDPC01", b"hold", b"public"])).await?;
        request(&mut worker, "the newcomer's request").await?;
        send(
            &mut worker,
            frames([b"", b"MDPW01", b"\x03", id.as_bytes(), b"", b"for-you"]),
        )
        .await?;
        // Its first reply that is not an MMI answer (it may have asked twice).
        let reply = loop {
            let reply = recv(&mut newcomer, "the newcomer's reply").await?;
            if reply.get(2).map(|f| &f[..]) != Some(b"mmi.service") {
                break reply;
            }
        };
        if reply.last().map(|f| &f[..]) != Some(b"for-you") {
            wrong += 1;
        }
    }
    Ok(wrong)
}

/// One DEALER sends `requests` MDP 0.1 requests to `echo`, then reads; returns how
/// many came back, each its own.
pub async fn async_burst(endpoint: &str, requests: usize) -> Result<usize, String> {
    let mut socket = connected(endpoint, None).await?;
    for i in 0..requests {
        let body = (i as u32).to_be_bytes();
        send(&mut socket, frames([b"", b"MDPC01", b"echo", &body])).await?;
    }
    let mut seen = vec![false; requests];
    let mut answered = 0;
    while answered < requests {
        let Ok(Ok(reply)) = tokio::time::timeout(Duration::from_secs(60), socket.recv()).await
        else {
            break;
        };
        let Some(index) = reply
            .last()
            .and_then(|b| <[u8; 4]>::try_from(&b[..]).ok())
            .map(|b| u32::from_be_bytes(b) as usize)
        else {
            continue;
        };
        if let Some(slot) = seen.get_mut(index).filter(|s| !**s) {
            *slot = true;
            answered += 1;
        }
    }
    Ok(answered)
}
