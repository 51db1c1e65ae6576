//! What a hostile or bursty peer meets: quotas that pause instead of dropping,
//! shares that keep unserved services from taking the room of served ones, turns
//! between clients, connections that are never confused, and bounds on names,
//! gathered replies and MMI answers.

use super::*;

/// A small per-connection quota (10 requests), addresses and total far away.
fn small_connection_quota() -> BrokerConfig {
    BrokerConfig {
        quotas: Quotas {
            per_connection: Usage {
                requests: 10,
                bytes: usize::MAX / 4,
            },
            ..Quotas::default()
        },
        ..BrokerConfig::default()
    }
}

fn pauses(h: &Harness, name: &'static str) -> usize {
    h.flow
        .iter()
        .filter(|f| matches!(f, Flow::Pause(p) if p.routing_id() == name))
        .count()
}

fn resumes(h: &Harness, name: &'static str) -> usize {
    h.flow
        .iter()
        .filter(|f| matches!(f, Flow::Resume(p) if p.routing_id() == name))
        .count()
}

#[test]
fn a_client_at_its_quota_is_paused_not_dropped_and_resumed_as_it_is_served() {
    let mut h = Harness::new(small_connection_quota());
    h.ready("w", Dialect::Mdp01, "s");
    for _ in 0..9 {
        h.request("c", Dialect::Mdp01, "s", "x");
    }
    assert_eq!(pauses(&h, "c"), 0);
    h.request("c", Dialect::Mdp01, "s", "x");
    assert_eq!(pauses(&h, "c"), 1, "paused at 10 held");
    let c = h.peer("c");
    assert!(h.broker.is_paused(&c));
    // What it had sent before the pause took effect is still taken, up to twice
    // the quota.
    for _ in 0..10 {
        h.request("c", Dialect::Mdp01, "s", "x");
    }
    assert_eq!(h.broker.request_count(), 20);
    assert_eq!(h.broker.stats().dropped, 0);
    h.request("c", Dialect::Mdp01, "s", "x");
    assert_eq!(h.broker.stats().dropped, 1, "past twice the quota");
    // Served one by one, it is resumed below three quarters of its quota.
    let mut served = 0;
    while h.broker.is_paused(&c) {
        h.reply("w", Dialect::Mdp01, "c", ReplyKind::Final, "r");
        served += 1;
    }
    assert_eq!(h.broker.usage_of(&c).requests, 6, "below 3/4 of 10");
    assert_eq!(served, 14);
    assert_eq!(resumes(&h, "c"), 1);
}

#[test]
fn an_address_is_paused_at_its_quota_whichever_connection_sends() {
    let mut h = Harness::new(BrokerConfig {
        quotas: Quotas {
            per_address: Usage {
                requests: 4,
                bytes: usize::MAX / 4,
            },
            ..Quotas::default()
        },
        ..BrokerConfig::default()
    });
    h.ready("w", Dialect::Mdp01, "s");
    h.connect_from("a1", "10.0.0.5:1000");
    h.connect_from("a2", "10.0.0.5:1001");
    h.connect_from("other", "10.0.0.6:1000");
    h.request("a1", Dialect::Mdp01, "s", "x"); // dispatched to w
    h.request("a1", Dialect::Mdp01, "s", "x");
    h.request("a2", Dialect::Mdp01, "s", "x");
    assert!(h.flow.is_empty());
    h.request("a2", Dialect::Mdp01, "s", "x");
    assert_eq!(pauses(&h, "a2"), 1, "the one that sent at the quota");
    h.request("a1", Dialect::Mdp01, "s", "x");
    assert_eq!(pauses(&h, "a1"), 1);
    for _ in 0..3 {
        h.request("other", Dialect::Mdp01, "s", "x");
    }
    assert_eq!(pauses(&h, "other"), 0, "another address is not held back");
    // Serve until the address is below three quarters of its quota.
    let clients = ["a1", "a1", "a2"];
    for c in clients {
        h.reply("w", Dialect::Mdp01, c, ReplyKind::Final, "r");
    }
    assert_eq!(
        (resumes(&h, "a1"), resumes(&h, "a2")),
        (1, 1),
        "both resumed: {:?}",
        h.flow
    );
}

#[test]
fn the_total_is_never_exceeded_and_senders_pause_before_it() {
    let mut h = Harness::new(BrokerConfig {
        quotas: Quotas {
            total: Usage {
                requests: 8,
                bytes: usize::MAX / 4,
            },
            ..Quotas::default()
        },
        ..BrokerConfig::default()
    });
    h.ready("w", Dialect::Mdp01, "s");
    for name in ["a", "b", "c", "d", "e"] {
        h.request(name, Dialect::Mdp01, "s", "x");
        h.request(name, Dialect::Mdp01, "s", "x");
    }
    assert_eq!(h.broker.request_count(), 8);
    assert_eq!(h.broker.stats().dropped, 2);
    assert!(pauses(&h, "d") == 1 && pauses(&h, "e") == 1);
    assert_eq!(pauses(&h, "a"), 0, "below three quarters when it sent");
}

#[test]
fn requests_nobody_serves_never_take_the_room_of_those_somebody_does() {
    let mut h = Harness::new(BrokerConfig {
        quotas: Quotas {
            unserved_per_address: Usage {
                requests: 5,
                bytes: usize::MAX / 4,
            },
            ..Quotas::default()
        },
        ..BrokerConfig::default()
    });
    h.ready("w", Dialect::Mdp01, "echo");
    h.connect_from("attacker", "10.0.0.9:1");
    for i in 0..100 {
        let service = ["u1", "u2", "u3"][i % 3];
        h.request("attacker", Dialect::Mdp01, service, "x");
    }
    assert_eq!(h.broker.request_count(), 5);
    assert_eq!(h.broker.stats().dropped, 95);
    assert!(
        h.flow.is_empty(),
        "refused, not paused: no worker would drain them"
    );
    // The same attacker's requests to a served service, and anybody else's, go on.
    let out = h.request("attacker", Dialect::Mdp01, "echo", "x");
    assert_eq!(out.len(), 1, "dispatched to w");
    h.connect_from("side", "10.0.0.10:1");
    for _ in 0..10 {
        h.request("side", Dialect::Mdp01, "later", "y");
    }
    assert_eq!(
        h.broker.request_count(),
        5 + 1 + 5,
        "side has its own share"
    );
    // A worker for u1 arrives: its requests are served, the share is free again.
    h.ready("w1", Dialect::Mdp01, "u1");
    h.reply("w1", Dialect::Mdp01, "attacker", ReplyKind::Final, "r");
}

#[test]
fn clients_take_turns_so_a_flood_delays_others_by_one_request() {
    let mut h = Harness::new(BrokerConfig::default());
    h.ready("w", Dialect::Mdp01, "s");
    for _ in 0..1000 {
        h.request("flood", Dialect::Mdp01, "s", "f");
    }
    h.request("side", Dialect::Mdp01, "s", "mine");
    // w holds the flood's first; the flood had its turn first, then the side
    // client's comes, not after the 999 others.
    let mut given = Vec::new();
    for _ in 0..2 {
        let out = h.reply("w", Dialect::Mdp01, "flood", ReplyKind::Final, "r");
        let (_, request) = out.iter().find(|(p, _)| p == "w").expect("a request for w");
        given.push(as_request(Dialect::Mdp01, request));
    }
    assert_eq!(given[0], (id("flood"), Message::from("f")));
    assert_eq!(given[1], (id("side"), Message::from("mine")));
}

#[test]
fn a_reply_for_a_departed_client_never_reaches_whoever_takes_its_routing_id() {
    let mut h = Harness::new(BrokerConfig::default());
    h.ready("w", Dialect::Mdp01, "s");
    h.request("c", Dialect::Mdp01, "s", "private");
    h.disconnect("c");
    // A new connection goes by the same routing id.
    h.request("c", Dialect::Mdp01, "mmi.service", "s");
    let out = h.reply("w", Dialect::Mdp01, "c", ReplyKind::Final, "secret");
    assert!(out.is_empty(), "sent to the newcomer: {out:?}");
    assert_eq!(h.broker.request_count(), 0);
    assert_eq!(
        h.broker.stats().dropped,
        1,
        "the departed client's request failed"
    );
    // The worker is free again and serves the newcomer.
    let out = h.request("c", Dialect::Mdp01, "s", "public");
    assert_eq!(
        as_request(Dialect::Mdp01, &only(&out, "w")).1,
        Message::from("public")
    );
}

#[test]
fn a_reconnected_worker_is_a_new_worker_and_its_old_connection_is_forgotten() {
    let mut h = Harness::new(BrokerConfig::default());
    h.ready("w", Dialect::Mdp01, "s");
    let old = h.peer("w");
    h.request("c", Dialect::Mdp01, "s", "job");
    // The new connection registers before the old one's departure is handled.
    h.connect_from("w", "127.0.0.1:40001");
    let out = h.ready("w", Dialect::Mdp01, "s");
    assert!(out.is_empty(), "a new worker, not a second READY: {out:?}");
    assert_eq!(h.broker.worker_count(), 2);
    h.broker.handle_disconnect(&old, h.now);
    let out = h.settle();
    assert_eq!(h.broker.worker_count(), 1);
    let (client, body) = as_request(Dialect::Mdp01, &only(&out, "w"));
    assert_eq!(
        (client, body),
        (id("c"), Message::from("job")),
        "requeued to the new one"
    );
}

#[test]
fn a_disconnect_drops_its_own_requests_only() {
    let mut h = Harness::new(BrokerConfig::default());
    for _ in 0..3 {
        h.request("gone", Dialect::Mdp01, "a", "x");
        h.request("gone", Dialect::Mdp01, "b", "x");
        h.request("stays", Dialect::Mdp01, "a", "y");
    }
    h.disconnect("gone");
    assert_eq!(h.broker.request_count(), 3);
    let stays = h.peer("stays");
    assert_eq!(h.broker.usage(), h.broker.usage_of(&stays));
    assert!(h.broker.check_invariants().is_ok());
}

#[test]
fn service_names_are_bounded() {
    let mut h = Harness::new(BrokerConfig {
        max_service_name: 8,
        ..BrokerConfig::default()
    });
    let out = h.ready("w", Dialect::Mdp01, "a-very-long-name");
    assert_eq!(
        ToWorker::parse(Dialect::Mdp01, only(&out, "w").frames()).unwrap(),
        ToWorker::Disconnect
    );
    assert_eq!(h.broker.worker_count(), 0);
    assert!(h
        .request("c", Dialect::Mdp01, "a-very-long-name", "x")
        .is_empty());
    assert_eq!(h.broker.request_count(), 0);
    assert_eq!(h.broker.stats().dropped, 1);
    assert!(h.ready("w", Dialect::Mdp01, "short").is_empty());
}

#[test]
fn empty_frames_count_toward_the_gathering_bound() {
    let mut h = Harness::new(BrokerConfig {
        max_message_size: 1000 * FRAME_OVERHEAD,
        ..BrokerConfig::default()
    });
    h.ready("w", Dialect::Mdp02, "s");
    h.request("c", Dialect::Mdp01, "s", "x");
    let empty = Message::from(vec![Bytes::new(); 600]);
    for _ in 0..5 {
        let partial = WorkerCommand::Reply {
            client: id("c"),
            kind: ReplyKind::Partial,
            body: empty.clone(),
        };
        h.input("w", partial.encode(Dialect::Mdp02));
    }
    let out = h.reply("w", Dialect::Mdp02, "c", ReplyKind::Final, "end");
    let reply = Reply::parse(Dialect::Mdp01, true, only(&out, "c").frames()).unwrap();
    assert_eq!(
        reply.body.len(),
        601,
        "one partial of 600 empty frames and the end"
    );
}

#[test]
fn gathered_replies_are_charged_to_their_client() {
    let mut h = Harness::new(BrokerConfig::default());
    h.ready("w", Dialect::Mdp02, "s");
    h.request("c", Dialect::Mdp01, "s", "x");
    let c = h.peer("c");
    let before = h.broker.usage_of(&c);
    h.reply("w", Dialect::Mdp02, "c", ReplyKind::Partial, "0123456789");
    let after = h.broker.usage_of(&c);
    assert_eq!(after.bytes - before.bytes, 10 + FRAME_OVERHEAD);
    h.reply("w", Dialect::Mdp02, "c", ReplyKind::Final, "end");
    assert_eq!(h.broker.usage(), Usage::default());
}

#[test]
fn mmi_answers_are_bounded_in_bytes() {
    use snapshot::ServiceSummary;
    let mut h = Harness::new(BrokerConfig {
        max_mmi_reply: 4096,
        ..BrokerConfig::default()
    });
    let names: Vec<&'static str> = (0..500)
        .map(|i| &*Box::leak(format!("service-{i:04}").into_boxed_str()))
        .collect();
    for (i, name) in names.iter().enumerate() {
        let worker: &'static str = Box::leak(format!("w{i}").into_boxed_str());
        h.ready(worker, Dialect::Mdp01, name);
    }
    for service in ["mmi.services", "mmi.workers", "mmi.stats"] {
        let body = super::mmi(&mut h, service, "");
        assert!(body.len() <= 4096, "{service}: {} bytes", body.len());
    }
    let list: Vec<ServiceSummary> =
        rmp_serde::from_slice(&super::mmi(&mut h, "mmi.services", "")).unwrap();
    assert!(!list.is_empty() && list.len() < 500);
    assert_eq!(list[0].name, "service-0000", "cut short in its order");
}

#[test]
fn mmi_lists_are_given_again_for_a_moment_then_recomputed() {
    use snapshot::ServiceSummary;
    let mut h = Harness::new(BrokerConfig {
        mmi_cache: Duration::from_millis(100),
        ..BrokerConfig::default()
    });
    let list = |h: &mut Harness| -> Vec<ServiceSummary> {
        rmp_serde::from_slice(&super::mmi(h, "mmi.services", "")).unwrap()
    };
    h.ready("w", Dialect::Mdp01, "echo");
    assert_eq!(list(&mut h).len(), 1);
    h.now += Duration::from_millis(10);
    h.ready("w2", Dialect::Mdp01, "other");
    assert_eq!(
        list(&mut h).len(),
        1,
        "within the cache time: the same answer"
    );
    h.now += Duration::from_millis(100);
    assert_eq!(list(&mut h).len(), 2, "after it: computed anew");
    h.now += Duration::from_secs(10);
    assert_eq!(
        list(&mut h).len(),
        2,
        "unchanged: the same answer, however old"
    );
}

#[test]
fn a_worker_that_does_not_take_its_requests_is_dropped_and_its_request_requeued() {
    let mut h = Harness::new(BrokerConfig::default());
    h.ready("stuck", Dialect::Mdp01, "s");
    h.request("c", Dialect::Mdp01, "s", "job");
    h.ready("ok", Dialect::Mdp01, "s");
    let stuck = h.peer("stuck");
    h.broker.handle_undeliverable(&stuck, h.now);
    let out = h.settle();
    assert_eq!(
        as_request(Dialect::Mdp01, &only(&out, "ok")).1,
        Message::from("job")
    );
    assert_eq!(h.broker.stats().undelivered, 1);
    assert_eq!(h.broker.worker_count(), 1);
}

#[test]
fn connections_paused_for_the_total_resume_when_a_departure_takes_it_down() {
    let mut h = Harness::new(BrokerConfig {
        quotas: Quotas {
            total: Usage {
                requests: 8,
                bytes: usize::MAX / 4,
            },
            ..Quotas::default()
        },
        ..BrokerConfig::default()
    });
    for w in ["w0", "w1", "w2", "w3", "w4", "w5"] {
        h.ready(w, Dialect::Mdp01, "s");
    }
    // a, b and c's requests are in flight, d's wait; d comes from elsewhere.
    h.connect_from("d", "10.0.0.4:1");
    for name in ["a", "b", "c", "d"] {
        h.request(name, Dialect::Mdp01, "s", "x");
        h.request(name, Dialect::Mdp01, "s", "x");
    }
    assert_eq!(
        pauses(&h, "d"),
        1,
        "paused from three quarters of the total"
    );
    // The others leave with their requests in flight: only their departures
    // release what they held.
    for name in ["a", "b", "c"] {
        h.disconnect(name);
    }
    assert_eq!(resumes(&h, "d"), 1, "resumed once the total is below half");
}

#[test]
fn a_service_whose_worker_is_restarting_is_not_unserved() {
    let mut h = Harness::new(BrokerConfig {
        quotas: Quotas {
            unserved_per_address: Usage {
                requests: 5,
                bytes: usize::MAX / 4,
            },
            ..Quotas::default()
        },
        ..BrokerConfig::default()
    });
    h.ready("w", Dialect::Mdp01, "sink");
    h.disconnect("w");
    for _ in 0..50 {
        h.request("c", Dialect::Mdp01, "sink", "x");
    }
    assert_eq!(
        h.broker.request_count(),
        50,
        "none refused for the unserved share"
    );
    let out = h.ready("w", Dialect::Mdp01, "sink");
    assert_eq!(as_request(Dialect::Mdp01, &only(&out, "w")).0, "c");
}
