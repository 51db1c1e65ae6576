//! An MDP worker for the `echo` service: replies with the request as it came.
//!
//! ```text
//! cargo run -p mdp-broker &                               # the broker on tcp://127.0.0.1:5555
//! cargo run -p zmtp-examples --example echo_worker
//! cargo run -p zmtp-examples --example echo_client -- hello world
//! ```

#[tokio::main]
async fn main() -> Result<(), mdp::worker::WorkerError> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let broker = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tcp://127.0.0.1:5555".into());
    eprintln!("echo worker serving through {broker}");
    mdp::Worker::new(broker, "echo")
        .run(|request| async move { Ok(request) })
        .await
}
