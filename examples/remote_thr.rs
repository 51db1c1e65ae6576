//! Throughput source, after libzmq's `perf/remote_thr`: a DEALER connects and sends
//! COUNT messages of SIZE bytes to `local_thr`.

use zmtp::{Message, Socket, SocketOptions, SocketType};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, endpoint, size, count] = &args[..] else {
        eprintln!("usage: remote_thr ENDPOINT MESSAGE_SIZE MESSAGE_COUNT");
        std::process::exit(2);
    };
    let size: usize = size.parse()?;
    let count: u64 = count.parse()?;
    let options = SocketOptions::default().linger(std::time::Duration::from_secs(60));
    let mut dealer = Socket::with_options(SocketType::Dealer, options)?;
    dealer.connect(endpoint)?;
    let msg = Message::from(vec![0u8; size]);
    for _ in 0..count {
        dealer.send(msg.clone()).await?;
    }
    dealer.close().await;
    Ok(())
}
