//! [`Liveness`]: ZMTP heartbeats (RFC 37 "Connection Heartbeating") as rules over
//! time passed in: when to send a PING, what TTL it announces, and when a silent
//! peer is given up.
//!
//! A peer is silent when nothing arrived from it for a whole *window*: our own
//! heartbeat interval plus its timeout (libzmq `ZMQ_HEARTBEAT_IVL` +
//! `ZMQ_HEARTBEAT_TIMEOUT`, the timeout defaulting to the interval), or the TTL the
//! peer's PINGs ask for, whichever is shorter. Arrivals only set a flag, so the hot
//! path never reads the clock; the flag is checked once per window, which closes a
//! silent peer after one to two windows, as libzmq's timers do.

use std::time::{Duration, Instant};

/// The heartbeat settings of one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeartbeatConfig {
    /// Send a PING this often (`None`: never).
    pub interval: Option<Duration>,
    /// Give the peer this long past a PING to show it is alive (default: the
    /// interval).
    pub timeout: Option<Duration>,
    /// The TTL our PINGs announce: how long the peer may wait for our traffic before
    /// it gives us up (`None`: no limit).
    pub ttl: Option<Duration>,
}

impl HeartbeatConfig {
    /// No heartbeats: no PINGs, no silence limit unless the peer asks for one.
    pub fn off() -> HeartbeatConfig {
        HeartbeatConfig::default()
    }

    /// PINGs every `interval`, a peer silent for `interval + timeout` given up.
    pub fn every(interval: Duration, timeout: Duration) -> HeartbeatConfig {
        HeartbeatConfig {
            interval: Some(interval),
            timeout: Some(timeout),
            ttl: None,
        }
    }

    /// The same, with PINGs announcing `ttl`.
    pub fn with_ttl(mut self, ttl: Option<Duration>) -> HeartbeatConfig {
        self.ttl = ttl;
        self
    }
}

/// The heartbeat state of one connection.
#[derive(Debug, Clone)]
pub struct Liveness {
    config: HeartbeatConfig,
    /// Our own window (interval + timeout), if we heartbeat.
    own_window: Option<Duration>,
    /// The window in force: ours, the peer's TTL, or the shorter of both.
    window: Option<Duration>,
    /// When the window in force is next checked.
    check_at: Option<Instant>,
    /// Something arrived since the last check.
    seen: bool,
    /// Silence does not count: we are not reading (the socket paused this peer, or
    /// its queue is full), so the peer's bytes wait in the kernel unseen.
    deaf: bool,
    /// When the next PING is due.
    ping_at: Option<Instant>,
    /// A PING is due and not yet taken.
    ping_due: bool,
}

/// Why a connection gave its peer up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Silent {
    /// The window the peer stayed silent for.
    pub window: Duration,
}

impl Liveness {
    /// The state of a connection established at `now`.
    pub fn new(config: HeartbeatConfig, now: Instant) -> Liveness {
        let own_window = config
            .interval
            .map(|interval| interval + config.timeout.unwrap_or(interval));
        Liveness {
            config,
            own_window,
            window: own_window,
            check_at: own_window.map(|window| now + window),
            seen: false,
            deaf: false,
            ping_at: config.interval.map(|interval| now + interval),
            ping_due: false,
        }
    }

    /// Bytes arrived from the peer.
    pub fn on_input(&mut self) {
        self.seen = true;
    }

    /// We stop (`false`) or start again (`true`) reading the peer: while we do not
    /// listen, its silence is ours, not its own, and once we listen again it has a
    /// whole window to be heard.
    pub fn set_listening(&mut self, listening: bool) {
        if listening && self.deaf {
            self.seen = true;
        }
        self.deaf = !listening;
    }

    /// The peer sent a PING asking for `ttl` (zero: no limit): the window becomes the
    /// shorter of ours and the TTL, counted from `now`.
    pub fn on_peer_ttl(&mut self, ttl: Duration, now: Instant) {
        if ttl.is_zero() {
            return;
        }
        let window = Some(self.own_window.map_or(ttl, |own| own.min(ttl)));
        if window != self.window {
            self.window = window;
            self.check_at = window.map(|window| now + window);
        }
    }

    /// The TTL field of our PINGs, in deciseconds (0: none).
    pub fn ping_ttl_deciseconds(&self) -> u16 {
        self.config.ttl.map_or(0, |ttl| {
            u16::try_from(ttl.as_millis() / 100).unwrap_or(u16::MAX)
        })
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.check_at, self.ping_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed: a PING may be due, and a peer silent for the whole window is
    /// given up.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Silent> {
        if let (Some(at), Some(interval)) = (self.ping_at, self.config.interval) {
            if now >= at {
                self.ping_due = true;
                self.ping_at = Some(now + interval);
            }
        }
        if let (Some(at), Some(window)) = (self.check_at, self.window) {
            if now >= at {
                if !self.seen && !self.deaf {
                    return Err(Silent { window });
                }
                self.seen = false;
                self.check_at = Some(now + window);
            }
        }
        Ok(())
    }

    /// Whether a PING is due.
    pub fn ping_due(&self) -> bool {
        self.ping_due
    }

    /// Takes the PING that is due, if one is.
    pub fn take_ping(&mut self) -> bool {
        std::mem::take(&mut self.ping_due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn heartbeat(interval: u32, timeout: u32) -> HeartbeatConfig {
        HeartbeatConfig::every(interval * MS, timeout * MS)
    }

    #[test]
    fn without_heartbeats_nothing_is_ever_due() {
        let t0 = Instant::now();
        let mut live = Liveness::new(HeartbeatConfig::off(), t0);
        assert_eq!(live.poll_timeout(), None);
        assert_eq!(
            live.handle_timeout(t0 + Duration::from_secs(86_400)),
            Ok(())
        );
        assert!(!live.take_ping());
    }

    #[test]
    fn pings_go_out_every_interval_whatever_the_traffic() {
        let t0 = Instant::now();
        let mut live = Liveness::new(heartbeat(100, 1000), t0);
        assert_eq!(live.poll_timeout(), Some(t0 + 100 * MS));
        live.handle_timeout(t0 + 99 * MS).unwrap(); // ok: test code
        assert!(!live.take_ping(), "not before the interval");
        live.on_input();
        live.handle_timeout(t0 + 100 * MS).unwrap(); // ok: test code
        assert!(live.take_ping());
        assert!(!live.take_ping(), "one PING per interval");
        assert_eq!(live.poll_timeout(), Some(t0 + 200 * MS));
    }

    #[test]
    fn a_peer_silent_for_a_whole_window_is_given_up() {
        let t0 = Instant::now();
        let mut live = Liveness::new(heartbeat(100, 300), t0);
        // The window is interval + timeout.
        live.handle_timeout(t0 + 399 * MS).unwrap(); // ok: test code
        assert_eq!(
            live.handle_timeout(t0 + 400 * MS),
            Err(Silent { window: 400 * MS })
        );
    }

    #[test]
    fn input_within_each_window_keeps_the_peer() {
        let t0 = Instant::now();
        let mut live = Liveness::new(heartbeat(100, 100), t0);
        for step in 1..=10 {
            live.on_input();
            live.handle_timeout(t0 + step * 200 * MS).unwrap(); // ok: test code
        }
        // One window without input after the last check.
        assert!(live.handle_timeout(t0 + 2200 * MS).is_err());
    }

    #[test]
    fn the_timeout_defaults_to_the_interval() {
        let t0 = Instant::now();
        let config = HeartbeatConfig {
            interval: Some(100 * MS),
            ..HeartbeatConfig::off()
        };
        let mut live = Liveness::new(config, t0);
        assert!(live.handle_timeout(t0 + 199 * MS).is_ok());
        assert!(live.handle_timeout(t0 + 200 * MS).is_err());
    }

    #[test]
    fn the_peers_ttl_applies_without_heartbeats_of_our_own() {
        let t0 = Instant::now();
        let mut live = Liveness::new(HeartbeatConfig::off(), t0);
        live.on_peer_ttl(Duration::ZERO, t0);
        assert_eq!(live.poll_timeout(), None, "a zero TTL asks for nothing");
        live.on_peer_ttl(500 * MS, t0 + 10 * MS);
        assert_eq!(live.poll_timeout(), Some(t0 + 510 * MS));
        assert_eq!(
            live.handle_timeout(t0 + 510 * MS),
            Err(Silent { window: 500 * MS })
        );
    }

    #[test]
    fn the_shorter_of_our_window_and_the_peers_ttl_wins() {
        let t0 = Instant::now();
        let mut live = Liveness::new(heartbeat(1000, 1000), t0);
        live.on_peer_ttl(300 * MS, t0);
        live.on_input();
        live.handle_timeout(t0 + 300 * MS).unwrap(); // ok: test code
        assert_eq!(
            live.handle_timeout(t0 + 600 * MS),
            Err(Silent { window: 300 * MS })
        );
        // A TTL longer than our window changes nothing.
        let mut live = Liveness::new(heartbeat(100, 100), t0);
        live.on_peer_ttl(Duration::from_secs(60), t0);
        assert!(live.handle_timeout(t0 + 200 * MS).is_err());
    }

    #[test]
    fn silence_while_we_do_not_listen_is_not_held_against_the_peer() {
        let t0 = Instant::now();
        let mut live = Liveness::new(heartbeat(100, 100), t0);
        live.set_listening(false);
        for step in 1..=10 {
            live.handle_timeout(t0 + step * 200 * MS).unwrap(); // ok: test code
        }
        // Listening again just before a check: that check does not count.
        live.set_listening(true);
        live.handle_timeout(t0 + 2200 * MS).unwrap(); // ok: test code
        assert!(live.handle_timeout(t0 + 2400 * MS).is_err());
    }

    #[test]
    fn our_ping_ttl_is_in_deciseconds_and_saturates() {
        let t0 = Instant::now();
        let ttl = |ttl| Liveness::new(heartbeat(1, 1).with_ttl(ttl), t0).ping_ttl_deciseconds();
        assert_eq!(ttl(None), 0);
        assert_eq!(ttl(Some(Duration::from_millis(2_550))), 25);
        assert_eq!(ttl(Some(Duration::from_secs(10_000))), u16::MAX);
    }
}
