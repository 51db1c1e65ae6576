//! The benchmark modes: each one runs inside a tokio runtime and prints its `RESULT`
//! line on stdout.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use zmtp::proto::mechanism::curve::CurveKeyPair;
use zmtp::proto::MechanismConfig;
use zmtp::{Message, Socket, SocketOptions, SocketType};

use crate::{curve_keys, BoxError, Pattern};

/// How long a sender keeps flushing after its last `send` (ZMQ_LINGER).
const LINGER: Duration = Duration::from_secs(60);

/// The security mechanism of every socket of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// NULL: no authentication, no encryption.
    Null,
    /// CURVE with the fixed keys of [`curve_keys`]: the binding side is the server,
    /// the connecting side the client.
    Curve,
}

impl Security {
    /// The name used in `RESULT` lines (`mechanism=..`).
    pub fn name(self) -> &'static str {
        match self {
            Security::Null => "null",
            Security::Curve => "curve",
        }
    }

    /// The mechanism of a socket that binds.
    fn server(self) -> Result<MechanismConfig, BoxError> {
        Ok(match self {
            Security::Null => MechanismConfig::Null,
            Security::Curve => MechanismConfig::curve_server(server_keys()?),
        })
    }

    /// The mechanism of a socket that connects.
    fn client(self) -> Result<MechanismConfig, BoxError> {
        Ok(match self {
            Security::Null => MechanismConfig::Null,
            Security::Curve => {
                let keys = key_pair(curve_keys::CLIENT_SECRET, curve_keys::CLIENT_PUBLIC)?;
                MechanismConfig::curve_client(keys, server_keys()?.public)
            }
        })
    }

    /// Refuses CURVE on `inproc://`, where no mechanism runs (as in libzmq).
    fn check(self, endpoint: &str) -> Result<(), BoxError> {
        if self == Security::Curve && endpoint.starts_with("inproc://") {
            return Err("--curve does not apply to inproc:// (no mechanism runs there)".into());
        }
        Ok(())
    }
}

fn server_keys() -> Result<CurveKeyPair, BoxError> {
    key_pair(curve_keys::SERVER_SECRET, curve_keys::SERVER_PUBLIC)
}

/// The key pair of a Z85 secret, checked against its expected public key.
fn key_pair(secret: &str, public: &str) -> Result<CurveKeyPair, BoxError> {
    let keys = CurveKeyPair::from_z85_secret(secret)
        .map_err(|e| format!("bad fixed CURVE secret key: {e}"))?;
    if keys.public_z85() != public {
        return Err(format!("fixed CURVE keys do not match: {public}").into());
    }
    Ok(keys)
}

fn options(hwm: usize, mechanism: MechanismConfig) -> SocketOptions {
    SocketOptions::default()
        .hwm(hwm)
        .linger(LINGER)
        .mechanism(mechanism)
}

fn sender_type(pattern: Pattern) -> SocketType {
    match pattern {
        Pattern::Pushpull => SocketType::Push,
        Pattern::Dealerrouter => SocketType::Dealer,
    }
}

fn receiver_type(pattern: Pattern) -> SocketType {
    match pattern {
        Pattern::Pushpull => SocketType::Pull,
        Pattern::Dealerrouter => SocketType::Router,
    }
}

/// What a throughput receiver measured.
struct Throughput {
    /// From the first message to the last one.
    secs: f64,
    /// Messages after the first one per second.
    msgs_per_s: f64,
}

fn print_throughput(security: Security, pattern: &str, size: usize, count: u64, t: &Throughput) {
    let mb_per_s = t.msgs_per_s * size as f64 / 1e6;
    println!(
        "RESULT impl=zmtp mechanism={} pattern={pattern} size={size} count={count} secs={:.6} msgs_per_s={:.0} MB_per_s={mb_per_s:.2}",
        security.name(),
        t.secs,
        t.msgs_per_s
    );
}

/// Checks one received message: `[body]` for PULL, `[id, body]` for ROUTER.
fn check(msg: &Message, pattern: Pattern, size: usize) -> Result<(), BoxError> {
    let frames = match pattern {
        Pattern::Pushpull => 1,
        Pattern::Dealerrouter => 2,
    };
    if msg.len() != frames {
        return Err(format!("expected {frames} frame(s), got {}", msg.len()).into());
    }
    let body = msg[frames - 1].len();
    if body != size {
        return Err(format!("expected a {size}-byte body, got {body} bytes").into());
    }
    Ok(())
}

/// Receives `count` messages, timing from the first to the last.
async fn receive(
    socket: &mut Socket,
    pattern: Pattern,
    size: usize,
    count: u64,
) -> Result<Throughput, BoxError> {
    let first = socket.recv().await?;
    let start = Instant::now();
    check(&first, pattern, size)?;
    for _ in 1..count {
        let msg = socket.recv().await?;
        check(&msg, pattern, size)?;
    }
    let secs = start.elapsed().as_secs_f64();
    // The clock starts at the first message, so it times the other count - 1.
    let msgs_per_s = if count > 1 && secs > 0.0 {
        (count - 1) as f64 / secs
    } else {
        0.0
    };
    Ok(Throughput { secs, msgs_per_s })
}

async fn send_all(socket: &mut Socket, size: usize, count: u64) -> Result<(), BoxError> {
    send_bodies(socket, size, count, Bodies::Shared).await
}

/// How [`send`] makes its messages' bodies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Bodies {
    /// Clones of one body (what the anchors' programs send): no allocation per
    /// message, one reference count shared by all.
    #[default]
    Shared,
    /// A fresh copy per message, as a program that builds each message sends (and
    /// as libzmq's `zmq_send` copies).
    Fresh,
}

async fn send_bodies(
    socket: &mut Socket,
    size: usize,
    count: u64,
    bodies: Bodies,
) -> Result<(), BoxError> {
    let body = Bytes::from(vec![0u8; size]);
    for _ in 0..count {
        let next = match bodies {
            Bodies::Shared => body.clone(),
            Bodies::Fresh => Bytes::copy_from_slice(&body),
        };
        socket.send(next).await?;
    }
    Ok(())
}

/// `recv ENDPOINT PATTERN SIZE COUNT`.
pub async fn recv(
    endpoint: &str,
    pattern: Pattern,
    size: usize,
    count: u64,
    hwm: usize,
    security: Security,
) -> Result<(), BoxError> {
    security.check(endpoint)?;
    let mut socket =
        Socket::with_options(receiver_type(pattern), options(hwm, security.server()?))?;
    let bound = socket.bind(endpoint).await?;
    println!("READY {bound}");
    let t = receive(&mut socket, pattern, size, count).await?;
    print_throughput(security, pattern.name(), size, count, &t);
    Ok(())
}

/// `send ENDPOINT PATTERN SIZE COUNT [--hold] [--fresh-bodies]`.
pub async fn send(
    endpoint: &str,
    (pattern, size, count): (Pattern, usize, u64),
    hwm: usize,
    security: Security,
    hold: bool,
    bodies: Bodies,
) -> Result<(), BoxError> {
    security.check(endpoint)?;
    let mut socket = Socket::with_options(sender_type(pattern), options(hwm, security.client()?))?;
    socket.connect(endpoint)?;
    send_bodies(&mut socket, size, count, bodies).await?;
    if hold {
        // On a blocking thread: the runtime keeps writing meanwhile.
        tokio::task::spawn_blocking(|| {
            std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink())
        })
        .await??;
    }
    socket.close().await;
    Ok(())
}

/// `inproc PATTERN SIZE COUNT`: both ends in this process.
pub async fn inproc(pattern: Pattern, size: usize, count: u64, hwm: usize) -> Result<(), BoxError> {
    let endpoint = format!(
        "inproc://zmtp-bench-{}-{}",
        pattern.name(),
        std::process::id()
    );
    let mut receiver =
        Socket::with_options(receiver_type(pattern), options(hwm, MechanismConfig::Null))?;
    receiver.bind(&endpoint).await?;
    let mut sender =
        Socket::with_options(sender_type(pattern), options(hwm, MechanismConfig::Null))?;
    sender.connect(&endpoint)?;
    let sending = tokio::spawn(async move {
        send_all(&mut sender, size, count).await?;
        sender.close().await;
        Ok::<(), BoxError>(())
    });
    let t = receive(&mut receiver, pattern, size, count).await?;
    sending.await??;
    print_throughput(
        Security::Null,
        &format!("inproc-{}", pattern.name()),
        size,
        count,
        &t,
    );
    Ok(())
}

/// `rep ENDPOINT TOTAL`: echoes TOTAL requests.
pub async fn rep(
    endpoint: &str,
    total: u64,
    hwm: usize,
    security: Security,
) -> Result<(), BoxError> {
    security.check(endpoint)?;
    let mut socket = Socket::with_options(SocketType::Rep, options(hwm, security.server()?))?;
    let bound = socket.bind(endpoint).await?;
    println!("READY {bound}");
    for _ in 0..total {
        let msg = socket.recv().await?;
        socket.send(msg).await?;
    }
    // Flush the last reply before exiting.
    socket.close().await;
    Ok(())
}

/// `req ENDPOINT SIZE COUNT WARMUP`: WARMUP untimed then COUNT timed round trips.
pub async fn req(
    endpoint: &str,
    size: usize,
    count: u64,
    warmup: u64,
    hwm: usize,
    security: Security,
) -> Result<(), BoxError> {
    security.check(endpoint)?;
    let mut socket = Socket::with_options(SocketType::Req, options(hwm, security.client()?))?;
    socket.connect(endpoint)?;
    let body = Bytes::from(vec![0u8; size]);
    for _ in 0..warmup {
        round_trip(&mut socket, &body).await?;
    }
    let mut samples = Vec::with_capacity(usize::try_from(count)?);
    let start = Instant::now();
    for _ in 0..count {
        let t0 = Instant::now();
        round_trip(&mut socket, &body).await?;
        samples.push(t0.elapsed());
    }
    let secs = start.elapsed().as_secs_f64();
    samples.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = samples.iter().map(|&d| us(d)).sum::<f64>() / samples.len() as f64;
    let pct = |q: f64| us(percentile(&samples, q));
    let max = samples.last().map_or(0.0, |&d| us(d));
    println!(
        "RESULT impl=zmtp mechanism={} size={size} count={count} mean_us={mean:.2} p50_us={:.2} p99_us={:.2} p999_us={:.2} max_us={max:.2} rt_per_s={:.0}",
        security.name(),
        pct(0.50),
        pct(0.99),
        pct(0.999),
        count as f64 / secs
    );
    Ok(())
}

async fn round_trip(socket: &mut Socket, body: &Bytes) -> Result<(), BoxError> {
    socket.send(body.clone()).await?;
    let reply = socket.recv().await?;
    if reply.len() != 1 || reply[0] != *body {
        return Err("the reply is not the request echoed".into());
    }
    Ok(())
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// First byte of a fan-out message.
const PROBE: u8 = b'P';
const DATA: u8 = b'D';
const END: u8 = b'E';

fn tagged(tag: u8, size: usize) -> Bytes {
    let mut body = vec![0u8; size.max(1)];
    body[0] = tag;
    Bytes::from(body)
}

/// `fanout ENDPOINT SUBS SIZE COUNT`.
///
/// The publisher sends probes until every subscriber has seen one (the subscriptions
/// have arrived), then COUNT data messages, then end markers until every subscriber
/// has seen one. `secs` runs from the first data message to the last subscriber's
/// end marker, so both rates are end to end.
pub async fn fanout(
    endpoint: &str,
    subs: usize,
    size: usize,
    count: u64,
    hwm: usize,
    security: Security,
) -> Result<(), BoxError> {
    security.check(endpoint)?;
    let mut publisher = Socket::with_options(SocketType::Pub, options(hwm, security.server()?))?;
    let bound = publisher.bind(endpoint).await?.to_string();

    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Result<u64, String>>();
    let mut tasks = Vec::with_capacity(subs);
    for _ in 0..subs {
        let bound = bound.clone();
        let ready_tx = ready_tx.clone();
        let done_tx = done_tx.clone();
        tasks.push(tokio::spawn(async move {
            let result = subscriber(&bound, size, hwm, security, ready_tx).await;
            let _ = done_tx.send(result.map_err(|e| e.to_string()));
        }));
    }
    drop(ready_tx);
    drop(done_tx);

    let probe = tagged(PROBE, size);
    let mut ready = 0;
    while ready < subs {
        publisher.send(probe.clone()).await?;
        tokio::select! {
            r = ready_rx.recv() => match r {
                Some(()) => ready += 1,
                None => return Err("the subscribers are gone".into()),
            },
            // A subscriber that finishes before the data is sent has failed.
            r = done_rx.recv() => return Err(match r {
                Some(Err(e)) => format!("a subscriber failed: {e}").into(),
                _ => "a subscriber exited before it was ready".into(),
            }),
            _ = tokio::time::sleep(Duration::from_millis(1)) => {}
        }
        while ready_rx.try_recv().is_ok() {
            ready += 1;
        }
    }

    let data = tagged(DATA, size);
    let start = Instant::now();
    // PUB `send` never waits for room; it yields to the scheduler when the task's
    // budget is spent, so the connections keep up as far as the HWM allows.
    for _ in 0..count {
        publisher.send(data.clone()).await?;
    }
    let end = tagged(END, size);
    let mut done = 0;
    let mut received = 0u64;
    while done < subs {
        publisher.send(end.clone()).await?;
        let first = match tokio::time::timeout(Duration::from_millis(1), done_rx.recv()).await {
            Ok(Some(result)) => Some(result),
            Ok(None) => return Err("the subscribers are gone".into()),
            Err(_) => None,
        };
        let mut results: Vec<_> = first.into_iter().collect();
        while let Ok(result) = done_rx.try_recv() {
            results.push(result);
        }
        for result in results {
            received += result?;
            done += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    for task in tasks {
        task.await?;
    }
    let expected = count * subs as u64;
    let lost = expected.saturating_sub(received);
    println!(
        "RESULT impl=zmtp mechanism={} pattern=fanout subs={subs} size={size} count={count} secs={secs:.6} msgs_per_s={:.0} deliveries_per_s={:.0} lost={lost}",
        security.name(),
        count as f64 / secs,
        received as f64 / secs
    );
    Ok(())
}

/// One SUB: reports readiness at the first probe, counts data messages, returns the
/// count at the first end marker.
async fn subscriber(
    endpoint: &str,
    size: usize,
    hwm: usize,
    security: Security,
    ready_tx: mpsc::UnboundedSender<()>,
) -> Result<u64, BoxError> {
    let mut socket = Socket::with_options(SocketType::Sub, options(hwm, security.client()?))?;
    socket.connect(endpoint)?;
    socket.subscribe(Bytes::new())?;
    let mut ready = false;
    let mut received = 0u64;
    loop {
        let msg = socket.recv().await?;
        let body = &msg[0];
        if body.len() != size.max(1) {
            return Err(format!("expected a {size}-byte message, got {} bytes", body.len()).into());
        }
        match body[0] {
            PROBE if !ready => {
                ready = true;
                let _ = ready_tx.send(());
            }
            PROBE => {}
            DATA => received += 1,
            END => return Ok(received),
            other => return Err(format!("unexpected message tag {other:#04x}").into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_curve_keys_are_consistent() {
        // Each secret key gives its listed public key.
        assert!(matches!(
            Security::Curve.server(),
            Ok(MechanismConfig::CurveServer(_))
        ));
        assert!(matches!(
            Security::Curve.client(),
            Ok(MechanismConfig::CurveClient(_))
        ));
        assert_eq!(Security::Null.server().ok(), Some(MechanismConfig::Null));
    }

    #[test]
    fn curve_is_refused_on_inproc() {
        assert!(Security::Curve.check("inproc://x").is_err());
        assert!(Security::Curve.check("tcp://127.0.0.1:0").is_ok());
        assert!(Security::Null.check("inproc://x").is_ok());
    }
}
