//! The broker's security and connection-limit flags, turned into socket options.

use std::path::PathBuf;
use std::time::Duration;

use zmtp::auth::{Authenticator, CurveKeyList, PasswordFile};
use zmtp::proto::MechanismConfig;
use zmtp::{certificate, HandshakeDefenses, SocketOptions};

/// Who may connect, and how many at once.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Security and limits")]
pub struct SecurityArgs {
    /// CURVE: encrypt everything and authenticate peers with this secret key: a
    /// secret certificate (`zmtp-keygen NAME` writes NAME.key_secret; pyzmq's
    /// zmq.auth.create_certificates and czmq's zcert write the same format) or a
    /// file holding the 40-character Z85 secret key. Peers need the broker's
    /// public key.
    #[arg(long, value_name = "FILE")]
    pub curve_secret_key: Option<PathBuf>,
    /// CURVE: public keys let in; a file, or a directory whose every file is read
    /// (public certificates `*.key`, or Z85 keys one per line); repeatable. A peer
    /// with another key gets an ERROR and nothing it sends reaches a service.
    #[arg(long, value_name = "DIR|FILE", requires = "curve_secret_key")]
    pub allow_keys: Vec<PathBuf>,
    /// CURVE: let in any peer that knows the broker's public key (no allow-list).
    #[arg(long, requires = "curve_secret_key", conflicts_with = "allow_keys")]
    pub allow_any_key: bool,
    /// PLAIN: peers log in with a user name and password from this file
    /// (`user=password` lines). PLAIN sends passwords in clear: prefer CURVE on
    /// untrusted networks.
    #[arg(long, value_name = "FILE", conflicts_with = "curve_secret_key")]
    pub plain_users: Option<PathBuf>,
    /// Most connections open at once on each bound endpoint; more are closed at once.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub max_connections: usize,
    /// Most connections still in their handshake at once on each bound endpoint
    /// (so peers that connect and never finish cannot pile up).
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    pub max_handshakes: usize,
    /// Time a peer has to finish its handshake, in milliseconds, counted from when
    /// its connection is accepted (what it sends does not extend it).
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub handshake_timeout: u64,
    /// Most connections open at once from one source address (an IPv4 address, or
    /// an IPv6 /64) on each bound endpoint; more are closed at once. Default: a
    /// tenth of --max-connections, so one address never fills the broker. ipc://
    /// peers are not counted per address.
    #[arg(long, value_name = "N")]
    pub max_connections_per_address: Option<usize>,
    /// Most connections in their handshake at once from one source address on
    /// each bound endpoint. Default: a tenth of --max-handshakes.
    #[arg(long, value_name = "N")]
    pub max_handshakes_per_address: Option<usize>,
    /// CURVE: HELLOs per second one address may have opened (each costs the broker
    /// public-key work); more get ERROR 300 (temporary failure) before any. A
    /// replayed HELLO (a client short-term key seen before) is always refused.
    #[arg(long, value_name = "N", default_value_t = 100.0)]
    pub curve_hellos_per_address: f64,
    /// CURVE: HELLOs one address may send at once above that rate.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub curve_hello_burst: u32,
    /// PLAIN and CURVE: failed logins one address may have before it is blocked;
    /// then each failure blocks it for --login-backoff, doubled each time up to
    /// --login-backoff-max. A blocked address's connections are closed as they are
    /// accepted and its logins refused unchecked.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub login_failures: u32,
    /// The first block after too many failed logins, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1_000)]
    pub login_backoff: u64,
    /// The longest block, in milliseconds; an address with no failure for this
    /// long is forgotten.
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    pub login_backoff_max: u64,
}

impl SecurityArgs {
    /// Adds the mechanism, the authenticator and the limits to `options`; a line for
    /// the log says what was set up. Errors name the file and what is wrong in it.
    pub fn apply(&self, options: SocketOptions) -> Result<(SocketOptions, String), String> {
        let mut defenses = HandshakeDefenses::default();
        defenses.curve_hellos_per_second = self.curve_hellos_per_address.max(0.0);
        defenses.curve_hello_burst = self.curve_hello_burst.max(1);
        defenses.login_failures_allowed = self.login_failures;
        defenses.login_backoff = Duration::from_millis(self.login_backoff);
        defenses.login_backoff_max = Duration::from_millis(self.login_backoff_max);
        let mut options = options
            .max_connections(self.max_connections.max(1))
            .max_handshakes(self.max_handshakes.max(1))
            .handshake_timeout(Duration::from_millis(self.handshake_timeout.max(1)))
            .handshake_defenses(defenses);
        options.max_connections_per_address = self.max_connections_per_address.map(|n| n.max(1));
        options.max_handshakes_per_address = self.max_handshakes_per_address.map(|n| n.max(1));
        if let Some(path) = &self.curve_secret_key {
            let keys = certificate::load_secret_key(path).map_err(|e| e.to_string())?;
            let public = keys.public_z85();
            let keys_public = keys.public;
            let options = options.mechanism(MechanismConfig::curve_server(keys));
            if self.allow_any_key {
                let summary = format!("CURVE, public key {public}, any client key");
                return Ok((options, summary));
            }
            if self.allow_keys.is_empty() {
                return Err(
                    "--curve-secret-key needs --allow-keys DIR|FILE (the clients' \
                            and workers' public keys), or --allow-any-key"
                        .into(),
                );
            }
            let mut allowed = CurveKeyList::new();
            // Peered brokers connect with this broker's own key pair.
            allowed.insert(keys_public);
            for path in &self.allow_keys {
                let list = CurveKeyList::load(path).map_err(|e| e.to_string())?;
                if list.is_empty() {
                    return Err(format!("{}: no public key in it", path.display()));
                }
                for key in list.iter() {
                    allowed.insert(*key);
                }
            }
            let summary = format!(
                "CURVE, public key {public}, {} allowed keys (its own included)",
                allowed.len()
            );
            let options = options.authenticator(Authenticator::curve_keys(allowed));
            return Ok((options, summary));
        }
        if let Some(path) = &self.plain_users {
            let users = PasswordFile::load(path).map_err(|e| e.to_string())?;
            if users.is_empty() {
                return Err(format!("{}: no user in it", path.display()));
            }
            let summary = format!("PLAIN, {} users", users.len());
            let options = options
                .mechanism(MechanismConfig::PlainServer)
                .authenticator(Authenticator::plain_users(users));
            return Ok((options, summary));
        }
        Ok((options, "NULL (no authentication, no encryption)".into()))
    }

    /// The options of the socket that dials peered brokers: `front` (the front
    /// end's limits and settings) with the client side of its mechanism: CURVE
    /// with this broker's key pair towards `peer_public_key` (default: its own
    /// public key); NULL stays NULL. PLAIN has no client credentials to give.
    pub fn peer_options(
        &self,
        front: SocketOptions,
        peer_public_key: Option<&std::path::Path>,
    ) -> Result<SocketOptions, String> {
        let options = front.mechanism(MechanismConfig::Null);
        if let Some(path) = &self.curve_secret_key {
            let keys = certificate::load_secret_key(path).map_err(|e| e.to_string())?;
            let server = match peer_public_key {
                Some(path) => certificate::load_public_key(path).map_err(|e| e.to_string())?,
                None => keys.public,
            };
            return Ok(options.mechanism(MechanismConfig::curve_client(keys, server)));
        }
        if self.plain_users.is_some() {
            return Err(
                "--peer is not available with PLAIN (peers would need a password \
                        to send): use CURVE, or NULL on a trusted network"
                    .into(),
            );
        }
        Ok(options)
    }
}
