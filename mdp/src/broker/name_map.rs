//! [`NameMap`]: the broker's maps keyed by service name, hashed by a keyed hash
//! that costs far less than std's SipHash on short keys.
//!
//! A request looks its service up about six times (its queue when admitted and
//! dispatched, its history when it ends, its worker's service when the reply comes
//! back); hashing those names with SipHash-1-3 took 5 % of the broker's instructions
//! per request. Peers choose the names, so the hash stays keyed, with a random key
//! per map (ahash's `RandomState`): a peer cannot pick names that collide.

use std::collections::HashMap;

use bytes::Bytes;

/// A map keyed by service name.
pub(crate) type NameMap<V> = HashMap<Bytes, V, ahash::RandomState>;
