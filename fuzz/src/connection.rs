//! The body of the `connection` fuzz target: [`zmtp::proto::Connection`] driven by a
//! sequence of the peer's bytes (cut as the input says), clock steps, pauses and
//! things to send, with its rules checked after every step. Declared by `lib.rs` for
//! the fuzz crate and zmtp's tests alike (it uses only `zmtp` and `bytes`).
//!
//! # Input encoding
//!
//! Byte 0 is the configuration: bit 0 makes the peer a ZMTP 3.0 one, bit 1 turns
//! our heartbeats on (a PING every [`INTERVAL_MS`], a silent peer given up after
//! [`INTERVAL_MS`] + [`TIMEOUT_MS`]), bits 2-3 choose `max_message_size` from
//! [`MAX_SIZES`]. Then steps, each an opcode byte (modulo 8) and its arguments; a
//! missing argument reads as 0:
//!
//! | op | step | arguments |
//! |---|---|---|
//! | 0 | the peer's next `1 + n % 64` bytes arrive (the rest of the input, shortened) | `n`, then the bytes |
//! | 1 | the peer's frames: `k % 4` frames, each a flags byte and a length byte and that many bytes | `k`, frames |
//! | 2 | the clock advances `t * 10` ms; the connection's timeout is handled if due | `t` |
//! | 3 | we send a message of `1 + k % 4` frames of `b * 8` bytes | `k`, `b` |
//! | 4 | we send SUBSCRIBE (or CANCEL when bit 0 of `s` is set) for a topic of `s >> 1 & 7` bytes | `s` |
//! | 5 | we stop / start listening (bit 0 of `l`) | `l` |
//! | 6 | the peer sends a PING with TTL `t` deciseconds and a context of `c % 20` bytes | `t`, `c` |
//! | 7 | what the connection has to say is taken (`poll_transmit`) | |
//!
//! # Rules checked
//!
//! Besides never panicking:
//! - every message delivered is within `max_message_size` bytes and
//!   [`MAX_FRAMES_PER_MESSAGE`] frames, and is never empty;
//! - after a timeout is handled, the next deadline is in the future (an engine never
//!   spins) and, while heartbeats are on, never more than a window away;
//! - a peer is given up for silence only with heartbeats on or after a PING with a
//!   TTL, and never while we were not listening for the whole window;
//! - what we send (messages, subscriptions, PONGs, PINGs) decodes, through a second
//!   connection, to exactly those messages and subscriptions, in order;
//! - the events and the fault do not depend on how the peer's bytes were cut: fed
//!   all at once, the same bytes give the same messages and subscriptions and end
//!   the same way (unless the peer was given up for silence first).

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use zmtp::proto::frame::encode_header;
use zmtp::proto::{
    Command, Connection, ConnectionConfig, Event, Fault, HeartbeatConfig, Version, WireQueue,
    MAX_FRAMES_PER_MESSAGE,
};
use zmtp::Message;

/// Our heartbeat interval when heartbeats are on.
pub const INTERVAL_MS: u64 = 100;
/// Our heartbeat timeout when heartbeats are on.
pub const TIMEOUT_MS: u64 = 200;
/// The message size limits byte 0 chooses from.
pub const MAX_SIZES: [u64; 4] = [u64::MAX, 1 << 20, 64, 0];

/// Reads the input as opcodes and arguments.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        taken
    }
}

/// What a run produced, to compare with the same bytes fed at once.
#[derive(Debug, Default, PartialEq, Eq)]
struct Outcome {
    events: Vec<Event>,
    fault: Option<Fault>,
}

fn config(byte0: u8) -> (ConnectionConfig, Version) {
    let version = Version {
        major: 3,
        minor: if byte0 & 1 != 0 { 0 } else { 1 },
    };
    let mut config = ConnectionConfig::new(MAX_SIZES[usize::from(byte0 >> 2 & 3)]);
    if byte0 & 2 != 0 {
        config = config.with_heartbeat(HeartbeatConfig::every(
            Duration::from_millis(INTERVAL_MS),
            Duration::from_millis(TIMEOUT_MS),
        ));
    }
    (config, version)
}

/// Decodes every event `input` holds, checking each message; records a fault.
fn drain(
    conn: &mut Connection,
    input: &mut BytesMut,
    now: Instant,
    max_size: u64,
    outcome: &mut Outcome,
) {
    loop {
        match conn.poll_event(input, now) {
            Ok(Some(event)) => {
                if let Event::Message(msg) = &event {
                    assert!(!msg.is_empty(), "an empty message was delivered");
                    assert!(msg.len() <= MAX_FRAMES_PER_MESSAGE, "too many frames");
                    let size: u64 = msg.iter().map(|f| f.len() as u64).sum();
                    assert!(size <= max_size, "a message over the size limit");
                }
                outcome.events.push(event);
            }
            Ok(None) => return,
            Err(fault) => {
                outcome.fault = Some(fault);
                return;
            }
        }
    }
}

/// The body: see the module documentation.
pub fn connection(data: &[u8]) {
    let mut input = Input { data };
    let (config, version) = config(input.byte());
    let heartbeats = config.heartbeat.interval.is_some();
    let window = Duration::from_millis(INTERVAL_MS + TIMEOUT_MS);
    let t0 = Instant::now();
    let mut now = t0;
    let mut conn = Connection::new(config, version, None, now);
    let mut peer_bytes = BytesMut::new(); // everything the peer sent, in order
    let mut buffer = BytesMut::new(); // what arrived and is not decoded yet
    let mut outcome = Outcome::default();
    let mut out = WireQueue::new();
    let mut sent: Vec<Event> = Vec::new();
    let mut listening = true;
    let mut deaf_since: Option<Instant> = None;
    let mut listening_since = t0;
    let mut peer_ttl = false;

    while !input.data.is_empty() && outcome.fault.is_none() {
        let arrived = match input.byte() % 8 {
            0 => {
                let n = 1 + usize::from(input.byte() % 64);
                Some(BytesMut::from(input.bytes(n)))
            }
            1 => {
                let mut frames = BytesMut::new();
                for _ in 0..input.byte() % 4 {
                    let flags = input.byte();
                    let len = usize::from(input.byte());
                    let body = input.bytes(len);
                    encode_header(&mut frames, flags & 1 != 0, flags & 4 != 0, body.len());
                    frames.put_slice(body);
                }
                Some(frames)
            }
            6 => {
                let ttl = u16::from(input.byte());
                let context = vec![b'c'; usize::from(input.byte() % 20)];
                let mut frame = BytesMut::new();
                Command::Ping {
                    ttl_deciseconds: ttl,
                    context: context.into(),
                }
                .encode_frame(&mut frame);
                peer_ttl |= ttl > 0;
                Some(frame)
            }
            2 => {
                now += Duration::from_millis(u64::from(input.byte()) * 10);
                if conn.poll_timeout().is_some_and(|at| at <= now) {
                    match conn.handle_timeout(now) {
                        Ok(()) => {
                            let next = conn.poll_timeout();
                            assert!(!next.is_some_and(|at| at <= now), "a deadline in the past");
                            if heartbeats {
                                let next = next.expect("heartbeats keep a deadline");
                                assert!(next <= now + window, "a deadline past the window");
                            }
                        }
                        Err(fault) => {
                            assert!(
                                matches!(fault, Fault::HeartbeatTimeout(_)),
                                "time alone can only end a connection for silence"
                            );
                            assert!(heartbeats || peer_ttl, "given up without a limit");
                            assert!(deaf_since.is_none(), "given up while we were not listening");
                            // A PING's TTL can be as short as 100 ms.
                            let shortest = if peer_ttl {
                                Duration::from_millis(100)
                            } else {
                                window
                            };
                            assert!(
                                now >= listening_since + shortest,
                                "given up less than a window after we listened again"
                            );
                            outcome.fault = Some(fault);
                        }
                    }
                }
                None
            }
            3 => {
                let frames = 1 + input.byte() % 4;
                let size = usize::from(input.byte()) * 8;
                let msg: Message = (0..frames).map(|i| vec![b'a' + i; size]).collect();
                conn.send_message(&msg, &mut out).expect("sending in clear");
                sent.push(Event::Message(msg));
                None
            }
            4 => {
                let s = input.byte();
                let topic = Bytes::from(vec![b't'; usize::from(s >> 1 & 7)]);
                let subscribe = s & 1 == 0;
                conn.send_subscription(subscribe, &topic, &mut out)
                    .expect("sending in clear");
                let event = match (version.minor, subscribe) {
                    // A 3.0 peer gets a message: 0x01/0x00 and the topic.
                    (0, _) => {
                        let mut body = vec![u8::from(subscribe)];
                        body.extend_from_slice(&topic);
                        Event::Message(Message::from(body))
                    }
                    (_, true) => Event::Subscribe(topic),
                    (_, false) => Event::Cancel(topic),
                };
                sent.push(event);
                None
            }
            5 => {
                let listen = input.byte() & 1 == 0;
                if listen && !listening {
                    listening_since = now;
                }
                listening = listen;
                conn.set_listening(listening);
                deaf_since = if listening {
                    None
                } else {
                    deaf_since.or(Some(now))
                };
                None
            }
            _ => {
                conn.poll_transmit(&mut out).expect("sending in clear");
                None
            }
        };
        if let Some(bytes) = arrived {
            peer_bytes.extend_from_slice(&bytes);
            buffer.extend_from_slice(&bytes);
            conn.on_input();
            if listening {
                drain(
                    &mut conn,
                    &mut buffer,
                    now,
                    config_max(&config),
                    &mut outcome,
                );
            }
        }
    }
    if listening && outcome.fault.is_none() {
        drain(
            &mut conn,
            &mut buffer,
            now,
            config_max(&config),
            &mut outcome,
        );
    }

    // What we sent decodes, through a peer, to what we meant.
    conn.poll_transmit(&mut out).expect("sending in clear");
    let mut wire = out.take_all();
    let mut peer = Connection::new(
        ConnectionConfig::new(u64::MAX),
        Version { major: 3, minor: 1 },
        None,
        t0,
    );
    let mut echoed = Outcome::default();
    drain(&mut peer, &mut wire, t0, u64::MAX, &mut echoed);
    assert_eq!(echoed.fault, None, "our own bytes do not decode");
    assert_eq!(echoed.events, sent, "what we sent is not what arrived");
    assert!(wire.is_empty(), "a partial frame in our output");

    // The same peer bytes at once end the same way, unless silence ended it first.
    if !matches!(outcome.fault, Some(Fault::HeartbeatTimeout(_))) && listening {
        let mut again = Connection::new(config, version, None, t0);
        let mut whole = Outcome::default();
        drain(
            &mut again,
            &mut peer_bytes,
            t0,
            config_max(&config),
            &mut whole,
        );
        assert_eq!(
            whole, outcome,
            "the outcome depends on how the bytes were cut"
        );
    }
}

fn config_max(config: &ConnectionConfig) -> u64 {
    config.max_message_size
}
