//! `anchor-zmqrs`: zmq.rs (the crates.io `zeromq` crate, on tokio) with
//! zmtp-bench's `recv`/`send` command line; RESULT lines say `impl=zmqrs`. See the
//! crate documentation for the command line.
//!
//! NULL only: zmq.rs has no CURVE, so `--curve` is refused. zmq.rs has no
//! high-water-mark option either (each peer has a fixed send queue of 100 000
//! messages), so `--hwm` is ignored. Nor has it a linger: dropping a socket hands
//! what is queued to its per-peer writer tasks, so the sender keeps the runtime
//! running until those tasks have ended (at most 60 s) before it returns.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use bench_anchors::{print_ready, run, Args, BoxError, Clock, Mode, Pattern};
use bytes::Bytes;
use zeromq::{
    DealerSocket, PullSocket, PushSocket, RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage,
};

const LINGER: Duration = Duration::from_secs(60);

async fn receive(mut socket: impl Socket + SocketRecv, args: &Args) -> Result<(), BoxError> {
    let bound = socket.bind(&args.endpoint).await?;
    print_ready(&bound.to_string());
    let mut clock = Clock::default();
    socket.recv().await?;
    clock.start();
    for _ in 1..args.count {
        socket.recv().await?;
    }
    clock.finish("zmqrs", args);
    socket.close().await;
    Ok(())
}

async fn send(mut socket: impl Socket + SocketSend, args: &Args) -> Result<(), BoxError> {
    socket.connect(&args.endpoint).await?;
    let body = Bytes::from(vec![0u8; args.size]);
    for _ in 0..args.count {
        socket.send(ZmqMessage::from(body.clone())).await?;
    }
    drop(socket);
    // The writer tasks end once they have written what was queued.
    let metrics = tokio::runtime::Handle::current().metrics();
    let deadline = Instant::now() + LINGER;
    while metrics.num_alive_tasks() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

async fn anchor(args: &Args) -> Result<(), BoxError> {
    match (args.mode, args.pattern) {
        (Mode::Recv, Pattern::Pushpull) => receive(PullSocket::new(), args).await,
        (Mode::Recv, Pattern::Dealerrouter) => receive(RouterSocket::new(), args).await,
        (Mode::Send, Pattern::Pushpull) => send(PushSocket::new(), args).await,
        (Mode::Send, Pattern::Dealerrouter) => send(DealerSocket::new(), args).await,
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
