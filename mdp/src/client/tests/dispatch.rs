//! Tests of `client::dispatch`: every rule with replies and time passed in.

use std::time::Duration;

use super::*;

const MS: Duration = Duration::from_millis(1);

fn limits(timeout_ms: u32, attempts: u32) -> CallOptions {
    CallOptions {
        timeout: timeout_ms * MS,
        attempts,
    }
}

fn brokers(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Submits call `id` to `service` with body `text`.
fn ask(
    d: &mut Dispatch,
    id: CallId,
    service: &'static str,
    text: &'static str,
    limits: CallOptions,
    now: Instant,
) {
    d.submit(
        id,
        Bytes::from_static(service.as_bytes()),
        body(text),
        limits,
        now,
    );
}

fn body(text: &'static str) -> Message {
    Message::from(Bytes::from_static(text.as_bytes()))
}

/// Everything the dispatch wants done, in order, in a form easy to compare.
fn actions(d: &mut Dispatch) -> Vec<String> {
    std::iter::from_fn(|| d.poll_action())
        .map(|action| match action {
            Action::Open(conn, broker) => format!("open {conn} {broker}"),
            Action::Close(conn) => format!("close {conn}"),
            Action::Send(conn, msg) => {
                let request = msg.frames().iter().map(|f| zmtp::printable(f).to_string());
                format!("send {conn} {}", request.collect::<Vec<_>>().join("|"))
            }
            Action::Deliver(call, part) => {
                let kind = if part.kind == ReplyKind::Final {
                    "final"
                } else {
                    "partial"
                };
                let text = part
                    .body
                    .frames()
                    .iter()
                    .map(|f| zmtp::printable(f).to_string());
                format!(
                    "deliver {call} {kind} {}",
                    text.collect::<Vec<_>>().join("|")
                )
            }
            Action::Fail(call, error) => format!("fail {call}: {error}"),
        })
        .collect()
}

fn reply(dialect: Dialect, service: &'static str, kind: ReplyKind, text: &'static str) -> Message {
    Reply {
        service: Some(Bytes::from_static(service.as_bytes())),
        kind,
        body: body(text),
    }
    .encode(dialect, dialect.leading_empty())
}

fn final_reply(service: &'static str, text: &'static str) -> Message {
    reply(Dialect::Mdp01, service, ReplyKind::Final, text)
}

#[test]
fn requests_to_different_services_share_a_connection_and_replies_find_their_caller() {
    let t0 = Instant::now();
    let mut d = Dispatch::new(Dialect::Mdp01, 64, &brokers(&["a"]));
    d.submit(1, "echo".into(), body("a"), limits(1000, 1), t0);
    d.submit(2, "time".into(), body("b"), limits(1000, 1), t0);
    assert_eq!(
        actions(&mut d),
        ["open 0 a", "send 0 |MDPC01|echo|a", "send 0 |MDPC01|time|b"]
    );
    // Replies in the other order still reach the right caller.
    d.handle_reply(0, &final_reply("time", "B"), t0);
    d.handle_reply(0, &final_reply("echo", "A"), t0);
    assert_eq!(actions(&mut d), ["deliver 2 final B", "deliver 1 final A"]);
    assert!(d.is_idle());
    assert_eq!(d.poll_timeout(), None);
}

#[test]
fn concurrent_requests_to_one_service_use_another_connection_up_to_the_limit() {
    let t0 = Instant::now();
    let mut d = Dispatch::new(Dialect::Mdp01, 2, &brokers(&["a"]));
    for id in 1..=3 {
        d.submit(id, "echo".into(), body("x"), limits(1000, 1), t0);
    }
    assert_eq!(
        actions(&mut d),
        [
            "open 0 a",
            "send 0 |MDPC01|echo|x",
            "open 1 a",
            "send 1 |MDPC01|echo|x"
        ]
    );
    // The third waits for a free place, and takes the first one freed.
    d.handle_reply(1, &final_reply("echo", "two"), t0);
    assert_eq!(
        actions(&mut d),
        ["deliver 2 final two", "send 1 |MDPC01|echo|x"]
    );
}

#[test]
fn majortomo_replies_do_not_name_the_service_so_each_connection_has_one_request() {
    let t0 = Instant::now();
    let mut d = Dispatch::new(Dialect::Majortomo, 64, &brokers(&["a"]));
    d.submit(1, "a".into(), body("x"), limits(1000, 1), t0);
    d.submit(2, "b".into(), body("y"), limits(1000, 1), t0);
    let opened = actions(&mut d)
        .iter()
        .filter(|a| a.starts_with("open"))
        .count();
    assert_eq!(opened, 2);
    let answer = Reply {
        service: None,
        kind: ReplyKind::Final,
        body: body("Y"),
    }
    .encode(Dialect::Majortomo, Dialect::Majortomo.leading_empty());
    d.handle_reply(1, &answer, t0);
    assert_eq!(actions(&mut d), ["deliver 2 final Y"]);
}

#[test]
fn a_request_without_a_reply_is_retried_on_another_connection_then_fails() {
    let t0 = Instant::now();
    let mut d = Dispatch::new(Dialect::Mdp01, 64, &brokers(&["a"]));
    d.submit(1, "echo".into(), body("x"), limits(100, 2), t0);
    actions(&mut d);
    assert_eq!(d.poll_timeout(), Some(t0 + 100 * MS));
    d.handle_timeout(t0 + 99 * MS);
    assert!(actions(&mut d).is_empty(), "nothing before the deadline");
    d.handle_timeout(t0 + 100 * MS);
    // The key is retired on connection 0, which is then idle: replaced.
    assert_eq!(
        actions(&mut d),
        ["open 1 a", "send 1 |MDPC01|echo|x", "close 0"]
    );
    assert_eq!(d.poll_timeout(), Some(t0 + 200 * MS));
    d.handle_timeout(t0 + 200 * MS);
    assert_eq!(
        actions(&mut d),
        [
            "fail 1: no reply from service \"echo\" after 2 attempts of 100ms",
            "close 1"
        ]
    );
    assert!(d.is_idle());
}

#[test]
fn a_late_reply_to_a_timed_out_attempt_is_not_taken_for_the_retrys() {
    let t0 = Instant::now();
    let mut d = Dispatch::new(Dialect::Mdp01, 64, &brokers(&["a"]));
    d.submit(1, "echo".into(), body("x"), limits(100, 2), t0);
    d.submit(2, "time".into(), body("t"), limits(1000, 1), t0);
    actions(&mut d);
    d.handle_timeout(t0 + 100 * MS);
    // Connection 0 still has call 2 outstanding: it stays, with "echo" retired.
    assert_eq!(actions(&mut d), ["open 1 a", "send 1 |MDPC01|echo|x"]);
    d.handle_reply(0, &final_reply("echo", "late"), t0 + 150 * MS);
    assert!(actions(&mut d).is_empty(), "the late reply is dropped");
    d.handle_reply(1, &final_reply("echo", "fresh"), t0 + 160 * MS);
    assert_eq!(actions(&mut d), ["deliver 1 final fresh"]);
    // Once its last request is answered, connection 0 is replaced.
    d.handle_reply(0, &final_reply("time", "T"), t0 + 170 * MS);
    assert_eq!(actions(&mut d), ["deliver 2 final T", "close 0"]);
}

#[test]
fn partial_replies_restart_the_timeout_and_the_final_one_ends_the_call() {
    let t0 = Instant::now();
    let mut d = Dispatch::new(Dialect::Mdp02, 64, &brokers(&["a"]));
    d.submit(1, "stream".into(), body("x"), limits(100, 1), t0);
    actions(&mut d);
    let partial = reply(Dialect::Mdp02, "stream", ReplyKind::Partial, "p1");
    d.handle_reply(0, &partial, t0 + 90 * MS);
    assert_eq!(actions(&mut d), ["deliver 1 partial p1"]);
    assert_eq!(d.poll_timeout(), Some(t0 + 190 * MS));
    d.handle_timeout(t0 + 150 * MS);
    assert!(actions(&mut d).is_empty());
    let last = reply(Dialect::Mdp02, "stream", ReplyKind::Final, "end");
    d.handle_reply(0, &last, t0 + 180 * MS);
    assert_eq!(actions(&mut d), ["deliver 1 final end"]);
    assert!(d.is_idle());
    assert_eq!(d.poll_timeout(), None);
}

#[test]
fn a_cancelled_call_frees_its_place_at_once() {
    let t0 = Instant::now();
    let mut d = Dispatch::new(Dialect::Mdp01, 1, &brokers(&["a"]));
    d.submit(1, "echo".into(), body("first"), limits(60_000, 1), t0);
    d.submit(2, "echo".into(), body("second"), limits(60_000, 1), t0);
    assert_eq!(actions(&mut d), ["open 0 a", "send 0 |MDPC01|echo|first"]);
    // The first caller gives up: the connection cannot take "echo" again (a reply
    // to the first may still come), so it is replaced and the second goes out now,
    // not after the first's 60 s timeout.
    d.cancel(1, t0 + MS);
    assert_eq!(
        actions(&mut d),
        ["close 0", "open 1 a", "send 1 |MDPC01|echo|second"]
    );
    assert_eq!(d.poll_timeout(), Some(t0 + MS + 60_000 * MS));
    // A waiting call that is cancelled just leaves the queue.
    d.submit(3, "echo".into(), body("third"), limits(60_000, 1), t0);
    d.cancel(3, t0);
    d.handle_reply(1, &final_reply("echo", "S"), t0);
    assert_eq!(actions(&mut d), ["deliver 2 final S"]);
    assert!(d.is_idle());
    // Cancelling what is already finished changes nothing.
    d.cancel(2, t0);
    assert!(actions(&mut d).is_empty());
}

#[test]
fn malformed_and_unexpected_replies_are_ignored() {
    let t0 = Instant::now();
    let mut d = Dispatch::new(Dialect::Mdp01, 64, &brokers(&["a"]));
    d.submit(1, "echo".into(), body("x"), limits(1000, 1), t0);
    actions(&mut d);
    d.handle_reply(0, &Message::from(Bytes::from_static(b"garbage")), t0);
    d.handle_reply(0, &final_reply("other", "?"), t0);
    d.handle_reply(7, &final_reply("echo", "wrong connection"), t0);
    assert!(actions(&mut d).is_empty());
    assert!(!d.is_idle());
}

#[test]
fn the_next_deadline_is_the_earliest_of_many() {
    let t0 = Instant::now();
    let mut d = Dispatch::new(Dialect::Mdp01, 1000, &brokers(&["a"]));
    for id in 0..500u32 {
        let service = Bytes::from(format!("s{id}"));
        d.submit(u64::from(id), service, body("x"), limits(1000 - id, 1), t0);
    }
    assert_eq!(d.poll_timeout(), Some(t0 + 501 * MS));
    d.handle_timeout(t0 + 600 * MS);
    let failed = actions(&mut d)
        .iter()
        .filter(|a| a.starts_with("fail"))
        .count();
    assert_eq!(failed, 100);
    assert_eq!(d.poll_timeout(), Some(t0 + 601 * MS));
}

#[test]
fn requests_spread_over_brokers_with_the_fewest_outstanding() {
    let now = Instant::now();
    let mut d = Dispatch::new(Dialect::Mdp01, 64, &brokers(&["a", "b", "c"]));
    for (id, service) in [(1, "s1"), (2, "s2"), (3, "s3"), (4, "s4")] {
        ask(&mut d, id, service, "x", limits(100, 1), now);
    }
    assert_eq!(
        actions(&mut d),
        [
            "open 0 a",
            "send 0 |MDPC01|s1|x",
            "open 1 b",
            "send 1 |MDPC01|s2|x",
            "open 2 c",
            "send 2 |MDPC01|s3|x",
            "send 0 |MDPC01|s4|x",
        ]
    );
}

#[test]
fn a_retry_goes_to_another_broker_and_the_silent_one_is_avoided_for_a_while() {
    let now = Instant::now();
    let mut d = Dispatch::new(Dialect::Mdp01, 64, &brokers(&["a", "b"]));
    ask(&mut d, 1, "echo", "x", limits(100, 2), now);
    assert_eq!(actions(&mut d), ["open 0 a", "send 0 |MDPC01|echo|x"]);
    // a is silent: the retry goes to b.
    d.handle_timeout(now + 100 * MS);
    assert_eq!(
        actions(&mut d),
        ["open 1 b", "send 1 |MDPC01|echo|x", "close 0"]
    );
    d.handle_reply(1, &final_reply("echo", "X"), now + 110 * MS);
    assert_eq!(actions(&mut d), ["deliver 1 final X"]);
    // While a is suspect, new requests go to b even though a has nothing outstanding.
    ask(&mut d, 2, "other", "y", limits(100, 1), now + 120 * MS);
    assert_eq!(actions(&mut d), ["send 1 |MDPC01|other|y"]);
    d.handle_reply(1, &final_reply("other", "Y"), now + 130 * MS);
    actions(&mut d);
    // Once its suspicion expires, a is used again.
    ask(&mut d, 3, "echo", "z", limits(100, 1), now + 300 * MS);
    ask(&mut d, 4, "more", "w", limits(100, 1), now + 300 * MS);
    assert_eq!(
        actions(&mut d),
        ["open 2 a", "send 2 |MDPC01|echo|z", "send 1 |MDPC01|more|w"]
    );
}

#[test]
fn a_broker_that_leaves_the_list_gives_its_requests_to_the_others_without_costing_an_attempt() {
    let now = Instant::now();
    let mut d = Dispatch::new(Dialect::Mdp01, 64, &brokers(&["a", "b"]));
    ask(&mut d, 1, "echo", "x", limits(100, 1), now);
    assert_eq!(actions(&mut d), ["open 0 a", "send 0 |MDPC01|echo|x"]);
    d.set_brokers(&brokers(&["b", "c"]), now);
    assert_eq!(
        actions(&mut d),
        ["close 0", "open 1 b", "send 1 |MDPC01|echo|x"]
    );
    // Its one attempt is still there: the reply from b is delivered.
    d.handle_reply(1, &final_reply("echo", "X"), now + 10 * MS);
    assert_eq!(actions(&mut d), ["deliver 1 final X"]);
    // An empty resolution changes nothing.
    d.set_brokers(&[], now);
    assert!(actions(&mut d).is_empty());
}

#[test]
fn a_request_on_a_connection_that_never_came_up_moves_to_a_broker_that_is_not_down() {
    let now = Instant::now();
    let mut d = Dispatch::new(Dialect::Mdp01, 64, &brokers(&["a", "b"]));
    ask(&mut d, 1, "echo", "x", limits(100, 1), now);
    assert_eq!(actions(&mut d), ["open 0 a", "send 0 |MDPC01|echo|x"]);
    d.handle_down(0, now + MS);
    assert_eq!(
        actions(&mut d),
        ["close 0", "open 1 b", "send 1 |MDPC01|echo|x"]
    );
    // b is down too: with nowhere better to go, the request stays and times out
    // at its first deadline (one attempt, not two).
    d.handle_down(1, now + 2 * MS);
    assert!(actions(&mut d).is_empty());
    d.handle_timeout(now + 100 * MS);
    let failed = actions(&mut d);
    assert!(failed[0].starts_with("fail 1"), "{failed:?}");
}

#[test]
fn a_request_on_a_connection_that_drops_is_tried_again_at_once_elsewhere() {
    let now = Instant::now();
    let mut d = Dispatch::new(Dialect::Mdp01, 64, &brokers(&["a", "b"]));
    ask(&mut d, 1, "echo", "x", limits(100, 2), now);
    actions(&mut d);
    d.handle_up(0);
    // No reply can come through a dropped connection: the second attempt goes
    // to b now, not after the timeout.
    d.handle_down(0, now + MS);
    assert_eq!(
        actions(&mut d),
        ["open 1 b", "send 1 |MDPC01|echo|x", "close 0"]
    );
    // With no attempt left, a drop fails the call.
    d.handle_up(1);
    d.handle_down(1, now + 2 * MS);
    let failed = actions(&mut d);
    assert!(failed[0].starts_with("fail 1"), "{failed:?}");
}

#[test]
fn a_single_broker_that_is_down_keeps_its_connection() {
    let now = Instant::now();
    let mut d = Dispatch::new(Dialect::Mdp01, 64, &brokers(&["a"]));
    ask(&mut d, 1, "echo", "x", limits(100, 1), now);
    actions(&mut d);
    d.handle_down(0, now + MS);
    assert!(actions(&mut d).is_empty(), "no reconnect loop");
}

#[test]
fn calls_wait_for_a_broker_to_be_known_and_fail_after_their_timeouts_without_one() {
    let now = Instant::now();
    let mut d = Dispatch::new(Dialect::Mdp01, 64, &[]);
    ask(&mut d, 1, "echo", "x", limits(100, 2), now);
    ask(&mut d, 2, "echo", "y", limits(100, 1), now);
    assert!(actions(&mut d).is_empty());
    // The name resolves: both go out.
    d.set_brokers(&brokers(&["a"]), now + 10 * MS);
    assert_eq!(
        actions(&mut d),
        [
            "open 0 a",
            "send 0 |MDPC01|echo|x",
            "open 1 a",
            "send 1 |MDPC01|echo|y"
        ]
    );
    // Without a broker, a call fails after timeout times attempts.
    let mut d = Dispatch::new(Dialect::Mdp01, 64, &[]);
    ask(&mut d, 1, "echo", "x", limits(100, 2), now);
    d.handle_timeout(now + 199 * MS);
    assert!(actions(&mut d).is_empty());
    d.handle_timeout(now + 200 * MS);
    let failed = actions(&mut d);
    assert!(failed[0].starts_with("fail 1"), "{failed:?}");
    assert!(d.is_idle());
}
