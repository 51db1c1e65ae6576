//! The 64-byte ZMTP greeting (RFC 37 "Greeting").
//!
//! Layout: `FF | padding(8) | 7F | major | minor | mechanism(20) | as-server(1) | filler(31)`.
//!
//! What libzmq does that a strict reading of the RFC would trip over
//! (see `shared/reference/zmtp-interop.md` §1):
//! - the 8 padding bytes carry a length (`routing_id_len + 1`), so they are never checked;
//! - libzmq sends the greeting as 10, then 1, then 53 bytes and waits for our bytes in
//!   between, so [`Greeting::check`] judges a partial greeting as early as it can and we
//!   always send all 64 bytes without waiting;
//! - libzmq always sends `as-server = 0` and takes its role from local options, so the
//!   byte is recorded but never used to decide roles.

use bytes::BufMut;

/// Length of a ZMTP 3.x greeting on the wire.
pub const GREETING_LEN: usize = 64;

/// The version we announce: ZMTP 3.1.
pub const OUR_VERSION: Version = Version { major: 3, minor: 1 };

/// A ZMTP protocol version as announced in a greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Major version (3 for every peer we talk to).
    pub major: u8,
    /// Minor version (0 for ZMTP 3.0 peers such as libzmq <= 4.3.2, 1 for 3.1).
    pub minor: u8,
}

impl Version {
    /// True when the peer speaks ZMTP 3.1 or later (commands for SUBSCRIBE/CANCEL, PING).
    pub fn at_least_3_1(self) -> bool {
        self >= Version { major: 3, minor: 1 }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A security mechanism name as carried in the greeting (20 bytes, NUL padded).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MechanismName([u8; 20]);

impl MechanismName {
    /// The NULL mechanism (RFC 37).
    pub const NULL: MechanismName = MechanismName::from_static(b"NULL");
    /// The PLAIN mechanism (RFC 24).
    pub const PLAIN: MechanismName = MechanismName::from_static(b"PLAIN");
    /// The CURVE mechanism (RFC 26).
    pub const CURVE: MechanismName = MechanismName::from_static(b"CURVE");

    const fn from_static(name: &[u8]) -> MechanismName {
        let mut raw = [0u8; 20];
        let mut i = 0;
        while i < name.len() {
            raw[i] = name[i];
            i += 1;
        }
        MechanismName(raw)
    }

    /// The raw 20 bytes as they travel on the wire.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The name with its NUL padding removed, for messages and logs.
    pub fn display(&self) -> String {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(20);
        String::from_utf8_lossy(&self.0[..end]).into_owned()
    }
}

impl std::fmt::Debug for MechanismName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.display())
    }
}

/// A parsed greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Greeting {
    /// The version the peer announced.
    pub version: Version,
    /// The security mechanism the peer wants.
    pub mechanism: MechanismName,
    /// The peer's as-server byte (informational: libzmq always sends 0).
    pub as_server: bool,
}

/// Why a peer's greeting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GreetingError {
    /// The first byte is not 0xFF or the signature's last byte lacks bit 0: the peer
    /// does not speak ZMTP 2.0 or later (or is not ZeroMQ at all).
    #[error("peer is not a ZMTP 3.x peer (bad greeting signature)")]
    BadSignature,
    /// The peer announced a major version below 3.
    #[error("peer speaks ZMTP {major}.x; ZMTP 3.0 or later is required")]
    UnsupportedVersion {
        /// The major version the peer sent.
        major: u8,
    },
}

impl Greeting {
    /// Our greeting for a given mechanism and role.
    pub fn ours(mechanism: MechanismName, as_server: bool) -> Greeting {
        Greeting {
            version: OUR_VERSION,
            mechanism,
            as_server,
        }
    }

    /// Encodes the greeting (64 bytes) into `dst`.
    pub fn encode(&self, dst: &mut impl BufMut) {
        dst.put_u8(0xFF);
        // libzmq writes (routing id length + 1) here; zero padding plus the 0x7F is the
        // RFC's form and what every 3.x peer accepts.
        dst.put_bytes(0, 8);
        dst.put_u8(0x7F);
        dst.put_u8(self.version.major);
        dst.put_u8(self.version.minor);
        dst.put_slice(self.mechanism.as_bytes());
        dst.put_u8(u8::from(self.as_server));
        dst.put_bytes(0, 31);
    }

    /// Judges a greeting that may be incomplete.
    ///
    /// Returns `Ok(None)` while more bytes are needed, an error as soon as the bytes
    /// seen so far rule the peer out (after 1, 10 and 11 bytes, like libzmq), and the
    /// greeting once all 64 bytes are there. Bytes past the 64th are ignored.
    pub fn check(buf: &[u8]) -> Result<Option<Greeting>, GreetingError> {
        if let Some(&first) = buf.first() {
            if first != 0xFF {
                return Err(GreetingError::BadSignature);
            }
        }
        if let Some(&last) = buf.get(9) {
            if last & 0x01 == 0 {
                return Err(GreetingError::BadSignature);
            }
        }
        if let Some(&major) = buf.get(10) {
            if major < 3 {
                return Err(GreetingError::UnsupportedVersion { major });
            }
        }
        let Some(full) = buf.get(..GREETING_LEN) else {
            return Ok(None);
        };
        let mut mechanism = [0u8; 20];
        mechanism.copy_from_slice(&full[12..32]);
        Ok(Some(Greeting {
            version: Version {
                major: full[10],
                minor: full[11],
            },
            mechanism: MechanismName(mechanism),
            as_server: full[32] & 0x01 == 1,
        }))
    }
}

#[cfg(test)]
#[path = "tests/greeting.rs"]
mod tests;
