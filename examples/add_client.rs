//! Calls `add` with a typed MessagePack request.
//!
//! ```text
//! cargo run -p zmtp-examples --example add_client -- 6 7
//! ```

#[derive(serde::Serialize)]
struct Add {
    x: i64,
    y: i64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = std::env::var("BROKER").unwrap_or_else(|_| "tcp://127.0.0.1:5555".into());
    let mut args = std::env::args().skip(1).map(|a| a.parse::<i64>());
    let x = args.next().unwrap_or(Ok(6))?;
    let y = args.next().unwrap_or(Ok(7))?;
    let client = mdp::Client::connect(&broker)?;
    let sum: i64 = client.call("add", &Add { x, y }).await?;
    println!("{x} + {y} = {sum}");
    Ok(())
}
