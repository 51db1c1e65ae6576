//! [`Pipe`]: the bounded outbound queue of one peer.
//!
//! The socket pushes messages; the peer's engine drains *all* of them in one swap
//! under the lock and encodes them before a single write, so a burst of sends costs one
//! wake-up and one syscall, not one per message. The queue is bounded by the send
//! high-water mark: a full pipe refuses the push, and the socket decides whether to
//! wait (DEALER, REQ, PUSH) or drop (ROUTER, PUB), as libzmq does.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::Message;

/// What a socket queues for one peer: messages, and (from SUB and XSUB) the
/// subscriptions that the peer's engine writes as commands or as legacy messages,
/// depending on the ZMTP version the peer announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outbound {
    Message(Message),
    Subscribe(Bytes),
    Cancel(Bytes),
}

/// The outbound queue of one peer (or of one connecting endpoint, which keeps it
/// across reconnects so messages queue while the peer is away).
#[derive(Debug)]
pub(crate) struct Pipe {
    queue: Mutex<VecDeque<Outbound>>,
    hwm: usize,
    engine_wake: Notify,
    writable: Arc<Notify>,
    closed: AtomicBool,
}

impl Pipe {
    /// A pipe holding at most `hwm` messages (0: unbounded). `writable` is the socket's
    /// "some pipe has room again" signal.
    pub(crate) fn new(hwm: usize, writable: Arc<Notify>) -> Arc<Pipe> {
        Arc::new(Pipe {
            queue: Mutex::new(VecDeque::new()),
            hwm: if hwm == 0 { usize::MAX } else { hwm },
            engine_wake: Notify::new(),
            writable,
            closed: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Outbound>> {
        // A panic while holding this lock cannot leave the queue half-updated
        // (push/swap are single operations), so a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `msg`, or hands it back when the pipe is full or closed.
    // Handing the message back (136 bytes, moved, never copied deeply) lets the caller
    // try the next pipe without cloning it.
    #[allow(clippy::result_large_err)]
    pub(crate) fn try_push(&self, msg: Message) -> Result<(), Message> {
        if self.is_closed() {
            return Err(msg);
        }
        let mut q = self.lock();
        if q.len() >= self.hwm {
            return Err(msg);
        }
        let was_empty = q.is_empty();
        q.push_back(Outbound::Message(msg));
        drop(q);
        if was_empty {
            // Stores a permit if the engine is not waiting yet: no lost wake-up.
            self.engine_wake.notify_one();
        }
        Ok(())
    }

    /// Queues a subscription change past the high-water mark: they are few (bounded
    /// by the application's own calls, never by what a peer sends) and losing one
    /// would leave the publisher filtering wrongly. Refused only when closed.
    pub(crate) fn push_subscription(&self, item: Outbound) -> bool {
        if self.is_closed() {
            return false;
        }
        let mut q = self.lock();
        let was_empty = q.is_empty();
        q.push_back(item);
        drop(q);
        if was_empty {
            self.engine_wake.notify_one();
        }
        true
    }

    /// A new connection starts: subscription changes queued for the old one give way
    /// to the full current set, queued ahead of any messages (what libzmq's SUB and
    /// XSUB resend after a reconnect).
    pub(crate) fn replace_subscriptions<'a>(&self, topics: impl Iterator<Item = &'a Bytes>) {
        let mut q = self.lock();
        q.retain(|item| matches!(item, Outbound::Message(_)));
        let mut fresh: VecDeque<Outbound> = topics.cloned().map(Outbound::Subscribe).collect();
        if fresh.is_empty() {
            return;
        }
        fresh.append(&mut q);
        *q = fresh;
        drop(q);
        self.engine_wake.notify_one();
    }

    /// Number of items queued.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether a message pushed now would be taken.
    pub(crate) fn has_room(&self) -> bool {
        !self.is_closed() && self.lock().len() < self.hwm
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Moves everything queued into `into` (which should be empty).
    pub(crate) fn drain(&self, into: &mut VecDeque<Outbound>) {
        let mut q = self.lock();
        let was_full = q.len() >= self.hwm;
        crate::util::take_all(&mut q, into);
        drop(q);
        if was_full {
            self.writable.notify_waiters();
        }
    }

    /// Waits until something may have been queued.
    pub(crate) async fn wait_for_messages(&self) {
        self.engine_wake.notified().await;
    }

    /// Closes the pipe for good: queued messages are dropped, later pushes refused.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.lock().clear();
        self.engine_wake.notify_one();
        self.writable.notify_waiters();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_hwm_and_drained_in_one_go() {
        let pipe = Pipe::new(2, Arc::new(Notify::new()));
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
        let pipe = Pipe::new(10, Arc::new(Notify::new()));
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
        let pipe = Pipe::new(1, writable.clone());
        pipe.try_push(Message::from("a")).unwrap();
        let waiter = writable.notified();
        tokio::pin!(waiter);
        waiter.as_mut().enable();
        pipe.drain(&mut VecDeque::new());
        tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
            .await
            .expect("woken");
    }
}
