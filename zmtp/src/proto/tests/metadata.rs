//! Tests of `proto::metadata`.

use super::*;
use proptest::prelude::*;

#[test]
fn libzmq_ready_properties() {
    // As a libzmq DEALER sends them.
    let mut raw = Vec::new();
    raw.push(11);
    raw.extend_from_slice(b"Socket-Type");
    raw.extend_from_slice(&6u32.to_be_bytes());
    raw.extend_from_slice(b"DEALER");
    raw.push(8);
    raw.extend_from_slice(b"Identity");
    raw.extend_from_slice(&0u32.to_be_bytes());
    let m = Metadata::parse(Bytes::from(raw)).unwrap();
    assert_eq!(m.get("socket-type").unwrap(), "DEALER");
    assert_eq!(m.get("IDENTITY").unwrap(), "");
    assert_eq!(m.len(), 2);
}

#[test]
fn keeps_unknown_properties() {
    let mut m = Metadata::new();
    m.insert("X-Custom", "v");
    let mut buf = BytesMut::new();
    m.encode(&mut buf);
    assert_eq!(Metadata::parse(buf.freeze()).unwrap(), m);
}

#[test]
fn truncations_are_errors() {
    let mut m = Metadata::new();
    m.insert("Socket-Type", "ROUTER");
    let mut buf = BytesMut::new();
    m.encode(&mut buf);
    let full = buf.freeze();
    for n in 1..full.len() {
        assert!(Metadata::parse(full.slice(..n)).is_err(), "prefix {n}");
    }
    let mut trailing = full.to_vec();
    trailing.push(0);
    assert_eq!(
        Metadata::parse(Bytes::from(trailing)),
        Err(MetadataError::BadName { index: 1 })
    );
}

proptest! {
    #[test]
    fn round_trip(props in proptest::collection::vec(
        ("[A-Za-z][A-Za-z0-9-]{0,20}", proptest::collection::vec(any::<u8>(), 0..40)), 0..6)) {
        let mut m = Metadata::new();
        for (n, v) in &props { m.insert(n.clone(), v.clone()); }
        let mut buf = BytesMut::new();
        m.encode(&mut buf);
        prop_assert_eq!(Metadata::parse(buf.freeze()).unwrap(), m);
    }

    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Metadata::parse(Bytes::from(bytes));
    }
}
