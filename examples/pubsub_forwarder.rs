//! A pub/sub forwarder (zguide "wuproxy"): publishers connect to one endpoint,
//! subscribers to another, and topics flow through by prefix. An XSUB socket faces
//! the publishers, an XPUB socket the subscribers, and [`zmtp::proxy`] forwards
//! messages downstream and subscriptions upstream, so each publisher only sends what
//! somebody subscribed to.
//!
//! ```text
//! # a forwarder that runs until Ctrl-C (pyzmq or C publishers and subscribers work too):
//! cargo run -p zmtp-examples --example pubsub_forwarder -- tcp://*:5559 tcp://*:5560
//! # the two-minute tour: a forwarder, a publisher and two subscribers in one process:
//! cargo run -p zmtp-examples --example pubsub_forwarder
//! ```

use std::time::Duration;

use zmtp::{Socket, SocketType};

/// Binds the publishers' side (XSUB) and the subscribers' side (XPUB) and forwards
/// between them on a task of its own. Returns the endpoints actually bound.
async fn start_forwarder(
    publishers: &str,
    subscribers: &str,
) -> Result<(String, String, tokio::task::JoinHandle<()>), zmtp::Error> {
    let mut frontend = Socket::new(SocketType::XSub);
    let publishers = frontend.bind(publishers).await?.to_string();
    let mut backend = Socket::new(SocketType::XPub);
    let subscribers = backend.bind(subscribers).await?.to_string();
    let forwarder = tokio::spawn(async move {
        if let Err(e) = zmtp::proxy(&mut frontend, &mut backend, None).await {
            eprintln!("forwarder stopped: {e}");
        }
    });
    Ok((publishers, subscribers, forwarder))
}

#[tokio::main]
async fn main() -> Result<(), zmtp::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [publishers, subscribers] = &args[..] {
        let (publishers, subscribers, _forwarder) =
            start_forwarder(publishers, subscribers).await?;
        println!("publishers connect to {publishers}, subscribers to {subscribers}; Ctrl-C stops");
        let _ = tokio::signal::ctrl_c().await;
        return Ok(());
    }
    if !args.is_empty() {
        eprintln!("usage: pubsub_forwarder [PUBLISHERS_ENDPOINT SUBSCRIBERS_ENDPOINT]");
        std::process::exit(2);
    }

    // The tour: everything in one process, over tcp on ports the OS picks.
    let (publishers, subscribers, _forwarder) =
        start_forwarder("tcp://127.0.0.1:0", "tcp://127.0.0.1:0").await?;
    println!("forwarder: publishers -> {publishers}, subscribers -> {subscribers}");

    let mut weather = Socket::new(SocketType::Sub);
    weather.subscribe("weather.")?;
    weather.connect(&subscribers)?;
    let mut everything = Socket::new(SocketType::Sub);
    everything.subscribe("")?;
    everything.connect(&subscribers)?;

    let mut publisher = Socket::new(SocketType::Pub);
    publisher.connect(&publishers)?;

    // Subscriptions travel up through the forwarder while connections come up; a
    // publisher drops what nobody has subscribed to yet, so publish until both
    // subscribers have heard something, as a real feed would.
    let mut heard = (0, 0);
    let mut n = 0;
    while heard.0 < 3 || heard.1 < 3 {
        n += 1;
        let topic = if n % 2 == 0 {
            "weather.paris"
        } else {
            "news.world"
        };
        publisher
            .send([topic.to_string(), format!("update {n}")])
            .await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
        while let Ok(msg) = weather.try_recv() {
            heard.0 += 1;
            println!("weather subscriber: {}", show(&msg));
        }
        while let Ok(msg) = everything.try_recv() {
            heard.1 += 1;
            println!("catch-all subscriber: {}", show(&msg));
        }
        if n > 10_000 {
            eprintln!("nothing arrived: is something blocking the ports?");
            std::process::exit(1);
        }
    }
    println!("done: the weather subscriber only ever saw weather.*");
    Ok(())
}

fn show(msg: &zmtp::Message) -> String {
    msg.iter()
        .map(|frame| String::from_utf8_lossy(frame).into_owned())
        .collect::<Vec<_>>()
        .join(" | ")
}
