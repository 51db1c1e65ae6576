//! [`Socket::split`]: a sending half and a receiving half, for two tasks.
//!
//! Both halves share the socket behind a lock that is held only while a `poll_*`
//! method runs, never across an `.await`: a task waiting in `recv` does not stop
//! the other from sending, nor the reverse. The send half registers the socket's
//! "room again" wake-up and the receive half its "message queued" wake-up, each the
//! only one to, so neither steals the other's wake-ups. The socket closes when both
//! halves are dropped.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use super::{PeerId, RouterEvent, Socket};
use crate::error::Error;
use crate::Message;

/// The sending half of a split [`Socket`].
#[derive(Debug)]
pub struct SendHalf {
    socket: Arc<Mutex<Socket>>,
    /// The message given to the `Sink` and not yet sent.
    slot: Option<Message>,
}

/// The receiving half of a split [`Socket`].
#[derive(Debug)]
pub struct RecvHalf {
    socket: Arc<Mutex<Socket>>,
}

fn lock(socket: &Mutex<Socket>) -> MutexGuard<'_, Socket> {
    // Every method leaves the socket consistent before it can panic: a poisoned lock
    // still holds a usable socket.
    socket.lock().unwrap_or_else(|e| e.into_inner())
}

impl Socket {
    /// Splits the socket into a half that sends and a half that receives, to use
    /// from two tasks at once. Bind, connect and set options first.
    ///
    /// ```
    /// use zmtp::{Message, Socket, SocketType};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), zmtp::Error> {
    /// let mut server = Socket::new(SocketType::Router);
    /// let endpoint = server.bind("tcp://127.0.0.1:0").await?;
    /// let mut client = Socket::new(SocketType::Dealer);
    /// client.connect(&endpoint.to_string())?;
    ///
    /// let (mut tx, mut rx) = client.split();
    /// let sender = tokio::spawn(async move { tx.send("hello").await });
    /// let got = server.recv().await?;
    /// server.send(got).await?; // echo it back
    /// assert_eq!(rx.recv().await?, Message::from("hello"));
    /// sender.await.expect("no panic")?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn split(self) -> (SendHalf, RecvHalf) {
        let socket = Arc::new(Mutex::new(self));
        (
            SendHalf {
                socket: socket.clone(),
                slot: None,
            },
            RecvHalf { socket },
        )
    }
}

impl SendHalf {
    /// Sends a message as [`Socket::send`] does.
    pub async fn send(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        let mut slot = Some(msg.into());
        std::future::poll_fn(|cx| lock(&self.socket).poll_send(cx, &mut slot)).await
    }

    /// ROUTER: sends to one connection, as [`Socket::send_to`] does.
    pub fn send_to(&mut self, peer: &PeerId, msg: impl Into<Message>) -> Result<(), Error> {
        lock(&self.socket).send_to(peer, msg)
    }
}

impl RecvHalf {
    /// Receives the next message, as [`Socket::recv`] does (cancel-safe).
    pub async fn recv(&mut self) -> Result<Message, Error> {
        std::future::poll_fn(|cx| lock(&self.socket).poll_recv(cx)).await
    }

    /// ROUTER: the next connection event, as [`Socket::recv_event`] does.
    pub async fn recv_event(&mut self) -> Result<RouterEvent, Error> {
        std::future::poll_fn(|cx| lock(&self.socket).poll_recv_event(cx)).await
    }

    /// The next message if one is queued, as [`Socket::try_recv`] does.
    pub fn try_recv(&mut self) -> Result<Message, Error> {
        lock(&self.socket).try_recv()
    }
}

impl futures_util::Sink<Message> for SendHalf {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        lock(&this.socket).poll_send(cx, &mut this.slot)
    }

    fn start_send(self: Pin<&mut Self>, msg: Message) -> Result<(), Error> {
        let this = self.get_mut();
        if this.slot.is_some() {
            return Err(Error::WouldBlock);
        }
        this.slot = Some(msg);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        lock(&this.socket).poll_send(cx, &mut this.slot)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_flush(cx)
    }
}

impl futures_util::Stream for RecvHalf {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match lock(&self.socket).poll_recv(cx) {
            Poll::Ready(Err(Error::Closed)) => Poll::Ready(None),
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending => Poll::Pending,
        }
    }
}
