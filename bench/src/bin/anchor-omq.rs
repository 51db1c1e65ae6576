//! `anchor-omq`: omq.rs (the crates.io `omq-tokio` crate) with zmtp-bench's
//! `recv`/`send` command line; RESULT lines say `impl=omq`. See the crate
//! documentation for the command line.
//!
//! NULL only: omq-tokio has CURVE behind its `curve` feature, but this anchor does
//! not wire the fixed keys in yet, so `--curve` is refused. `--hwm` sets omq's send
//! and receive high-water marks; the sender closes with a 60 s linger (omq's default
//! linger is zero, which would drop what is still queued).

use std::process::ExitCode;
use std::time::Duration;

use bench_anchors::{print_ready, run, Args, BoxError, Clock, Mode, Pattern};
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
    match args.mode {
        Mode::Recv => {
            let kind = match args.pattern {
                Pattern::Pushpull => SocketType::Pull,
                Pattern::Dealerrouter => SocketType::Router,
            };
            let socket = Socket::new(kind, options);
            let bound = socket.bind(args.endpoint.as_str()).await?;
            print_ready(&bound.to_string());
            let mut clock = Clock::default();
            recv_one(&socket).await?;
            clock.start();
            for _ in 1..args.count {
                recv_one(&socket).await?;
            }
            clock.finish("omq", args);
            socket.close().await?;
        }
        Mode::Send => {
            let kind = match args.pattern {
                Pattern::Pushpull => SocketType::Push,
                Pattern::Dealerrouter => SocketType::Dealer,
            };
            let socket = Socket::new(kind, options);
            socket.connect(args.endpoint.as_str()).await?;
            let body = Bytes::from(vec![0u8; args.size]);
            let msg = Message::single(body);
            for _ in 0..args.count {
                socket.send(msg.clone()).await?;
            }
            // Lingers until what is queued has gone out (at most LINGER).
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
