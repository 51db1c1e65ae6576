//! The CURVE server: WELCOME on HELLO, then READY (or ERROR) on INITIATE.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use crypto_box::SecretKey;

use super::salsa_box::SalsaBox;
use crypto_secretbox::aead::KeyInit;
use crypto_secretbox::XSalsa20Poly1305;
use rand::rngs::OsRng;
use rand::RngCore;

use super::{
    command_name, long_nonce, open, random_tail, read_array, read_u64, salsa_box, seal_into,
    short_nonce, write_command_frame, CurveCodec, CurveServerConfig, COOKIE_NONCE, HELLO_LEN,
    HELLO_NONCE, INITIATE_MIN_LEN, INITIATE_NONCE, KEY_LEN, READY_NONCE, VOUCH_NONCE, WELCOME_LEN,
    WELCOME_NONCE,
};
use crate::proto::command::{Command, CommandError};
use crate::proto::handshake::HandshakeError;
use crate::proto::mechanism::guard::{check_login, refuse_for_now, Guard};
use crate::proto::metadata::Metadata;

/// Decides whether a client may connect, given its long-term public key and metadata;
/// `Err(reason)` refuses it and the reason goes back in ERROR.
pub type Authorize<'a> = dyn FnMut(&[u8; KEY_LEN], &Metadata) -> Result<(), String> + 'a;

// Clone only in tests: two copies of a live handshake would reuse nonces. The
// boxes are behind Arc because `SalsaBox` is not Clone.
#[cfg_attr(test, derive(Clone))]
enum State {
    /// Nothing received yet.
    ExpectHello,
    /// WELCOME sent with a cookie under `cookie_key`.
    ExpectInitiate {
        client_short: [u8; KEY_LEN],
        cookie_key: XSalsa20Poly1305,
    },
    /// READY sent; the box is C'/S'.
    Done(Arc<SalsaBox>),
    /// A command failed or the client was refused; nothing more is accepted.
    Failed,
}

/// CURVE server handshake state.
#[cfg_attr(test, derive(Clone))]
pub struct CurveServer {
    /// Our long-term secret key s.
    long_secret: SecretKey,
    long_public: [u8; KEY_LEN],
    own_metadata: Metadata,
    /// Our short-term secret key s' (S' is derived).
    short_secret: SecretKey,
    state: State,
    /// Counter of our next nonced command (READY 1, MESSAGE 2...).
    nonce: u64,
    /// The client's last counter (HELLO's, then INITIATE's).
    peer_nonce: u64,
    /// Screens HELLOs before any public-key work, and logins.
    guard: Option<Guard>,
}

impl std::fmt::Debug for CurveServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::ExpectHello => "ExpectHello",
            State::ExpectInitiate { .. } => "ExpectInitiate",
            State::Done(_) => "Done",
            State::Failed => "Failed",
        };
        f.debug_struct("CurveServer")
            .field("state", &state)
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

impl CurveServer {
    /// A server waiting for HELLO (it sends nothing first).
    pub fn new(config: CurveServerConfig, own_metadata: Metadata) -> CurveServer {
        let mut secret = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut secret);
        let short_secret = SecretKey::from_bytes(secret);
        secret.fill(0);
        CurveServer {
            long_secret: SecretKey::from_bytes(config.keys.secret),
            long_public: config.keys.public,
            own_metadata,
            short_secret,
            state: State::ExpectHello,
            nonce: 1,
            peer_nonce: 0,
            guard: None,
        }
    }

    /// Asks `guard` about each HELLO before any public-key work (a replayed key, an
    /// address over its HELLO rate or blocked after failed logins gets ERROR 300)
    /// and before checking the client's key, and tells it of each refusal.
    pub(crate) fn with_guard(mut self, guard: Option<Guard>) -> CurveServer {
        self.guard = guard;
        self
    }

    /// Feeds one command body from the client; returns its metadata once it is
    /// authorised and READY is written. A refusal writes ERROR and returns
    /// [`HandshakeError::Denied`].
    pub fn handle_command(
        &mut self,
        body: Bytes,
        out: &mut BytesMut,
        authorize: &mut Authorize<'_>,
    ) -> Result<Option<Metadata>, HandshakeError> {
        let result = self.step(body, out, authorize);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn step(
        &mut self,
        body: Bytes,
        out: &mut BytesMut,
        authorize: &mut Authorize<'_>,
    ) -> Result<Option<Metadata>, HandshakeError> {
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
            (b"HELLO", State::ExpectHello) => {
                let client_short = hello_key(&body)?;
                if let Some(guard) = &self.guard {
                    let screened = guard
                        .login_allowed()
                        .and_then(|()| guard.curve_hello(&client_short));
                    if let Err(reason) = screened {
                        return Err(refuse_for_now(reason, out));
                    }
                }
                let hello_box = self.on_hello(&body, &client_short)?;
                if let Some(guard) = &self.guard {
                    guard.curve_hello_opened(&client_short);
                }
                let cookie_key = self.write_welcome(&client_short, &hello_box, out)?;
                self.state = State::ExpectInitiate {
                    client_short,
                    cookie_key,
                };
                Ok(None)
            }
            (
                b"INITIATE",
                State::ExpectInitiate {
                    client_short,
                    cookie_key,
                },
            ) => {
                let (precom, client_long, metadata) =
                    self.on_initiate(&body, &client_short, &cookie_key)?;
                check_login(self.guard.as_ref(), out)?;
                if let Err(reason) = authorize(&client_long, &metadata) {
                    if let Some(guard) = &self.guard {
                        guard.login_failed();
                    }
                    return Err(super::super::refuse(reason, out));
                }
                self.write_ready(&precom, out)?;
                self.state = State::Done(Arc::new(precom));
                Ok(Some(metadata))
            }
            (name, _) => Err(HandshakeError::UnexpectedCommand(
                String::from_utf8_lossy(name).into_owned(),
            )),
        }
    }

    /// Opens HELLO (whose shape [`hello_key`] checked); returns the C'/S box
    /// (reused for WELCOME).
    fn on_hello(
        &mut self,
        body: &[u8],
        client_short: &[u8; KEY_LEN],
    ) -> Result<SalsaBox, HandshakeError> {
        let nonce = read_u64(body, 112)?;
        let hello_box = salsa_box(client_short, &self.long_secret)?;
        // The plaintext is 64 zero bytes; like libzmq we only need it to open.
        open(
            &hello_box,
            &short_nonce(HELLO_NONCE, nonce),
            body.get(120..).unwrap_or_default(), // HELLO_LEN long, as hello_key checked
            "HELLO (wrong server key?)",
        )?;
        self.peer_nonce = nonce;
        Ok(hello_box)
    }

    /// Writes WELCOME with a fresh cookie key, which it returns.
    fn write_welcome(
        &self,
        client_short: &[u8; KEY_LEN],
        welcome_box: &SalsaBox,
        out: &mut BytesMut,
    ) -> Result<XSalsa20Poly1305, HandshakeError> {
        // cookie = nonce(16) SecretBox[C' s'](K)
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        let cookie_key = XSalsa20Poly1305::new(&key.into());
        key.fill(0);
        let cookie_tail = random_tail();
        let mut cookie_plain = [0u8; 2 * KEY_LEN];
        cookie_plain[..KEY_LEN].copy_from_slice(client_short);
        cookie_plain[KEY_LEN..].copy_from_slice(&self.short_secret.to_bytes());
        let mut welcome_plain = BytesMut::with_capacity(128 + 16);
        welcome_plain.put_slice(self.short_secret.public_key().as_bytes());
        welcome_plain.put_slice(&cookie_tail);
        let sealed = seal_into(
            &cookie_key,
            &long_nonce(COOKIE_NONCE, &cookie_tail),
            &cookie_plain,
            &mut welcome_plain,
        );
        cookie_plain.fill(0);
        sealed?;

        // Box[S' cookie](S->C')
        let welcome_tail = random_tail();
        let mut welcome = BytesMut::with_capacity(WELCOME_LEN);
        welcome.put_slice(b"\x07WELCOME");
        welcome.put_slice(&welcome_tail);
        seal_into(
            welcome_box,
            &long_nonce(WELCOME_NONCE, &welcome_tail),
            &welcome_plain,
            &mut welcome,
        )?;
        debug_assert_eq!(welcome.len(), WELCOME_LEN);
        write_command_frame(&welcome, out);
        Ok(cookie_key)
    }

    /// Checks INITIATE's cookie, box and vouch; returns the C'/S' box, the client's
    /// long-term public key C and its metadata.
    fn on_initiate(
        &mut self,
        body: &[u8],
        client_short: &[u8; KEY_LEN],
        cookie_key: &XSalsa20Poly1305,
    ) -> Result<(SalsaBox, [u8; KEY_LEN], Metadata), HandshakeError> {
        if body.len() < INITIATE_MIN_LEN {
            return Err(HandshakeError::Crypto(format!(
                "INITIATE is {} bytes, at least {INITIATE_MIN_LEN} expected",
                body.len()
            )));
        }
        // cookie: nonce(16) at 9, SecretBox(80) at 25.
        let cookie = open(
            cookie_key,
            &long_nonce(COOKIE_NONCE, &read_array(body, 9)?),
            &body[25..105], // ok: length is at least INITIATE_MIN_LEN (257), checked above
            "INITIATE cookie",
        )?;
        // ok: an opened 80-byte box is 64 bytes of plaintext.
        if cookie[..KEY_LEN] != client_short[..]
            || cookie[KEY_LEN..] != self.short_secret.to_bytes()[..]
        {
            return Err(HandshakeError::Crypto("INITIATE cookie is not ours".into()));
        }
        let nonce = read_u64(body, 105)?;
        if nonce <= self.peer_nonce {
            return Err(HandshakeError::Crypto(format!(
                "INITIATE nonce {nonce} not above {}",
                self.peer_nonce
            )));
        }
        let precom = salsa_box(client_short, &self.short_secret)?;
        let plaintext = open(
            &precom,
            &short_nonce(INITIATE_NONCE, nonce),
            &body[113..], // ok: length is at least INITIATE_MIN_LEN, checked above
            "INITIATE",
        )?;
        // C(32) vouch-nonce(16) vouch-box(80) metadata
        let client_long: [u8; KEY_LEN] = read_array(&plaintext, 0)?;
        let vouch_tail: [u8; 16] = read_array(&plaintext, 32)?;
        let vouch = open(
            &salsa_box(&client_long, &self.short_secret)?,
            &long_nonce(VOUCH_NONCE, &vouch_tail),
            plaintext.get(48..128).unwrap_or_default(),
            "INITIATE vouch",
        )?;
        if vouch[..KEY_LEN] != client_short[..] || vouch[KEY_LEN..] != self.long_public[..] {
            return Err(HandshakeError::Crypto(
                "INITIATE vouch does not match the connection keys".into(),
            ));
        }
        let metadata =
            Metadata::parse(plaintext.freeze().split_off(128)).map_err(CommandError::from)?;
        self.peer_nonce = nonce;
        Ok((precom, client_long, metadata))
    }

    fn write_ready(&mut self, precom: &SalsaBox, out: &mut BytesMut) -> Result<(), HandshakeError> {
        let nonce = self.nonce;
        self.nonce = nonce
            .checked_add(1)
            .ok_or_else(|| HandshakeError::Crypto("CURVE nonce counter exhausted".into()))?;
        let mut plain = BytesMut::new();
        self.own_metadata.encode(&mut plain);
        let mut ready = BytesMut::with_capacity(30 + plain.len());
        ready.put_slice(b"\x05READY");
        ready.put_u64(nonce);
        seal_into(precom, &short_nonce(READY_NONCE, nonce), &plain, &mut ready)?;
        write_command_frame(&ready, out);
        Ok(())
    }

    /// The MESSAGE codec, once READY has been sent.
    pub fn into_codec(self) -> Option<CurveCodec> {
        match self.state {
            State::Done(precom) => Some(CurveCodec::new(precom, self.nonce, self.peer_nonce, true)),
            _ => None,
        }
    }
}

/// Checks HELLO's shape (length, version) and returns the client's short-term
/// public key C', without any public-key work.
fn hello_key(body: &[u8]) -> Result<[u8; KEY_LEN], HandshakeError> {
    if body.len() != HELLO_LEN {
        return Err(HandshakeError::Crypto(format!(
            "HELLO is {} bytes, {HELLO_LEN} expected",
            body.len()
        )));
    }
    // ok: the length is exactly HELLO_LEN (200), checked above.
    if body[6..8] != [1, 0] {
        return Err(HandshakeError::Crypto(format!(
            "HELLO has CurveZMQ version {}.{}, 1.0 expected",
            body[6], body[7]
        )));
    }
    read_array(body, 80)
}
