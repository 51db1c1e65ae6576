//! The broker's security and connection-limit flags, turned into socket options.

use std::path::PathBuf;
use std::time::Duration;

use zmtp::auth::{Authenticator, CurveKeyList, PasswordFile};
use zmtp::proto::MechanismConfig;
use zmtp::{certificate, SocketOptions};

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
    /// Time a peer has to finish its handshake, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub handshake_timeout: u64,
}

impl SecurityArgs {
    /// Adds the mechanism, the authenticator and the limits to `options`; a line for
    /// the log says what was set up. Errors name the file and what is wrong in it.
    pub fn apply(&self, options: SocketOptions) -> Result<(SocketOptions, String), String> {
        let options = options
            .max_connections(self.max_connections.max(1))
            .max_handshakes(self.max_handshakes.max(1))
            .handshake_timeout(Duration::from_millis(self.handshake_timeout.max(1)));
        if let Some(path) = &self.curve_secret_key {
            let keys = certificate::load_secret_key(path).map_err(|e| e.to_string())?;
            let public = keys.public_z85();
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
            for path in &self.allow_keys {
                let list = CurveKeyList::load(path).map_err(|e| e.to_string())?;
                if list.is_empty() {
                    return Err(format!("{}: no public key in it", path.display()));
                }
                for key in list.iter() {
                    allowed.insert(*key);
                }
            }
            let summary = format!("CURVE, public key {public}, {} allowed keys", allowed.len());
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
}
