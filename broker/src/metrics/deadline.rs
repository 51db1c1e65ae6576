//! A stream whose writes must be done within a deadline: a peer that stops reading
//! cannot keep a connection (and the answer waiting for it) for ever.
//!
//! The clock starts at the first write after the stream was last flushed, that is
//! when an answer starts going out, and stops when a flush completes, so an answer
//! must be wholly taken by the kernel within the limit. Past it, every write and
//! flush fails with [`std::io::ErrorKind::TimedOut`] and the connection is dropped.
//! Reads pass through untouched (hyper's header timeout covers them).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// `S` with a deadline on each answer written to it.
#[derive(Debug)]
pub struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    /// Armed while an answer is being written.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    /// `inner`, whose answers must each be written within `limit`.
    pub fn new(inner: S, limit: Duration) -> WriteDeadline<S> {
        WriteDeadline {
            inner,
            limit,
            deadline: None,
        }
    }

    /// Starts the clock if it is not running.
    fn arm(&mut self) {
        if self.deadline.is_none() {
            self.deadline = Some(Box::pin(tokio::time::sleep_until(
                Instant::now() + self.limit,
            )));
        }
    }

    /// `pending`, or a time-out once the deadline has passed (the deadline's timer
    /// wakes the task then).
    fn pending_or_late<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.deadline.as_mut().map(|d| d.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the answer was not taken within {:?}", self.limit),
            ))),
            _ => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.arm();
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.pending_or_late(cx),
            done => done,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.arm();
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.pending_or_late(cx),
            done => done,
        }
    }

    fn is_write_vectored(&self) -> bool {
        // hyper then queues a body's `Bytes` instead of copying it into its buffer.
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                self.deadline = None;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => self.pending_or_late(cx),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_shutdown(cx) {
            Poll::Pending => self.pending_or_late(cx),
            done => done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMIT: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn an_answer_the_peer_does_not_take_times_out() {
        let (ours, _theirs) = tokio::io::duplex(1024);
        let mut stream = WriteDeadline::new(ours, LIMIT);
        let started = Instant::now();
        let error = tokio::time::timeout(LIMIT * 3, stream.write_all(&[0u8; 64 << 10]))
            .await
            .expect("no write waits for ever")
            .expect_err("the peer never reads");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= LIMIT);
    }

    #[tokio::test(start_paused = true)]
    async fn answers_taken_in_time_rearm_the_clock() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let mut stream = WriteDeadline::new(ours, LIMIT);
        let mut sink = [0u8; 1024];
        for _ in 0..5 {
            stream.write_all(&[1u8; 512]).await.unwrap();
            stream.flush().await.unwrap();
            theirs.read_exact(&mut sink[..512]).await.unwrap();
            // Idle for longer than the limit: no answer is being written.
            tokio::time::sleep(LIMIT * 2).await;
        }
        // A slow reader that takes each part within the limit of the whole answer.
        let reader = tokio::spawn(async move {
            for _ in 0..4 {
                tokio::time::sleep(LIMIT / 5).await;
                theirs.read_exact(&mut sink).await.unwrap();
            }
            theirs
        });
        stream.write_all(&[2u8; 4096]).await.unwrap();
        stream.flush().await.unwrap();
        let _theirs = reader.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_too_slow_for_the_whole_answer_is_cut_off() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let mut stream = WriteDeadline::new(ours, LIMIT);
        // Takes 1 KiB every 3 s: each write makes progress, the whole does not
        // finish in time.
        let reader = tokio::spawn(async move {
            let mut sink = [0u8; 1024];
            loop {
                tokio::time::sleep(LIMIT * 3 / 10).await;
                if theirs.read(&mut sink).await.unwrap_or(0) == 0 {
                    return;
                }
            }
        });
        let error = tokio::time::timeout(LIMIT * 3, stream.write_all(&[3u8; 16 << 10]))
            .await
            .expect("cut off, not waiting for the slow reader")
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        drop(stream);
        reader.await.unwrap();
    }
}
