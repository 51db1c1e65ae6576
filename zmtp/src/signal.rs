//! [`Signal`]: wakes one waiting task, and remembers a wake-up nobody waited for.
//!
//! What [`tokio::sync::Notify`]'s `notify_one` does for a single waiter, without its
//! lock: `Notify` takes one on every poll of a waiting `notified()` future, and an
//! engine polls its pipe's on every turn of its loop.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

/// A wake-up for one waiter at a time (the last task to wait is the one woken).
#[derive(Debug, Default)]
pub(crate) struct Signal {
    raised: AtomicBool,
    waiter: AtomicWaker,
}

impl Signal {
    /// Wakes the waiter, or the next one to wait if none is waiting now.
    pub(crate) fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        self.waiter.wake();
    }

    /// Ready once the signal is raised (at once if it was since the last wait),
    /// and lowers it.
    pub(crate) fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.raised.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        self.waiter.register(cx.waker());
        // Raised between the check and the registration: the raise may have woken
        // the waker registered before this one.
        if self.raised.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Waits for [`Signal::poll_wait`].
    pub(crate) async fn wait(&self) {
        poll_fn(|cx| self.poll_wait(cx)).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_raise_before_the_wait_is_remembered_once() {
        let signal = Signal::default();
        signal.raise();
        signal.raise();
        signal.wait().await;
        let again = tokio::time::timeout(Duration::from_millis(20), signal.wait()).await;
        assert!(
            again.is_err(),
            "two raises are one wake-up, as with notify_one"
        );
    }

    #[tokio::test]
    async fn a_raise_wakes_a_waiting_task() {
        let signal = Arc::new(Signal::default());
        let waiter = tokio::spawn({
            let signal = signal.clone();
            async move { signal.wait().await }
        });
        tokio::task::yield_now().await;
        signal.raise();
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("woken") // ok: test code
            .unwrap(); // ok: test code
    }
}
