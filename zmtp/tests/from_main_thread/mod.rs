//! Messages sent from a `#[tokio::main]` body, whose thread is not its
//! connection's: small one-frame messages are framed by the sender on a connection in
//! the clear (`zmtp/src/framed_batch.rs`), and their bodies travel inline in the queue
//! on a CURVE one (`zmtp/src/inline_body.rs`). Shared by the NULL and CURVE tests.

use std::time::Duration;

use zmtp::{Message, Socket};

/// Every body size from 0 to past the inline limit, the sizes around the framed
/// limit (255, the largest short frame), larger and multipart messages between,
/// sent `rounds` times as fresh copies and as clones of shared bodies: each arrives
/// whole and in order.
pub async fn mixed_messages_arrive_intact(push: &mut Socket, pull: &mut Socket, rounds: usize) {
    let sent: Vec<Message> = (0..=80usize)
        .chain(250..=260)
        .map(|n| Message::from(vec![n as u8; n]))
        .chain([
            Message::from(vec![9u8; 5000]),
            Message::from(["", "after a delimiter"]),
            Message::from("last"),
        ])
        .collect();
    for round in 0..rounds {
        for msg in &sent {
            if round % 2 == 0 {
                // A fresh copy, owned alone: small ones travel inline under CURVE.
                let fresh: Vec<Vec<u8>> = msg.iter().map(|frame| frame.to_vec()).collect();
                push.send(Message::from(fresh)).await.unwrap();
            } else {
                push.send(msg.clone()).await.unwrap();
            }
        }
        for (i, msg) in sent.iter().enumerate() {
            let got = tokio::time::timeout(Duration::from_secs(30), pull.recv())
                .await
                .expect("a message in time")
                .expect("socket open");
            assert_eq!(&got, msg, "round {round}, message {i}");
        }
    }
}
