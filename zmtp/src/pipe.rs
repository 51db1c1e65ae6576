//! [`Pipe`]: the bounded outbound queue of one peer.
//!
//! The socket pushes messages; the peer's engine drains *all* of them in one swap
//! under the lock and encodes them before a single write, so a burst of sends costs one
//! wake-up and one syscall, not one per message. The queue is bounded by the send
//! high-water mark in messages and, when set, by a limit in bytes: a full pipe refuses
//! the push, and the socket decides whether to wait (DEALER, REQ, PUSH) or drop
//! (ROUTER, PUB), as libzmq does at its high-water mark.
//!
//! Bytes are counted as the frame bodies plus a fixed cost per message and per frame
//! ([`message_cost`]), so a message of 65 000 empty frames is not free. An empty pipe
//! takes one message whatever its size, so a message larger than the limit still gets
//! through, one at a time. The bytes are released when the engine drains the pipe;
//! what the engine holds while it writes is one drained batch on top of the pipe.
//!
//! The pipes of one endpoint may also share [`SendBudget`]s: the bytes of messages
//! queued for all its peers together, and for all the peers of one source address.
//! Past a budget, a pipe that already holds something refuses more, while an empty
//! one still takes a message: peers that read keep getting theirs when peers that do
//! not have used up the budgets, and one address cannot use up the whole.

use std::collections::VecDeque;
use std::mem::size_of;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::direct_write::{Lender, LentWriter, Offered};
use crate::framed_batch::FramedBatch;
use crate::inline_body::{this_thread, InlineBody};
use crate::send_budget::SendBudget;
use crate::signal::Signal;
use crate::transport::WriteHalf;
use crate::Message;

/// What a socket queues for one peer: messages, and (from SUB and XSUB) the
/// subscriptions that the peer's engine writes as commands or as legacy messages,
/// depending on the ZMTP version the peer announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outbound {
    Message(Message),
    Subscribe(Bytes),
    Cancel(Bytes),
    /// A one-frame message whose small body was copied in: it came from another
    /// thread than its connection's (see [`inline_body`](crate::inline_body)).
    Inline(InlineBody),
    /// Small one-frame messages framed by a sender on another thread than their
    /// connection's, whose frames go in the clear (see
    /// [`framed_batch`](crate::framed_batch)).
    Framed(FramedBatch),
}

impl Outbound {
    fn is_message(&self) -> bool {
        matches!(
            self,
            Outbound::Message(_) | Outbound::Inline(_) | Outbound::Framed(_)
        )
    }

    /// What the item counts for against the high-water mark in messages.
    fn count(&self) -> usize {
        match self {
            Outbound::Framed(batch) => batch.messages(),
            _ => 1,
        }
    }
}

/// What one queued item costs against the byte limit: its bodies, its slot in the
/// queue and one [`Bytes`] handle per frame (a message's first frames sit inline in
/// its slot; counting them too keeps the rule simple and errs on the safe side).
fn item_cost(item: &Outbound) -> usize {
    match item {
        Outbound::Message(msg) => message_cost(msg),
        // As the one-frame message it was.
        Outbound::Inline(body) => size_of::<Outbound>() + size_of::<Bytes>() + body.bytes().len(),
        Outbound::Framed(batch) => batch.cost(),
        Outbound::Subscribe(topic) | Outbound::Cancel(topic) => subscription_cost(topic),
    }
}

/// [`item_cost`] of a message.
fn message_cost(msg: &Message) -> usize {
    size_of::<Outbound>() + msg.queued_bytes()
}

fn subscription_cost(topic: &Bytes) -> usize {
    size_of::<Outbound>() + topic.len()
}

/// The queue and what it costs, under one lock.
#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Outbound>,
    /// The messages and subscription changes in `items` (a framed batch holds
    /// many messages): what the high-water mark counts.
    count: usize,
    /// The [`item_cost`] of everything in `items`.
    bytes: usize,
    /// The part of `bytes` that is subscription changes.
    subscription_bytes: usize,
    /// The smallest cost refused since the last drain (0: none): the drain must wake
    /// the writers, and [`Pipe::has_room`] says no until a message of that cost fits.
    wanted: usize,
    /// The engine's write half while it has nothing to write (see
    /// [`direct_write`](crate::direct_write)).
    lent: Option<LentWriter>,
}

impl Queue {
    /// Someone found no room for an item costing `cost`.
    fn want(&mut self, cost: usize) {
        self.wanted = match self.wanted {
            0 => cost,
            wanted => wanted.min(cost),
        };
    }

    /// Recounts the costs after items were removed from the middle.
    fn recount(&mut self) {
        self.count = self.items.iter().map(Outbound::count).sum();
        self.bytes = self.items.iter().map(item_cost).sum();
        self.subscription_bytes = self
            .items
            .iter()
            .filter(|item| !item.is_message())
            .map(item_cost)
            .sum();
    }
}

/// The outbound queue of one peer (or of one connecting endpoint, which keeps it
/// across reconnects so messages queue while the peer is away).
#[derive(Debug)]
pub(crate) struct Pipe {
    queue: Mutex<Queue>,
    hwm: usize,
    /// `usize::MAX` when there is no byte limit.
    hwm_bytes: usize,
    engine_wake: Signal,
    writable: Arc<Notify>,
    closed: AtomicBool,
    /// Subscription changes were dropped (see [`Pipe::push_subscription`]): the
    /// peer's view of our subscriptions is stale until its connection starts again.
    subscriptions_lost: AtomicBool,
    /// Whether a writer is lent: the engine grants credits without taking the lock
    /// when none is.
    lent: AtomicBool,
    /// The thread its connection last drained it on ([`this_thread`]; 0: none, or
    /// not a connection's engine): small messages sent from other threads travel
    /// inline, or framed.
    engine_thread: AtomicUsize,
    /// Whether that connection's frames go in the clear: small messages from other
    /// threads are then framed by their sender. Every connection of a pipe has its
    /// socket's mechanism, so this never changes once set; should it, the engine
    /// seals what it finds framed message by message (see `engine::send_framed`).
    frames_in_clear: AtomicBool,
    /// What this pipe shares with others (the endpoint's, its address's).
    budgets: Vec<Arc<SendBudget>>,
}

impl Pipe {
    /// A pipe holding at most `hwm` messages (0: unbounded) and, when `hwm_bytes` is
    /// given, at most that many bytes (counted by [`message_cost`]; an empty pipe takes
    /// one message of any size). `writable` is the socket's "some pipe has room again"
    /// signal.
    #[cfg(test)]
    pub(crate) fn new(hwm: usize, hwm_bytes: Option<usize>, writable: Arc<Notify>) -> Arc<Pipe> {
        Pipe::sharing(hwm, hwm_bytes, Vec::new(), writable)
    }

    /// A pipe as the tests' `Pipe::new` makes it (`hwm` messages, 0: unbounded;
    /// `hwm_bytes` bytes when given), also within `budgets`, which other pipes share.
    pub(crate) fn sharing(
        hwm: usize,
        hwm_bytes: Option<usize>,
        budgets: Vec<Arc<SendBudget>>,
        writable: Arc<Notify>,
    ) -> Arc<Pipe> {
        Arc::new(Pipe {
            queue: Mutex::new(Queue::default()),
            hwm: if hwm == 0 { usize::MAX } else { hwm },
            hwm_bytes: hwm_bytes.unwrap_or(usize::MAX),
            engine_wake: Signal::default(),
            writable,
            closed: AtomicBool::new(false),
            subscriptions_lost: AtomicBool::new(false),
            lent: AtomicBool::new(false),
            engine_thread: AtomicUsize::new(0),
            frames_in_clear: AtomicBool::new(false),
            budgets,
        })
    }

    /// Gives the budgets back what `q`'s messages cost, before they leave it; true
    /// when somebody was refused for one of them since.
    fn release_budget(&self, q: &Queue) -> bool {
        let bytes = q.bytes - q.subscription_bytes;
        self.budgets
            .iter()
            .fold(false, |starved, b| b.release(bytes) | starved)
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue half-updated
        // (push/swap and their counts are updated together before anything can
        // panic), so a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an item costing `cost` fits: below the message mark, and within the
    /// byte limit and the shared budget unless the pipe is empty.
    fn fits(&self, q: &Queue, cost: usize) -> bool {
        q.count < self.hwm
            && (q.items.is_empty()
                || (q.bytes.saturating_add(cost) <= self.hwm_bytes
                    && self.budgets.iter().all(|b| b.fits(cost))))
    }

    /// Queues `msg`, or hands it back when the pipe is full or closed.
    // Handing the message back (moved, never copied deeply) lets the caller try the
    // next pipe without cloning it.
    #[allow(clippy::result_large_err)]
    pub(crate) fn try_push(&self, msg: Message) -> Result<(), Message> {
        if self.is_closed() {
            return Err(msg);
        }
        let cost = message_cost(&msg);
        let mut q = self.lock();
        if !self.fits(&q, cost) {
            q.want(cost);
            return Err(msg);
        }
        let was_empty = q.items.is_empty();
        let msg = match (was_empty, q.lent.as_mut()) {
            (true, Some(writer)) => match writer.offer(msg) {
                Offered::Written => return Ok(()),
                Offered::Partly => {
                    drop(q);
                    self.engine_wake.raise();
                    return Ok(());
                }
                Offered::Declined(msg) => msg,
            },
            _ => msg,
        };
        if self.sent_from_elsewhere() && self.queue_copy(&mut q, &msg, cost) {
            self.queued(q, cost, was_empty);
            // Dropped here, out of the lock, on the sender's thread.
            drop(msg);
            return Ok(());
        }
        q.items.push_back(Outbound::Message(msg));
        self.queued(q, cost, was_empty);
        Ok(())
    }

    /// Queues a copy of `msg` (costing `cost`) when it is small enough: framed into
    /// the last batch on a connection in the clear, its body inline on a sealed one.
    /// False when `msg` must go as it is.
    #[inline]
    fn queue_copy(&self, q: &mut Queue, msg: &Message, cost: usize) -> bool {
        if self.frames_in_clear.load(Ordering::Relaxed) {
            let Some(body) = FramedBatch::body_of(msg) else {
                return false;
            };
            match q.items.back_mut() {
                Some(Outbound::Framed(batch)) if batch.has_room_for(body) => batch.push(body, cost),
                _ => q
                    .items
                    .push_back(Outbound::Framed(FramedBatch::first(body, cost))),
            }
            return true;
        }
        match InlineBody::copy_of(msg) {
            Some(body) => {
                q.items.push_back(Outbound::Inline(body));
                true
            }
            None => false,
        }
    }

    /// Whether this thread is not the one the connection last ran on (see
    /// [`inline_body`](crate::inline_body)).
    #[inline]
    fn sent_from_elsewhere(&self) -> bool {
        let engine_thread = self.engine_thread.load(Ordering::Relaxed);
        engine_thread != 0 && engine_thread != this_thread()
    }

    /// A message costing `cost` was queued: counts it, lets go of the lock and wakes
    /// the engine if the queue was empty.
    #[inline(always)]
    fn queued(&self, mut q: MutexGuard<'_, Queue>, cost: usize, was_empty: bool) {
        q.count += 1;
        q.bytes += cost;
        for budget in &self.budgets {
            budget.add(cost);
        }
        drop(q);
        if was_empty {
            // Remembered if the engine is not waiting yet: no lost wake-up.
            self.engine_wake.raise();
        }
    }

    /// Whether [`Pipe::try_push`] would take `msg` now.
    pub(crate) fn would_take(&self, msg: &Message) -> bool {
        if self.is_closed() {
            return false;
        }
        let mut q = self.lock();
        let cost = message_cost(msg);
        let fits = self.fits(&q, cost);
        if !fits {
            q.want(cost);
        }
        fits
    }

    /// Queues a subscription change past the high-water marks: losing one would leave
    /// the publisher filtering wrongly. Refused only when closed. Their bytes count,
    /// so messages queued behind them find less room.
    ///
    /// With a byte limit, the changes waiting in the pipe may not pass that limit on
    /// their own (a peer that does not read while changes keep coming, e.g. an XSUB
    /// forwarding its subscribers' churn): the one that would is dropped with all the
    /// others waiting, and the pipe is marked ([`Pipe::subscriptions_lost`]). Its
    /// engine then ends the connection, and the next connection starts with the full
    /// current set ([`Pipe::replace_subscriptions`]), so the queue stays bounded and
    /// nothing stays wrong. (libzmq drops subscriptions at the high-water mark, and
    /// the publisher filters wrongly from then on.)
    pub(crate) fn push_subscription(&self, item: Outbound) -> bool {
        if self.is_closed() {
            return false;
        }
        let cost = item_cost(&item);
        let mut q = self.lock();
        if q.subscription_bytes.saturating_add(cost) > self.hwm_bytes {
            q.items.retain(Outbound::is_message);
            q.recount();
            self.subscriptions_lost.store(true, Ordering::Release);
            drop(q);
            self.engine_wake.raise();
            return true;
        }
        let was_empty = q.items.is_empty();
        q.items.push_back(item);
        q.count += 1;
        q.bytes += cost;
        q.subscription_bytes += cost;
        drop(q);
        if was_empty {
            self.engine_wake.raise();
        }
        true
    }

    /// A new connection starts: subscription changes queued for the old one give way
    /// to the full current set, queued ahead of any messages (what libzmq's SUB and
    /// XSUB resend after a reconnect). The set passes the limits: it is what the
    /// socket holds, not a backlog.
    pub(crate) fn replace_subscriptions<'a>(&self, topics: impl Iterator<Item = &'a Bytes>) {
        let mut q = self.lock();
        self.subscriptions_lost.store(false, Ordering::Release);
        q.items.retain(Outbound::is_message);
        let mut fresh: VecDeque<Outbound> = topics.cloned().map(Outbound::Subscribe).collect();
        let had_any = !fresh.is_empty();
        fresh.append(&mut q.items);
        q.items = fresh;
        q.recount();
        drop(q);
        if had_any {
            self.engine_wake.raise();
        }
    }

    /// Whether subscription changes were dropped since the connection started (see
    /// [`Pipe::push_subscription`]): the connection must end, so that the next one
    /// starts with the full set.
    pub(crate) fn subscriptions_lost(&self) -> bool {
        self.subscriptions_lost.load(Ordering::Acquire)
    }

    /// Number of messages and subscription changes queued.
    pub(crate) fn len(&self) -> usize {
        self.lock().count
    }

    /// Whether the pipe is below both marks and, when a message was refused since
    /// the last drain, has room for one of its cost: a message pushed now would be
    /// taken unless it is larger than that.
    pub(crate) fn has_room(&self) -> bool {
        if self.is_closed() {
            return false;
        }
        let mut q = self.lock();
        let room = self.fits(&q, q.wanted.max(1));
        if !room {
            q.want(1);
        }
        room
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().items.is_empty()
    }

    /// [`Pipe::drain`] by the connection's engine, which notes the thread it runs
    /// on and whether its frames go in the clear: messages sent from other threads
    /// may then travel inline, or framed.
    pub(crate) fn drain_to_engine(
        &self,
        into: &mut VecDeque<Outbound>,
        frames_in_clear: bool,
    ) -> usize {
        let here = this_thread();
        if self.engine_thread.load(Ordering::Relaxed) != here {
            self.engine_thread.store(here, Ordering::Relaxed);
        }
        if self.frames_in_clear.load(Ordering::Relaxed) != frames_in_clear {
            self.frames_in_clear
                .store(frames_in_clear, Ordering::Relaxed);
        }
        self.drain(into)
    }

    /// Moves everything queued into `into` (which should be empty) and releases its
    /// bytes; wakes the writers when it was full or someone found no room (a message
    /// refused for its size, in a pipe below the byte limit). Returns how many
    /// messages and subscription changes it moved (a framed batch holds many).
    pub(crate) fn drain(&self, into: &mut VecDeque<Outbound>) -> usize {
        let mut q = self.lock();
        let moved = q.count;
        let was_full = q.count >= self.hwm || q.bytes >= self.hwm_bytes;
        let starved = self.release_budget(&q);
        let wake = std::mem::take(&mut q.wanted) > 0 || was_full || starved;
        crate::util::take_all(&mut q.items, into);
        q.count = 0;
        q.bytes = 0;
        q.subscription_bytes = 0;
        drop(q);
        if wake {
            self.writable.notify_waiters();
        }
        moved
    }

    /// Lends `half` while its engine has nothing to write, with one direct write's
    /// credit or not (see [`direct_write`](crate::direct_write)); hands it back when
    /// something is queued already or the pipe is closed.
    pub(crate) fn lend(&self, half: WriteHalf, lender: Lender, credit: bool) -> Option<WriteHalf> {
        let mut q = self.lock();
        if !q.items.is_empty() || self.is_closed() || q.lent.is_some() {
            return Some(half);
        }
        q.lent = Some(LentWriter::new(half, lender, credit));
        self.lent.store(true, Ordering::Release);
        None
    }

    /// Takes back the write half `lender` lent, with the bytes a direct write left
    /// unwritten (they go before anything else); `None` when it lent none.
    pub(crate) fn reclaim(&self, lender: Lender) -> Option<(WriteHalf, Option<Bytes>)> {
        if !self.lent.load(Ordering::Acquire) {
            return None;
        }
        let mut q = self.lock();
        if q.lent.as_ref().map(LentWriter::lender) != Some(lender) {
            return None;
        }
        self.lent.store(false, Ordering::Release);
        q.lent.take().map(LentWriter::into_parts)
    }

    /// The engine read messages from the peer: what the socket sends next is likely
    /// a reply, worth a direct write.
    pub(crate) fn grant_credit(&self) {
        if !self.lent.load(Ordering::Acquire) {
            return;
        }
        if let Some(writer) = self.lock().lent.as_mut() {
            writer.grant_credit();
        }
    }

    /// The bytes a cut-short direct write left, without taking the writer back.
    #[cfg(test)]
    pub(crate) fn lock_lent_unwritten(&self) -> Option<Bytes> {
        self.lock().lent.as_ref().and_then(LentWriter::unwritten)
    }

    /// Waits until something may have been queued.
    /// One task waits at a time: the engine, or an inproc peer's forwarder.
    pub(crate) async fn wait_for_messages(&self) {
        self.engine_wake.wait().await;
    }

    /// Closes the pipe for good: queued messages are dropped, later pushes refused.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let mut q = self.lock();
        self.release_budget(&q);
        q.items.clear();
        q.recount();
        drop(q);
        self.engine_wake.raise();
        self.writable.notify_waiters();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever each item holds, as the message it stands for.
    fn as_messages(item: &Outbound) -> Vec<Message> {
        match item {
            Outbound::Message(msg) => vec![msg.clone()],
            Outbound::Inline(body) => vec![Message::from(body.bytes().to_vec())],
            Outbound::Framed(batch) => batch.clone().into_messages().collect(),
            other => panic!("not a message: {other:?}"),
        }
    }

    #[test]
    fn small_messages_from_another_thread_than_the_engine_travel_inline() {
        let pipe = Pipe::new(100, Some(1 << 20), Arc::new(Notify::new()));
        let sent = [
            Message::from(b"small".to_vec()),
            Message::from(vec![1u8; 4096]),
            Message::from([b"two".to_vec(), b"frames".to_vec()]),
            Message::from(b"shared".to_vec()),
            Message::from(b"last".to_vec()),
        ];
        // The engine has not run yet: nothing goes inline.
        pipe.try_push(sent[0].clone()).unwrap();
        let mut out = VecDeque::new();
        let engine = {
            let pipe = pipe.clone();
            std::thread::spawn(move || {
                let mut out = VecDeque::new();
                pipe.drain_to_engine(&mut out, false);
                out
            })
        };
        let drained = engine.join().unwrap();
        assert_eq!(drained.len(), 1);
        assert!(matches!(drained[0], Outbound::Message(_)));
        let bytes_before = pipe.lock().bytes;
        for (i, msg) in sent.iter().enumerate() {
            // The fourth is still shared with `sent` when queued.
            let queued = if i == 3 {
                msg.clone()
            } else {
                Message::from(msg.iter().map(|f| f.to_vec()).collect::<Vec<_>>())
            };
            pipe.try_push(queued).unwrap();
        }
        let counted = pipe.lock().bytes - bytes_before;
        assert_eq!(counted, sent.iter().map(message_cost).sum::<usize>());
        pipe.drain(&mut out);
        assert!(matches!(out[0], Outbound::Inline(_)));
        assert!(matches!(out[1], Outbound::Message(_)));
        assert!(matches!(out[2], Outbound::Message(_)));
        assert!(matches!(out[3], Outbound::Message(_)));
        assert!(matches!(out[4], Outbound::Inline(_)));
        let received: Vec<Message> = out.iter().flat_map(as_messages).collect();
        assert_eq!(received, sent);
        assert_eq!(out.iter().map(item_cost).sum::<usize>(), counted);
    }

    /// Drains `pipe` on a thread of its own, as a connection's engine whose frames
    /// go in the clear (or not) would: later sends from this thread come from
    /// elsewhere.
    fn drained_by_an_engine_elsewhere(pipe: &Arc<Pipe>, frames_in_clear: bool) {
        let pipe = pipe.clone();
        std::thread::spawn(move || pipe.drain_to_engine(&mut VecDeque::new(), frames_in_clear))
            .join()
            .unwrap();
    }

    #[test]
    fn small_messages_from_another_thread_are_framed_in_order_when_in_the_clear() {
        let pipe = Pipe::new(100, Some(1 << 20), Arc::new(Notify::new()));
        drained_by_an_engine_elsewhere(&pipe, true);
        let shared = Message::from(b"a clone".to_vec());
        let sent = [
            Message::from(b"small".to_vec()),
            shared.clone(),
            Message::from(vec![1u8; 255]),
            Message::from(vec![2u8; 256]),
            Message::from(b"".to_vec()),
            Message::from([b"two".to_vec(), b"frames".to_vec()]),
            Message::from("static"),
        ];
        for msg in &sent {
            pipe.try_push(msg.clone()).unwrap();
        }
        assert_eq!(pipe.len(), sent.len(), "counted as messages, not entries");
        let counted = pipe.lock().bytes;
        assert_eq!(counted, sent.iter().map(message_cost).sum::<usize>());
        let mut out = VecDeque::new();
        pipe.drain(&mut out);
        assert_eq!(pipe.len(), 0);
        let kinds: Vec<&str> = out
            .iter()
            .map(|item| match item {
                Outbound::Framed(_) => "framed",
                Outbound::Message(_) => "message",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["framed", "message", "framed", "message", "framed"]);
        let received: Vec<Message> = out.iter().flat_map(as_messages).collect();
        assert_eq!(received, sent);
        assert_eq!(out.iter().map(item_cost).sum::<usize>(), counted);
    }

    #[test]
    fn framed_messages_count_against_the_high_water_mark_one_by_one() {
        let pipe = Pipe::new(3, None, Arc::new(Notify::new()));
        drained_by_an_engine_elsewhere(&pipe, true);
        for body in ["a", "b", "c"] {
            pipe.try_push(Message::from(body.as_bytes().to_vec()))
                .unwrap();
        }
        assert!(pipe.try_push(Message::from(b"d".to_vec())).is_err());
        assert!(!pipe.has_room());
        // Subscription changes pass the mark; replacing them recounts the queue.
        assert!(pipe.push_subscription(Outbound::Subscribe(Bytes::from_static(b"t"))));
        pipe.replace_subscriptions([Bytes::from_static(b"t")].iter());
        assert_eq!(
            pipe.len(),
            4,
            "three messages in one batch and a subscription"
        );
        let mut out = VecDeque::new();
        pipe.drain(&mut out);
        assert!(pipe.has_room());
        assert_eq!(out.len(), 2);
        assert!(matches!(&out[1], Outbound::Framed(batch) if batch.messages() == 3));
    }

    #[test]
    fn many_small_messages_fill_batch_after_batch() {
        let pipe = Pipe::new(0, None, Arc::new(Notify::new()));
        drained_by_an_engine_elsewhere(&pipe, true);
        let sent: Vec<Message> = (0..2000u32)
            .map(|i| Message::from(i.to_be_bytes().repeat(1 + i as usize % 60)))
            .collect();
        for msg in &sent {
            pipe.try_push(msg.clone()).unwrap();
        }
        let mut out = VecDeque::new();
        assert_eq!(pipe.drain(&mut out), sent.len(), "messages, not entries");
        assert!(out.len() > 1, "more than one batch");
        assert!(out.iter().all(|item| matches!(item, Outbound::Framed(_))));
        let received: Vec<Message> = out.iter().flat_map(as_messages).collect();
        assert_eq!(received, sent);
    }

    #[test]
    fn sealed_connections_get_inline_bodies_not_frames() {
        let pipe = Pipe::new(100, None, Arc::new(Notify::new()));
        drained_by_an_engine_elsewhere(&pipe, false);
        pipe.try_push(Message::from(b"small".to_vec())).unwrap();
        let mut out = VecDeque::new();
        pipe.drain(&mut out);
        assert!(matches!(&out.make_contiguous()[..], [Outbound::Inline(_)]));
    }

    #[test]
    fn on_the_engines_own_thread_messages_go_as_they_are() {
        let pipe = Pipe::new(100, None, Arc::new(Notify::new()));
        let mut out = VecDeque::new();
        pipe.drain_to_engine(&mut out, false);
        pipe.try_push(Message::from(b"small".to_vec())).unwrap();
        pipe.drain_to_engine(&mut out, false);
        assert!(matches!(&out.make_contiguous()[..], [Outbound::Message(_)]));
    }

    #[test]
    fn bounded_by_hwm_and_drained_in_one_go() {
        let pipe = Pipe::new(2, None, Arc::new(Notify::new()));
        assert!(pipe.try_push(Message::from("a")).is_ok());
        assert!(pipe.try_push(Message::from("b")).is_ok());
        assert!(pipe.try_push(Message::from("c")).is_err());
        let mut out = VecDeque::new();
        pipe.drain(&mut out);
        assert_eq!(out.len(), 2);
        assert!(pipe.try_push(Message::from("b")).is_ok());
        assert!(pipe.try_push(Message::from("b")).is_ok());
        assert!(
            pipe.push_subscription(Outbound::Subscribe(Bytes::from_static(b"t"))),
            "subscriptions pass a full pipe"
        );
        out.clear();
        pipe.drain(&mut out);
        assert_eq!(out.len(), 3);
        assert!(pipe.try_push(Message::from("c")).is_ok());
        pipe.close();
        assert!(pipe.try_push(Message::from("d")).is_err());
    }

    #[test]
    fn a_new_connection_gets_the_full_subscription_set_first() {
        let pipe = Pipe::new(10, None, Arc::new(Notify::new()));
        let topic = |t: &'static str| Bytes::from_static(t.as_bytes());
        pipe.push_subscription(Outbound::Subscribe(topic("old")));
        pipe.push_subscription(Outbound::Cancel(topic("old")));
        pipe.try_push(Message::from("m")).unwrap();
        pipe.replace_subscriptions([topic("a"), topic("b")].iter());
        let mut out = VecDeque::new();
        pipe.drain(&mut out);
        assert_eq!(
            Vec::from(out),
            [
                Outbound::Subscribe(topic("a")),
                Outbound::Subscribe(topic("b")),
                Outbound::Message(Message::from("m")),
            ]
        );
    }

    #[tokio::test]
    async fn drain_of_a_full_pipe_wakes_writers() {
        let writable = Arc::new(Notify::new());
        let pipe = Pipe::new(1, None, writable.clone());
        pipe.try_push(Message::from("a")).unwrap();
        let waiter = writable.notified();
        tokio::pin!(waiter);
        waiter.as_mut().enable();
        pipe.drain(&mut VecDeque::new());
        tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
            .await
            .expect("woken");
    }

    /// A message of `n` bytes in one frame.
    fn sized(n: usize) -> Message {
        Message::from(vec![0u8; n])
    }

    #[test]
    fn bounded_by_bytes_but_an_empty_pipe_takes_any_message() {
        let limit = 10_000;
        let pipe = Pipe::new(1000, Some(limit), Arc::new(Notify::new()));
        assert!(pipe.try_push(sized(4000)).is_ok());
        assert!(pipe.try_push(sized(4000)).is_ok());
        assert!(pipe.try_push(sized(4000)).is_err(), "would pass the limit");
        assert!(!pipe.has_room(), "no room for what was refused");
        assert!(
            pipe.try_push(sized(100)).is_ok(),
            "below the limit: room for a smaller message"
        );
        let queued = pipe.lock().bytes;
        assert!(queued <= limit && queued > 8100, "counted {queued}");
        let mut out = VecDeque::new();
        pipe.drain(&mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(pipe.lock().bytes, 0, "a drain releases the bytes");
        assert!(
            pipe.try_push(sized(5 * limit)).is_ok(),
            "an empty pipe takes a message larger than the limit"
        );
        assert!(!pipe.has_room());
        assert!(pipe.try_push(sized(1)).is_err(), "but nothing after it");
        out.clear();
        pipe.drain(&mut out);
        assert!(pipe.try_push(sized(1)).is_ok());
    }

    #[test]
    fn empty_frames_are_not_free() {
        let pipe = Pipe::new(0, Some(1 << 20), Arc::new(Notify::new()));
        let empty_frames = || Message::from(vec![Bytes::new(); 65_000]);
        assert!(pipe.try_push(empty_frames()).is_ok());
        assert!(
            pipe.try_push(empty_frames()).is_err(),
            "65 000 empty frames cost more than 1 MiB of queue"
        );
    }

    #[test]
    fn no_byte_limit_is_the_message_mark_alone() {
        let pipe = Pipe::new(3, None, Arc::new(Notify::new()));
        for _ in 0..3 {
            assert!(pipe.try_push(sized(1 << 20)).is_ok());
        }
        assert!(pipe.try_push(sized(1)).is_err());
    }

    #[test]
    fn subscriptions_pass_a_pipe_full_of_bytes() {
        let pipe = Pipe::new(10, Some(100), Arc::new(Notify::new()));
        pipe.try_push(sized(500)).unwrap();
        assert!(pipe.push_subscription(Outbound::Subscribe(Bytes::from_static(b"t"))));
        let mut out = VecDeque::new();
        pipe.drain(&mut out);
        assert_eq!(out.len(), 2);
    }

    #[tokio::test]
    async fn a_drain_wakes_a_writer_refused_for_bytes() {
        let writable = Arc::new(Notify::new());
        // Far below the message mark: only the bytes refuse the second message.
        let pipe = Pipe::new(1000, Some(1000), writable.clone());
        pipe.try_push(sized(600)).unwrap();
        let waiter = writable.notified();
        tokio::pin!(waiter);
        waiter.as_mut().enable();
        assert!(pipe.try_push(sized(600)).is_err());
        pipe.drain(&mut VecDeque::new());
        tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
            .await
            .expect("woken");
        assert!(pipe.try_push(sized(600)).is_ok());
    }

    #[test]
    fn would_take_agrees_with_try_push() {
        let pipe = Pipe::new(1000, Some(1000), Arc::new(Notify::new()));
        assert!(pipe.would_take(&sized(5000)), "empty");
        pipe.try_push(sized(600)).unwrap();
        assert!(!pipe.would_take(&sized(600)));
        assert!(pipe.would_take(&sized(100)));
        pipe.close();
        assert!(!pipe.would_take(&sized(1)));
    }

    #[test]
    fn a_subscription_backlog_past_the_limit_is_dropped_and_flagged() {
        let pipe = Pipe::new(10, Some(1000), Arc::new(Notify::new()));
        let topic = |n: usize| Outbound::Subscribe(Bytes::from(vec![b't'; n]));
        pipe.try_push(Message::from("kept")).unwrap();
        pipe.push_subscription(topic(400));
        pipe.push_subscription(topic(400));
        assert!(!pipe.subscriptions_lost());
        pipe.push_subscription(topic(400));
        assert!(pipe.subscriptions_lost(), "1 200 bytes of changes waiting");
        let mut out = VecDeque::new();
        pipe.drain(&mut out);
        assert_eq!(
            Vec::from(out),
            [Outbound::Message(Message::from("kept"))],
            "the changes are gone, the messages stay"
        );
        let set = [Bytes::from(vec![b's'; 5000])];
        pipe.replace_subscriptions(set.iter());
        assert!(!pipe.subscriptions_lost(), "a new connection, the full set");
        let mut out = VecDeque::new();
        pipe.drain(&mut out);
        assert_eq!(out.len(), 1, "the full set passes the limit");
    }

    #[test]
    fn pipes_sharing_a_budget_refuse_past_it_but_an_empty_one_takes_a_message() {
        let writable = Arc::new(Notify::new());
        let one = message_cost(&Message::from(vec![0u8; 100]));
        let budget = SendBudget::new(3 * one);
        let a = Pipe::sharing(1000, None, vec![budget.clone()], writable.clone());
        let b = Pipe::sharing(1000, None, vec![budget.clone()], writable);
        let msg = || Message::from(vec![0u8; 100]);
        for _ in 0..3 {
            a.try_push(msg()).unwrap();
        }
        assert!(a.try_push(msg()).is_err(), "the budget is used up");
        b.try_push(msg()).expect("an empty pipe takes one message");
        assert!(b.try_push(msg()).is_err());
        assert_eq!(budget.queued(), 4 * one);
        a.drain(&mut VecDeque::new());
        assert_eq!(budget.queued(), one, "a drain gives its bytes back");
        b.try_push(msg()).expect("room again");
        b.close();
        assert_eq!(budget.queued(), 0, "a closed pipe gives its bytes back");
    }
}
