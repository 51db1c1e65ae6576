//! The body of the `security` fuzz target: the PLAIN and CURVE handshakes
//! ([`Handshake`] with [`MechanismConfig`] and an [`Authenticator`]) fed a peer's
//! commands, and the CURVE MESSAGE codec after a real handshake.
//!
//! Declared from `lib.rs` for the fuzz crate and for zmtp's tests alike, so it may
//! only use `zmtp`, `bytes` and `tokio-util`.
//!
//! # Input encoding
//!
//! Byte 0 picks a [`Role`] (modulo 5); the rest is what the peer sends:
//!
//! | byte 0 | we are | the rest is |
//! |---|---|---|
//! | 0 | a PLAIN client (DEALER, `admin`/`secret`) | the server's bytes after its greeting |
//! | 1 | a PLAIN server (ROUTER; the authenticator lets in `admin`/`secret` only) | the client's bytes after its greeting |
//! | 2 | a CURVE client (DEALER, keys [`client_keys`], server key [`server_keys`]) | the server's bytes after its greeting |
//! | 3 | a CURVE server (ROUTER, keys [`server_keys`]; the allow-list holds [`client_keys`]) | the client's bytes after its greeting |
//! | 4 | both ends of a finished CURVE handshake | [codec steps](#codec-steps) |
//!
//! For roles 0-3 the body puts the peer's greeting (right mechanism and as-server
//! bit) before the rest and feeds the whole in the chunkings of the other bodies: it
//! must never panic, must send at most [`MAX_SENT`] bytes, and must end the same way
//! however the bytes are cut (the result, including error texts and the peer's
//! metadata, the bytes left over, what the peer closing now would mean, whether a
//! CURVE codec is left, and what we sent: the bytes for PLAIN, only their number for
//! CURVE, whose keys and nonces are random).
//!
//! The long-term keys are fixed so that recorded commands stay meaningful, but CURVE
//! short-term keys, cookie keys and long nonces are random and cannot be fixed from
//! outside: a recorded HELLO opens at a server forever (it is boxed to the fixed
//! server key), but the server's WELCOME is new every time, so an INITIATE never
//! passes the cookie check and a WELCOME never opens at a client. In roles 2 and 3
//! the fuzzer therefore reaches HELLO processing (role 3) and otherwise mostly the
//! parsing, length, name and state checks before the boxes; role 4 covers what lies
//! beyond, with real boxes made inside the body.
//!
//! # Codec steps
//!
//! Role 4 runs a real in-memory CURVE handshake (our client against our server, both
//! through [`Handshake`]), takes both ends' [`CurveCodec`]s (the client's used whole,
//! through `encrypt`/`decrypt`; the server's split, through `seal_frame`/`open_frame`)
//! and runs steps, each an opcode byte and its arguments (a missing argument reads as
//! 0). Bit 0 of the opcode is the direction (0: client to server, 1: server to client),
//! bits 1-3 the step (modulo 6), bits 4-5 the flags sealed (MORE, COMMAND), bit 6 the
//! outer frame's COMMAND bit on the way to `open_frame` (which ignores it):
//!
//! | step | what | arguments |
//! |---|---|---|
//! | 0 | seal a MESSAGE and deliver it | length `n`, `n` bytes of data |
//! | 1 | seal a MESSAGE and hold it back | length `n`, `n` bytes of data |
//! | 2 | deliver a held MESSAGE (out of order) | index `i` (modulo the number held) |
//! | 3 | deliver the last MESSAGE delivered again (a replay) | |
//! | 4 | deliver the last MESSAGE sealed with one byte changed | position `p`, xor mask `m` (made odd) |
//! | 5 | deliver raw bytes as a MESSAGE body | length `n`, `n` bytes |
//!
//! Each delivery is checked against a model of the receiver: an untouched MESSAGE
//! opens, with its flags and data, exactly when its nonce is above the last one
//! accepted; a changed or replayed one never opens; raw bytes never open with a nonce
//! not above the last.
//!
//! Seeds come from [`seeds`]: valid command sequences recorded from our own client
//! and server run against each other in memory, plus libzmq's damaged ERROR and
//! malformed commands (`cargo test -p zmtp --test fuzz_corpus -- --ignored
//! write_security_seeds` writes them to `corpus/security/`).

use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;
use zmtp::auth::{Authenticator, CurveKeyList, PasswordFile};
use zmtp::proto::frame::encode_header;
use zmtp::proto::greeting::GREETING_LEN;
use zmtp::proto::mechanism::curve::{
    CurveCodec, CurveKeyPair, CurveOpener, CurveSealer, FLAG_COMMAND, FLAG_MORE,
};
use zmtp::proto::{
    Frame, FrameCodec, Greeting, Handshake, HandshakeConfig, HandshakeError, MechanismConfig,
    PeerInfo, SocketType,
};

/// The PLAIN user the server lets in, and the one the client is.
pub const USER: &[u8] = b"admin";
/// That user's password.
pub const PASSWORD: &[u8] = b"secret";

/// The most a handshake may send after its greeting: a few commands with our small
/// metadata (CURVE: HELLO 202 + INITIATE about 330 bytes).
pub const MAX_SENT: usize = 1024;

/// What the body plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A PLAIN client (DEALER).
    PlainClient,
    /// A PLAIN server (ROUTER) with an allow-list of one user.
    PlainServer,
    /// A CURVE client (DEALER).
    CurveClient,
    /// A CURVE server (ROUTER) with an allow-list of one key.
    CurveServer,
    /// Both CURVE codecs after a real handshake.
    CurveMessages,
}

impl Role {
    /// The role an input's first byte selects.
    pub fn of(byte: u8) -> Role {
        match byte % 5 {
            0 => Role::PlainClient,
            1 => Role::PlainServer,
            2 => Role::CurveClient,
            3 => Role::CurveServer,
            _ => Role::CurveMessages,
        }
    }

    /// The first byte of an input for this role.
    pub fn byte(self) -> u8 {
        self as u8
    }

    fn is_plain(self) -> bool {
        matches!(self, Role::PlainClient | Role::PlainServer)
    }
}

/// The CURVE client's long-term keys (secret key 32 × 0x01), in the server's
/// allow-list.
pub fn client_keys() -> &'static CurveKeyPair {
    static KEYS: OnceLock<CurveKeyPair> = OnceLock::new();
    KEYS.get_or_init(|| CurveKeyPair::from_secret([1; 32]))
}

/// The CURVE server's long-term keys (secret key 32 × 0x02).
pub fn server_keys() -> &'static CurveKeyPair {
    static KEYS: OnceLock<CurveKeyPair> = OnceLock::new();
    KEYS.get_or_init(|| CurveKeyPair::from_secret([2; 32]))
}

/// Keys no one allows (secret key 32 × 0x03).
fn stranger_keys() -> &'static CurveKeyPair {
    static KEYS: OnceLock<CurveKeyPair> = OnceLock::new();
    KEYS.get_or_init(|| CurveKeyPair::from_secret([3; 32]))
}

fn config(
    socket_type: SocketType,
    mechanism: MechanismConfig,
    authenticator: Option<Authenticator>,
) -> HandshakeConfig {
    HandshakeConfig::new(socket_type)
        .identity(&b"fuzz"[..])
        .mechanism(mechanism)
        .authenticator(authenticator)
}

/// Our side's handshake settings in a handshake role (None for `CurveMessages`).
fn role_config(role: Role) -> Option<HandshakeConfig> {
    Some(match role {
        Role::PlainClient => config(
            SocketType::Dealer,
            MechanismConfig::plain_client(USER, PASSWORD),
            None,
        ),
        Role::PlainServer => {
            let mut users = PasswordFile::new();
            users.insert(USER, PASSWORD);
            config(
                SocketType::Router,
                MechanismConfig::PlainServer,
                Some(Authenticator::plain_users(users)),
            )
        }
        Role::CurveClient => config(
            SocketType::Dealer,
            MechanismConfig::curve_client(client_keys().clone(), server_keys().public),
            None,
        ),
        Role::CurveServer => {
            let mut keys = CurveKeyList::new();
            keys.insert(client_keys().public);
            config(
                SocketType::Router,
                MechanismConfig::curve_server(server_keys().clone()),
                Some(Authenticator::curve_keys(keys)),
            )
        }
        Role::CurveMessages => return None,
    })
}

/// How a handshake fed some bytes ended.
#[derive(Debug, PartialEq, Eq)]
struct HandshakeEnd {
    result: Result<Option<PeerInfo>, HandshakeError>,
    /// Bytes not consumed by the handshake (left for the frame decoder, or unread).
    leftover: usize,
    /// When it is still running: what the peer closing the connection now means.
    closed: Option<HandshakeError>,
    /// How many bytes we sent after our greeting.
    sent: usize,
    /// Those bytes, for PLAIN (CURVE's are random).
    plain_sent: Option<Bytes>,
    /// Whether a CURVE MESSAGE codec was left.
    codec: bool,
}

fn handshake_pieces(role: Role, config: HandshakeConfig, pieces: &[&[u8]]) -> HandshakeEnd {
    let mut handshake = Handshake::new(config).with_peer_address("192.0.2.1:5555");
    let greeting = handshake
        .take_output()
        .expect("our greeting goes out at once");
    assert_eq!(greeting.len(), GREETING_LEN);
    let total: usize = pieces.iter().map(|p| p.len()).sum();
    let mut input = BytesMut::new();
    let mut sent = BytesMut::new();
    let mut fed = 0;
    let mut result = Ok(None);
    for piece in pieces {
        input.extend_from_slice(piece);
        fed += piece.len();
        result = handshake.handle_input(&mut input);
        if let Some(out) = handshake.take_output() {
            sent.extend_from_slice(&out);
        }
        assert!(sent.len() <= MAX_SENT, "sent {} bytes", sent.len());
        if !matches!(result, Ok(None)) {
            break;
        }
    }
    if matches!(result, Ok(Some(_))) {
        // Done: nothing more is consumed or sent.
        let before = input.len();
        assert_eq!(handshake.handle_input(&mut input), Ok(None), "after done");
        assert_eq!(input.len(), before, "consumed after done");
        assert_eq!(handshake.take_output(), None, "sent after done");
    }
    let closed = matches!(result, Ok(None)).then(|| handshake.peer_closed());
    HandshakeEnd {
        leftover: input.len() + total - fed,
        closed,
        sent: sent.len(),
        plain_sent: role.is_plain().then(|| sent.freeze()),
        codec: handshake.take_codec().is_some(),
        result,
    }
}

/// The peer's side of the handshake: its greeting, then `rest`.
fn peer_stream(config: &HandshakeConfig, rest: &[u8]) -> Vec<u8> {
    let mut stream = Vec::with_capacity(GREETING_LEN + rest.len());
    Greeting::ours(config.mechanism.name(), !config.mechanism.as_server()).encode(&mut stream);
    stream.extend_from_slice(rest);
    stream
}

/// The PLAIN and CURVE handshakes and the CURVE codec fed a peer's bytes (see the
/// module documentation): never panics, stays bounded, ends the same way however the
/// bytes are cut, and the codec behaves as its model says.
pub fn security(data: &[u8]) {
    let _ = outcome(data);
}

/// How `data` ends (the whole-input run's end, or the codec steps' trace), after
/// the checks of [`security`].
pub fn outcome(data: &[u8]) -> String {
    let Some((&first, rest)) = data.split_first() else {
        return "empty".into();
    };
    let role = Role::of(first);
    let Some(config) = role_config(role) else {
        return format!("{:?}", codec_steps(rest));
    };
    let stream = peer_stream(&config, rest);
    let [whole, bytewise, mixed] = super::chunkings(&stream);
    let reference = handshake_pieces(role, config.clone(), &whole);
    assert_eq!(
        handshake_pieces(role, config.clone(), &bytewise),
        reference,
        "byte by byte"
    );
    assert_eq!(
        handshake_pieces(role, config, &mixed),
        reference,
        "in pieces"
    );
    format!("{reference:?}")
}

/// Two handshakes run against each other.
struct Pair {
    sides: [Handshake; 2],
    /// What each sent after its greeting.
    sent: [Vec<u8>; 2],
    results: [Result<Option<PeerInfo>, HandshakeError>; 2],
}

/// Runs two handshakes against each other until both are done or stuck.
fn run_pair(first: HandshakeConfig, second: HandshakeConfig) -> Pair {
    let mut sides = [Handshake::new(first), Handshake::new(second)];
    let mut sent = [Vec::new(), Vec::new()];
    let mut inputs = [BytesMut::new(), BytesMut::new()];
    let mut results = [Ok(None), Ok(None)];
    for _ in 0..8 {
        for from in 0..2 {
            if let Some(out) = sides[from].take_output() {
                sent[from].extend_from_slice(&out);
                inputs[1 - from].extend_from_slice(&out);
            }
        }
        for side in 0..2 {
            if matches!(results[side], Ok(None)) {
                results[side] = sides[side].handle_input(&mut inputs[side]);
            }
        }
    }
    for (from, bytes) in sent.iter_mut().enumerate() {
        if let Some(out) = sides[from].take_output() {
            bytes.extend_from_slice(&out);
        }
        bytes.drain(..GREETING_LEN.min(bytes.len()));
    }
    Pair {
        sides,
        sent,
        results,
    }
}

/// The client's and the server's codecs after a real CURVE handshake.
///
/// Under cargo-fuzz the handshake runs once and every input gets copies of its
/// codecs (`CurveCodec` is `Clone` there only): its eight X25519 operations were
/// three quarters of the target's time. Elsewhere (the corpus replay tests) each
/// input runs its own.
#[cfg(fuzzing)]
fn curve_codecs() -> (CurveCodec, CurveCodec) {
    static CODECS: OnceLock<(CurveCodec, CurveCodec)> = OnceLock::new();
    CODECS.get_or_init(handshake_codecs).clone()
}

#[cfg(not(fuzzing))]
fn curve_codecs() -> (CurveCodec, CurveCodec) {
    handshake_codecs()
}

/// A real CURVE handshake in memory: the client's and the server's codecs.
fn handshake_codecs() -> (CurveCodec, CurveCodec) {
    let Pair {
        mut sides, results, ..
    } = run_pair(
        role_config(Role::CurveClient).expect("a handshake role"),
        role_config(Role::CurveServer).expect("a handshake role"),
    );
    assert!(
        results.iter().all(|r| matches!(r, Ok(Some(_)))),
        "in-memory CURVE handshake failed: {results:?}"
    );
    let [client, server] = &mut sides;
    (
        client.take_codec().expect("client codec"),
        server.take_codec().expect("server codec"),
    )
}

/// Reads a role-4 input: bytes, 0 once it ends.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }
}

/// One direction of MESSAGE traffic and the model of its receiver.
#[derive(Default)]
struct Lane {
    /// The greatest nonce the receiver accepted.
    accepted: u64,
    /// The last nonce sealed.
    sealed_nonce: u64,
    /// The last body sealed.
    last_sealed: Option<Bytes>,
    /// The last body delivered as sealed.
    last_delivered: Option<Bytes>,
    /// Sealed bodies held back, with their flags and data.
    held: Vec<(Bytes, u8, Bytes)>,
}

/// The nonce of a MESSAGE body, if it has one where MESSAGE keeps it.
fn message_nonce(body: &[u8]) -> Option<u64> {
    body.get(8..16)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
}

struct Ends {
    /// The client's codec, whole (encrypt/decrypt).
    client: CurveCodec,
    /// The server's halves (seal_frame/open_frame).
    server_sealer: CurveSealer,
    server_opener: CurveOpener,
}

impl Ends {
    /// Seals `data` in direction `dir` (0: client to server); returns the body.
    fn seal(&mut self, dir: u8, flags: u8, data: &[u8]) -> Bytes {
        let mut out = BytesMut::new();
        if dir == 0 {
            self.client
                .encrypt(flags, data, &mut out)
                .expect("client seals");
            out.freeze()
        } else {
            self.server_sealer
                .seal_frame(
                    flags & FLAG_MORE != 0,
                    flags & FLAG_COMMAND != 0,
                    data,
                    &mut out,
                )
                .expect("server seals");
            let frame = FrameCodec::new(u64::MAX)
                .decode(&mut out)
                .ok()
                .flatten()
                .expect("a sealed frame decodes");
            assert!(out.is_empty(), "one frame");
            assert!(!frame.more && !frame.command, "MESSAGE frame flags");
            frame.body
        }
    }

    /// Delivers `body` in direction `dir`; returns the flags and data it opened to.
    fn open(&mut self, dir: u8, body: Bytes, outer_command: bool) -> Result<(u8, Bytes), String> {
        let result = if dir == 0 {
            self.server_opener
                .open_frame(Frame {
                    more: false,
                    command: outer_command,
                    body,
                })
                .map(|frame| {
                    let flags = if frame.more { FLAG_MORE } else { 0 }
                        | if frame.command { FLAG_COMMAND } else { 0 };
                    (flags, frame.body)
                })
        } else {
            self.client.decrypt(body)
        };
        result.map_err(|e| e.to_string())
    }
}

/// Role 4: the codec steps; returns their outcomes.
fn codec_steps(input: &[u8]) -> Vec<Result<(u8, Bytes), String>> {
    let (client, server) = curve_codecs();
    let (server_sealer, server_opener) = server.split();
    let mut ends = Ends {
        client,
        server_sealer,
        server_opener,
    };
    // The last nonces of the handshake: the client's INITIATE (2), the server's
    // READY (1).
    let mut lanes = [
        Lane {
            accepted: 2,
            sealed_nonce: 2,
            ..Lane::default()
        },
        Lane {
            accepted: 1,
            sealed_nonce: 1,
            ..Lane::default()
        },
    ];
    let mut trace = Vec::new();
    let mut input = Reader(input);
    while !input.0.is_empty() {
        let op = input.byte();
        let dir = op & 1;
        let flags = (op >> 4) & (FLAG_MORE | FLAG_COMMAND);
        let lane = &mut lanes[usize::from(dir)];
        // What to deliver, and what it should open to: Some for an untouched MESSAGE.
        let step = ((op >> 1) & 7) % 6;
        let (body, expected) = match step {
            step @ (0 | 1) => {
                let len = usize::from(input.byte());
                let data = Bytes::copy_from_slice(input.take(len));
                let body = ends.seal(dir, flags, &data);
                let nonce = message_nonce(&body).expect("a sealed MESSAGE has a nonce");
                assert!(nonce > lane.sealed_nonce, "sealed nonces go up");
                lane.sealed_nonce = nonce;
                lane.last_sealed = Some(body.clone());
                if step == 1 {
                    lane.held.push((body, flags, data));
                    continue;
                }
                (body, Some((flags, data)))
            }
            2 => {
                let index = usize::from(input.byte());
                if lane.held.is_empty() {
                    continue;
                }
                let (body, flags, data) = lane.held.remove(index % lane.held.len());
                (body, Some((flags, data)))
            }
            3 => match lane.last_delivered.clone() {
                Some(body) => (body, None),
                None => continue,
            },
            4 => {
                let (at, mask) = (usize::from(input.byte()), input.byte() | 1);
                let Some(sealed) = &lane.last_sealed else {
                    continue;
                };
                let mut body = sealed.to_vec();
                let len = body.len();
                if let Some(byte) = body.get_mut(at % len) {
                    *byte ^= mask;
                }
                (Bytes::from(body), None)
            }
            _ => {
                let len = usize::from(input.byte());
                (Bytes::copy_from_slice(input.take(len)), None)
            }
        };
        let nonce = message_nonce(&body);
        let result = ends.open(dir, body.clone(), op & 0x40 != 0);
        let fresh = nonce.is_some_and(|n| n > lane.accepted);
        match (&expected, &result) {
            (Some(sealed), Ok(opened)) => {
                assert!(fresh, "a stale MESSAGE opened: {result:?}");
                assert_eq!(opened, sealed, "MESSAGE opened to something else");
            }
            (Some(_), Err(_)) => assert!(!fresh, "a fresh MESSAGE failed: {result:?}"),
            (None, Ok(_)) => assert!(
                step == 5 && fresh,
                "a replayed, changed or stale MESSAGE opened: {result:?}"
            ),
            (None, Err(_)) => {}
        }
        if let (Ok(_), Some(n)) = (&result, nonce) {
            lane.accepted = n;
        }
        if expected.is_some() {
            lane.last_delivered = Some(body);
        }
        trace.push(result);
    }
    trace
}

/// A seed: its file name, its bytes and a piece of its expected [`outcome`].
#[derive(Debug, Clone)]
pub struct Seed {
    /// File name in `corpus/security/` (prefixed `seed-`).
    pub name: &'static str,
    /// The input.
    pub data: Vec<u8>,
    /// Text the whole-input outcome contains.
    pub expect: &'static str,
}

/// A command frame carrying `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_header(&mut out, false, true, body.len());
    out.extend_from_slice(body);
    out.to_vec()
}

/// The bodies of the frames a recorded byte stream holds.
fn bodies(stream: &[u8]) -> Vec<Bytes> {
    let mut codec = FrameCodec::new(u64::MAX);
    let mut buf = BytesMut::from(stream);
    let mut all = Vec::new();
    while let Ok(Some(frame)) = codec.decode(&mut buf) {
        all.push(frame.body);
    }
    all
}

/// The `n`-th command of a recorded stream, as a frame (empty if there is none).
fn nth_frame(stream: &[u8], n: usize) -> Vec<u8> {
    bodies(stream)
        .get(n)
        .map_or_else(Vec::new, |body| frame(body))
}

fn input(role: Role, parts: &[&[u8]]) -> Vec<u8> {
    let mut data = vec![role.byte()];
    for part in parts {
        data.extend_from_slice(part);
    }
    data
}

/// The seed corpus: valid sequences recorded from our own client and server, the
/// same with the peer refused, libzmq 4.3.5's damaged ERROR, malformed and misplaced
/// commands, and codec steps.
pub fn seeds() -> Vec<Seed> {
    let seed = |name, data, expect| Seed { name, data, expect };
    let mut seeds = Vec::new();

    let plain_server = || role_config(Role::PlainServer).expect("a handshake role");
    let plain_client = |user: &'static [u8], password: &'static [u8], socket_type| {
        config(
            socket_type,
            MechanismConfig::plain_client(user, password),
            None,
        )
    };
    // PLAIN: allowed, refused, and a peer of an incompatible type.
    let Pair {
        sent: [hello_initiate, welcome_ready],
        ..
    } = run_pair(
        plain_client(USER, PASSWORD, SocketType::Dealer),
        plain_server(),
    );
    let Pair {
        sent: [hello_initiate_denied, welcome_error],
        ..
    } = run_pair(
        plain_client(b"eve", b"guess", SocketType::Dealer),
        plain_server(),
    );
    let Pair {
        sent: [hello_initiate_pub, _],
        ..
    } = run_pair(
        plain_client(USER, PASSWORD, SocketType::Pub),
        plain_server(),
    );
    let plain_hello = nth_frame(&hello_initiate, 0);
    let plain_ready = nth_frame(&welcome_ready, 1);
    let welcome = frame(b"\x07WELCOME");
    let error_400 = frame(b"\x05ERROR\x03400");
    let damaged_error = frame(b"\x5eRROR\x03400");
    let message = [0x00, 0x05, b'h', b'e', b'l', b'l', b'o'];
    use Role::*;
    seeds.extend([
        seed(
            "plain-client-ready",
            input(PlainClient, &[&welcome_ready]),
            "Ok(Some",
        ),
        seed(
            "plain-client-ready-then-message",
            input(PlainClient, &[&welcome_ready, &message]),
            "leftover: 7",
        ),
        seed(
            "plain-client-refused",
            input(PlainClient, &[&welcome_error]),
            "PeerError(\"400\")",
        ),
        seed(
            "plain-client-damaged-error",
            input(PlainClient, &[&welcome, &damaged_error]),
            "PeerError(\"400\")",
        ),
        seed(
            "plain-client-damaged-error-at-hello",
            input(PlainClient, &[&damaged_error]),
            "PeerError(\"400\")",
        ),
        seed(
            "plain-client-error",
            input(PlainClient, &[&error_400]),
            "PeerError(\"400\")",
        ),
        seed(
            "plain-client-welcome-with-data",
            input(PlainClient, &[&frame(b"\x07WELCOMEx")]),
            "WELCOME with data",
        ),
        seed(
            "plain-client-ready-first",
            input(PlainClient, &[&plain_ready]),
            "UnexpectedCommand(\"READY\")",
        ),
        seed(
            "plain-server-allowed",
            input(PlainServer, &[&hello_initiate]),
            "Ok(Some",
        ),
        seed(
            "plain-server-allowed-then-message",
            input(PlainServer, &[&hello_initiate, &message]),
            "leftover: 7",
        ),
        seed(
            "plain-server-denied",
            input(PlainServer, &[&hello_initiate_denied]),
            "Denied",
        ),
        seed(
            "plain-server-incompatible",
            input(PlainServer, &[&hello_initiate_pub]),
            "IncompatibleSocketType",
        ),
        seed(
            "plain-server-hello-only",
            input(PlainServer, &[&plain_hello]),
            "result: Ok(None)",
        ),
        seed(
            "plain-server-malformed-hello",
            input(PlainServer, &[&frame(b"\x05HELLO\x05admin\x09secret")]),
            "malformed HELLO",
        ),
        seed(
            "plain-server-data-before-ready",
            input(PlainServer, &[&plain_hello, &message]),
            "DataBeforeReady",
        ),
        seed(
            "plain-server-unknown-socket-type",
            input(
                PlainServer,
                &[
                    &plain_hello,
                    &frame(b"\x08INITIATE\x0bSocket-Type\x00\x00\x00\x03FOO"),
                ],
            ),
            "UnknownSocketType",
        ),
    ]);

    // CURVE: allowed, a client the allow-list refuses, a client with the wrong
    // server key.
    let curve_server = || role_config(Role::CurveServer).expect("a handshake role");
    let curve_client = |keys: &CurveKeyPair, server_public| {
        config(
            SocketType::Dealer,
            MechanismConfig::curve_client(keys.clone(), server_public),
            None,
        )
    };
    let Pair {
        sent: [curve_c, curve_s],
        ..
    } = run_pair(
        curve_client(client_keys(), server_keys().public),
        curve_server(),
    );
    let Pair {
        sent: [stranger_c, stranger_s],
        ..
    } = run_pair(
        curve_client(stranger_keys(), server_keys().public),
        curve_server(),
    );
    let Pair {
        sent: [wrong_key_c, _],
        ..
    } = run_pair(
        curve_client(client_keys(), stranger_keys().public),
        curve_server(),
    );
    let hello = nth_frame(&curve_c, 0);
    let initiate = nth_frame(&curve_c, 1);
    let curve_ready = nth_frame(&curve_s, 1);
    let mut bad_version = hello.clone();
    // A short frame: a 2-byte header, then the version at 6.
    if let Some(byte) = bad_version.get_mut(2 + 6) {
        *byte = 2;
    }
    let initiate_body = bodies(&curve_c).get(1).cloned().unwrap_or_default();
    let short_initiate = frame(&initiate_body[..200.min(initiate_body.len())]);
    seeds.extend([
        seed(
            "curve-client-recorded",
            input(CurveClient, &[&curve_s]),
            "cannot open WELCOME box",
        ),
        seed(
            "curve-client-refused",
            input(CurveClient, &[&stranger_s]),
            "cannot open WELCOME box",
        ),
        seed(
            "curve-client-error",
            input(CurveClient, &[&error_400]),
            "PeerError(\"400\")",
        ),
        seed(
            "curve-client-damaged-error",
            input(CurveClient, &[&damaged_error]),
            "PeerError(\"400\")",
        ),
        seed(
            "curve-client-short-welcome",
            input(
                CurveClient,
                &[&frame(&[b"\x07WELCOME".as_slice(), &[0; 100]].concat())],
            ),
            "WELCOME is 108 bytes",
        ),
        seed(
            "curve-client-ready-first",
            input(CurveClient, &[&curve_ready]),
            "UnexpectedCommand(\"READY\")",
        ),
        seed(
            "curve-client-message-first",
            input(
                CurveClient,
                &[&frame(&[b"\x07MESSAGE".as_slice(), &[0; 30]].concat())],
            ),
            "UnexpectedCommand(\"MESSAGE\")",
        ),
        seed(
            "curve-server-recorded",
            input(CurveServer, &[&curve_c]),
            "cannot open INITIATE cookie box",
        ),
        seed(
            "curve-server-stranger",
            input(CurveServer, &[&stranger_c]),
            "cannot open INITIATE cookie box",
        ),
        seed(
            "curve-server-hello-only",
            input(CurveServer, &[&hello]),
            "result: Ok(None)",
        ),
        seed(
            "curve-server-wrong-server-key",
            input(CurveServer, &[&wrong_key_c]),
            "cannot open HELLO",
        ),
        seed(
            "curve-server-bad-version",
            input(CurveServer, &[&bad_version]),
            "CurveZMQ version 2.0",
        ),
        seed(
            "curve-server-short-initiate",
            input(CurveServer, &[&hello, &short_initiate]),
            "INITIATE is 200 bytes",
        ),
        seed(
            "curve-server-initiate-first",
            input(CurveServer, &[&initiate]),
            "UnexpectedCommand(\"INITIATE\")",
        ),
        seed(
            "curve-server-error",
            input(CurveServer, &[&error_400]),
            "PeerError(\"400\")",
        ),
        seed(
            "curve-server-hello-then-data",
            input(CurveServer, &[&hello, &message]),
            "DataBeforeReady",
        ),
    ]);

    // Codec steps (see the module documentation): opcode = step << 1 | dir, flags in
    // bits 4-5. The tampering seed changes a held MESSAGE (so the box is what fails,
    // not the nonce), then delivers the untouched one, which must still open.
    let raw_message = [&b"\x07MESSAGE"[..], &9u64.to_be_bytes(), &[0; 17]].concat();
    let mut raw_step = vec![5 << 1, raw_message.len() as u8];
    raw_step.extend_from_slice(&raw_message);
    seeds.extend([
        seed(
            "codec-both-ways",
            input(
                CurveMessages,
                &[&[0, 5], b"hello", &[1 | 0x10, 2], b"hi", &[0x20, 0]],
            ),
            "Ok((0, b\"hello\"))",
        ),
        seed(
            "codec-out-of-order",
            input(
                CurveMessages,
                &[
                    &[2, 1],
                    b"a",
                    &[2, 1],
                    b"b",
                    &[4, 1],
                    &[4, 0],
                    &[0, 1],
                    b"c",
                ],
            ),
            "not above",
        ),
        seed(
            "codec-replay",
            input(CurveMessages, &[&[1, 1], b"x", &[7]]),
            "not above",
        ),
        seed(
            "codec-tamper",
            input(
                CurveMessages,
                &[
                    &[2, 3],
                    b"abc",
                    &[8, 20, 1],
                    &[8, 3, 1],
                    &[8, 0, 2],
                    &[4, 0],
                    &[8, 9, 1],
                ],
            ),
            "cannot open MESSAGE box",
        ),
        seed(
            "codec-raw",
            input(CurveMessages, &[&raw_step]),
            "cannot open MESSAGE box",
        ),
        seed(
            "codec-raw-short",
            input(CurveMessages, &[&[11, 10], b"\x07MESSAGE\x00\x00"]),
            "MESSAGE is 10 bytes",
        ),
    ]);
    seeds
}
