//! A streaming worker (MDP 0.2): `count` replies "1", "2", … up to the number asked,
//! each as a PARTIAL reply, the last as FINAL.

use futures_util::stream;
use mdp::{Dialect, WorkerOptions};
use zmtp::Message;

#[tokio::main]
async fn main() -> Result<(), mdp::worker::WorkerError> {
    let broker = zmtp_examples::worker_setup("count worker");
    let options = WorkerOptions::default().dialect(Dialect::Mdp02);
    mdp::Worker::new(broker, "count")
        .options(options)
        .run_streaming_until(
            |request: Message| {
                let n: u32 = request
                    .first()
                    .and_then(|f| std::str::from_utf8(f).ok()?.parse().ok())
                    .unwrap_or(3);
                stream::iter((1..=n).map(|i| Ok(Message::from(i.to_string()))))
            },
            std::future::pending(),
        )
        .await
}
