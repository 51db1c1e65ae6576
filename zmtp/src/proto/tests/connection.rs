//! Tests of `proto::connection`: every rule with bytes and time passed in.

use bytes::BufMut;

use super::*;

const MS: Duration = Duration::from_millis(1);
const V31: Version = Version { major: 3, minor: 1 };
const V30: Version = Version { major: 3, minor: 0 };

fn connection(config: ConnectionConfig) -> (Connection, Instant) {
    let now = Instant::now();
    (Connection::new(config, V31, None, now), now)
}

/// Everything queued in `out`, as the bytes a write would send.
fn wire(out: &mut WireQueue) -> BytesMut {
    out.take_all()
}

fn frame(out: &mut BytesMut, more: bool, command: bool, body: &[u8]) {
    encode_header(out, more, command, body.len());
    out.put_slice(body);
}

fn command(out: &mut BytesMut, command: Command) {
    let mut body = BytesMut::new();
    command.encode_body(&mut body);
    frame(out, false, true, &body);
}

/// Every event `input` decodes to, and the fault that ended decoding if one did.
fn events(
    conn: &mut Connection,
    input: &mut BytesMut,
    now: Instant,
) -> (Vec<Event>, Option<Fault>) {
    let mut events = Vec::new();
    loop {
        match conn.poll_event(input, now) {
            Ok(Some(event)) => events.push(event),
            Ok(None) => return (events, None),
            Err(fault) => return (events, Some(fault)),
        }
    }
}

/// The commands in what `conn` transmits now.
fn transmitted_commands(conn: &mut Connection) -> Vec<Command> {
    let mut out = WireQueue::new();
    conn.poll_transmit(&mut out).unwrap();
    let mut bytes = wire(&mut out);
    let mut decoder = FrameCodec::new(1 << 20);
    let mut commands = Vec::new();
    while let Some(frame) = decoder.decode(&mut bytes).unwrap() {
        assert!(frame.command, "only commands come from poll_transmit");
        commands.push(Command::parse(frame.body).unwrap());
    }
    commands
}

#[test]
fn a_message_is_delivered_whole_whatever_the_read_sizes() {
    let (mut conn, now) = connection(ConnectionConfig::new(1 << 20));
    let mut sent = BytesMut::new();
    frame(&mut sent, true, false, b"routing");
    frame(&mut sent, true, false, b"");
    frame(&mut sent, false, false, &[7; 300]);
    let mut input = BytesMut::new();
    let mut got = Vec::new();
    // One byte per read: nothing comes out before the last frame is complete.
    for byte in sent.iter() {
        input.put_u8(*byte);
        conn.on_input();
        let (events, fault) = events(&mut conn, &mut input, now);
        assert_eq!(fault, None);
        got.extend(events);
    }
    let expected = Message::from(vec![
        Bytes::from_static(b"routing"),
        Bytes::new(),
        Bytes::from(vec![7; 300]),
    ]);
    assert_eq!(got, [Event::Message(expected)]);
}

#[test]
fn a_message_over_the_size_limit_ends_the_connection() {
    let (mut conn, now) = connection(ConnectionConfig::new(100));
    let mut input = BytesMut::new();
    frame(&mut input, false, false, &[0; 100]);
    // Frames of one message add up: 60 + 60 > 100.
    frame(&mut input, true, false, &[0; 60]);
    frame(&mut input, false, false, &[0; 60]);
    let (events, fault) = events(&mut conn, &mut input, now);
    assert_eq!(events.len(), 1, "the message at the limit passes");
    assert_eq!(fault, Some(Fault::MessageTooLarge(100)));
    // A single frame over the limit is refused by its header, before its body comes.
    let (mut conn, now) = connection(ConnectionConfig::new(100));
    let mut input = BytesMut::new();
    encode_header(&mut input, false, false, 101);
    assert!(matches!(
        conn.poll_event(&mut input, now),
        Err(Fault::Frame(FrameError::TooLarge { .. }))
    ));
}

#[test]
fn a_message_of_too_many_empty_frames_ends_the_connection() {
    let (mut conn, now) = connection(ConnectionConfig::new(1 << 30));
    let mut input = BytesMut::new();
    for _ in 0..MAX_FRAMES_PER_MESSAGE {
        frame(&mut input, true, false, b"");
    }
    assert_eq!(conn.poll_event(&mut input, now), Ok(None));
    frame(&mut input, true, false, b"");
    assert_eq!(conn.poll_event(&mut input, now), Err(Fault::TooManyFrames));
}

#[test]
fn a_ping_is_answered_with_its_context_and_nothing_reaches_the_app() {
    let (mut conn, now) = connection(ConnectionConfig::new(1 << 20));
    let mut input = BytesMut::new();
    command(
        &mut input,
        Command::Ping {
            ttl_deciseconds: 0,
            context: Bytes::from_static(b"ctx"),
        },
    );
    command(
        &mut input,
        Command::Pong {
            context: Bytes::new(),
        },
    );
    assert_eq!(events(&mut conn, &mut input, now), (vec![], None));
    assert!(conn.wants_transmit());
    assert_eq!(
        transmitted_commands(&mut conn),
        [Command::Pong {
            context: Bytes::from_static(b"ctx")
        }]
    );
    assert!(!conn.wants_transmit());
}

#[test]
fn a_ping_flood_queues_a_bounded_number_of_pongs() {
    let (mut conn, now) = connection(ConnectionConfig::new(1 << 20));
    let mut input = BytesMut::new();
    for _ in 0..10_000 {
        command(
            &mut input,
            Command::Ping {
                ttl_deciseconds: 0,
                context: Bytes::new(),
            },
        );
    }
    events(&mut conn, &mut input, now);
    assert_eq!(transmitted_commands(&mut conn).len(), MAX_PENDING_PONGS);
}

#[test]
fn the_peers_ping_ttl_bounds_its_silence() {
    let (mut conn, now) = connection(ConnectionConfig::new(1 << 20));
    assert_eq!(conn.poll_timeout(), None, "no heartbeats, no deadline");
    let mut input = BytesMut::new();
    command(
        &mut input,
        Command::Ping {
            ttl_deciseconds: 5,
            context: Bytes::new(),
        },
    );
    conn.on_input();
    events(&mut conn, &mut input, now);
    assert_eq!(conn.poll_timeout(), Some(now + 500 * MS));
    // The PING itself was traffic; then a whole window of silence.
    assert_eq!(conn.handle_timeout(now + 500 * MS), Ok(()));
    assert_eq!(
        conn.handle_timeout(now + 1000 * MS),
        Err(Fault::HeartbeatTimeout(500 * MS))
    );
}

#[test]
fn our_heartbeat_sends_pings_with_our_ttl_and_gives_up_a_silent_peer() {
    let heartbeat =
        HeartbeatConfig::every(100 * MS, 200 * MS).with_ttl(Some(Duration::from_secs(3)));
    let (mut conn, t0) = connection(ConnectionConfig::new(1 << 20).with_heartbeat(heartbeat));
    assert_eq!(conn.poll_timeout(), Some(t0 + 100 * MS));
    conn.handle_timeout(t0 + 100 * MS).unwrap();
    assert_eq!(
        transmitted_commands(&mut conn),
        [Command::Ping {
            ttl_deciseconds: 30,
            context: Bytes::new()
        }]
    );
    conn.handle_timeout(t0 + 200 * MS).unwrap();
    assert_eq!(transmitted_commands(&mut conn).len(), 1);
    // Silent for interval + timeout.
    assert_eq!(
        conn.handle_timeout(t0 + 300 * MS),
        Err(Fault::HeartbeatTimeout(300 * MS))
    );
}

#[test]
fn a_paused_peer_is_not_given_up_for_our_silence() {
    let heartbeat = HeartbeatConfig::every(100 * MS, 100 * MS);
    let (mut conn, t0) = connection(ConnectionConfig::new(1 << 20).with_heartbeat(heartbeat));
    conn.set_listening(false);
    for step in 1..=50 {
        conn.handle_timeout(t0 + step * 100 * MS).unwrap();
    }
    conn.set_listening(true);
    conn.on_input();
    conn.handle_timeout(t0 + 5_100 * MS).unwrap();
}

#[test]
fn subscriptions_are_events_and_other_commands_are_ignored() {
    let (mut conn, now) = connection(ConnectionConfig::new(1 << 20));
    let mut input = BytesMut::new();
    command(
        &mut input,
        Command::Subscribe(Bytes::from_static(b"weather")),
    );
    frame(&mut input, false, true, b"\x05HELLOjunk");
    frame(&mut input, false, true, b"\xffbroken");
    command(&mut input, Command::Cancel(Bytes::from_static(b"weather")));
    frame(&mut input, false, false, b"data");
    assert_eq!(
        events(&mut conn, &mut input, now),
        (
            vec![
                Event::Subscribe(Bytes::from_static(b"weather")),
                Event::Cancel(Bytes::from_static(b"weather")),
                Event::Message(Message::from(Bytes::from_static(b"data"))),
            ],
            None
        )
    );
}

#[test]
fn subscriptions_go_as_commands_to_3_1_and_as_messages_to_3_0() {
    let topic = Bytes::from_static(b"weather");
    let sent = |version| {
        let mut conn = Connection::new(
            ConnectionConfig::new(1 << 20),
            version,
            None,
            Instant::now(),
        );
        let mut out = WireQueue::new();
        conn.send_subscription(true, &topic, &mut out).unwrap();
        conn.send_subscription(false, &topic, &mut out).unwrap();
        let mut bytes = wire(&mut out);
        let mut decoder = FrameCodec::new(1 << 20);
        let mut frames = Vec::new();
        while let Some(frame) = decoder.decode(&mut bytes).unwrap() {
            frames.push((frame.command, frame.body));
        }
        frames
    };
    let modern = sent(V31);
    assert_eq!(modern.len(), 2);
    assert!(modern.iter().all(|(command, _)| *command));
    assert_eq!(
        Command::parse(modern[0].1.clone()).unwrap(),
        Command::Subscribe(topic.clone())
    );
    assert_eq!(
        Command::parse(modern[1].1.clone()).unwrap(),
        Command::Cancel(topic.clone())
    );
    assert_eq!(
        sent(V30),
        [
            (false, Bytes::from_static(b"\x01weather")),
            (false, Bytes::from_static(b"\x00weather")),
        ]
    );
}

#[test]
fn two_connections_talk_in_clear_and_over_curve() {
    let (client_codec, server_codec) = crate::proto::mechanism::curve::tests::codecs();
    let now = Instant::now();
    let config = ConnectionConfig::new(1 << 20);
    for (mut a, mut b) in [
        (
            Connection::new(config, V31, None, now),
            Connection::new(config, V31, None, now),
        ),
        (
            Connection::new(config, V31, Some(client_codec), now),
            Connection::new(config, V31, Some(server_codec), now),
        ),
    ] {
        let msg = Message::from(vec![Bytes::from_static(b"a"), Bytes::from(vec![9; 20_000])]);
        let mut out = WireQueue::new();
        a.send_message(&msg, &mut out).unwrap();
        a.send_subscription(true, &Bytes::from_static(b"t"), &mut out)
            .unwrap();
        let mut input = wire(&mut out);
        assert_eq!(
            events(&mut b, &mut input, now),
            (
                vec![
                    Event::Message(msg),
                    Event::Subscribe(Bytes::from_static(b"t"))
                ],
                None
            )
        );
        // A PING across, a PONG back, both boxed when CURVE is on.
        let mut out = WireQueue::new();
        a.send_command(
            &Command::Ping {
                ttl_deciseconds: 0,
                context: Bytes::from_static(b"x"),
            },
            &mut out,
        )
        .unwrap();
        let mut input = wire(&mut out);
        events(&mut b, &mut input, now);
        let mut out = WireQueue::new();
        b.poll_transmit(&mut out).unwrap();
        let mut input = wire(&mut out);
        assert_eq!(events(&mut a, &mut input, now), (vec![], None));
    }
}

#[test]
fn a_tampered_curve_message_ends_the_connection() {
    let (client_codec, server_codec) = crate::proto::mechanism::curve::tests::codecs();
    let now = Instant::now();
    let config = ConnectionConfig::new(1 << 20);
    let mut a = Connection::new(config, V31, Some(client_codec), now);
    let mut b = Connection::new(config, V31, Some(server_codec), now);
    let mut out = WireQueue::new();
    a.send_message(&Message::from(Bytes::from_static(b"secret")), &mut out)
        .unwrap();
    let mut input = wire(&mut out);
    let last = input.len() - 1;
    input[last] ^= 1;
    assert!(matches!(
        b.poll_event(&mut input, now),
        Err(Fault::Security(_))
    ));
}
