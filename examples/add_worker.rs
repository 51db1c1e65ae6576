//! The `add` service of the Overseer seed: takes MessagePack `{"x": 6, "y": 7}` and
//! returns the sum. Any MDP client can call it: `add_client` (Rust) or
//! `python/add_client.py` (pyzmq + msgpack).

#[derive(serde::Deserialize)]
struct Add {
    x: i64,
    y: i64,
}

#[tokio::main]
async fn main() -> Result<(), mdp::worker::WorkerError> {
    let broker = zmtp_examples::worker_setup("add worker");
    mdp::Worker::new(broker, "add")
        .run_typed(|add: Add| async move { Ok::<_, std::io::Error>(add.x + add.y) })
        .await
}
