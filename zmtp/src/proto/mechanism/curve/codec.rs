//! MESSAGE boxing once the CURVE handshake is done (libzmq `curve_encoding_t`).
//!
//! The engine's writer and reader run apart, so the codec splits into a
//! [`CurveSealer`] (our nonce counter) and a [`CurveOpener`] (the peer's).

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use crypto_box::aead::AeadInPlace;

use super::salsa_box::SalsaBox;
use super::{
    open_into, short_nonce, MAC_LEN, MESSAGE_MIN_LEN, MESSAGE_NONCE_CLIENT, MESSAGE_NONCE_SERVER,
};
use crate::proto::connection::Fault;
use crate::proto::frame::{encode_header, Frame};
use crate::proto::handshake::HandshakeError;
use crate::read_buffers::CopyBuffers;

/// A shared CURVE helper's error, in words that fit the time after the handshake.
fn after_handshake(e: HandshakeError) -> Fault {
    Fault::Security(match e {
        HandshakeError::Crypto(detail) => detail,
        other => other.to_string(),
    })
}

/// The MESSAGE command name with its length byte.
const MESSAGE_NAME: &[u8; 8] = b"\x07MESSAGE";
/// Inner flag: another frame of the same message follows.
pub const FLAG_MORE: u8 = 0x01;
/// Inner flag: the data is a command (PING, PONG, SUBSCRIBE, CANCEL). libzmq boxes
/// its own `msg_t` flags (`more | command`, curve_mechanism_base.cpp `flag_mask`), so
/// COMMAND is 0x02 here, not the 0x04 of a ZMTP frame header; a PING sent with 0x04
/// reaches a libzmq application as a message.
pub const FLAG_COMMAND: u8 = 0x02;
/// The frame header's COMMAND bit, which a peer reading RFC 26 literally might box;
/// accepted as COMMAND, never sent.
const FLAG_COMMAND_FRAME_BIT: u8 = 0x04;
/// The inner flag bits that travel in the box.
const FLAG_MASK: u8 = FLAG_MORE | FLAG_COMMAND;

/// Encrypts and decrypts MESSAGE commands with the connection's short-term keys.
///
/// Holds the precomputed C'/S' box and both nonce counters, carried on from the
/// handshake: a client's first MESSAGE has nonce 3, a server's 2.
// Clone only under cargo-fuzz, whose `security` target copies one handshake's codecs
// into every input: two live copies would reuse nonces.
#[derive(Debug)]
#[cfg_attr(fuzzing, derive(Clone))]
pub struct CurveCodec {
    sealer: CurveSealer,
    opener: CurveOpener,
}

/// The sending half of a [`CurveCodec`].
#[cfg_attr(fuzzing, derive(Clone))]
pub struct CurveSealer {
    precom: Arc<SalsaBox>,
    /// The counter of our next MESSAGE.
    nonce: u64,
    prefix: &'static [u8; 16],
}

/// The receiving half of a [`CurveCodec`].
#[cfg_attr(fuzzing, derive(Clone))]
pub struct CurveOpener {
    precom: Arc<SalsaBox>,
    /// The greatest counter the peer has used.
    peer_nonce: u64,
    prefix: &'static [u8; 16],
    /// Where plaintexts are decrypted, their buffers used again.
    plaintexts: CopyBuffers,
}

impl std::fmt::Debug for CurveSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurveSealer")
            .field("nonce", &self.nonce)
            .field("prefix", &String::from_utf8_lossy(self.prefix))
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CurveOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurveOpener")
            .field("peer_nonce", &self.peer_nonce)
            .field("prefix", &String::from_utf8_lossy(self.prefix))
            .finish_non_exhaustive()
    }
}

impl CurveCodec {
    /// The codec of a client (`as_server == false`) or a server.
    pub(crate) fn new(precom: Arc<SalsaBox>, nonce: u64, peer_nonce: u64, as_server: bool) -> Self {
        let (send_prefix, recv_prefix) = if as_server {
            (MESSAGE_NONCE_SERVER, MESSAGE_NONCE_CLIENT)
        } else {
            (MESSAGE_NONCE_CLIENT, MESSAGE_NONCE_SERVER)
        };
        CurveCodec {
            sealer: CurveSealer {
                precom: precom.clone(),
                nonce,
                prefix: send_prefix,
            },
            opener: CurveOpener {
                precom,
                peer_nonce,
                prefix: recv_prefix,
                plaintexts: CopyBuffers::default(),
            },
        }
    }

    /// Appends a whole MESSAGE command body; see [`CurveSealer::encrypt`].
    pub fn encrypt(&mut self, flags: u8, data: &[u8], out: &mut BytesMut) -> Result<(), Fault> {
        self.sealer.encrypt(flags, data, out)
    }

    /// Opens a MESSAGE command body; see [`CurveOpener::decrypt`].
    pub fn decrypt(&mut self, body: Bytes) -> Result<(u8, Bytes), Fault> {
        self.opener.decrypt(body)
    }

    /// The sending and receiving halves.
    pub fn split(self) -> (CurveSealer, CurveOpener) {
        (self.sealer, self.opener)
    }
}

impl CurveSealer {
    /// Appends a whole MESSAGE command body (`\7MESSAGE nonce Box[flags data]`) to
    /// `out`. `flags` keeps only [`FLAG_MORE`] and [`FLAG_COMMAND`], as libzmq does.
    /// Fails only when the nonce counter is exhausted.
    pub fn encrypt(&mut self, flags: u8, data: &[u8], out: &mut BytesMut) -> Result<(), Fault> {
        let nonce = self.nonce;
        let next = nonce
            .checked_add(1)
            .ok_or_else(|| Fault::Security("CURVE nonce counter exhausted".into()))?;
        let start = out.len();
        out.reserve(MESSAGE_MIN_LEN + data.len());
        out.put_slice(MESSAGE_NAME);
        out.put_u64(nonce);
        let mac_at = out.len();
        out.put_bytes(0, MAC_LEN);
        out.put_u8(flags & FLAG_MASK);
        out.put_slice(data);
        let sealed = self.precom.encrypt_in_place_detached(
            &short_nonce(self.prefix, nonce),
            b"",
            &mut out[mac_at + MAC_LEN..], // ok: put just above
        );
        match sealed {
            Ok(tag) => {
                out[mac_at..mac_at + MAC_LEN].copy_from_slice(&tag); // ok: put just above
                self.nonce = next;
                Ok(())
            }
            Err(_) => {
                out.truncate(start);
                Err(Fault::Security("cannot encrypt MESSAGE".into()))
            }
        }
    }

    /// Appends one ZMTP frame carrying `frame` as MESSAGE. As libzmq does, the outer
    /// frame has neither MORE nor COMMAND: both travel inside the box.
    pub fn seal_frame(
        &mut self,
        more: bool,
        command: bool,
        data: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), Fault> {
        let flags = if more { FLAG_MORE } else { 0 } | if command { FLAG_COMMAND } else { 0 };
        encode_header(out, false, false, MESSAGE_MIN_LEN + data.len());
        self.encrypt(flags, data, out)
    }
}

impl CurveOpener {
    /// Opens a MESSAGE command body; returns the inner flags ([`FLAG_MORE`],
    /// [`FLAG_COMMAND`]) and the data. Refuses a body that is not MESSAGE, is too short, reuses
    /// or goes back on a nonce, or fails the box.
    pub fn decrypt(&mut self, body: Bytes) -> Result<(u8, Bytes), Fault> {
        if !body.starts_with(MESSAGE_NAME) {
            let name = super::command_name(&body)
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .unwrap_or_else(|| "malformed".into());
            return Err(Fault::Security(format!(
                "a {name} command where only MESSAGE may come"
            )));
        }
        if body.len() < MESSAGE_MIN_LEN {
            return Err(Fault::Security(format!(
                "MESSAGE is {} bytes, at least {MESSAGE_MIN_LEN} expected",
                body.len()
            )));
        }
        let nonce = super::read_u64(&body, 8).map_err(after_handshake)?;
        if nonce <= self.peer_nonce {
            return Err(Fault::Security(format!(
                "MESSAGE nonce {nonce} not above {}",
                self.peer_nonce
            )));
        }
        let plaintexts = &mut self.plaintexts;
        let plaintext = open_into(
            &*self.precom,
            &short_nonce(self.prefix, nonce),
            &body[16..], // ok: length is at least MESSAGE_MIN_LEN, checked above
            "MESSAGE",
            |ciphertext| plaintexts.copy_of(ciphertext),
        )
        .map_err(after_handshake)?;
        self.peer_nonce = nonce;
        let mut plaintext = plaintext.freeze();
        let Some(&flags) = plaintext.first() else {
            return Err(Fault::Security("MESSAGE without flags".into()));
        };
        let data = plaintext.split_off(1);
        let command = if flags & FLAG_COMMAND_FRAME_BIT != 0 {
            FLAG_COMMAND
        } else {
            0
        };
        Ok(((flags | command) & FLAG_MASK, data))
    }

    /// Opens a frame that carries a MESSAGE (with or without the outer COMMAND bit,
    /// libzmq sends it without); returns the frame inside.
    pub fn open_frame(&mut self, frame: Frame) -> Result<Frame, Fault> {
        let (flags, body) = self.decrypt(frame.body)?;
        Ok(Frame {
            more: flags & FLAG_MORE != 0,
            command: flags & FLAG_COMMAND != 0,
            body,
        })
    }
}
