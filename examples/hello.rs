//! The main demo: a ROUTER echo server and a few DEALER clients talking over tcp in
//! one process, then a REQ/REP round trip over ipc.
//!
//! ```text
//! cargo run -p zmtp-examples --example hello
//! ```

use zmtp::{Message, Socket, SocketOptions, SocketType};

#[tokio::main]
async fn main() -> Result<(), zmtp::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();

    // A ROUTER echo server on a port the OS picks.
    let mut server = Socket::new(SocketType::Router);
    let endpoint = server.bind("tcp://127.0.0.1:0").await?;
    println!("ROUTER echo server bound at {endpoint}");
    tokio::spawn(async move {
        while let Ok(request) = server.recv().await {
            // Frame 0 is the sender's routing id: sending the message back as is
            // routes it to the sender.
            if server.send(request).await.is_err() {
                break;
            }
        }
    });

    // Three DEALER clients with readable routing ids.
    for name in ["alice", "bob", "carol"] {
        let options = SocketOptions::default().routing_id(name);
        let mut client = Socket::with_options(SocketType::Dealer, options)?;
        client.connect(&endpoint.to_string())?;
        client.send(["hello from", name]).await?;
        let reply = client.recv().await?;
        println!("{name} got back {:?}", printable(&reply));
    }

    // REQ/REP over a Unix domain socket.
    let path = std::env::temp_dir().join(format!("zmtp-hello-{}.sock", std::process::id()));
    let ipc = format!("ipc://{}", path.display());
    let mut rep = Socket::new(SocketType::Rep);
    rep.bind(&ipc).await?;
    let mut req = Socket::new(SocketType::Req);
    req.connect(&ipc)?;
    req.send("ping").await?;
    let request = rep.recv().await?;
    let asked = String::from_utf8_lossy(&request[0]).into_owned();
    rep.send(Message::from(vec!["pong to".to_string(), asked]))
        .await?;
    println!("REQ over {ipc} got {:?}", printable(&req.recv().await?));
    Ok(())
}

fn printable(msg: &Message) -> Vec<String> {
    msg.iter().map(|f| zmtp::printable(f)).collect()
}
