//! Events beside requests: publish and subscribe through the broker's event bus
//! (`mdp-broker --pubsub IN OUT`), or through any XSUB/XPUB forwarder.
//!
//! An event is a topic frame followed by body frames, the layout pyzmq and libzmq
//! publishers use (`socket.send_multipart([topic, body])`), so Python, C and Node
//! publishers and subscribers mix freely with these. Subscribers filter by topic
//! prefix, and the filter travels up to the publishers: a publisher only sends what
//! somebody subscribed to.
//!
//! As with any ZeroMQ publisher, events published before a subscriber's subscription
//! has reached the publisher are not delivered to it (the "slow joiner"): publish
//! state that late joiners need again, or ask for it by request.
//!
//! ```no_run
//! use mdp::events::{Publisher, Subscriber};
//!
//! # async fn run() -> Result<(), zmtp::Error> {
//! // mdp-broker --pubsub tcp://127.0.0.1:5556 tcp://127.0.0.1:5557
//! let mut orders = Subscriber::connect("tcp://127.0.0.1:5557", ["orders."]).await?;
//! let mut publisher = Publisher::connect("tcp://127.0.0.1:5556").await?;
//! publisher.publish("orders.new", "42").await?;
//! let event = orders.recv().await?;
//! assert_eq!(event.topic, "orders.new");
//! # Ok(())
//! # }
//! ```

use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};
use zmtp::proto::MechanismConfig;
use zmtp::{Error, Message, Socket, SocketOptions, SocketType};

use crate::codec::{CodecError, Format};

/// One event: its topic and body frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The first frame.
    pub topic: Bytes,
    /// The frames after it.
    pub body: Message,
}

impl Event {
    /// The body's first frame decoded from `format` (what [`Publisher::publish_typed`]
    /// sends).
    pub fn decode<T: DeserializeOwned>(&self, format: Format) -> Result<T, CodecError> {
        let frame = self.body.first().cloned().unwrap_or_default();
        format.decode(&frame)
    }
}

/// Publishes events to the bus's publisher side (the broker's first `--pubsub`
/// endpoint). A PUB socket: it never blocks, and drops events for subscribers that
/// cannot keep up (past the high-water mark).
#[derive(Debug)]
pub struct Publisher {
    socket: Socket,
}

impl Publisher {
    /// A publisher connected to `endpoint` (NULL security).
    pub async fn connect(endpoint: &str) -> Result<Publisher, Error> {
        Publisher::connect_with(endpoint, MechanismConfig::Null).await
    }

    /// A publisher connected to `endpoint` with `mechanism` (CURVE towards a secured
    /// broker, say).
    pub async fn connect_with(
        endpoint: &str,
        mechanism: MechanismConfig,
    ) -> Result<Publisher, Error> {
        let options = SocketOptions::default().mechanism(mechanism);
        let mut socket = Socket::with_options(SocketType::Pub, options)?;
        socket.connect(endpoint)?;
        Ok(Publisher { socket })
    }

    /// Publishes `body` under `topic`.
    pub async fn publish(
        &mut self,
        topic: impl Into<Bytes>,
        body: impl Into<Message>,
    ) -> Result<(), Error> {
        let mut msg = body.into();
        msg.push_front(topic.into());
        self.socket.send(msg).await
    }

    /// Publishes `value` under `topic`, encoded in `format` as one frame.
    pub async fn publish_typed<T: Serialize + ?Sized>(
        &mut self,
        topic: impl Into<Bytes>,
        value: &T,
        format: Format,
    ) -> Result<(), PublishError> {
        let frame = format.encode(value)?;
        Ok(self.publish(topic, frame).await?)
    }
}

/// Why a typed event could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The value could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The socket failed.
    #[error(transparent)]
    Socket(#[from] Error),
}

/// Receives the events whose topic starts with one of its subscriptions, from the
/// bus's subscriber side (the broker's second `--pubsub` endpoint).
#[derive(Debug)]
pub struct Subscriber {
    socket: Socket,
}

impl Subscriber {
    /// A subscriber connected to `endpoint`, subscribed to each topic prefix in
    /// `topics` (`""` for everything).
    pub async fn connect<I, T>(endpoint: &str, topics: I) -> Result<Subscriber, Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<Bytes>,
    {
        Subscriber::connect_with(endpoint, topics, MechanismConfig::Null).await
    }

    /// [`Subscriber::connect`] with `mechanism`.
    pub async fn connect_with<I, T>(
        endpoint: &str,
        topics: I,
        mechanism: MechanismConfig,
    ) -> Result<Subscriber, Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<Bytes>,
    {
        let options = SocketOptions::default().mechanism(mechanism);
        let mut socket = Socket::with_options(SocketType::Sub, options)?;
        for topic in topics {
            socket.subscribe(topic)?;
        }
        socket.connect(endpoint)?;
        Ok(Subscriber { socket })
    }

    /// Adds a topic prefix.
    pub fn subscribe(&mut self, topic: impl Into<Bytes>) -> Result<(), Error> {
        self.socket.subscribe(topic)
    }

    /// Removes a topic prefix.
    pub fn unsubscribe(&mut self, topic: impl Into<Bytes>) -> Result<(), Error> {
        self.socket.unsubscribe(topic)
    }

    /// The next event.
    pub async fn recv(&mut self) -> Result<Event, Error> {
        let mut body = self.socket.recv().await?;
        let topic = body.pop_front().unwrap_or_default();
        Ok(Event { topic, body })
    }
}
