//! Replays the `broker` fuzz corpus (and any crash artifacts) through the target's
//! body, as `fuzz_corpus.rs` does for the `mdp` target, and checks that the seeds
//! drive the broker through the states they were written for.

#[path = "../../fuzz/src/broker.rs"]
mod fuzz_broker;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use fuzz_broker::{kind, Step, FRAMING_NAMES};
use mdp::broker::WorkerDeath;
use mdp::proto::{Dialect, WorkerCommand};

#[test]
fn broker_corpus() {
    testkit::corpus::replay("broker", fuzz_broker::broker);
}

/// The input encoding the corpus is written in (see `fuzz/src/broker.rs`).
#[test]
fn input_encoding() {
    let (config, steps) = fuzz_broker::decode(&[]);
    assert!(steps.is_empty());
    assert_eq!(config.max_queue, 0);

    let (config, steps) = fuzz_broker::decode(&[
        0b1101_0111,
        kind::READY | 1,
        2,
        5, // majortomo, SERVICES[0]
        kind::TICK,
        40,
        kind::SHUTDOWN | 7,
        kind::CLOSE | 0o13, // peer 3 (bit 3 is ignored)
        kind::RECONNECT | 6,
        7, // ADDRESSES[3]
        kind::UNDELIVERABLE | 5,
        0xd2, // kind 13 is REQUEST again; its arguments are cut: all 0
    ]);
    assert_eq!(config.on_worker_death, WorkerDeath::Drop);
    assert_eq!((config.max_queue, config.quotas.total.requests), (3, 11));
    assert_eq!(config.quotas.per_connection.requests, 2);
    assert_eq!(config.max_message_size, fuzz_broker::SMALL_MESSAGE);
    assert_eq!(config.heartbeat_interval, Duration::from_secs(1));
    let ready = WorkerCommand::Ready {
        service: Bytes::from_static(b"echo"),
    };
    let empty = Bytes::new();
    assert_eq!(
        steps,
        [
            Step::Message {
                peer: 1,
                frames: ready.encode(Dialect::Majortomo).into_vec()
            },
            Step::Tick { ms: 1000 },
            Step::Shutdown,
            Step::Close { peer: 3 },
            Step::Reconnect {
                peer: 6,
                address: 3
            },
            Step::Undeliverable { peer: 5 },
            Step::Message {
                peer: 2,
                frames: vec![empty, "MDPC01".into(), "echo".into()]
            },
        ]
    );

    // Raw frames: a count, then length-prefixed frames, cut short where the input ends.
    let (_, steps) = fuzz_broker::decode(&[0, kind::RAW | 4, 3, 2, b'h', b'i', 0, 5, b'x']);
    assert_eq!(
        steps,
        [Step::Message {
            peer: 4,
            frames: vec!["hi".into(), Bytes::new(), "x".into()]
        }]
    );
    // A body byte: bit 5 and the top two bits name a service, then frames.
    let (_, steps) = fuzz_broker::decode(&[0, kind::FINAL, 0, 8, 0b0110_1010]);
    let reply = WorkerCommand::Reply {
        client: Bytes::from_static(b"stranger"),
        kind: mdp::proto::ReplyKind::Final,
        body: ["add", "aa", "bb"].into(),
    };
    assert_eq!(
        steps,
        [Step::Message {
            peer: 0,
            frames: reply.encode(Dialect::Mdp01).into_vec()
        }]
    );
}

/// The seeds reach the states they were written for: every pair of client framing and
/// worker dialect served, streaming and gathering, MMI's three answers, requeues and
/// drops of every cause, pauses and resumes, reconnections, expiry, misbehaving
/// workers, malformed input, shutdown.
#[test]
fn corpus_reaches_interesting_states() {
    let mut events = BTreeSet::new();
    for data in testkit::corpus::corpus("broker") {
        events.extend(fuzz_broker::run(&data).events);
    }
    let has = |what: &str, detail: &str| events.iter().any(|e| (e.0, e.1) == (what, detail));
    let mut missing = Vec::new();
    for framing in FRAMING_NAMES {
        for dialect in Dialect::ALL {
            if !events.contains(&("served", framing, dialect.name())) {
                missing.push(format!("a {framing} client served by a {dialect} worker"));
            }
        }
    }
    for dialect in Dialect::ALL {
        if !has("dispatched", dialect.name()) {
            missing.push(format!("a request sent to a {dialect} worker"));
        }
    }
    for (what, detail) in [
        ("partial", "MDP/0.2"),
        ("partial", "majortomo"),
        ("gathered", "MDP/0.1"),
        ("gathered", "overseer"),
        ("mmi", "200"),
        ("mmi", "404"),
        ("mmi", "501"),
        ("requeued", "close"),
        ("requeued", "tick"),
        ("requeued", "message"),
        ("dropped", "close"),
        ("dropped", "ttl"),
        ("dropped", "refused"),
        ("requeued", "undeliverable"),
        ("paused", ""),
        ("resumed", ""),
        ("reconnected", ""),
        ("expired", ""),
        ("heartbeat", ""),
        ("disconnect", "READY mmi.*"),
        ("disconnect", "second READY"),
        ("disconnect", "before READY"),
        ("disconnect", "shutdown"),
        ("malformed", ""),
        ("shutdown", ""),
    ] {
        if !has(what, detail) {
            missing.push(format!("{what} {detail}"));
        }
    }
    assert!(missing.is_empty(), "no seed reaches: {missing:#?}");
}
