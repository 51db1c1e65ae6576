//! `anchor-zmqrs`: zmq.rs (the crates.io `zeromq` crate, on tokio) with
//! zmtp-bench's `recv`/`send` and `rep`/`req` command lines; RESULT lines say
//! `impl=zmqrs`. See the crate documentation for the command line.
//!
//! NULL only: zmq.rs has no CURVE, so `--curve` is refused. zmq.rs has no
//! high-water-mark option either (each peer has a fixed send queue of 100 000
//! messages), so `--hwm` is ignored. Nor has it a linger: dropping a socket hands
//! what is queued to its per-peer writer tasks, so `send` and `rep` keep the runtime
//! running until those tasks have ended (at most 60 s) before they return.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use bench_anchors::{
    check_echo, print_ready, run, Args, BoxError, Clock, Latency, Mode, Pattern, RoundTrips,
    Throughput,
};
use bytes::Bytes;
use zeromq::{
    DealerSocket, PullSocket, PushSocket, RepSocket, ReqSocket, RouterSocket, Socket, SocketRecv,
    SocketSend, ZmqMessage,
};

const LINGER: Duration = Duration::from_secs(60);

async fn receive(
    mut socket: impl Socket + SocketRecv,
    args: &Args,
    run: &Throughput,
) -> Result<(), BoxError> {
    let bound = socket.bind(&args.endpoint).await?;
    print_ready(&bound.to_string());
    let mut clock = Clock::default();
    socket.recv().await?;
    clock.start();
    for _ in 1..run.count {
        socket.recv().await?;
    }
    clock.finish("zmqrs", args.mechanism(), run);
    socket.close().await;
    Ok(())
}

async fn send(
    mut socket: impl Socket + SocketSend,
    args: &Args,
    run: &Throughput,
) -> Result<(), BoxError> {
    socket.connect(&args.endpoint).await?;
    let body = Bytes::from(vec![0u8; run.size]);
    for _ in 0..run.count {
        socket.send(ZmqMessage::from(body.clone())).await?;
    }
    bench_anchors::hold(args).await;
    drop(socket);
    linger().await;
    Ok(())
}

/// Echoes `total` requests.
async fn rep(args: &Args, total: u64) -> Result<(), BoxError> {
    let mut socket = RepSocket::new();
    let bound = socket.bind(&args.endpoint).await?;
    print_ready(&bound.to_string());
    for _ in 0..total {
        let request = socket.recv().await?;
        socket.send(request).await?;
    }
    drop(socket);
    linger().await;
    Ok(())
}

/// WARMUP untimed then COUNT timed round trips.
async fn req(args: &Args, run: &RoundTrips) -> Result<(), BoxError> {
    let mut socket = ReqSocket::new();
    socket.connect(&args.endpoint).await?;
    let body = Bytes::from(vec![0u8; run.size]);
    for _ in 0..run.warmup {
        round_trip(&mut socket, &body).await?;
    }
    let mut latency = Latency::start(run);
    for _ in 0..run.count {
        let t0 = Instant::now();
        round_trip(&mut socket, &body).await?;
        latency.record(t0.elapsed());
    }
    latency.finish("zmqrs", args.mechanism());
    Ok(())
}

async fn round_trip(socket: &mut ReqSocket, body: &Bytes) -> Result<(), BoxError> {
    socket.send(ZmqMessage::from(body.clone())).await?;
    let reply = socket.recv().await?;
    check_echo(body, reply.len(), reply.get(0).map(|frame| &frame[..]))
}

/// Waits (at most [`LINGER`]) for the writer tasks of dropped sockets to end: they
/// end once they have written what was queued.
async fn linger() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let deadline = Instant::now() + LINGER;
    while metrics.num_alive_tasks() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn anchor(args: &Args) -> Result<(), BoxError> {
    match &args.mode {
        Mode::Recv(run) => match run.pattern {
            Pattern::Pushpull => receive(PullSocket::new(), args, run).await,
            Pattern::Dealerrouter => receive(RouterSocket::new(), args, run).await,
        },
        Mode::Send(run) => match run.pattern {
            Pattern::Pushpull => send(PushSocket::new(), args, run).await,
            Pattern::Dealerrouter => send(DealerSocket::new(), args, run).await,
        },
        Mode::Rep { total } => rep(args, *total).await,
        Mode::Req(run) => req(args, run).await,
    }
}

fn main() -> ExitCode {
    run("anchor-zmqrs", |args| {
        if args.curve {
            return Err("--curve is not supported: zmq.rs has no CURVE mechanism".into());
        }
        bench_anchors::tokio_runtime(args)?.block_on(anchor(args))
    })
}
