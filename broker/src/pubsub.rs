//! `--pubsub IN OUT`: the event bus beside the broker. Publishers connect PUB sockets
//! to IN (an XSUB), subscribers connect SUB sockets to OUT (an XPUB); events flow
//! down by topic prefix and subscriptions flow up, so publishers only send what
//! somebody wants. Any ZeroMQ PUB/SUB peer works unchanged (pyzmq, czmq, zeromq.js).
//!
//! The forwarder runs on a thread of its own with its own single-threaded runtime,
//! both sockets and all their connections with it: a flood of events or
//! subscriptions costs that thread, never the broker loop's (which is also one
//! thread by default).
//!
//! What peers can make it hold is bounded ([`BusLimits`]): each subscriber's queue in
//! bytes as well as in events (a subscriber that does not read misses events, as with
//! any ZeroMQ PUB), the subscriptions of each subscriber and of all together (past
//! a cap they are ignored, counted and logged once a second), the subscription
//! changes waiting for a publisher that does not read, and the events read from
//! publishers and not yet forwarded.

use zmtp::{Socket, SocketOptions, SocketType};

/// The event bus's bounds, from the command line.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(next_help_heading = "Event bus (--pubsub)")]
pub struct BusArgs {
    /// Bytes of events queued for one subscriber, beside the 1 000-event high-water
    /// mark (bytes, or with a K, M or G suffix). A subscriber that does not read
    /// misses the events past it, as with any ZeroMQ PUB; one event larger than
    /// this still goes to a subscriber whose queue is empty. Also bounds the events
    /// read from publishers and not yet forwarded.
    #[arg(long, value_name = "SIZE", default_value = "8M", value_parser = crate::broker_cli::parse_size)]
    pub pubsub_max_queue_bytes: u64,
    /// Most topics one subscriber may hold subscribed; more are ignored, counted and
    /// logged (once a second at most).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub pubsub_max_subscriptions: usize,
    /// Most bytes of topics one subscriber may hold subscribed.
    #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = crate::broker_cli::parse_size)]
    pub pubsub_max_subscription_bytes: u64,
    /// Most subscriptions all subscribers may hold together.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub pubsub_max_subscriptions_total: usize,
    /// Most bytes of topics all subscribers may hold together; also the most
    /// subscription changes waiting for one publisher that reads too slowly, past
    /// which it is reconnected and sent the full set.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = crate::broker_cli::parse_size)]
    pub pubsub_max_subscription_bytes_total: u64,
}

impl BusArgs {
    /// The bounds these flags ask for.
    pub fn limits(&self) -> BusLimits {
        let size = |bytes: u64| usize::try_from(bytes).unwrap_or(usize::MAX);
        BusLimits {
            queue_bytes: size(self.pubsub_max_queue_bytes),
            subscriptions_per_subscriber: self.pubsub_max_subscriptions,
            subscription_bytes_per_subscriber: size(self.pubsub_max_subscription_bytes),
            subscriptions_total: self.pubsub_max_subscriptions_total,
            subscription_bytes_total: size(self.pubsub_max_subscription_bytes_total),
        }
    }
}

/// What the event bus's peers may make it hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusLimits {
    /// Bytes queued for one subscriber, or read and not yet forwarded.
    pub queue_bytes: usize,
    /// Topics one subscriber may hold subscribed.
    pub subscriptions_per_subscriber: usize,
    /// Bytes of topics one subscriber may hold subscribed.
    pub subscription_bytes_per_subscriber: usize,
    /// Subscriptions all subscribers may hold together.
    pub subscriptions_total: usize,
    /// Bytes of topics all subscribers may hold together, and of subscription
    /// changes waiting for one publisher.
    pub subscription_bytes_total: usize,
}

impl Default for BusLimits {
    /// The defaults of the flags.
    fn default() -> BusLimits {
        BusLimits {
            queue_bytes: 8 << 20,
            subscriptions_per_subscriber: 10_000,
            subscription_bytes_per_subscriber: 1 << 20,
            subscriptions_total: 100_000,
            subscription_bytes_total: 64 << 20,
        }
    }
}

impl BusLimits {
    /// The publishers' side: an XSUB that reads at most `queue_bytes` ahead of the
    /// forwarder (which runs on the same thread as the publishers' connections, so
    /// little ever waits). What it queues for a publisher is subscription changes
    /// (and the rare message a subscriber sends up): they may reach the size of the
    /// whole subscription table, so that only churn past what the table can hold
    /// makes a publisher that reads too slowly reconnect (and get the full set).
    fn publishers(&self, options: SocketOptions) -> SocketOptions {
        options
            .send_hwm_bytes(self.queue_bytes.max(self.subscription_bytes_total))
            .recv_hwm_bytes(self.queue_bytes)
    }

    /// The subscribers' side: an XPUB with a byte limit per subscriber and caps on
    /// subscriptions.
    fn subscribers(&self, options: SocketOptions) -> SocketOptions {
        options
            .send_hwm_bytes(self.queue_bytes)
            .recv_hwm_bytes(self.queue_bytes)
            .max_subscriptions_per_peer(
                self.subscriptions_per_subscriber,
                self.subscription_bytes_per_subscriber,
            )
            .max_subscriptions_total(self.subscriptions_total, self.subscription_bytes_total)
    }
}

/// The endpoints bound, or why not.
type Bound = Result<(String, String), String>;

/// Starts the forwarder on a thread of its own: binds both sides with the broker's
/// socket options (security included) and `limits`, then forwards until the process
/// ends. Returns the endpoints bound.
pub async fn start(
    publishers: &str,
    subscribers: &str,
    options: SocketOptions,
    limits: &BusLimits,
) -> Result<(String, String), String> {
    let (bound_tx, bound) = tokio::sync::oneshot::channel::<Bound>();
    let inbound = limits.publishers(options.clone());
    let outbound = limits.subscribers(options);
    let (publishers, subscribers) = (publishers.to_owned(), subscribers.to_owned());
    std::thread::Builder::new()
        .name("event-bus".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(runtime) => runtime.block_on(async {
                    let sockets = bind(&publishers, inbound, &subscribers, outbound).await;
                    forward(sockets, bound_tx).await;
                }),
                Err(e) => {
                    let _ = bound_tx.send(Err(format!("event bus: cannot start: {e}")));
                }
            }
        })
        .map_err(|e| format!("event bus: cannot start its thread: {e}"))?;
    bound
        .await
        .map_err(|_| "event bus: its thread ended before binding".to_string())?
}

/// Both sides, bound, with their endpoints.
type Sides = Result<((Socket, String), (Socket, String)), String>;

async fn bind(
    publishers: &str,
    inbound: SocketOptions,
    subscribers: &str,
    outbound: SocketOptions,
) -> Sides {
    Ok((
        bind_one(SocketType::XSub, publishers, inbound).await?,
        bind_one(SocketType::XPub, subscribers, outbound).await?,
    ))
}

async fn bind_one(
    socket_type: SocketType,
    endpoint: &str,
    options: SocketOptions,
) -> Result<(Socket, String), String> {
    let mut socket =
        Socket::with_options(socket_type, options).map_err(|e| format!("event bus: {e}"))?;
    let bound = socket
        .bind(endpoint)
        .await
        .map_err(|e| format!("event bus: cannot bind {endpoint}: {e}"))?;
    Ok((socket, bound.to_string()))
}

/// Reports the endpoints (or the error), then forwards until a socket fails.
async fn forward(sides: Sides, bound: tokio::sync::oneshot::Sender<Bound>) {
    let ((mut inbound, events_in), (mut outbound, events_out)) = match sides {
        Ok(sides) => sides,
        Err(e) => {
            let _ = bound.send(Err(e));
            return;
        }
    };
    if bound.send(Ok((events_in, events_out))).is_err() {
        return;
    }
    if let Err(e) = zmtp::proxy(&mut inbound, &mut outbound, None).await {
        tracing::error!(error = %e, "event bus stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        bus: BusArgs,
    }

    #[test]
    fn the_flags_default_to_the_documented_limits() {
        let flags = Flags::parse_from(["mdp-broker"]);
        assert_eq!(flags.bus.limits(), BusLimits::default());
        let flags = Flags::parse_from([
            "mdp-broker",
            "--pubsub-max-queue-bytes",
            "512K",
            "--pubsub-max-subscriptions",
            "7",
        ]);
        let limits = flags.bus.limits();
        assert_eq!(
            (limits.queue_bytes, limits.subscriptions_per_subscriber),
            (512 << 10, 7)
        );
    }

    #[tokio::test]
    async fn forwards_on_its_own_thread() {
        let (events_in, events_out) = start(
            "tcp://127.0.0.1:0",
            "tcp://127.0.0.1:0",
            SocketOptions::default(),
            &BusLimits::default(),
        )
        .await
        .expect("bound");
        let mut publisher = Socket::new(SocketType::Pub);
        publisher.connect(&events_in).unwrap();
        let mut subscriber = Socket::new(SocketType::Sub);
        subscriber.subscribe("t").unwrap();
        subscriber.connect(&events_out).unwrap();
        let wait = std::time::Duration::from_secs(60);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            assert!(tokio::time::Instant::now() < deadline, "no event forwarded");
            publisher.send(["t", "event"]).await.unwrap();
            let short = std::time::Duration::from_millis(50);
            if let Ok(got) = tokio::time::timeout(short, subscriber.recv()).await {
                assert_eq!(got.unwrap(), zmtp::Message::from(["t", "event"]));
                break;
            }
        }
    }

    #[tokio::test]
    async fn a_busy_endpoint_is_a_clear_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = format!("tcp://{}", taken.local_addr().unwrap());
        let error = start(
            "tcp://127.0.0.1:0",
            &busy,
            SocketOptions::default(),
            &BusLimits::default(),
        )
        .await
        .expect_err("the port is taken");
        assert!(error.contains("cannot bind"), "{error}");
    }
}
