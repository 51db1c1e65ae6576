//! Calls the `echo` service with the command-line arguments as frames.
//!
//! ```text
//! cargo run -p zmtp-examples --example echo_client -- hello world
//! ```

use zmtp::Message;

#[tokio::main]
async fn main() -> Result<(), mdp::ClientError> {
    let broker = std::env::var("BROKER").unwrap_or_else(|_| "tcp://127.0.0.1:5555".into());
    let frames: Vec<String> = std::env::args().skip(1).collect();
    let body = if frames.is_empty() {
        Message::from("hello")
    } else {
        Message::from(frames)
    };
    let client = mdp::Client::connect(&broker)?;
    let reply = client.request("echo", body).await?;
    let text: Vec<String> = reply.iter().map(|f| zmtp::printable(f)).collect();
    println!("{}", text.join(" | "));
    Ok(())
}
