//! An MDP worker for the `echo` service: replies with the request as it came.
//!
//! ```text
//! cargo run -p mdp-broker &                               # the broker on tcp://127.0.0.1:5555
//! cargo run -p zmtp-examples --example echo_worker
//! cargo run -p zmtp-examples --example echo_client -- hello world
//! ```

#[tokio::main]
async fn main() -> Result<(), mdp::worker::WorkerError> {
    let broker = zmtp_examples::worker_setup("echo worker");
    mdp::Worker::new(broker, "echo")
        .run(|request| async move { Ok(request) })
        .await
}
