//! Prints the partial replies of `count` as they arrive (MDP 0.2).
//!
//! ```text
//! cargo run -p zmtp-examples --example stream_client -- 5
//! ```

use futures_util::StreamExt;
use mdp::{ClientOptions, Dialect};

#[tokio::main]
async fn main() -> Result<(), mdp::ClientError> {
    let broker = std::env::var("BROKER").unwrap_or_else(|_| "tcp://127.0.0.1:5555".into());
    let n = std::env::args().nth(1).unwrap_or_else(|| "3".into());
    let options = ClientOptions::default().dialect(Dialect::Mdp02);
    let client = mdp::Client::connect_with(&broker, options)?;
    let mut replies = Box::pin(client.request_stream("count", n).await?);
    while let Some(part) = replies.next().await {
        let part = part?;
        println!("{:?}: {}", part.kind, zmtp::printable(&part.body[0]));
    }
    Ok(())
}
