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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_raise_from_another_thread_is_lost() {
        // Ping-pong: another thread makes a change and raises, then waits until the
        // waiter has seen it before the next. Every raise must wake the waiter, in
        // whatever state it is (checking, registering, asleep): one lost wake-up
        // stalls both, and the timeout fails the test.
        use std::sync::atomic::{AtomicUsize, Ordering};
        const ROUNDS: usize = 20_000;
        let signal = Arc::new(Signal::default());
        let changed = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(AtomicUsize::new(0));
        let producer = std::thread::spawn({
            let (signal, changed, seen) = (signal.clone(), changed.clone(), seen.clone());
            move || {
                let give_up = std::time::Instant::now() + Duration::from_secs(60);
                for round in 1..=ROUNDS {
                    changed.store(round, Ordering::SeqCst);
                    signal.raise();
                    while seen.load(Ordering::SeqCst) < round {
                        if std::time::Instant::now() > give_up {
                            return;
                        }
                        std::thread::yield_now();
                    }
                }
            }
        });
        let watch = async {
            while seen.load(Ordering::SeqCst) < ROUNDS {
                signal.wait().await;
                seen.store(changed.load(Ordering::SeqCst), Ordering::SeqCst);
            }
        };
        let result = tokio::time::timeout(Duration::from_secs(60), watch).await;
        producer.join().unwrap(); // ok: test code
        assert!(
            result.is_ok(),
            "a wake-up was lost after round {}",
            seen.load(Ordering::SeqCst)
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
