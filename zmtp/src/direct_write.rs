//! [`LentWriter`]: an idle connection's write half, lent to the socket so that a
//! send can write its message to the kernel at once, in the sender's own task.
//!
//! Without it every message crosses from the sending task to the connection's engine
//! task: a wake-up, and on tokio's multi-thread runtime often a wake-up of another
//! thread (a `#[tokio::main]` body runs on the main thread, never on a worker, so
//! each send there costs an eventfd write and a worker's turn). A request and its
//! reply then pay for four task hops per round trip where one would do.
//!
//! The engine lends its write half to its [`Pipe`](crate::pipe::Pipe) when it has
//! nothing left to write and the connection frames messages in the clear (NULL and
//! PLAIN; a CURVE connection's boxes need the engine's nonce and keys), and takes it
//! back before it writes anything itself (a queued message, a PING, the close). A
//! send that finds the pipe empty and the writer lent *with a credit* encodes the
//! message and tries one non-blocking write. When the kernel takes none of it, the
//! message goes through the pipe as before; when it takes part, the rest stays with
//! the lent writer and the engine, woken, writes it first when it takes the writer
//! back. Nothing is lost and the order holds.
//!
//! The credit keeps batching where it pays. A stream of sends (PUSH at full speed)
//! is cheapest when the engine encodes many messages into one write, so a writer is
//! lent with a credit only when the engine's last batch was at most one message,
//! and a direct write uses the credit up. The engine gives a credit back each time
//! it reads messages from the peer (and so does a `recv` that reads them itself,
//! see `direct_read`): what a socket sends after receiving is most
//! likely the reply to it (REQ, REP, a broker), one message per turn, where the
//! direct write saves the whole hop.

use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::proto::{Message, WireQueue};
use crate::transport::WriteHalf;

/// Which engine lent a writer: a pipe outlives connections (a connecting endpoint
/// keeps its pipe across reconnects), and only the engine that lent a writer takes
/// it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lender(u64);

impl Lender {
    /// A lender no other engine of this process has been.
    pub(crate) fn unique() -> Lender {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Lender(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// A write half its engine does not need for now.
#[derive(Debug)]
pub(crate) struct LentWriter {
    half: WriteHalf,
    lender: Lender,
    /// One direct write may be made (see the module docs).
    credit: bool,
    /// Reused encoding buffer, so a direct write allocates nothing once warm.
    scratch: WireQueue,
    /// The rest of a message the kernel took only part of: written by the engine
    /// before anything else; no direct write until then.
    unwritten: Option<Bytes>,
}

/// What became of a message offered to [`LentWriter::offer`].
#[derive(Debug)]
pub(crate) enum Offered {
    /// The kernel took all of it.
    Written,
    /// The kernel took part of it; the rest waits in the writer for its engine.
    Partly,
    /// Nothing was written (no credit, a full socket buffer, an error the engine
    /// will meet itself): the message goes through the pipe.
    Declined(Message),
}

impl LentWriter {
    pub(crate) fn new(half: WriteHalf, lender: Lender, credit: bool) -> LentWriter {
        LentWriter {
            half,
            lender,
            credit,
            scratch: WireQueue::new(),
            unwritten: None,
        }
    }

    pub(crate) fn lender(&self) -> Lender {
        self.lender
    }

    #[cfg(test)]
    pub(crate) fn unwritten(&self) -> Option<Bytes> {
        self.unwritten.clone()
    }

    /// Allows one more direct write.
    pub(crate) fn grant_credit(&mut self) {
        self.credit = true;
    }

    /// The write half, back to its engine, with the bytes it must write first.
    pub(crate) fn into_parts(self) -> (WriteHalf, Option<Bytes>) {
        (self.half, self.unwritten)
    }

    /// Writes `msg` now if this writer has a credit and the kernel takes it; the
    /// caller has checked that nothing is queued ahead of it.
    pub(crate) fn offer(&mut self, msg: Message) -> Offered {
        if !self.credit || self.unwritten.is_some() {
            return Offered::Declined(msg);
        }
        self.credit = false;
        self.scratch.push_message(&msg);
        let total = self.scratch.len();
        let half = &self.half;
        let written = self.scratch.with_slices(|slices| match slices {
            // One piece goes by send(2), which costs the kernel less than writev(2).
            [one] => half.try_write(one),
            _ => half.try_write_vectored(slices),
        });
        match written {
            Ok(n) if n == total => {
                self.scratch.advance(n);
                Offered::Written
            }
            Ok(n) if n > 0 => {
                self.scratch.advance(n);
                self.unwritten = Some(self.scratch.take_all().freeze());
                Offered::Partly
            }
            // WouldBlock, or an error: the engine writes it, or meets the error.
            Ok(_) | Err(_) => {
                self.scratch.advance(self.scratch.len());
                Offered::Declined(msg)
            }
        }
    }
}

impl WriteHalf {
    /// One non-blocking write: `WouldBlock` when the socket buffer is full.
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            WriteHalf::Tcp(w) => w.try_write(buf),
            WriteHalf::Ipc(w) => w.try_write(buf),
        }
    }

    /// One non-blocking gathered write: `WouldBlock` when the socket buffer is full.
    pub(crate) fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            WriteHalf::Tcp(w) => w.try_write_vectored(bufs),
            WriteHalf::Ipc(w) => w.try_write_vectored(bufs),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::Notify;

    use super::*;
    use crate::pipe::Pipe;
    use crate::transport::{ReadHalf, Stream};

    /// A connected pair: our halves (the write half to lend; the read half only
    /// keeps the connection open) and the peer's stream.
    async fn pair() -> (WriteHalf, ReadHalf, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let near = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (far, _) = listener.accept().await.unwrap();
        let (read, write) = Stream::Tcp(near).into_split();
        (write, read, far)
    }

    fn encoded(msg: &Message) -> Vec<u8> {
        let mut q = WireQueue::new();
        q.push_message(msg);
        q.take_all().to_vec()
    }

    #[tokio::test]
    async fn a_credit_buys_one_direct_write_and_the_rest_queues() {
        let (half, _read, mut far) = pair().await;
        let pipe = Pipe::new(10, None, Arc::new(Notify::new()));
        let lender = Lender::unique();
        assert!(pipe.lend(half, lender, true).is_none(), "lent");

        let first = Message::from(vec![b"id".to_vec(), b"first".to_vec()]);
        pipe.try_push(first.clone()).unwrap();
        assert!(pipe.is_empty(), "written directly, not queued");
        let mut got = vec![0u8; encoded(&first).len()];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(
            got,
            encoded(&first),
            "the frames, as the engine would write them"
        );

        // The credit is spent: the next send queues for the engine.
        pipe.try_push(Message::from("second")).unwrap();
        assert_eq!(pipe.len(), 1);
        // A credit granted now does not jump the queue.
        pipe.grant_credit();
        pipe.try_push(Message::from("third")).unwrap();
        assert_eq!(pipe.len(), 2, "order holds: queued behind the second");

        // Another engine's lender takes nothing; ours takes the writer back.
        assert!(pipe.reclaim(Lender::unique()).is_none());
        let (_half, unwritten) = pipe.reclaim(lender).expect("our writer");
        assert!(unwritten.is_none());
        assert!(pipe.reclaim(lender).is_none(), "taken once");
    }

    #[tokio::test]
    async fn a_write_the_kernel_cuts_short_leaves_its_rest_for_the_engine() {
        let (half, _read, mut far) = pair().await;
        let pipe = Pipe::new(10, None, Arc::new(Notify::new()));
        let lender = Lender::unique();
        assert!(pipe.lend(half, lender, true).is_none());
        // The peer reads nothing: sooner or later the kernel takes only part of a
        // message, or none of one (which then queues).
        let big = Message::from(vec![7u8; 1 << 20]);
        let mut direct = 0;
        let unwritten = loop {
            pipe.try_push(big.clone()).unwrap();
            if !pipe.is_empty() {
                break None;
            }
            direct += 1;
            let cut = pipe.lock_lent_unwritten();
            if cut.is_some() {
                break cut;
            }
            assert!(
                direct < 1000,
                "the kernel took {direct} MiB without pushing back"
            );
            pipe.grant_credit();
        };
        let (mut half, rest) = pipe.reclaim(lender).expect("our writer");
        assert_eq!(rest, unwritten);
        // What the kernel took plus the rest is exactly the messages written.
        let expected = direct * encoded(&big).len();
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; expected];
            far.read_exact(&mut got).await.unwrap();
            got
        });
        if let Some(rest) = rest {
            half.write_all(&rest).await.unwrap();
        }
        let got = reader.await.unwrap();
        assert!(got.chunks(encoded(&big).len()).all(|m| m == encoded(&big)));
    }
}
