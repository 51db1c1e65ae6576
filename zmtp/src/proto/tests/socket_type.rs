//! Tests of `proto::socket_type`.

use super::*;

#[test]
fn compatibility_is_symmetric() {
    for a in SocketType::ALL {
        for b in SocketType::ALL {
            assert_eq!(a.is_compatible(b), b.is_compatible(a), "{a} {b}");
        }
    }
    assert!(SocketType::Req.is_compatible(SocketType::Router));
    assert!(!SocketType::Req.is_compatible(SocketType::Req));
}

#[test]
fn names_round_trip() {
    for t in SocketType::ALL {
        assert_eq!(SocketType::from_name(t.as_str().as_bytes()), Some(t));
        assert_eq!(t.as_str().to_lowercase().parse::<SocketType>(), Ok(t));
    }
    assert_eq!(SocketType::from_name(b"STREAM"), None);
}
