//! MESSAGE boxing once the CURVE handshake is done (libzmq `curve_encoding_t`).

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use crypto_box::SalsaBox;

use super::{
    open, seal_into, short_nonce, MESSAGE_MIN_LEN, MESSAGE_NONCE_CLIENT, MESSAGE_NONCE_SERVER,
};
use crate::proto::handshake::HandshakeError;

/// The MESSAGE command name with its length byte.
const MESSAGE_NAME: &[u8; 8] = b"\x07MESSAGE";
/// The inner flag bits that travel in the box: MORE (0x01) and COMMAND (0x04).
const FLAG_MASK: u8 = 0x01 | 0x04;

/// Encrypts and decrypts MESSAGE commands with the connection's short-term keys.
///
/// Holds the precomputed C'/S' box and both nonce counters, carried on from the
/// handshake: a client's first MESSAGE has nonce 3, a server's 2.
pub struct CurveCodec {
    precom: Arc<SalsaBox>,
    /// The counter of our next MESSAGE.
    nonce: u64,
    /// The greatest counter the peer has used.
    peer_nonce: u64,
    send_prefix: &'static [u8; 16],
    recv_prefix: &'static [u8; 16],
}

impl std::fmt::Debug for CurveCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurveCodec")
            .field("nonce", &self.nonce)
            .field("peer_nonce", &self.peer_nonce)
            .field("send_prefix", &String::from_utf8_lossy(self.send_prefix))
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
            precom,
            nonce,
            peer_nonce,
            send_prefix,
            recv_prefix,
        }
    }

    /// Appends a whole MESSAGE command body (`\7MESSAGE nonce Box[flags data]`) to
    /// `out`. `flags` keeps only MORE (0x01) and COMMAND (0x04), as libzmq does.
    /// Fails only when the nonce counter is exhausted.
    pub fn encrypt(
        &mut self,
        flags: u8,
        data: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), HandshakeError> {
        let nonce = self.nonce;
        let next = nonce
            .checked_add(1)
            .ok_or_else(|| HandshakeError::Crypto("CURVE nonce counter exhausted".into()))?;
        let start = out.len();
        out.reserve(MESSAGE_MIN_LEN + data.len());
        out.put_slice(MESSAGE_NAME);
        out.put_u64(nonce);
        let mut plaintext = Vec::with_capacity(1 + data.len());
        plaintext.push(flags & FLAG_MASK);
        plaintext.extend_from_slice(data);
        if let Err(e) = seal_into(
            &*self.precom,
            &short_nonce(self.send_prefix, nonce),
            &plaintext,
            out,
        ) {
            out.truncate(start);
            return Err(e);
        }
        self.nonce = next;
        Ok(())
    }

    /// Opens a MESSAGE command body; returns the inner flags (MORE 0x01, COMMAND
    /// 0x04) and the data. Refuses a body that is not MESSAGE, is too short, reuses
    /// or goes back on a nonce, or fails the box.
    pub fn decrypt(&mut self, body: Bytes) -> Result<(u8, Bytes), HandshakeError> {
        if !body.starts_with(MESSAGE_NAME) {
            return Err(HandshakeError::UnexpectedCommand(
                super::command_name(&body)
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .unwrap_or_else(|| "malformed".into()),
            ));
        }
        if body.len() < MESSAGE_MIN_LEN {
            return Err(HandshakeError::Crypto(format!(
                "MESSAGE is {} bytes, at least {MESSAGE_MIN_LEN} expected",
                body.len()
            )));
        }
        let nonce = super::read_u64(&body, 8)?;
        if nonce <= self.peer_nonce {
            return Err(HandshakeError::Crypto(format!(
                "MESSAGE nonce {nonce} not above {}",
                self.peer_nonce
            )));
        }
        let plaintext = open(
            &*self.precom,
            &short_nonce(self.recv_prefix, nonce),
            &body[16..], // ok: length is at least MESSAGE_MIN_LEN, checked above
            "MESSAGE",
        )?;
        self.peer_nonce = nonce;
        let mut plaintext = plaintext.freeze();
        let Some(&flags) = plaintext.first() else {
            return Err(HandshakeError::Crypto("MESSAGE without flags".into()));
        };
        let data = plaintext.split_off(1);
        Ok((flags & FLAG_MASK, data))
    }
}
