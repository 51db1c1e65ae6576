//! Our sockets talking to each other over tcp and ipc.

mod from_main_thread;

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
        req.connect(&bound.to_string()).unwrap();
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
    named.connect(&ep).unwrap();
    let mut anon = Socket::new(SocketType::Dealer);
    anon.connect(&ep).unwrap();

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
    dealer.connect(&ep).unwrap();
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
    b.connect(&ep).unwrap();
    let sizes = [0usize, 255, 256, 1 << 20, 0];
    let msg: Message = sizes.iter().map(|&n| vec![(n % 251) as u8; n]).collect();
    for _ in 0..3 {
        b.send(msg.clone()).await.unwrap();
    }
    for _ in 0..3 {
        assert_eq!(recv(&mut a).await, msg);
    }
}

/// A stream of large frames whose sizes keep changing around the room the reader
/// predicts for the next one (the size of the last large frame, up to 64 KiB and its framing),
/// with small ones between, sent faster than they are read: every frame arrives
/// whole and in order, on both runtimes, over tcp and ipc.
async fn large_frames_of_changing_sizes(name: &str) {
    const K: usize = 1024;
    let sizes = [
        64 * K,
        64 * K,
        64 * K + 1,
        40 * K,
        100,
        32 * K - 9,
        32 * K,
        200 * K,
        256 * K,
        300 * K,
        64 * K,
        9,
        1 << 20,
        64 * K,
    ];
    for ep in ["tcp://127.0.0.1:0".to_string(), ipc_endpoint(name)] {
        let mut pull = Socket::new(SocketType::Pull);
        let bound = pull.bind(&ep).await.unwrap().to_string();
        let mut push = Socket::new(SocketType::Push);
        push.connect(&bound).unwrap();
        let sender = tokio::spawn(async move {
            for round in 0..4usize {
                for (i, &n) in sizes.iter().enumerate() {
                    let fill = (round * sizes.len() + i) as u8;
                    push.send(Message::from(["head".as_bytes().to_vec(), vec![fill; n]]))
                        .await
                        .unwrap();
                }
            }
            push
        });
        for round in 0..4usize {
            for (i, &n) in sizes.iter().enumerate() {
                let fill = (round * sizes.len() + i) as u8;
                let got = recv(&mut pull).await;
                assert_eq!(got.len(), 2);
                assert_eq!(got[0], "head");
                assert_eq!(got[1].len(), n, "round {round}, frame {i}");
                assert!(
                    got[1].iter().all(|&b| b == fill),
                    "round {round}, frame {i}"
                );
            }
        }
        drop(sender.await.unwrap());
    }
}

#[tokio::test(flavor = "current_thread")]
async fn large_frames_of_changing_sizes_on_the_current_thread_runtime() {
    large_frames_of_changing_sizes("large-ct").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_frames_of_changing_sizes_on_the_multi_thread_runtime() {
    large_frames_of_changing_sizes("large-mt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_messages_sent_from_the_main_thread_arrive_intact() {
    for ep in ["tcp://127.0.0.1:0".to_string(), ipc_endpoint("inline")] {
        let mut pull = Socket::new(SocketType::Pull);
        let bound = pull.bind(&ep).await.unwrap().to_string();
        let mut push = Socket::new(SocketType::Push);
        push.connect(&bound).unwrap();
        from_main_thread::mixed_messages_arrive_intact(&mut push, &mut pull, 50).await;
    }
}

#[tokio::test]
async fn router_mandatory_reports_unknown_peers() {
    let options = SocketOptions::default().router_mandatory(true);
    let mut router = Socket::with_options(SocketType::Router, options).unwrap();
    router.bind("tcp://127.0.0.1:0").await.unwrap();
    let err = router.send(["nobody", "hello"]).await.unwrap_err();
    assert!(
        matches!(err, zmtp::Error::HostUnreachable(ref id) if id == "nobody"),
        "{err}"
    );
    // Without the option the message is dropped silently.
    let mut lax = Socket::new(SocketType::Router);
    lax.bind("tcp://127.0.0.1:0").await.unwrap();
    lax.send(["nobody", "hello"]).await.unwrap();
}

#[tokio::test]
async fn router_handover_gives_the_identity_to_the_newcomer() {
    let options = SocketOptions::default().router_handover(true);
    let mut router = Socket::with_options(SocketType::Router, options).unwrap();
    let ep = router.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let same = || {
        Socket::with_options(
            SocketType::Dealer,
            SocketOptions::default().routing_id("dup"),
        )
        .unwrap()
    };
    let mut first = same();
    first.connect(&ep).unwrap();
    first.send("one").await.unwrap();
    assert_eq!(recv(&mut router).await, Message::from(["dup", "one"]));
    let mut second = same();
    second.connect(&ep).unwrap();
    second.send("two").await.unwrap();
    assert_eq!(recv(&mut router).await, Message::from(["dup", "two"]));
    router.send(["dup", "for the newcomer"]).await.unwrap();
    assert_eq!(recv(&mut second).await, Message::from("for the newcomer"));
}

#[tokio::test]
async fn dealer_send_waits_at_the_hwm_and_router_drops() {
    // Nobody ever connects: the DEALER's single pipe fills up to the HWM, then send waits.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = format!("tcp://{}", probe.local_addr().unwrap());
    drop(probe);
    let mut dealer =
        Socket::with_options(SocketType::Dealer, SocketOptions::default().send_hwm(5)).unwrap();
    dealer.connect(&ep).unwrap();
    for i in 0..5 {
        dealer.send(format!("{i}")).await.unwrap();
    }
    let blocked = tokio::time::timeout(Duration::from_millis(200), dealer.send("6")).await;
    assert!(blocked.is_err(), "send must wait when every pipe is full");

    // A ROUTER never waits: past the HWM of a peer that does not read, it drops.
    let mut router =
        Socket::with_options(SocketType::Router, SocketOptions::default().send_hwm(5)).unwrap();
    let rep = router.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut slow = Socket::with_options(
        SocketType::Dealer,
        SocketOptions::default().routing_id("slow"),
    )
    .unwrap();
    slow.connect(&rep).unwrap();
    slow.send("hi").await.unwrap();
    recv(&mut router).await;
    for _ in 0..100_000 {
        tokio::time::timeout(WAIT, router.send(["slow", "x"]))
            .await
            .expect("ROUTER send never blocks")
            .unwrap();
    }
}

#[tokio::test]
async fn dealer_load_balances_and_fair_queues() {
    let mut a = Socket::new(SocketType::Dealer);
    let ea = a.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut b = Socket::new(SocketType::Dealer);
    let eb = b.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut client = Socket::new(SocketType::Dealer);
    client.connect(&ea).unwrap();
    client.connect(&eb).unwrap();
    for i in 0..10 {
        client.send(format!("{i}")).await.unwrap();
    }
    for _ in 0..5 {
        recv(&mut a).await;
        recv(&mut b).await;
    }
    a.send("from a").await.unwrap();
    b.send("from b").await.unwrap();
    let mut got = vec![recv(&mut client).await, recv(&mut client).await];
    got.sort_by(|x, y| x[0].cmp(&y[0]));
    assert_eq!(got, vec![Message::from("from a"), Message::from("from b")]);
}

#[tokio::test]
async fn try_recv_drains_without_waiting() {
    let mut a = Socket::new(SocketType::Dealer);
    let ep = a.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    assert!(matches!(a.try_recv(), Err(zmtp::Error::WouldBlock)));
    let mut b = Socket::new(SocketType::Dealer);
    b.connect(&ep).unwrap();
    for i in 0..3 {
        b.send(format!("{i}")).await.unwrap();
    }
    assert_eq!(recv(&mut a).await, Message::from("0"));
    // The rest may still be in flight: wait for each, then try_recv finds nothing.
    assert_eq!(recv(&mut a).await, Message::from("1"));
    assert_eq!(recv(&mut a).await, Message::from("2"));
    assert!(matches!(a.try_recv(), Err(zmtp::Error::WouldBlock)));
    // A message that has arrived is returned by try_recv after recv registered interest.
    b.send("3").await.unwrap();
    let got = tokio::time::timeout(WAIT, async {
        loop {
            match a.try_recv() {
                Ok(m) => return m,
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(got, Message::from("3"));
}

/// The halves of a split DEALER work from two tasks at once: one sends 1 000
/// requests without waiting for answers while the other receives the ROUTER's
/// echoes; a receive waiting for an echo never holds up a send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_send_and_receive_from_two_tasks() {
    let mut router = Socket::new(SocketType::Router);
    let ep = router.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut dealer = Socket::new(SocketType::Dealer);
    dealer.connect(&ep).unwrap();
    let (mut tx, mut rx) = dealer.split();
    let echo = tokio::spawn(async move {
        for _ in 0..1000 {
            let msg = router.recv().await.unwrap();
            router.send(msg).await.unwrap();
        }
        router
    });
    let receiver = tokio::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..1000 {
            got.push(rx.recv().await.unwrap());
        }
        got
    });
    for i in 0..1000u32 {
        tx.send(i.to_be_bytes().to_vec()).await.unwrap();
    }
    let wait = std::time::Duration::from_secs(60);
    let got = tokio::time::timeout(wait, receiver)
        .await
        .expect("all echoes")
        .unwrap();
    let expected: Vec<zmtp::Message> = (0..1000u32)
        .map(|i| i.to_be_bytes().to_vec().into())
        .collect();
    assert_eq!(got, expected);
    tokio::time::timeout(wait, echo)
        .await
        .expect("echo done")
        .unwrap();
}
