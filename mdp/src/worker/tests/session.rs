//! Tests of `worker::session`: every rule with messages and time passed in.

use super::*;

const MS: Duration = Duration::from_millis(1);

fn session(dialect: Dialect) -> (Session, Instant) {
    let now = Instant::now();
    let config = SessionConfig::new(dialect, Bytes::from_static(b"echo"), 100 * MS, 3);
    (Session::new(config, now), now)
}

fn actions(s: &mut Session) -> Vec<Action> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

fn send(dialect: Dialect, command: WorkerCommand) -> Action {
    Action::Send(command.encode(dialect))
}

/// What the broker sends a worker of `dialect`.
fn from_broker(dialect: Dialect, what: &str) -> Message {
    match what {
        "heartbeat" => ToWorker::Heartbeat,
        "disconnect" => ToWorker::Disconnect,
        body => ToWorker::Request {
            client: Bytes::from_static(b"client-1"),
            body: Message::from(Bytes::copy_from_slice(body.as_bytes())),
        },
    }
    .encode(dialect)
}

fn reconnect(reason: &'static str, established: bool) -> Action {
    Action::End(End::Reconnect {
        reason,
        established,
    })
}

#[test]
fn a_session_starts_with_ready_and_heartbeats_every_interval() {
    let (mut s, t0) = session(Dialect::Mdp01);
    let ready = WorkerCommand::Ready {
        service: Bytes::from_static(b"echo"),
    };
    assert_eq!(actions(&mut s), [send(Dialect::Mdp01, ready)]);
    assert_eq!(s.poll_timeout(), Some(t0 + 100 * MS));
    s.handle_timeout(t0 + 99 * MS);
    assert!(actions(&mut s).is_empty());
    s.handle_message(&from_broker(Dialect::Mdp01, "heartbeat"));
    s.handle_timeout(t0 + 100 * MS);
    assert_eq!(
        actions(&mut s),
        [send(Dialect::Mdp01, WorkerCommand::Heartbeat)]
    );
    // Late ticks are not made up: the next is an interval after the late one.
    s.handle_timeout(t0 + 250 * MS);
    assert_eq!(s.poll_timeout(), Some(t0 + 350 * MS));
}

#[test]
fn a_silent_broker_is_given_up_after_liveness_intervals() {
    let (mut s, t0) = session(Dialect::Mdp01);
    actions(&mut s);
    s.handle_timeout(t0 + 100 * MS);
    s.handle_timeout(t0 + 200 * MS);
    assert_eq!(actions(&mut s).len(), 2, "two heartbeats");
    s.handle_timeout(t0 + 300 * MS);
    assert_eq!(
        actions(&mut s),
        [
            send(Dialect::Mdp01, WorkerCommand::Disconnect),
            reconnect("the broker went silent", false)
        ]
    );
    assert_eq!(s.poll_timeout(), None, "an ended session has no deadline");
}

#[test]
fn any_message_from_the_broker_restores_liveness() {
    let (mut s, t0) = session(Dialect::Mdp02);
    actions(&mut s);
    for step in 1..=20 {
        s.handle_timeout(t0 + step * 100 * MS);
        s.handle_message(&from_broker(Dialect::Mdp02, "heartbeat"));
    }
    assert!(actions(&mut s)
        .iter()
        .all(|a| *a == send(Dialect::Mdp02, WorkerCommand::Heartbeat)));
}

#[test]
fn a_request_is_served_and_its_parts_go_out_as_partial_and_final() {
    let (mut s, _) = session(Dialect::Mdp02);
    actions(&mut s);
    s.handle_message(&from_broker(Dialect::Mdp02, "hello"));
    let client = Bytes::from_static(b"client-1");
    assert_eq!(
        actions(&mut s),
        [Action::Serve {
            client: client.clone(),
            body: Message::from(Bytes::from_static(b"hello")),
        }]
    );
    let part = Message::from(Bytes::from_static(b"p"));
    s.handle_part(client.clone(), ReplyKind::Partial, part.clone());
    s.handle_part(client.clone(), ReplyKind::Final, part.clone());
    let reply = |kind| WorkerCommand::Reply {
        client: client.clone(),
        kind,
        body: part.clone(),
    };
    assert_eq!(
        actions(&mut s),
        [
            send(Dialect::Mdp02, reply(ReplyKind::Partial)),
            send(Dialect::Mdp02, reply(ReplyKind::Final))
        ]
    );
}

#[test]
fn established_means_the_broker_accepted_the_worker() {
    for (what, established) in [("heartbeat", true), ("hello", true), ("disconnect", false)] {
        let (mut s, _) = session(Dialect::Mdp01);
        s.handle_message(&from_broker(Dialect::Mdp01, what));
        s.handle_message(&from_broker(Dialect::Mdp01, "disconnect"));
        let end = actions(&mut s).pop();
        assert_eq!(
            end,
            Some(reconnect("the broker sent DISCONNECT", established)),
            "after {what}"
        );
    }
}

#[test]
fn a_failed_handler_gets_an_error_reply_where_the_dialect_has_one() {
    let (mut s, _) = session(Dialect::Overseer);
    actions(&mut s);
    let client = Bytes::from_static(b"client-1");
    s.handle_failure(client.clone(), "boom");
    let body: BTreeMap<String, String> = match actions(&mut s).as_slice() {
        [Action::Send(msg)] => {
            let frame = msg.frames().last().expect("a body frame");
            Format::MessagePack
                .decode(frame)
                .expect("a MessagePack map")
        }
        other => panic!("one reply expected, got {other:?}"),
    };
    assert_eq!(body.get("error").map(String::as_str), Some("boom"));
    // An error text is cut to a bounded size, on a character boundary.
    let long = "é".repeat(MAX_ERROR_TEXT);
    let reply = error_reply(Dialect::Overseer, &long).expect("a reply");
    let map: BTreeMap<String, String> = Format::MessagePack
        .decode(&reply.frames()[0])
        .expect("still a map");
    assert!(map["error"].len() <= MAX_ERROR_TEXT);
}

#[test]
fn a_failed_handler_without_an_error_reply_ends_the_session() {
    let (mut s, _) = session(Dialect::Mdp01);
    s.handle_message(&from_broker(Dialect::Mdp01, "hello"));
    actions(&mut s);
    s.handle_failure(Bytes::from_static(b"client-1"), "boom");
    assert_eq!(
        actions(&mut s),
        [
            send(Dialect::Mdp01, WorkerCommand::Disconnect),
            reconnect("a handler failed and the dialect has no error reply", true)
        ]
    );
    // Nothing more comes out of an ended session.
    s.handle_part(Bytes::new(), ReplyKind::Final, Message::new());
    s.handle_message(&from_broker(Dialect::Mdp01, "hello"));
    s.shutdown();
    assert!(actions(&mut s).is_empty());
}

#[test]
fn shutdown_sends_disconnect_and_ends() {
    let (mut s, _) = session(Dialect::Majortomo);
    actions(&mut s);
    s.shutdown();
    assert_eq!(
        actions(&mut s),
        [
            send(Dialect::Majortomo, WorkerCommand::Disconnect),
            Action::End(End::Shutdown)
        ]
    );
}

#[test]
fn malformed_messages_are_ignored_but_prove_the_broker_alive() {
    let (mut s, t0) = session(Dialect::Mdp01);
    actions(&mut s);
    s.handle_timeout(t0 + 100 * MS);
    s.handle_timeout(t0 + 200 * MS);
    s.handle_message(&Message::from(Bytes::from_static(b"garbage")));
    s.handle_timeout(t0 + 300 * MS);
    assert_eq!(
        actions(&mut s).last(),
        Some(&send(Dialect::Mdp01, WorkerCommand::Heartbeat))
    );
}
