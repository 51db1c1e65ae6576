//! SUB and XSUB (RFC 29, libzmq xsub.cpp): subscriptions go upstream to every
//! publisher, messages come back filtered by them.
//!
//! Subscriptions are counted: every subscribe is sent upstream, a cancel only when a
//! topic's count falls to zero. The socket keeps the set, and each new connection
//! (a first one or a reconnect) gets all of it before anything else, so a restarted
//! publisher is resubscribed without the application doing anything.
//!
//! A SUB filters what it receives too (messages in flight when a topic is cancelled,
//! publishers that do not filter); an XSUB passes everything, as in libzmq.

use bytes::Bytes;

use super::{Core, Socket};
use crate::error::Error;
use crate::pipe::{Outbound, Pipe};
use crate::proto::SocketType;
use crate::Message;

impl Socket {
    /// SUB and XSUB: receive messages whose first frame starts with `topic` (the
    /// empty topic matches everything). Subscriptions are counted: subscribing twice
    /// takes two [`Socket::unsubscribe`] calls to undo (ZMQ_SUBSCRIBE).
    ///
    /// ```
    /// use zmtp::{Socket, SocketType};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), zmtp::Error> {
    /// let mut publisher = Socket::new(SocketType::Pub);
    /// let endpoint = publisher.bind("tcp://127.0.0.1:0").await?;
    /// let mut subscriber = Socket::new(SocketType::Sub);
    /// subscriber.subscribe("weather.")?;
    /// subscriber.connect(&endpoint.to_string())?;
    ///
    /// // The subscription reaches the publisher shortly after the connection is up;
    /// // until then a publisher drops what nobody subscribed to.
    /// loop {
    ///     publisher.send(["weather.paris", "21C"]).await?;
    ///     publisher.send(["news", "ignored"]).await?;
    ///     let wait = tokio::time::sleep(std::time::Duration::from_millis(50));
    ///     tokio::select! {
    ///         msg = subscriber.recv() => {
    ///             assert_eq!(msg?[0], "weather.paris");
    ///             break;
    ///         }
    ///         () = wait => {}
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscribe(&mut self, topic: impl Into<Bytes>) -> Result<(), Error> {
        self.require_subscriber("subscribe")?;
        self.change_subscription(true, topic.into());
        Ok(())
    }

    /// SUB and XSUB: undoes one [`Socket::subscribe`] to `topic` (ZMQ_UNSUBSCRIBE).
    /// Unsubscribing from a topic that is not subscribed does nothing.
    pub fn unsubscribe(&mut self, topic: impl Into<Bytes>) -> Result<(), Error> {
        self.require_subscriber("unsubscribe")?;
        self.change_subscription(false, topic.into());
        Ok(())
    }

    fn require_subscriber(&self, operation: &'static str) -> Result<(), Error> {
        match self.core.socket_type {
            SocketType::Sub | SocketType::XSub => Ok(()),
            socket_type => Err(Error::Unsupported {
                socket_type,
                operation,
            }),
        }
    }

    fn change_subscription(&mut self, subscribe: bool, topic: Bytes) {
        let mut subscriptions = self.core.subscriptions();
        let upstream = if subscribe {
            subscriptions.add(topic.clone());
            Outbound::Subscribe(topic)
        } else if subscriptions.remove(&topic) {
            Outbound::Cancel(topic)
        } else {
            return;
        };
        // Under the lock, so a connection starting now either gets this change or the
        // full set that includes it (see `resubscribe`).
        self.core.peers.refresh(&mut self.snapshot);
        for (_, pipe) in &self.snapshot.ordered {
            pipe.push_subscription(upstream.clone());
        }
    }

    /// XSUB send: a one-frame message starting with 0x01 or 0x00 subscribes or
    /// cancels the rest of the frame; anything else goes to every publisher as is
    /// (an XPUB application receives it), dropped where a queue is full.
    pub(super) fn send_upstream(&mut self, msg: Message) {
        if let [frame] = msg.frames() {
            if let Some(&flag @ (0 | 1)) = frame.first() {
                return self.change_subscription(flag == 1, frame.slice(1..));
            }
        }
        self.core.peers.refresh(&mut self.snapshot);
        for (_, pipe) in &self.snapshot.ordered {
            let _ = pipe.try_push(msg.clone());
        }
    }

    /// Drops from what `recv` will return every message no subscription matches.
    pub(super) fn filter_received(&mut self) {
        let subscriptions = self.core.subscriptions();
        self.received.retain(|inbound| {
            inbound
                .msg
                .first()
                .is_some_and(|frame| subscriptions.matches(frame))
        });
    }
}

/// A connection of a SUB or XSUB starts: it gets every current subscription, ahead
/// of anything else queued for it.
pub(super) fn resubscribe(core: &Core, pipe: &Pipe) {
    let subscriptions = core.subscriptions();
    pipe.replace_subscriptions(subscriptions.topics());
}
