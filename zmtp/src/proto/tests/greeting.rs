//! Tests of `proto::greeting`.

use super::*;

fn libzmq_greeting(minor: u8) -> Vec<u8> {
    // As libzmq 4.3 sends it: padding carries a length, as-server is 0.
    let mut g = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, minor];
    g.extend_from_slice(b"NULL");
    g.resize(GREETING_LEN, 0);
    g
}

#[test]
fn round_trip() {
    let g = Greeting::ours(MechanismName::PLAIN, true);
    let mut buf = Vec::new();
    g.encode(&mut buf);
    assert_eq!(buf.len(), GREETING_LEN);
    assert_eq!(Greeting::check(&buf), Ok(Some(g)));
}

#[test]
fn accepts_libzmq_padding_and_3_0() {
    let g = Greeting::check(&libzmq_greeting(0)).unwrap().unwrap();
    assert_eq!(g.version, Version { major: 3, minor: 0 });
    assert_eq!(g.mechanism, MechanismName::NULL);
    assert!(!g.as_server);
    assert!(!g.version.at_least_3_1());
}

#[test]
fn accepts_higher_versions() {
    let mut g = libzmq_greeting(7);
    g[10] = 4;
    assert_eq!(Greeting::check(&g).unwrap().unwrap().version.major, 4);
}

#[test]
fn partial_greetings_wait_then_complete() {
    let full = libzmq_greeting(1);
    for n in 0..GREETING_LEN {
        assert_eq!(Greeting::check(&full[..n]), Ok(None), "prefix {n}");
    }
    assert!(Greeting::check(&full).unwrap().is_some());
}

#[test]
fn refuses_early() {
    assert_eq!(Greeting::check(b"G"), Err(GreetingError::BadSignature));
    let mut g = libzmq_greeting(1);
    g[9] = 0x7E;
    assert_eq!(Greeting::check(&g[..10]), Err(GreetingError::BadSignature));
    let mut g = libzmq_greeting(1);
    g[10] = 2;
    assert_eq!(
        Greeting::check(&g[..11]),
        Err(GreetingError::UnsupportedVersion { major: 2 })
    );
}

#[test]
fn mechanism_display() {
    assert_eq!(MechanismName::CURVE.display(), "CURVE");
}
