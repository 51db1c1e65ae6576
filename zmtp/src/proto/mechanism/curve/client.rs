//! The CURVE client: HELLO, then INITIATE on WELCOME, then done on READY.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use crypto_box::SecretKey;

use super::salsa_box::SalsaBox;
use rand::rngs::OsRng;
use rand::RngCore;

use super::{
    command_name, long_nonce, open, random_tail, read_array, read_u64, salsa_box, seal_into,
    short_nonce, write_command_frame, CurveClientConfig, CurveCodec, HELLO_LEN, HELLO_NONCE,
    INITIATE_MIN_LEN, INITIATE_NONCE, KEY_LEN, READY_MIN_LEN, READY_NONCE, VOUCH_NONCE,
    WELCOME_LEN, WELCOME_NONCE,
};
use crate::proto::command::{Command, CommandError};
use crate::proto::handshake::HandshakeError;
use crate::proto::metadata::Metadata;

// Clone only in tests: two copies of a live handshake would reuse nonces. The
// boxes are behind Arc because `SalsaBox` is not Clone.
#[cfg_attr(test, derive(Clone))]
enum State {
    /// HELLO sent; the box is C'/S (HELLO's, reused to open WELCOME).
    ExpectWelcome(Arc<SalsaBox>),
    /// INITIATE sent; the box is C'/S'.
    ExpectReady(Arc<SalsaBox>),
    /// READY received.
    Done(Arc<SalsaBox>),
    /// A command failed; nothing more is accepted.
    Failed,
}

/// CURVE client handshake state.
#[cfg_attr(test, derive(Clone))]
pub struct CurveClient {
    config: CurveClientConfig,
    own_metadata: Metadata,
    /// Our short-term secret key c' (C' is derived).
    short_secret: SecretKey,
    state: State,
    /// Counter of our next nonced command (HELLO 1, INITIATE 2, MESSAGE 3...).
    nonce: u64,
    /// The server's last counter (READY's).
    peer_nonce: u64,
}

impl std::fmt::Debug for CurveClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::ExpectWelcome(_) => "ExpectWelcome",
            State::ExpectReady(_) => "ExpectReady",
            State::Done(_) => "Done",
            State::Failed => "Failed",
        };
        f.debug_struct("CurveClient")
            .field("state", &state)
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

impl CurveClient {
    /// Makes a short-term key pair and writes HELLO into `out`.
    pub fn start(
        config: CurveClientConfig,
        own_metadata: Metadata,
        out: &mut BytesMut,
    ) -> CurveClient {
        let mut secret = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut secret);
        let short_secret = SecretKey::from_bytes(secret);
        secret.fill(0);
        let mut client = CurveClient {
            config,
            own_metadata,
            short_secret,
            state: State::Failed,
            nonce: 1,
            peer_nonce: 0,
        };
        // Sealing a fixed-size box cannot fail; if it did, the client stays Failed
        // and the server times us out.
        if let Ok(hello_box) = client.write_hello(out) {
            client.state = State::ExpectWelcome(hello_box);
        }
        client
    }

    /// Writes HELLO; returns its C'/S box.
    fn write_hello(&mut self, out: &mut BytesMut) -> Result<Arc<SalsaBox>, HandshakeError> {
        let nonce = self.take_nonce()?;
        let mut body = BytesMut::with_capacity(HELLO_LEN);
        body.put_slice(b"\x05HELLO");
        body.put_slice(&[1, 0]);
        body.put_bytes(0, 72);
        body.put_slice(self.short_secret.public_key().as_bytes());
        body.put_u64(nonce);
        let hello_box = salsa_box(&self.config.server_public, &self.short_secret)?;
        seal_into(
            &hello_box,
            &short_nonce(HELLO_NONCE, nonce),
            &[0u8; 64],
            &mut body,
        )?;
        debug_assert_eq!(body.len(), HELLO_LEN);
        write_command_frame(&body, out);
        Ok(Arc::new(hello_box))
    }

    fn take_nonce(&mut self) -> Result<u64, HandshakeError> {
        let nonce = self.nonce;
        self.nonce = nonce
            .checked_add(1)
            .ok_or_else(|| HandshakeError::Crypto("CURVE nonce counter exhausted".into()))?;
        Ok(nonce)
    }

    /// Feeds one command body from the server; returns its metadata after READY.
    pub fn handle_command(
        &mut self,
        body: Bytes,
        out: &mut BytesMut,
    ) -> Result<Option<Metadata>, HandshakeError> {
        let result = self.step(body, out);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn step(
        &mut self,
        body: Bytes,
        out: &mut BytesMut,
    ) -> Result<Option<Metadata>, HandshakeError> {
        if let Some(refusal) = crate::proto::mechanism::damaged_libzmq_error(&body) {
            return Err(refusal);
        }
        let name = command_name(&body).ok_or(CommandError::TruncatedName)?;
        // Failed unless a branch below sets the next state.
        let state = std::mem::replace(&mut self.state, State::Failed);
        match (name, state) {
            (b"ERROR", _) => match Command::parse(body.clone())? {
                Command::Error(reason) => Err(super::super::peer_error(&reason)),
                other => Err(HandshakeError::UnexpectedCommand(
                    String::from_utf8_lossy(other.name()).into_owned(),
                )),
            },
            (b"WELCOME", State::ExpectWelcome(hello_box)) => {
                let precom = self.on_welcome(&hello_box, &body, out)?;
                self.state = State::ExpectReady(precom);
                Ok(None)
            }
            (b"READY", State::ExpectReady(precom)) => {
                let (metadata, nonce) = self.on_ready(&precom, &body)?;
                self.peer_nonce = nonce;
                self.state = State::Done(precom);
                Ok(Some(metadata))
            }
            (name, _) => Err(HandshakeError::UnexpectedCommand(
                String::from_utf8_lossy(name).into_owned(),
            )),
        }
    }

    /// Opens WELCOME, writes INITIATE; returns the C'/S' box.
    fn on_welcome(
        &mut self,
        welcome_box: &SalsaBox,
        body: &[u8],
        out: &mut BytesMut,
    ) -> Result<Arc<SalsaBox>, HandshakeError> {
        if body.len() != WELCOME_LEN {
            return Err(HandshakeError::Crypto(format!(
                "WELCOME is {} bytes, {WELCOME_LEN} expected",
                body.len()
            )));
        }
        // Box[S' cookie](S->C')
        let plaintext = open(
            welcome_box,
            &long_nonce(WELCOME_NONCE, &read_array(body, 8)?),
            &body[24..], // ok: length is exactly WELCOME_LEN, checked above
            "WELCOME",
        )?;
        let server_short: [u8; KEY_LEN] = read_array(&plaintext, 0)?;
        let cookie: [u8; 96] = read_array(&plaintext, 32)?;
        let precom = salsa_box(&server_short, &self.short_secret)?;

        // vouch = nonce(16) Box[C' S](C->S')
        let long_secret = SecretKey::from_bytes(self.config.keys.secret);
        let vouch_box = salsa_box(&server_short, &long_secret)?;
        let vouch_tail = random_tail();
        let mut vouch_plain = [0u8; 2 * KEY_LEN];
        vouch_plain[..KEY_LEN].copy_from_slice(self.short_secret.public_key().as_bytes());
        vouch_plain[KEY_LEN..].copy_from_slice(&self.config.server_public);
        let mut initiate_plain = BytesMut::with_capacity(128 + 64);
        initiate_plain.put_slice(&self.config.keys.public);
        initiate_plain.put_slice(&vouch_tail);
        seal_into(
            &vouch_box,
            &long_nonce(VOUCH_NONCE, &vouch_tail),
            &vouch_plain,
            &mut initiate_plain,
        )?;
        self.own_metadata.encode(&mut initiate_plain);

        let nonce = self.take_nonce()?;
        let mut initiate = BytesMut::with_capacity(INITIATE_MIN_LEN + initiate_plain.len());
        initiate.put_slice(b"\x08INITIATE");
        initiate.put_slice(&cookie);
        initiate.put_u64(nonce);
        seal_into(
            &precom,
            &short_nonce(INITIATE_NONCE, nonce),
            &initiate_plain,
            &mut initiate,
        )?;
        write_command_frame(&initiate, out);
        Ok(Arc::new(precom))
    }

    /// Opens READY; returns the server's metadata and READY's nonce.
    fn on_ready(&self, precom: &SalsaBox, body: &[u8]) -> Result<(Metadata, u64), HandshakeError> {
        if body.len() < READY_MIN_LEN {
            return Err(HandshakeError::Crypto(format!(
                "READY is {} bytes, at least {READY_MIN_LEN} expected",
                body.len()
            )));
        }
        let nonce = read_u64(body, 6)?;
        if nonce <= self.peer_nonce {
            return Err(HandshakeError::Crypto(format!(
                "READY nonce {nonce} not above {}",
                self.peer_nonce
            )));
        }
        let plaintext = open(
            precom,
            &short_nonce(READY_NONCE, nonce),
            &body[14..], // ok: length is at least READY_MIN_LEN (30), checked above
            "READY",
        )?;
        let metadata = Metadata::parse(plaintext.freeze()).map_err(CommandError::from)?;
        Ok((metadata, nonce))
    }

    /// Whether HELLO is sent and WELCOME not yet received.
    pub(crate) fn awaiting_welcome(&self) -> bool {
        matches!(self.state, State::ExpectWelcome(_))
    }

    /// The MESSAGE codec, once READY has been received.
    pub fn into_codec(self) -> Option<CurveCodec> {
        match self.state {
            State::Done(precom) => {
                Some(CurveCodec::new(precom, self.nonce, self.peer_nonce, false))
            }
            _ => None,
        }
    }
}
