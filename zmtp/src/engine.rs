//! The engine: one task per connection that moves bytes and time between a stream
//! and the sans-IO cores, and decides nothing the cores decide.
//!
//! It runs the [`Handshake`] under a timeout, then one loop around a
//! [`Connection`]: bytes read go in and come out as messages and subscription
//! changes for the socket (through a [`Delivery`]); what the socket queued for the
//! peer (its [`Pipe`]) goes in and comes out as bytes to write; time goes in when
//! the connection's next deadline passes. Reading and writing wait side by side, so
//! a peer that does not read never stops us reading it, nor the reverse.
//!
//! The engine's own decisions are about moving bytes: how much to read at once, how
//! much to encode before writing, stopping reading while the socket does not take
//! input (TCP then pushes back on the peer), and flushing for the linger period
//! when the socket closes. The connection ends with a [`ConnectionError`].

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::runtime::RuntimeFlavor;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cancel_watch::CancelWatch;
use crate::delivery::Delivery;
use crate::direct_read::{Lending, LentReader, LENT_AGAIN_AFTER, LENT_CHECK, SMALL_READ};
use crate::direct_write::Lender;
use crate::framed_batch::FramedBatch;
use crate::inbound::{Inbound, InboundQueue, Pushed};
use crate::pipe::{Outbound, Pipe};
use crate::proto::mechanism::curve::CurveCodec;
use crate::proto::mechanism::guard::Guard;
use crate::proto::{
    Connection, ConnectionConfig, Event, Fault, FrameError, Handshake, HandshakeConfig,
    HandshakeError, PeerInfo, WireQueue,
};
use crate::read_buffers::ReadBuffers;
use crate::read_plan::{AfterRead, ReadPlan, FIRST_READ, READ_CHUNK};
use crate::transport::{ReadHalf, Stream, WriteHalf};

/// Encode at most this much before writing: large bodies go by reference, and one
/// `writev` of up to a mebibyte costs the kernel far less per byte than several
/// small ones (PUSH->PULL 64 KiB over loopback: 57 k msg/s at 256 KiB per write,
/// 84 k at 1 MiB; the sender's system CPU 15 -> 10 µs a message).
const WRITE_CHUNK: usize = 1024 * 1024;

/// Copy at most this much of it (headers and small frames), so a long queue of
/// small messages does not build one huge buffer, which the connection keeps.
const COPY_CHUNK: usize = 256 * 1024;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectionError {
    #[error("connection closed by the peer")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The peer broke a protocol rule or went silent (the connection core's verdict).
    #[error(transparent)]
    Fault(#[from] Fault),
    #[error("routing id {0} is already in use by another peer")]
    DuplicateRoutingId(String),
    #[error("PAIR socket already has a peer")]
    PairTaken,
    #[error("closed locally")]
    LocalClose,
    #[error("the peer fell too far behind reading our subscription changes; reconnecting sends the full set")]
    SubscriptionsLost,
}

impl ConnectionError {
    /// The monitor's account of this ending.
    pub(crate) fn reason(&self) -> crate::monitor::Reason {
        use crate::monitor::ReasonKind as Kind;
        let kind = match self {
            ConnectionError::Closed => Kind::PeerClosed,
            ConnectionError::Io(_) | ConnectionError::Fault(Fault::Frame(FrameError::Io(_))) => {
                Kind::Io
            }
            ConnectionError::Handshake(_) => Kind::Handshake,
            ConnectionError::Fault(Fault::HeartbeatTimeout(_)) => Kind::HeartbeatTimeout,
            ConnectionError::Fault(_) => Kind::Protocol,
            ConnectionError::DuplicateRoutingId(_) | ConnectionError::PairTaken => Kind::Refused,
            ConnectionError::LocalClose | ConnectionError::SubscriptionsLost => Kind::Local,
        };
        crate::monitor::Reason::new(kind, self.to_string())
    }

    /// Whether a connecting socket should reconnect. libzmq does after connection and
    /// timeout errors, not after protocol errors (session_base.cpp `engine_error`).
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            ConnectionError::Closed
            | ConnectionError::Io(_)
            | ConnectionError::Fault(Fault::HeartbeatTimeout(_))
            | ConnectionError::DuplicateRoutingId(_)
            | ConnectionError::SubscriptionsLost => true,
            ConnectionError::Handshake(e) => e.is_retryable(),
            ConnectionError::Fault(Fault::Frame(FrameError::Io(_))) => true,
            _ => false,
        }
    }

    /// Whether this is the peer's fault (bad input), worth a warning in the logs.
    pub(crate) fn is_protocol_error(&self) -> bool {
        !self.is_retryable() && !matches!(self, ConnectionError::LocalClose)
    }
}

/// A finished handshake.
#[derive(Debug)]
pub(crate) struct Established {
    /// What the peer announced.
    pub(crate) peer: PeerInfo,
    /// Bytes read past the handshake (the first frames).
    leftover: BytesMut,
    /// CURVE's MESSAGE codec: every frame goes through it.
    curve: Option<CurveCodec>,
}

/// Runs greeting and mechanism over `stream` until `deadline` (fixed when the
/// connection began: what the peer sends never moves it); returns the peer and any
/// bytes read past the handshake. A server's `guard` is asked before costly steps.
pub(crate) async fn handshake(
    stream: &mut Stream,
    config: HandshakeConfig,
    deadline: Instant,
    peer_address: &str,
    guard: Option<Guard>,
) -> Result<Established, ConnectionError> {
    let mut hs = Handshake::new(config).with_peer_address(peer_address);
    if let Some(guard) = guard {
        hs = hs.with_guard(guard);
    }
    let mut input = BytesMut::with_capacity(FIRST_READ);
    let exchange = async {
        loop {
            // Input first, then everything it made us want to say, then wait for more.
            let done = match hs.handle_input(&mut input) {
                Ok(done) => done,
                Err(e) => {
                    // An ERROR command for the peer (a refusal) goes out first.
                    if let Some(out) = hs.take_output() {
                        let _ = stream.write_all(&out).await;
                    }
                    return Err(e.into());
                }
            };
            while let Some(out) = hs.take_output() {
                stream.write_all(&out).await?;
            }
            if let Some(peer) = done {
                return Ok(peer);
            }
            if stream.read_buf(&mut input).await? == 0 {
                return Err(hs.peer_closed().into());
            }
        }
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(Ok(peer)) => Ok(Established {
            peer,
            leftover: input,
            curve: hs.take_codec(),
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(HandshakeError::Timeout.into()),
    }
}

/// Most bytes read and thrown away after an ERROR, and for how long.
const DRAIN_AFTER_ERROR: (usize, Duration) = (64 << 10, Duration::from_secs(1));

/// Closes our side after an ERROR was written, and reads what the peer had already
/// sent until it closes too: a socket closed with unread input sends RST instead of
/// FIN, and an RST can destroy the ERROR before the peer reads it (libzmq then
/// reports a reset instead of the refusal). Bounded by [`DRAIN_AFTER_ERROR`]. Called after the failure was logged and
/// reported, so nobody waits for it to know why.
pub(crate) async fn close_after_error(stream: &mut Stream) {
    let _ = stream.shutdown().await;
    let (max_bytes, max_time) = DRAIN_AFTER_ERROR;
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    let drain = async {
        while drained < max_bytes {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(max_time, drain).await;
}

/// Runs a connection after its handshake until it ends; returns why it ended.
/// `connection` is what the connection core enforces (message size, heartbeats);
/// after `close`, queued output still goes for `linger`.
pub(crate) async fn run(
    stream: Stream,
    established: Established,
    connection: ConnectionConfig,
    linger: Duration,
    pipe: Arc<Pipe>,
    delivery: Delivery,
    close: CancellationToken,
) -> ConnectionError {
    let (read, write) = stream.into_split();
    // The read half likewise: here while the engine has bytes to decode, lent to the
    // socket's `recv` while it has none (see `direct_read`).
    let mut read = Some(read);
    // The write half is at home here while there is anything to write, and lent to
    // the pipe while there is not, so that a send may write directly (see
    // `direct_write`); whatever way the connection ends, it comes home to be dropped.
    let mut write = Some(write);
    let lender = Lender::unique();
    let _home = ReclaimOnDrop {
        pipe: &pipe,
        inbound: &delivery.inbound,
        lender,
    };
    // Only a socket that hands each message to the application as it comes may
    // read for the engine: a ROUTER's arrivals, departures and pauses and a PUB's
    // subscriptions are the engine's to deliver.
    let lends_reader = delivery.prefix.is_none() && delivery.subscribers.is_none();
    // While the reader is lent: when to check that somebody reads, and the count of
    // reads seen at the last check.
    let mut lent_check: Option<Instant> = None;
    let mut reads_seen = 0;
    // Taken back unasked, or returned: read once (what waits, if anything) before
    // lending again.
    let mut probe = false;
    // Our reads in a row of at most SMALL_READ bytes, and how many it takes to
    // lend the reader: more once a lent reader gave back part of a large frame.
    let mut small_reads: u32 = 1;
    let mut reads_to_lend = 1;
    let mut conn = Connection::new(
        connection,
        established.peer.version,
        established.curve,
        crate::clock::now(),
    );
    // Bytes read and not yet decoded, and whether new ones came since the last pass.
    let mut input = established.leftover;
    let mut undecoded = true;
    let mut plan = ReadPlan::new(
        tokio::runtime::Handle::current().runtime_flavor() == RuntimeFlavor::CurrentThread,
    );
    let mut buffers = ReadBuffers::new();
    // Decoded messages the socket has not taken yet (its queue is full).
    let mut batch: Vec<Inbound> = Vec::new();
    // False once the socket is gone: nothing more is read, queued output still goes.
    let mut reading = true;
    // What the socket queued, drained from the pipe and not yet encoded; encoded
    // bytes not yet written. Both grow with traffic; an idle connection holds none.
    let mut outbox: VecDeque<Outbound> = VecDeque::new();
    let mut out = WireQueue::new();
    let mut pipe_ready = true;
    // Messages in the last drain of the pipe: a writer is lent with a direct
    // write's credit only after a batch of at most one.
    let mut last_batch = 0;
    // Polled with a waker comparison and `is_cancelled` per turn of the loop, not
    // tokio-util's future (see `cancel_watch`).
    let mut cancelled = CancelWatch::new(close);
    // The connection's next deadline, or the end of the linger period.
    let mut linger_until: Option<Instant> = None;
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    let mut timer_at: Option<Instant> = None;

    loop {
        if pipe.subscriptions_lost() {
            return ConnectionError::SubscriptionsLost;
        }
        let paused = delivery.gate.is_paused();
        // Input: decode what is buffered while the socket takes it.
        if undecoded && reading && batch.is_empty() && !paused {
            undecoded = false;
            match decode(&mut conn, &mut input, &delivery, &mut batch) {
                Ok(0) => {}
                // A reply is likely next: worth a direct write.
                Ok(_) => pipe.grant_credit(),
                Err(fault) => return fault.into(),
            }
            match delivery.inbound.try_push(&mut batch) {
                Pushed::All | Pushed::Full => {}
                Pushed::Closed => reading = false,
            }
        }
        conn.set_listening(reading && batch.is_empty() && !paused);

        // Output: what the socket queued, then what the connection has to say.
        let closing = linger_until.is_some() || pipe.is_closed();
        let room_to_encode = |out: &WireQueue| out.len() < WRITE_CHUNK && out.copied() < COPY_CHUNK;
        if outbox.is_empty() && room_to_encode(&out) && (pipe_ready || closing) {
            // The writer first: what a direct write left goes before what is queued.
            take_back(&pipe, lender, &mut write, &mut out);
            // Messages, not queue entries: a framed batch is one entry.
            last_batch = pipe.drain_to_engine(&mut outbox, conn.frames_in_clear());
            pipe_ready = false;
        }
        while room_to_encode(&out) {
            let Some(item) = outbox.pop_front() else {
                break;
            };
            let encoded = match item {
                Outbound::Message(msg) => conn.send_message(&msg, &mut out),
                Outbound::Inline(body) => conn.send_one_frame(body.bytes(), &mut out),
                Outbound::Framed(batch) => send_framed(&mut conn, batch, &mut out),
                Outbound::Subscribe(topic) => conn.send_subscription(true, &topic, &mut out),
                Outbound::Cancel(topic) => conn.send_subscription(false, &topic, &mut out),
            };
            if let Err(fault) = encoded {
                return fault.into();
            }
        }
        if conn.wants_transmit() {
            take_back(&pipe, lender, &mut write, &mut out);
            if let Err(fault) = conn.poll_transmit(&mut out) {
                return fault.into();
            }
        }
        if closing && outbox.is_empty() && out.is_empty() {
            if let Some(write) = write.as_mut() {
                let _ = write.shutdown().await;
            }
            return ConnectionError::LocalClose;
        }
        if outbox.is_empty() && out.is_empty() && conn.frames_in_clear() {
            if let Some(half) = write.take() {
                write = pipe.lend(half, lender, last_batch <= 1);
            }
        }

        let may_read = reading && batch.is_empty() && (!paused || input.len() < READ_CHUNK);
        if read.is_some()
            && lends_reader
            && may_read
            && !paused
            && !probe
            && !closing
            && input.is_empty()
            && conn.frames_in_clear()
            && !conn.assembling()
            && conn.poll_timeout().is_none()
            && small_reads >= reads_to_lend
            && !delivery.inbound.has_lent_reader()
        {
            lend_reader(&mut read, &mut input, &delivery, &conn, &pipe, lender);
            if read.is_none() {
                reads_seen = delivery.inbound.direct_reads();
                lent_check = Some(Instant::now() + LENT_CHECK);
            }
        }
        if read.is_some() {
            lent_check = None;
        }

        // Time: the earliest of the connection's deadline, the linger's end and the
        // lent reader's check.
        let deadline = [
            conn.poll_timeout().map(Instant::from_std),
            linger_until,
            lent_check,
        ]
        .into_iter()
        .flatten()
        .min();
        if deadline != timer_at {
            timer_at = deadline;
            if let Some(at) = deadline {
                timer.as_mut().reset(at);
            }
        }

        let missing = conn.frame_missing_bytes(&input).unwrap_or(0);
        if plan.is_quiet(input.len(), missing) {
            // Not behind the peer: no spare buffers needed.
            buffers.release();
        }
        if paused {
            // Nothing is decoded until the socket resumes us; reading goes on up to
            // one chunk ahead, only to notice a peer that leaves meanwhile (a paused
            // connection would otherwise hold its routing id until resumed).
            if input.len() < READ_CHUNK {
                input.reserve(READ_CHUNK - input.len());
            }
        } else if reading && batch.is_empty() && read.is_some() {
            // Only when a read may follow (not while the reader, with its buffer,
            // is lent): `input` then holds the start of the frame being read, if
            // any (whole ones were decoded).
            let room = input.capacity() - input.len();
            if let Some(additional) = plan.room_to_make(input.len(), room, missing) {
                buffers.make_room(&mut input, additional);
            }
        }
        let room = input.capacity() - input.len();
        // In a fixed order: no random start to draw, and a branch that is ready
        // spares polling those after it. The write first, then the read (what wakes
        // most connections): bytes waiting go out before more come in. Neither holds
        // the rest back for long: a write or a read that stays ready gives way once
        // the task's cooperative budget is spent (tokio's sockets take from it), a
        // write sooner when the kernel's buffer fills.
        tokio::select! {
            biased;
            written = write_queued(&mut write, &out), if !out.is_empty() => match written {
                Ok(n) => out.advance(n),
                Err(e) => return e.into(),
            },
            n = read_some(&mut read, &mut input, probe), if may_read && read.is_some() => match n {
                // Nothing waited: the reader may be lent again.
                Ok(None) => probe = false,
                Ok(Some(0)) => return ConnectionError::Closed,
                Ok(Some(n)) => {
                    probe = false;
                    small_reads = if n <= SMALL_READ {
                        small_reads.saturating_add(1)
                    } else {
                        0
                    };
                    conn.on_input();
                    undecoded = true;
                    if plan.after_read(n, room, paused) == AfterRead::Yield {
                        tokio::task::yield_now().await;
                    }
                }
                Err(e) => return e.into(),
            },
            pushed = delivery.inbound.push(&mut batch), if reading && !batch.is_empty() => {
                if pushed.is_err() {
                    // The socket is gone; it cancels `close`, and what is queued
                    // still goes out for the linger period.
                    reading = false;
                }
                undecoded = true;
            }
            () = delivery.gate.opened(), if paused && reading => undecoded = true,
            () = delivery.inbound.reader_returned(), if read.is_none() => {
                if take_reader_back(&delivery, lender, &mut read, &mut input) {
                    conn.on_input();
                    undecoded = true;
                    if conn.frame_missing_bytes(&input).is_some() {
                        // Part of a frame: large messages, or a stream.
                        reads_to_lend = LENT_AGAIN_AFTER;
                    }
                }
                // Returned with the end of the stream or an error, which our own
                // read meets, or with a stream's large read: before lending again,
                // a read of ours, and a small one.
                probe = true;
                small_reads = 0;
            }
            () = pipe.wait_for_messages(), if !pipe_ready => pipe_ready = true,
            () = &mut timer, if timer_at.is_some() => {
                timer_at = None;
                let now = Instant::now();
                if lent_check.is_some_and(|at| now >= at) {
                    let reads = delivery.inbound.direct_reads();
                    if reads == reads_seen {
                        // Nobody read since the last look: see for ourselves.
                        take_reader_back(&delivery, lender, &mut read, &mut input);
                        probe = true;
                        undecoded = true;
                    }
                    reads_seen = reads;
                    lent_check = read.is_none().then(|| now + LENT_CHECK);
                }
                if linger_until.is_some_and(|end| now >= end) {
                    return ConnectionError::LocalClose;
                }
                if let Err(fault) = conn.handle_timeout(crate::clock::now()) {
                    return fault.into();
                }
            }
            () = &mut cancelled, if linger_until.is_none() => {
                linger_until = Some(Instant::now() + linger);
            }
        }
    }
}

/// Queues a batch its senders framed: as it is on a connection in the clear (what
/// it is made for), message by message otherwise.
#[inline(never)]
fn send_framed(
    conn: &mut Connection,
    batch: FramedBatch,
    out: &mut WireQueue,
) -> Result<(), Fault> {
    if conn.frames_in_clear() {
        out.push_shared(batch.into_frames());
        return Ok(());
    }
    batch
        .into_messages()
        .try_for_each(|msg| conn.send_message(&msg, out))
}

/// Takes the write half back from the pipe if it is lent, and queues first the
/// bytes a direct write left.
fn take_back(pipe: &Pipe, lender: Lender, write: &mut Option<WriteHalf>, out: &mut WireQueue) {
    if write.is_some() {
        return;
    }
    if let Some((half, unwritten)) = pipe.reclaim(lender) {
        *write = Some(half);
        if let Some(bytes) = unwritten {
            debug_assert!(
                out.is_empty(),
                "nothing is encoded while the writer is lent"
            );
            out.push_shared(bytes);
        }
    }
}

/// Lends the read half to the socket, with the (empty) input buffer; keeps both
/// when the socket has another connection's.
fn lend_reader(
    read: &mut Option<ReadHalf>,
    input: &mut BytesMut,
    delivery: &Delivery,
    conn: &Connection,
    pipe: &Arc<Pipe>,
    lender: Lender,
) {
    let Some(half) = read.take() else {
        return;
    };
    let lending = Lending {
        lender,
        peer: delivery.peer,
        connection: delivery.connection,
        max_message_size: conn.max_message_size(),
        pipe: pipe.clone(),
    };
    let reader = LentReader::new(half, std::mem::take(input), lending);
    if let Err(refused) = delivery.inbound.lend(reader) {
        let (half, buffer) = refused.into_parts();
        *read = Some(half);
        *input = buffer;
    }
}

/// Takes the lent read half back, with the bytes it read and left for us to
/// decode (first, before anything read later); whether it brought any.
fn take_reader_back(
    delivery: &Delivery,
    lender: Lender,
    read: &mut Option<ReadHalf>,
    input: &mut BytesMut,
) -> bool {
    let Some(reader) = delivery.inbound.reclaim(lender) else {
        return false;
    };
    let (half, buffer) = reader.into_parts();
    debug_assert!(input.is_empty(), "nothing is read while the reader is lent");
    *read = Some(half);
    *input = buffer;
    !input.is_empty()
}

/// One read into `input`; with `probe`, `None` when nothing waits instead of
/// waiting for it.
async fn read_some(
    read: &mut Option<ReadHalf>,
    input: &mut BytesMut,
    probe: bool,
) -> io::Result<Option<usize>> {
    let Some(half) = read.as_mut() else {
        return Ok(None);
    };
    std::future::poll_fn(|cx| {
        match tokio_util::io::poll_read_buf(std::pin::Pin::new(&mut *half), cx, input) {
            Poll::Pending if probe => Poll::Ready(Ok(None)),
            polled => polled.map(|read| read.map(Some)),
        }
    })
    .await
}

/// Takes the lent halves back from the pipe and the socket when the engine ends.
struct ReclaimOnDrop<'a> {
    pipe: &'a Pipe,
    inbound: &'a InboundQueue,
    lender: Lender,
}

impl Drop for ReclaimOnDrop<'_> {
    fn drop(&mut self) {
        drop(self.pipe.reclaim(self.lender));
        drop(self.inbound.reclaim(self.lender));
    }
}

/// [`write_some`] through the write half, which is at home whenever there is
/// something to write.
async fn write_queued(write: &mut Option<WriteHalf>, out: &WireQueue) -> io::Result<usize> {
    match write {
        Some(write) => write_some(write, out).await,
        None => Err(io::Error::other("the write half is lent while bytes wait")),
    }
}

/// Decodes every event buffered in `input` into `batch`, stopping early when the
/// socket pauses the peer; returns how many messages it decoded.
fn decode(
    conn: &mut Connection,
    input: &mut BytesMut,
    delivery: &Delivery,
    batch: &mut Vec<Inbound>,
) -> Result<usize, Fault> {
    if input.is_empty() {
        return Ok(0);
    }
    let now = crate::clock::now();
    let mut messages = 0;
    while let Some(event) = conn.poll_event(input, now)? {
        match event {
            Event::Message(msg) => {
                messages += 1;
                delivery.message(msg, batch);
                if delivery.gate.is_paused() {
                    break;
                }
            }
            Event::Subscribe(topic) => delivery.subscription(true, topic, batch),
            Event::Cancel(topic) => delivery.subscription(false, topic, batch),
        }
    }
    Ok(messages)
}

/// One write of what `out` holds (`writev` when it is in several pieces); returns
/// how many bytes went.
///
/// The slices are gathered anew at each poll, on the stack: held across an
/// `.await` they would live in every connection's task (8 KiB each, most of an idle
/// connection's memory).
async fn write_some<W: AsyncWrite + Unpin>(write: &mut W, out: &WireQueue) -> io::Result<usize> {
    let written = std::future::poll_fn(|cx| {
        out.with_slices(|slices| {
            let write = std::pin::Pin::new(&mut *write);
            match slices {
                [one] => write.poll_write(cx, one),
                _ => write.poll_write_vectored(cx, slices),
            }
        })
    })
    .await?;
    if written == 0 {
        return Err(io::ErrorKind::WriteZero.into());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::Message;

    #[tokio::test]
    async fn write_some_delivers_everything_through_a_small_pipe() {
        let mut msg = Message::new();
        for size in [1, 3 * 8192, 2, 8192] {
            msg.push_back(Bytes::from(vec![size as u8; size]));
        }
        let mut out = WireQueue::new();
        for _ in 0..20 {
            out.push_message(&msg);
        }
        // Written whole into memory, then through a small pipe: the same bytes.
        let mut copy = WireQueue::new();
        for _ in 0..20 {
            copy.push_message(&msg);
        }
        let mut expected = Vec::new();
        while !copy.is_empty() {
            let n = write_some(&mut expected, &copy).await.unwrap();
            copy.advance(n);
        }
        // A 1 KiB duplex forces many partial writes.
        let (mut near, mut far) = tokio::io::duplex(1024);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            far.read_to_end(&mut got).await.unwrap();
            got
        });
        while !out.is_empty() {
            let n = write_some(&mut near, &out).await.unwrap();
            out.advance(n);
        }
        drop(near);
        let got = reader.await.unwrap();
        assert!(
            got[..] == expected[..],
            "{} bytes arrived, {} expected",
            got.len(),
            expected.len()
        );
    }
}
