//! Our sockets talking to each other over tcp and ipc.

use std::time::Duration;

use zmtp::{Message, Socket, SocketOptions, SocketType};

const WAIT: Duration = Duration::from_secs(20);

async fn recv(s: &mut Socket) -> Message {
    tokio::time::timeout(WAIT, s.recv())
        .await
        .expect("message within timeout")
        .expect("recv")
}

fn ipc_endpoint(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("zmtp-test-{}-{name}", std::process::id()));
    format!("ipc://{}", dir.display())
}

#[tokio::test]
async fn req_rep_over_tcp_and_ipc() {
    for ep in ["tcp://127.0.0.1:0".to_string(), ipc_endpoint("reqrep")] {
        let mut rep = Socket::new(SocketType::Rep);
        let bound = rep.bind(&ep).await.unwrap();
        let mut req = Socket::new(SocketType::Req);
        req.connect(&bound.to_string()).await.unwrap();
        for i in 0..10 {
            req.send(format!("hello {i}")).await.unwrap();
            assert_eq!(recv(&mut rep).await, Message::from(format!("hello {i}")));
            rep.send(Message::from(["world", ""])).await.unwrap();
            assert_eq!(recv(&mut req).await, Message::from(["world", ""]));
        }
        assert!(req.recv().await.is_err(), "REQ must send first");
    }
}

#[tokio::test]
async fn dealer_router_identities() {
    let mut router = Socket::new(SocketType::Router);
    let ep = router.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut named = Socket::with_options(
        SocketType::Dealer,
        SocketOptions::default().routing_id("alice"),
    )
    .unwrap();
    named.connect(&ep).await.unwrap();
    let mut anon = Socket::new(SocketType::Dealer);
    anon.connect(&ep).await.unwrap();

    named.send(["a", "", "b"]).await.unwrap();
    let m = recv(&mut router).await;
    assert_eq!(m, Message::from(["alice", "a", "", "b"]));
    anon.send("x").await.unwrap();
    let m = recv(&mut router).await;
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].len(), 5);
    assert_eq!(m[0][0], 0);

    router.send(["alice", "reply"]).await.unwrap();
    assert_eq!(recv(&mut named).await, Message::from("reply"));
    let mut back = m.clone();
    back.pop_back();
    back.push_back("to anon");
    router.send(back).await.unwrap();
    assert_eq!(recv(&mut anon).await, Message::from("to anon"));
}

#[tokio::test]
async fn connect_before_bind_queues_then_delivers() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let ep = format!("tcp://127.0.0.1:{port}");
    let mut dealer = Socket::new(SocketType::Dealer);
    dealer.connect(&ep).await.unwrap();
    for i in 0..5 {
        dealer.send(format!("early {i}")).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut router = Socket::new(SocketType::Router);
    router.bind(&ep).await.unwrap();
    for i in 0..5 {
        let m = recv(&mut router).await;
        assert_eq!(m[1], format!("early {i}"));
    }
}

#[tokio::test]
async fn large_multipart_messages_arrive_intact() {
    let mut a = Socket::new(SocketType::Dealer);
    let ep = a.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut b = Socket::new(SocketType::Dealer);
    b.connect(&ep).await.unwrap();
    let sizes = [0usize, 255, 256, 1 << 20, 0];
    let msg: Message = sizes.iter().map(|&n| vec![(n % 251) as u8; n]).collect();
    for _ in 0..3 {
        b.send(msg.clone()).await.unwrap();
    }
    for _ in 0..3 {
        assert_eq!(recv(&mut a).await, msg);
    }
}
