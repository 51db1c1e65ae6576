//! `anchor-omq`: omq.rs (the crates.io `omq-tokio` crate) with zmtp-bench's
//! `recv`/`send` and `rep`/`req` command lines; RESULT lines say `impl=omq`. See
//! the crate documentation for the command line.
//!
//! NULL only: omq-tokio has CURVE behind its `curve` feature, but this anchor does
//! not wire the fixed keys in yet, so `--curve` is refused. `--hwm` sets omq's send
//! and receive high-water marks; every socket closes with a 60 s linger (omq's
//! default linger is zero, which would drop what is still queued, such as `rep`'s
//! last reply).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use bench_anchors::{check_echo, print_ready, run, Args, BoxError, Clock, Latency, Mode, Pattern};
use bytes::Bytes;
use omq_tokio::{Error, Message, Options, Socket, SocketType};

const LINGER: Duration = Duration::from_secs(60);

/// Receives one message, trying the non-blocking path first (as omq's own
/// benchmark peer does) and waiting only when nothing is queued.
async fn recv_one(socket: &Socket) -> Result<Message, BoxError> {
    match socket.try_recv() {
        Ok(msg) => Ok(msg),
        Err(Error::WouldBlock) => Ok(socket.recv().await?),
        Err(e) => Err(e.into()),
    }
}

async fn anchor(args: &Args) -> Result<(), BoxError> {
    let options = Options::default()
        .send_hwm(args.hwm)
        .recv_hwm(args.hwm)
        .linger(LINGER);
    match &args.mode {
        Mode::Recv(run) => {
            let kind = match run.pattern {
                Pattern::Pushpull => SocketType::Pull,
                Pattern::Dealerrouter => SocketType::Router,
            };
            let socket = Socket::new(kind, options);
            let bound = socket.bind(args.endpoint.as_str()).await?;
            print_ready(&bound.to_string());
            let mut clock = Clock::default();
            recv_one(&socket).await?;
            clock.start();
            for _ in 1..run.count {
                recv_one(&socket).await?;
            }
            clock.finish("omq", args.mechanism(), run);
            socket.close().await?;
        }
        Mode::Send(run) => {
            let kind = match run.pattern {
                Pattern::Pushpull => SocketType::Push,
                Pattern::Dealerrouter => SocketType::Dealer,
            };
            let socket = Socket::new(kind, options);
            socket.connect(args.endpoint.as_str()).await?;
            let body = Bytes::from(vec![0u8; run.size]);
            let msg = Message::single(body);
            for _ in 0..run.count {
                socket.send(msg.clone()).await?;
            }
            bench_anchors::hold(args).await;
            // Lingers until what is queued has gone out (at most LINGER).
            socket.close().await?;
        }
        Mode::Rep { total } => {
            let socket = Socket::new(SocketType::Rep, options);
            let bound = socket.bind(args.endpoint.as_str()).await?;
            print_ready(&bound.to_string());
            for _ in 0..*total {
                let request = recv_one(&socket).await?;
                socket.send(request).await?;
            }
            // Lingers until the last reply has gone out (at most LINGER).
            socket.close().await?;
        }
        Mode::Req(run) => {
            let socket = Socket::new(SocketType::Req, options);
            socket.connect(args.endpoint.as_str()).await?;
            let body = Bytes::from(vec![0u8; run.size]);
            let request = Message::single(body.clone());
            let round_trip = || async {
                socket.send(request.clone()).await?;
                let reply = recv_one(&socket).await?;
                check_echo(&body, reply.len(), reply.get(0))
            };
            for _ in 0..run.warmup {
                round_trip().await?;
            }
            let mut latency = Latency::start(run);
            for _ in 0..run.count {
                let t0 = Instant::now();
                round_trip().await?;
                latency.record(t0.elapsed());
            }
            latency.finish("omq", args.mechanism());
            socket.close().await?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    run("anchor-omq", |args| {
        if args.curve {
            return Err("--curve is not supported: this anchor runs NULL only".into());
        }
        bench_anchors::tokio_runtime(args)?.block_on(anchor(args))
    })
}
