//! Throughput sink, after libzmq's `perf/local_thr`: a ROUTER binds, receives COUNT
//! messages from one DEALER (`remote_thr`) and prints the rate.
//!
//! ```text
//! cargo run --release -p zmtp-examples --example local_thr -- tcp://127.0.0.1:5555 16 1000000
//! cargo run --release -p zmtp-examples --example remote_thr -- tcp://127.0.0.1:5555 16 1000000
//! ```

use std::time::Instant;

use zmtp::{Socket, SocketType};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, endpoint, size, count] = &args[..] else {
        eprintln!("usage: local_thr ENDPOINT MESSAGE_SIZE MESSAGE_COUNT");
        std::process::exit(2);
    };
    let size: usize = size.parse()?;
    let count: u64 = count.parse()?;
    let mut router = Socket::new(SocketType::Router);
    router.bind(endpoint).await?;

    let first = router.recv().await?;
    let start = Instant::now();
    assert_eq!(first[1].len(), size, "message size mismatch");
    for _ in 1..count {
        router.recv().await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let rate = (count - 1) as f64 / elapsed;
    println!(
        "message size: {size} B, count: {count}, {rate:.0} msg/s, {:.1} Mb/s",
        rate * size as f64 * 8.0 / 1e6
    );
    Ok(())
}
