//! The dialects real MDP peers speak, and the bytes each uses on the wire.
//!
//! No two real peers put the same frames on the wire (see the team's
//! `mdp-dialects.md`); each dialect here is one family of peers:
//!
//! | dialect | client → broker | broker → client | worker frames |
//! |---|---|---|---|
//! | [`Dialect::Mdp01`] (RFC 7, zguide) | `E,MDPC01,svc,body…` | `E,MDPC01,svc,body…` | `E,MDPW01,cmd,…` READY 1 REQUEST 2 REPLY 3 HEARTBEAT 4 DISCONNECT 5 |
//! | [`Dialect::Mdp02`] (RFC 18) | `MDPC02,0x01,svc,body…` | `MDPC02,0x02\|0x03,svc,body…` | `MDPW02,cmd,…` READY 1 REQUEST 2 PARTIAL 3 FINAL 4 HEARTBEAT 5 DISCONNECT 6 |
//! | [`Dialect::Majortomo`] (majortomo 0.2.0) | `E,MDPC02,0x02,svc,body…` | `E,MDPC02,0x03\|0x04,body…` (no service) | `E,MDPW02,cmd,…` with RFC 18's worker numbers |
//! | [`Dialect::Overseer`] (Overseer ipc) | `E,"0",svc,msgpack` | `E,"0",svc,E,msgpack` | `E,"1",cmd,…` REQUEST "2" READY "3" REPLY "4" HEARTBEAT "5" DISCONNECT "6" |
//!
//! `E` is an empty frame; frames are shown as the broker sees them after the ROUTER
//! routing id.

/// Client header of MDP 0.1.
pub const MDPC01: &[u8] = b"MDPC01";
/// Worker header of MDP 0.1.
pub const MDPW01: &[u8] = b"MDPW01";
/// Client header of MDP 0.2 (RFC 18 and majortomo).
pub const MDPC02: &[u8] = b"MDPC02";
/// Worker header of MDP 0.2 (RFC 18 and majortomo).
pub const MDPW02: &[u8] = b"MDPW02";
/// Overseer's client header.
pub const OVERSEER_CLIENT: &[u8] = b"0";
/// Overseer's worker header.
pub const OVERSEER_WORKER: &[u8] = b"1";

/// A family of MDP peers that frame messages the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// MDP 0.1 (RFC 7): zguide clients over REQ or DEALER, zguide workers.
    Mdp01,
    /// MDP 0.2 (RFC 18): no leading empty frame, PARTIAL/FINAL replies.
    Mdp02,
    /// majortomo 0.2.0: MDP 0.2 headers with a leading empty frame, REQUEST as 0x02,
    /// one command table for both headers, no service frame in replies.
    Majortomo,
    /// The Overseer ipc broker's dialect: headers "0"/"1", ASCII command digits,
    /// msgpack bodies after an empty frame.
    Overseer,
}

/// Worker command codes of one dialect.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorkerCodes {
    pub ready: &'static [u8],
    pub request: &'static [u8],
    /// REPLY in 0.1-shaped dialects, PARTIAL in 0.2 ones.
    pub reply_or_partial: &'static [u8],
    /// FINAL (0.2 only).
    pub final_: Option<&'static [u8]>,
    pub heartbeat: &'static [u8],
    pub disconnect: &'static [u8],
}

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 4] = [
        Dialect::Mdp01,
        Dialect::Mdp02,
        Dialect::Majortomo,
        Dialect::Overseer,
    ];

    /// A short name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Mdp01 => "MDP/0.1",
            Dialect::Mdp02 => "MDP/0.2",
            Dialect::Majortomo => "majortomo",
            Dialect::Overseer => "overseer",
        }
    }

    /// Whether client and worker messages start with an empty frame.
    pub fn leading_empty(self) -> bool {
        !matches!(self, Dialect::Mdp02)
    }

    /// Whether replies can be streamed (PARTIAL then FINAL).
    pub fn streams(self) -> bool {
        matches!(self, Dialect::Mdp02 | Dialect::Majortomo)
    }

    pub(crate) fn client_header(self) -> &'static [u8] {
        match self {
            Dialect::Mdp01 => MDPC01,
            Dialect::Mdp02 | Dialect::Majortomo => MDPC02,
            Dialect::Overseer => OVERSEER_CLIENT,
        }
    }

    pub(crate) fn worker_header(self) -> &'static [u8] {
        match self {
            Dialect::Mdp01 => MDPW01,
            Dialect::Mdp02 | Dialect::Majortomo => MDPW02,
            Dialect::Overseer => OVERSEER_WORKER,
        }
    }

    pub(crate) fn worker_codes(self) -> WorkerCodes {
        match self {
            Dialect::Mdp01 => WorkerCodes {
                ready: b"\x01",
                request: b"\x02",
                reply_or_partial: b"\x03",
                final_: None,
                heartbeat: b"\x04",
                disconnect: b"\x05",
            },
            Dialect::Mdp02 | Dialect::Majortomo => WorkerCodes {
                ready: b"\x01",
                request: b"\x02",
                reply_or_partial: b"\x03",
                final_: Some(b"\x04"),
                heartbeat: b"\x05",
                disconnect: b"\x06",
            },
            Dialect::Overseer => WorkerCodes {
                ready: b"3",
                request: b"2",
                reply_or_partial: b"4",
                final_: None,
                heartbeat: b"5",
                disconnect: b"6",
            },
        }
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
