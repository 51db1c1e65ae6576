//! Replays the `mdp` fuzz corpus (and any crash artifacts) through the target's body,
//! as `zmtp/tests/fuzz_corpus.rs` does for zmtp's targets, so the seeds and past
//! findings stay regression tests in a plain `cargo test`.

#[path = "../../fuzz/src/mdp.rs"]
mod fuzz_mdp;

use std::collections::BTreeSet;

use bytes::Bytes;
use mdp::proto::{Dialect, FromPeer, Reply, ToWorker};

#[test]
fn mdp_corpus() {
    testkit::corpus::replay("mdp", fuzz_mdp::mdp);
}

/// The input encoding the corpus is written in: `input` and `frames` are inverses.
#[test]
fn input_encoding() {
    assert!(fuzz_mdp::frames(&[]).is_empty());
    assert!(fuzz_mdp::frames(&[12, 1, 2]).is_empty());
    assert_eq!(fuzz_mdp::frames(&[13, 1, 2]), [&[1, 2][..]]);
    // A length past the end cuts the frame short; frames after it are empty.
    assert_eq!(
        fuzz_mdp::frames(&[3, 5, 1, 2]),
        [&[1, 2][..], &[][..], &[][..]]
    );
    let frames: Vec<Bytes> = (0..=fuzz_mdp::MAX_FRAMES)
        .map(|n| Bytes::from(vec![0x5a; n * 23]))
        .collect();
    for n in 0..=fuzz_mdp::MAX_FRAMES {
        assert_eq!(
            fuzz_mdp::frames(&fuzz_mdp::input(&frames[..n])),
            &frames[..n]
        );
    }
}

/// The seeds are real messages: for every dialect the corpus holds a client request
/// and a worker command the broker accepts, a broker command a worker accepts and a
/// reply a client accepts.
#[test]
fn corpus_covers_every_dialect() {
    let mut seen = BTreeSet::new();
    for data in testkit::corpus::corpus("mdp") {
        let frames = fuzz_mdp::frames(&data);
        match FromPeer::parse(&frames) {
            Ok(FromPeer::Client(request)) => {
                seen.insert(("request", request.dialect.name()));
            }
            Ok(FromPeer::Worker { dialect, .. }) => {
                seen.insert(("worker command", dialect.name()));
            }
            Ok(_) | Err(_) => {}
        }
        for dialect in Dialect::ALL {
            if ToWorker::parse(dialect, &frames).is_ok() {
                seen.insert(("broker command", dialect.name()));
            }
            if Reply::parse(dialect, true, &frames).is_ok()
                || Reply::parse(dialect, false, &frames).is_ok()
            {
                seen.insert(("reply", dialect.name()));
            }
        }
    }
    for what in ["request", "worker command", "broker command", "reply"] {
        for dialect in Dialect::ALL {
            assert!(
                seen.contains(&(what, dialect.name())),
                "no {dialect} {what} in the corpus"
            );
        }
    }
}
