//! Which broker, in which dialect, with which keys: the options every subcommand
//! shares, and the client and worker options they make.

use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;
use mdp::{Client, ClientOptions, Dialect, WorkerOptions};
use zmtp::certificate;
use zmtp::proto::MechanismConfig;

/// The dialects, by the names users type.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DialectName {
    /// MDP/0.1 (zguide): one reply per request.
    Mdp01,
    /// MDP/0.2 (RFC 18): partial replies stream.
    Mdp02,
    /// majortomo.
    Majortomo,
    /// Overseer (msgpack bodies).
    Overseer,
}

impl From<DialectName> for Dialect {
    fn from(name: DialectName) -> Dialect {
        match name {
            DialectName::Mdp01 => Dialect::Mdp01,
            DialectName::Mdp02 => Dialect::Mdp02,
            DialectName::Majortomo => Dialect::Majortomo,
            DialectName::Overseer => Dialect::Overseer,
        }
    }
}

/// The broker and how to talk to it.
#[derive(Debug, clap::Args)]
pub struct BrokerArgs {
    /// The broker's endpoint; repeat it (or separate endpoints with commas) for a
    /// cluster: requests spread over the brokers and fail over on timeout, and a
    /// worker registers with each. `tcp://name:port` means every address of the
    /// name.
    #[arg(
        short,
        long,
        global = true,
        env = "MDP_BROKER",
        default_value = "tcp://127.0.0.1:5555",
        value_delimiter = ',',
        value_name = "ENDPOINT"
    )]
    pub broker: Vec<String>,
    /// The dialect to speak. MDP/0.2 by default: its partial replies stream as they
    /// come (an MDP/0.1 client gets them gathered into one reply).
    #[arg(long, global = true, value_enum, default_value = "mdp02")]
    pub dialect: DialectName,
    /// CURVE: our secret key (a secret certificate from `zmtp-keygen`, or a file with
    /// the Z85 secret key). Needs --curve-server.
    #[arg(long, global = true, value_name = "FILE", requires = "curve_server")]
    pub curve_keys: Option<PathBuf>,
    /// CURVE: the broker's public key (a public certificate, or a file with the Z85
    /// key).
    #[arg(long, global = true, value_name = "FILE", requires = "curve_keys")]
    pub curve_server: Option<PathBuf>,
}

impl BrokerArgs {
    /// NULL, or CURVE with the keys given.
    pub fn mechanism(&self) -> Result<MechanismConfig, String> {
        match (&self.curve_keys, &self.curve_server) {
            (Some(keys), Some(server)) => {
                let keys = certificate::load_secret_key(keys).map_err(|e| e.to_string())?;
                let server = certificate::load_public_key(server).map_err(|e| e.to_string())?;
                Ok(MechanismConfig::curve_client(keys, server))
            }
            _ => Ok(MechanismConfig::Null),
        }
    }

    /// A client of the broker: `timeout` per attempt, `attempts` in all.
    pub fn client(&self, timeout: Duration, attempts: u32) -> Result<Client, String> {
        let options = ClientOptions::default()
            .dialect(self.dialect.into())
            .timeout(timeout)
            .attempts(attempts.max(1))
            .mechanism(self.mechanism()?);
        Client::connect_with(self.broker.clone(), options).map_err(|e| e.to_string())
    }

    /// The broker endpoints, for messages.
    pub fn names(&self) -> String {
        self.broker.join(", ")
    }

    /// Worker options for the broker.
    pub fn worker_options(&self) -> Result<WorkerOptions, String> {
        Ok(WorkerOptions::default()
            .dialect(self.dialect.into())
            .mechanism(self.mechanism()?))
    }
}
